"""The vllm backend beside the hf backend on the same requests, in one run (needs `make vllm`).

    .venv/bin/python benchmarks/vllm_vs_hf.py [--questions 40] [--items 16] [--model smollm2-135m-instruct]

Prints the vLLM engine's start time, GlobalOpinionsQA scoring time and throughput of both backends (vLLM
runs prefix + candidate as one request per candidate; hf runs the prompt once and the candidates on its KV
cache), the largest per-candidate difference in nats, and MD3 greedy generation time and equality.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from globalign.data.global_opinions import load_global_opinions
from globalign.data.locate import resolve_data_dir
from globalign.data.md3 import load_md3_items
from globalign.models.resolve import ModelSpec, load_model, locate_model
from globalign.models.tokenization import split_candidates
from globalign.requests import GenerateRequest, ScoreRequest
from globalign.tasks import global_opinions, md3
from globalign.threads import apply_runtime_defaults


def main() -> None:
    apply_runtime_defaults()  # globalign's thread policy, as the CLI has it: set before torch loads
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--seed", type=int, default=221)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here (make bench reads them)")
    args = parser.parse_args()
    try:
        import vllm  # noqa: F401
    except ImportError:
        print("skipped: vLLM is not installed (make vllm)")
        return

    data = resolve_data_dir()
    questions = load_global_opinions(data).questions
    picked = sorted(random.Random(args.seed).sample(range(len(questions)), args.questions))
    scoring = [ScoreRequest(global_opinions.build_prompt(questions[i]).raw, global_opinions.candidates(questions[i]))
               for i in picked]
    items = md3.stratified_sample(load_md3_items(data).items, args.items, args.seed)
    generation = [GenerateRequest(md3.build_prompt(item).raw, md3.MAX_NEW_TOKENS) for item in items]

    hf = load_model(locate_model(ModelSpec(args.model)))
    start = time.perf_counter()
    vllm_model = load_model(locate_model(ModelSpec(args.model, backend="vllm")))
    started = time.perf_counter() - start
    try:
        figures = side_by_side(hf, vllm_model, scoring, generation)
    finally:
        vllm_model.close()
        hf.close()
    print(f"model {args.model}, float32; vLLM engine start {started:.1f} s")
    report(figures)
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "engine_start_s": started, **figures}), encoding="utf-8")


def side_by_side(hf, vllm_model, scoring: list[ScoreRequest], generation: list[GenerateRequest]) -> dict:
    """Both backends on the same requests, one after the other: times, tokens computed, the largest score
    difference and how many greedy texts are identical (also run by benchmarks/gpu_check.py on a GPU)."""
    for model in (hf, vllm_model):  # warm-up: vLLM's first prompt-logprobs call is seconds slower
        model.score(scoring[:1])
    timings, scores = {}, {}
    for name, model in (("hf", hf), ("vllm", vllm_model)):
        t0 = time.perf_counter()
        scores[name] = model.score(scoring)
        timings[name] = time.perf_counter() - t0
    splits = [split_candidates(hf.encode, hf.render(r.prompt), r.continuations) for r in scoring]
    computed = {"hf": sum(len(s[0].prefix_ids) + sum(len(x.continuation_ids) for x in s) for s in splits),
                "vllm": sum(len(x.prefix_ids) + len(x.continuation_ids) for s in splits for x in s)}
    pairs = [(a, b) for ra, rb in zip(scores["hf"], scores["vllm"]) for a, b in zip(ra, rb)]
    texts, generation_s = {}, {}
    for name, model in (("hf", hf), ("vllm", vllm_model)):
        t0 = time.perf_counter()
        texts[name] = model.generate(generation)
        generation_s[name] = time.perf_counter() - t0
    return {
        "questions": len(scoring), "candidates": sum(len(r.continuations) for r in scoring),
        "scoring_s": timings, "tokens_computed": computed,
        "max_diff_per_candidate": max(abs(a.nll_sum - b.nll_sum) for a, b in pairs),
        "max_diff_per_token": max(abs(a.nll_sum - b.nll_sum) / a.n_tokens for a, b in pairs if a.n_tokens),
        "generation_requests": len(generation), "generation_s": generation_s,
        "identical_texts": sum(a == b for a, b in zip(texts["hf"], texts["vllm"])),
    }


def report(figures: dict) -> None:
    n = figures["candidates"]
    print(f"scoring {figures['questions']} questions, {n} candidates:")
    for name in ("hf", "vllm"):
        seconds, tokens = figures["scoring_s"][name], figures["tokens_computed"][name]
        print(f"  {name:5}: {seconds:7.2f} s, {figures['questions'] / seconds:6.1f} requests/s, "
              f"{n / seconds:6.1f} candidates/s, {tokens} prompt tokens computed ({tokens / seconds:6.0f} tokens/s)")
    print(f"  max |vllm - hf|: {figures['max_diff_per_candidate']:.2e} nats per candidate, "
          f"{figures['max_diff_per_token']:.2e} per token")
    g = figures["generation_s"]
    print(f"generation, {figures['generation_requests']} MD3 prompts: hf {g['hf']:.2f} s, vllm {g['vllm']:.2f} s; "
          f"identical texts {figures['identical_texts']}/{figures['generation_requests']}")

if __name__ == "__main__":
    main()
