"""Batched greedy generation vs one prompt at a time, side by side in one run, on MD3 word-game prompts.

    .venv/bin/python benchmarks/generation_batching.py [--items 48] [--model smollm2-135m-instruct] [--batch-size 16]
        [--json OUT]

Generates the 10-token answers of the same seeded MD3 sample both ways (no request cache), in two
halves with the order alternated to spread machine noise, and prints items/s for each, the ratio, and
whether every generated text is identical (`--json OUT` also writes these figures to OUT).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from globalign.data.locate import resolve_data_dir
from globalign.data.md3 import load_md3_items
from globalign.models.resolve import ModelSpec, load_model
from globalign.requests import GenerateRequest
from globalign.tasks.md3 import MAX_NEW_TOKENS, build_prompt, stratified_sample
from globalign.threads import apply_runtime_defaults


def main() -> None:
    apply_runtime_defaults()  # globalign's thread policy, as the CLI has it: set before torch loads
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=48)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=221)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    items = stratified_sample(load_md3_items(resolve_data_dir()).items, args.items, args.seed)
    requests = [GenerateRequest(build_prompt(item).raw, MAX_NEW_TOKENS) for item in items]
    model = load_model(ModelSpec(args.model, batch_size=args.batch_size))
    model.generate(requests[:2])  # warm-up: first-call allocations are not part of either method

    halves = [requests[: len(requests) // 2], requests[len(requests) // 2 :]]
    timings = {"batched": 0.0, "one at a time": 0.0}
    texts: dict[str, list[str]] = {"batched": [], "one at a time": []}
    for half_index, half in enumerate(halves):
        order = ("batched", "one at a time") if half_index == 0 else ("one at a time", "batched")
        for method in order:
            fn = model.generate if method == "batched" else model.generate_unbatched
            start = time.perf_counter()
            texts[method].extend(fn(half))
            timings[method] += time.perf_counter() - start
    same = sum(a == b for a, b in zip(texts["batched"], texts["one at a time"]))
    n = len(requests)
    print(f"model {args.model}, {n} MD3 prompts (seeded, stratified), {MAX_NEW_TOKENS} new tokens, "
          f"batch size {args.batch_size}")
    for method, seconds in timings.items():
        print(f"{method:14}: {seconds:7.2f} s  {n / seconds:6.2f} items/s")
    print(f"speedup       : {timings['one at a time'] / timings['batched']:.2f}x")
    print(f"identical text: {same}/{n}")
    if args.json:
        args.json.write_text(json.dumps({
            "model": args.model, "prompts": n, "new_tokens": MAX_NEW_TOKENS, "batch_size": args.batch_size,
            "batched_items_per_s": round(n / timings["batched"], 2),
            "one_at_a_time_items_per_s": round(n / timings["one at a time"], 2),
            "speedup": round(timings["one at a time"] / timings["batched"], 2), "identical_texts": same,
            "load_1min": round(os.getloadavg()[0], 2)}), encoding="utf-8")


if __name__ == "__main__":
    main()
