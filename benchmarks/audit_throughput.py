"""`globalign audit-data` at corpus scale: throughput and peak memory on a generated chat corpus of
1,000,000 messages of ~500 characters, and, in the same run, the speedup of the process pool over one
process on a slice of it.

    .venv/bin/python benchmarks/audit_throughput.py [--messages 1000000] [--workers N] [--keep DIR] [--json OUT]

The corpus is written as JSONL (4 messages per record: user, assistant, user, assistant) into a temp
folder. Messages are 500-character windows at random offsets of per-language streams of the labelled
corpus (TyDi QA passages and questions in 9 languages, MD3 transcripts, AskReddit questions), so nearly
every message is distinct and the language mix is the corpus's. Memory is sampled from /proc every
0.2 s over the whole process tree (the audit and its workers): the peak of the sum is what the machine
had to hold.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from globalign.audit.labelled_corpus import labelled_texts
from globalign.data.locate import resolve_data_dir
from globalign.threads import usable_cpus

MESSAGE_CHARS = 500


def write_corpus(path: Path, n_messages: int, seed: int = 0) -> dict[str, int]:
    streams: dict[str, str] = defaultdict(str)
    for text in labelled_texts(resolve_data_dir()):
        streams[text.language] += " ".join(text.text.split()) + " "
    languages = sorted(streams)
    weights = [len(streams[lang]) for lang in languages]
    rng = random.Random(seed)
    mix: dict[str, int] = defaultdict(int)
    with path.open("w", encoding="utf-8") as handle:
        for record in range(0, n_messages, 4):
            language = rng.choices(languages, weights)[0]
            stream = streams[language]
            turns = []
            for turn in range(min(4, n_messages - record)):
                start = rng.randrange(0, max(1, len(stream) - MESSAGE_CHARS))
                turns.append({"role": ("user", "assistant")[turn % 2], "content": stream[start : start + MESSAGE_CHARS]})
                mix[language] += 1
            handle.write(json.dumps({"id": record // 4, "messages": turns}, ensure_ascii=False) + "\n")
    return dict(mix)


def _tree_rss_bytes(root: int) -> int:
    """RSS of `root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = defaultdict(list)
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            children[int(fields[1])].append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def run_audit(source: Path, output: Path, workers: int, extra: list[str]) -> tuple[float, int, dict]:
    command = [sys.executable, "-m", "globalign.cli", "audit-data", str(source), "--output", str(output),
               "--workers", str(workers), "--no-map", "--quiet", "--restart", *extra]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss_bytes(process.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = process.communicate()
    stop.set()
    sampler.join()
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"audit failed: {err.strip().splitlines()[-1] if err.strip() else process.returncode}")
    return seconds, peak, json.loads((output / "manifest.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--slice", type=int, default=40_000, help="messages for the pool-vs-one-process comparison")
    parser.add_argument("--workers", type=int, default=usable_cpus())
    parser.add_argument("--keep", type=Path, help="write the corpus here and keep it")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        corpus = folder / "corpus.jsonl"
        mix = write_corpus(corpus, args.messages)
        small = folder / "slice.jsonl"
        small_mix = write_corpus(small, args.slice, seed=1)
        print(f"corpus: {sum(mix.values()):,} messages of {MESSAGE_CHARS} characters, "
              f"{corpus.stat().st_size / 1e6:.0f} MB JSONL, written in {time.perf_counter() - t0:.0f} s; "
              f"mix: {', '.join(f'{k} {v / sum(mix.values()):.1%}' for k, v in sorted(mix.items()))}")

        one, _, _ = run_audit(small, folder / "out-one", 1, [])
        pool, _, _ = run_audit(small, folder / "out-pool", args.workers, [])
        n_small = sum(small_mix.values())
        print(f"slice of {n_small:,} messages: 1 process {one:.1f} s ({n_small / one:,.0f} msg/s), "
              f"{args.workers} workers {pool:.1f} s ({n_small / pool:,.0f} msg/s): {one / pool:.2f}x")

        seconds, peak, manifest = run_audit(corpus, folder / "out", args.workers, [])
        n = manifest["messages"]
        print(f"full audit, {args.workers} workers: {n:,} messages in {seconds:.0f} s wall = {n / seconds:,.0f} msg/s "
              f"(counting only: {manifest['messages_per_second']:,.0f} msg/s)")
        print(f"peak memory, whole process tree: {peak / 2**20:,.0f} MiB "
              f"(main process {manifest['peak_rss_mb']['main_process']:,.0f} MiB, "
              f"largest worker {manifest['peak_rss_mb']['largest_worker']:,.0f} MiB)")
        print(f"non-English share (agreement rule): {manifest['non_english_share']['agree']:.1%}")

        seconds_nc, _, _ = run_audit(small, folder / "out-nc", args.workers, ["--no-countries"])
        print(f"slice without country mentions: {n_small / seconds_nc:,.0f} msg/s "
              f"(country search costs {pool / seconds_nc:.2f}x)")
        if args.json:
            args.json.write_text(json.dumps({
                "messages": n, "workers": args.workers, "seconds": round(seconds, 1),
                "messages_per_second": round(n / seconds), "counting_messages_per_second":
                round(manifest["messages_per_second"]), "peak_memory_mib": round(peak / 2**20),
                "slice_messages": n_small, "slice_one_process_messages_per_second": round(n_small / one),
                "slice_pool_messages_per_second": round(n_small / pool), "pool_speedup": round(one / pool, 2),
                "slice_no_countries_messages_per_second": round(n_small / seconds_nc),
                "load_1min": round(os.getloadavg()[0], 2)}), encoding="utf-8")


if __name__ == "__main__":
    main()
