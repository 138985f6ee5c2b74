"""The full AskReddit LM probe (554 questions x 254 countries) through the shared-prompt path, against
naive per-candidate scoring measured on a sample of questions and scaled, in one run.

    .venv/bin/python benchmarks/askreddit_lm_probe.py [--model smollm2-135m-instruct] [--questions 554] [--naive-questions 4]
        [--json OUT]

Prints the wall time of the shared-prompt probe on `--questions` questions (all 554 by default) and
its projection to 554, the naive time per question on the sample and its projection, the ratio, and
the largest difference between the two methods on the sampled questions (nats per token).
`--json OUT` also writes these figures to OUT.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

from globalign.data.locate import resolve_data_dir
from globalign.data.reward_probe import load_askreddit, load_where_from_countries
from globalign.models.resolve import ModelSpec, load_model
from globalign.requests import ScoreRequest
from globalign.threads import apply_runtime_defaults


def main() -> None:
    apply_runtime_defaults()  # globalign's thread policy, as the CLI has it: set before torch loads
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--questions", type=int, default=554, help="questions for the shared-prompt path")
    parser.add_argument("--naive-questions", type=int, default=4)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--seed", type=int, default=221)
    args = parser.parse_args()

    data_dir = resolve_data_dir()
    countries = load_where_from_countries(data_dir)
    questions = load_askreddit(data_dir)
    requests = [ScoreRequest(q.lm_prompt(), tuple(q.lm_candidate(c) for c in countries)) for q in questions]
    model = load_model(ModelSpec(args.model))
    model.score(requests[:1])  # warm-up

    total = len(requests)
    rng = random.Random(args.seed)
    shared_ids = sorted(rng.sample(range(total), min(args.questions, total)))
    sample = sorted(rng.sample(shared_ids, min(args.naive_questions, len(shared_ids))))
    fed = model.tokens_fed
    start = time.perf_counter()
    naive = model.score_naive([requests[i] for i in sample])
    naive_seconds = time.perf_counter() - start
    naive_fed, fed = model.tokens_fed - fed, model.tokens_fed
    start = time.perf_counter()
    shared = dict(zip(shared_ids, model.score([requests[i] for i in shared_ids])))
    shared_seconds = time.perf_counter() - start
    shared_fed = model.tokens_fed - fed
    diff = max(abs(a.nll_sum - b.nll_sum) / max(1, a.n_tokens)
               for i, row in zip(sample, naive) for a, b in zip(shared[i], row))
    shared_projected = shared_seconds / len(shared_ids) * total
    naive_projected = naive_seconds / len(sample) * total
    n_candidates = sum(len(r.continuations) for r in requests)
    print(f"model {args.model}: {total} questions x {len(countries)} countries = {n_candidates} candidates")
    print(f"shared prompt, {len(shared_ids)} questions : {shared_seconds:8.1f} s "
          f"({shared_seconds / len(shared_ids):.2f} s per question; {shared_projected:.0f} s for {total})")
    print(f"naive, {len(sample)} questions         : {naive_seconds:8.1f} s "
          f"({naive_seconds / len(sample):.2f} s per question; {naive_projected:.0f} s for {total})")
    print(f"speedup                       : {naive_projected / shared_projected:.1f}x")
    print(f"tokens fed per question       : shared {shared_fed / len(shared_ids):.0f}, naive {naive_fed / len(sample):.0f}")
    print(f"max |diff| per token         : {diff:.1e} nats (sampled questions)")
    if args.json:
        figures = {"model": args.model, "questions": total, "candidates": n_candidates,
                   "shared_questions": len(shared_ids), "shared_seconds": round(shared_seconds, 2),
                   "shared_projected_seconds": round(shared_projected, 1), "naive_questions": len(sample),
                   "naive_seconds": round(naive_seconds, 2), "naive_projected_seconds": round(naive_projected, 1),
                   "speedup": round(naive_projected / shared_projected, 2), "max_diff_per_token": diff,
                   "tokens_fed_per_question": {"shared": round(shared_fed / len(shared_ids)),
                                               "naive": round(naive_fed / len(sample))},
                   "load_1min": round(os.getloadavg()[0], 2)}
        args.json.write_text(json.dumps(figures), encoding="utf-8")


if __name__ == "__main__":
    main()
