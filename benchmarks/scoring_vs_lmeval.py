"""Scoring side by side in one run, on one model and the same (prompt, continuation) pairs: globalign's
engine (packed rows), naive per-candidate full passes (the study's method, `score_naive`) and
lm-evaluation-harness's HF backend (`HFLM.loglikelihood`, in its own virtual environment), on
GlobalOpinionsQA and on MD3's 6-way choice.

    .venv/bin/python benchmarks/scoring_vs_lmeval.py [--model smollm2-135m-instruct] [--questions 100]
        [--md3-items 60] [--naive-every 4] [--lmeval-batch-sizes 1,8,32] [--json OUT]

Each data set is cut in two halves, run in the order globalign, naive, lm-eval on the first and the
reverse on the second, to spread machine noise. lm-eval runs every batch size on the first half and
its fastest there on the second too: its time is that batch size's over both halves. Naive scoring
runs on every `--naive-every`-th request and is projected by tokens (its time per token fed x the
tokens it would feed for all). Scores are compared pair by pair (max |difference| in nats per token)
where lm-eval's tokenisation (context tokens, continuation tokens) equals globalign's; pairs tokenised
differently are counted. Token efficiency = (distinct prompts' tokens + candidates' tokens) / tokens
run through the model, padding included.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from globalign.threads import apply_runtime_defaults

ROOT = Path(__file__).resolve().parents[1]
LMEVAL_PYTHON = ROOT / ".venv-lmeval" / "bin" / "python"
LMEVAL_DRIVER = ROOT / "benchmarks" / "lmeval" / "loglikelihood.py"


def goqa_requests(n: int, seed: int) -> list:
    from globalign.data.global_opinions import load_global_opinions
    from globalign.data.locate import resolve_data_dir
    from globalign.requests import ScoreRequest
    from globalign.tasks.global_opinions import build_prompt, candidates

    questions = load_global_opinions(resolve_data_dir()).questions
    picked = sorted(random.Random(seed).sample(range(len(questions)), n))
    return [ScoreRequest(build_prompt(questions[i]).raw, candidates(questions[i])) for i in picked]


def md3_requests(n: int, seed: int) -> list:
    """The MD3 task's choice requests (raw prompts, the 6 candidates in their seeded order)."""
    from globalign.data.locate import resolve_data_dir
    from globalign.data.md3 import load_md3_items
    from globalign.requests import ScoreRequest
    from globalign.tasks.md3 import build_prompt, choice_candidates, stratified_sample

    items = stratified_sample(load_md3_items(resolve_data_dir()).items, n, seed)
    return [ScoreRequest(build_prompt(item).raw, choice_candidates(item, seed)[0]) for item in items]


def run_lmeval(model, requests, batch_sizes: list[int], python: Path) -> dict:
    """lm-eval's scores and timings for every pair of `requests` (see benchmarks/lmeval/loglikelihood.py)."""

    pairs = [[model.render(r.prompt), c] for r in requests for c in r.continuations]
    spec = {"model": str(model.folder), "dtype": model.info.dtype, "threads": model.threads,
            "add_bos": model.info.add_bos, "pairs": pairs, "batch_sizes": batch_sizes}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "in.json").write_text(json.dumps(spec), encoding="utf-8")
        done = subprocess.run([str(python), str(LMEVAL_DRIVER), f"{tmp}/in.json", f"{tmp}/out.json"],
                              check=False, capture_output=True, text=True)
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
            raise SystemExit(f"lm-eval failed: {tail[0]}")
        return json.loads((Path(tmp) / "out.json").read_text(encoding="utf-8"))


def compare_dataset(model, name: str, requests: list, args, python: Path) -> dict:
    from globalign.engine.runner import Engine
    from globalign.models.tokenization import split_candidates

    splits = [split_candidates(model.encode, model.render(r.prompt), r.continuations) for r in requests]
    flat = [s for row in splits for s in row]
    unique = sum(len(p) for p in {s.prefix_ids for s in flat}) + sum(len(s.continuation_ids) for s in flat)
    naive_all_tokens = sum(len(s.prefix_ids) + len(s.continuation_ids) for s in flat if s.continuation_ids)
    half = len(requests) // 2
    halves = [list(range(half)), list(range(half, len(requests)))]
    sampled = set(range(0, len(requests), args.naive_every))
    load_before = os.getloadavg()[0]

    ours: dict[int, list] = {}
    naive: dict[int, list] = {}
    seconds = {"globalign": 0.0, "naive": 0.0}
    cpu = {"globalign": 0.0, "naive": 0.0}  # CPU seconds of every thread: less moved by other programs
    fed = {"globalign": 0, "naive": 0}
    lmeval_runs: list[dict] = []
    lmeval_tokens: list = []
    sweep: dict[int, float] = {}
    best = None
    for half_index, indices in enumerate(halves):
        order = ("globalign", "naive", "lm-eval") if half_index == 0 else ("lm-eval", "naive", "globalign")
        for method in order:
            if method == "lm-eval":
                sizes = args.lmeval_batch_sizes if half_index == 0 else [best]
                out = run_lmeval(model, [requests[i] for i in indices], sizes, python)
                lmeval_tokens += out["tokens"]
                if half_index == 0:
                    sweep = {run["batch_size"]: run["seconds"] for run in out["runs"]}
                    best = min(sweep, key=sweep.get)
                lmeval_runs += [run for run in out["runs"] if run["batch_size"] == best]
                versions = out["versions"]
                continue
            batch = [i for i in indices if method == "globalign" or i in sampled]
            before = model.tokens_fed
            start, cpu_start = time.perf_counter(), time.process_time()
            if method == "globalign":
                answers = Engine(model, None, progress=False).score([requests[i] for i in batch])
            else:
                answers = model.score_naive([requests[i] for i in batch])
            seconds[method] += time.perf_counter() - start
            cpu[method] += time.process_time() - cpu_start
            fed[method] += model.tokens_fed - before
            (ours if method == "globalign" else naive).update(zip(batch, answers))
    load_after = os.getloadavg()[0]

    def per_token(a: float, b: float, n: int) -> float:
        return abs(a - b) / n

    naive_diff = max((per_token(a.nll_sum, b.nll_sum, a.n_tokens) for i, row in naive.items()
                      for a, b in zip(ours[i], row) if a.n_tokens), default=0.0)
    ours_flat = [s for i in range(len(requests)) for s in ours[i]]
    lmeval_scores = [ll for run in lmeval_runs for ll in run["loglikelihoods"]]
    # lm-eval's pairs came in request order, first half then second: the same order as `flat`.
    alike, differ, lm_diff = 0, 0, 0.0
    for split, score, (context_ids, continuation_ids), ll in zip(flat, ours_flat, lmeval_tokens, lmeval_scores):
        if list(split.prefix_ids) == list(context_ids) and list(split.continuation_ids) == list(continuation_ids):
            alike += 1
            lm_diff = max(lm_diff, per_token(score.nll_sum, -ll, score.n_tokens))
        else:
            differ += 1
    lm_seconds = sum(run["seconds"] for run in lmeval_runs)
    lm_cpu = sum(run["cpu_seconds"] for run in lmeval_runs)
    lm_fed = sum(run["tokens_fed"] for run in lmeval_runs)
    naive_projected = seconds["naive"] * naive_all_tokens / max(1, fed["naive"])
    return {
        "data": name, "requests": len(requests), "candidates": len(flat), "unique_tokens": unique,
        "load_1min": [round(load_before, 2), round(load_after, 2)],
        "globalign": {"seconds": round(seconds["globalign"], 2), "cpu_seconds": round(cpu["globalign"], 2),
                      "tokens_fed": fed["globalign"],
                      "token_efficiency": round(unique / fed["globalign"], 3)},
        "naive": {"sample_requests": len(naive), "sample_seconds": round(seconds["naive"], 2),
                  "seconds_projected": round(naive_projected, 1), "tokens_fed": naive_all_tokens,
                  "token_efficiency": round(unique / naive_all_tokens, 3),
                  "max_diff_per_token_vs_globalign": naive_diff},
        "lm_eval": {"versions": versions, "sweep_first_half_seconds": {str(k): round(v, 2) for k, v in sweep.items()},
                    "best_batch_size": best, "seconds": round(lm_seconds, 2), "cpu_seconds": round(lm_cpu, 2),
                    "tokens_fed": lm_fed,
                    "token_efficiency": round(unique / lm_fed, 3), "pairs_tokenised_alike": alike,
                    "pairs_tokenised_differently": differ, "max_diff_per_token_vs_globalign": lm_diff},
        "speedup_vs_lm_eval": round(lm_seconds / seconds["globalign"], 2),
        "cpu_speedup_vs_lm_eval": round(lm_cpu / cpu["globalign"], 2),
        "speedup_vs_naive": round(naive_projected / seconds["globalign"], 2),
    }


def print_dataset(result: dict) -> None:
    g, n, lm = result["globalign"], result["naive"], result["lm_eval"]
    print(f"{result['data']}: {result['requests']} prompts, {result['candidates']} candidates, "
          f"{result['unique_tokens']} distinct tokens; load {result['load_1min'][0]} -> {result['load_1min'][1]}")
    print(f"  globalign engine        : {g['seconds']:8.2f} s  tokens fed {g['tokens_fed']:7d}  efficiency {g['token_efficiency']:.2f}")
    print(f"  naive (study), projected: {n['seconds_projected']:8.1f} s  tokens fed {n['tokens_fed']:7d}  efficiency "
          f"{n['token_efficiency']:.2f}  ({n['sample_requests']} prompts run: {n['sample_seconds']:.1f} s)")
    sweep = ", ".join(f"batch {k}: {v:.1f} s" for k, v in lm["sweep_first_half_seconds"].items())
    print(f"  lm-eval, batch {lm['best_batch_size']:<3}     : {lm['seconds']:8.2f} s  tokens fed {lm['tokens_fed']:7d}  "
          f"efficiency {lm['token_efficiency']:.2f}  (first half: {sweep})")
    print(f"  speedup: {result['speedup_vs_lm_eval']:.2f}x vs lm-eval (CPU time {result['cpu_speedup_vs_lm_eval']:.2f}x), "
          f"{result['speedup_vs_naive']:.1f}x vs naive")
    print(f"  max |diff| per token: vs naive {n['max_diff_per_token_vs_globalign']:.1e} nats; vs lm-eval "
          f"{lm['max_diff_per_token_vs_globalign']:.1e} on {lm['pairs_tokenised_alike']} pairs tokenised alike "
          f"({lm['pairs_tokenised_differently']} tokenised differently)")


def main() -> None:
    apply_runtime_defaults()  # globalign's thread policy, as the CLI has it; lm-eval's process inherits it
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--questions", type=int, default=100, help="GlobalOpinionsQA questions")
    parser.add_argument("--md3-items", type=int, default=60)
    parser.add_argument("--naive-every", type=int, default=4, help="naive scoring on every N-th prompt")
    parser.add_argument("--lmeval-batch-sizes", default="1,8,32")
    parser.add_argument("--lmeval-python", type=Path, default=LMEVAL_PYTHON)
    parser.add_argument("--seed", type=int, default=221)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    args.lmeval_batch_sizes = [int(b) for b in args.lmeval_batch_sizes.split(",")]
    if not args.lmeval_python.exists():
        raise SystemExit(f"no lm-eval environment at {args.lmeval_python}: run scripts/setup-lmeval-venv.sh")

    from globalign.models.resolve import ModelSpec, load_model

    model = load_model(ModelSpec(args.model))
    data = {"GlobalOpinionsQA": goqa_requests(args.questions, args.seed),
            "MD3 choice": md3_requests(args.md3_items, args.seed)}
    results = []
    for name, requests in data.items():
        model.score(requests[:2])  # warm-up (and the one-time packing check): not part of any method
        results.append(compare_dataset(model, name, requests, args, args.lmeval_python))
        print_dataset(results[-1])
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "datasets": results}), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
