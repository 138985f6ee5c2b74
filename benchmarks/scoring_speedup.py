"""Shared-prompt scoring (KV-cache reuse) vs naive per-candidate scoring, side by side in one run.

    .venv/bin/python benchmarks/scoring_speedup.py [--questions 100] [--model smollm2-135m-instruct]

Scores the same GlobalOpinionsQA questions both ways (no request cache), alternating the order to
spread machine noise, and prints wall times, the speedup ratio and the largest per-candidate
difference in nats.
"""

from __future__ import annotations

import argparse
import random
import time

from globalign.data.global_opinions import load_global_opinions
from globalign.data.locate import resolve_data_dir
from globalign.models.resolve import ModelSpec, load_model
from globalign.requests import ScoreRequest
from globalign.tasks.global_opinions import build_prompt, candidates
from globalign.threads import apply_runtime_defaults


def main() -> None:
    apply_runtime_defaults()  # globalign's thread policy, as the CLI has it: set before torch loads
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--seed", type=int, default=221)
    args = parser.parse_args()

    dataset = load_global_opinions(resolve_data_dir())
    picked = sorted(random.Random(args.seed).sample(range(len(dataset.questions)), args.questions))
    questions = [dataset.questions[i] for i in picked]
    requests = [ScoreRequest(build_prompt(q).raw, candidates(q)) for q in questions]
    model = load_model(ModelSpec(args.model))
    model.score(requests[:2])  # warm-up: first-call allocations are not part of either method

    halves = [requests[: len(requests) // 2], requests[len(requests) // 2 :]]
    timings = {"shared": 0.0, "naive": 0.0}
    results: dict[str, list] = {"shared": [], "naive": []}
    for half_index, half in enumerate(halves):
        order = ("shared", "naive") if half_index == 0 else ("naive", "shared")
        for method in order:
            fn = model.score if method == "shared" else model.score_naive
            start = time.perf_counter()
            results[method].extend(fn(half))
            timings[method] += time.perf_counter() - start
    # Re-assemble in request order (the second half's results were appended after the first's).
    diffs = [abs(a.nll_sum - b.nll_sum) / max(1, a.n_tokens)
             for ra, rb in zip(results["shared"], results["naive"]) for a, b in zip(ra, rb)]
    n_candidates = sum(len(r.continuations) for r in requests)
    print(f"model {args.model}, {len(requests)} GlobalOpinionsQA questions, {n_candidates} candidates "
          f"({n_candidates / len(requests):.2f} per prompt)")
    print(f"naive per-candidate  : {timings['naive']:7.2f} s")
    print(f"shared prompt (KV)   : {timings['shared']:7.2f} s")
    print(f"speedup              : {timings['naive'] / timings['shared']:.2f}x")
    print(f"max |diff| per token : {max(diffs):.2e} nats (mean-token NLL)")


if __name__ == "__main__":
    main()
