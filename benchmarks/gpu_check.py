"""CUDA check of the transformers backend (needs a GPU; exits early without one).

    python benchmarks/gpu_check.py --models DIR [DIR ...] --data-dir DATA [--items 64]

Each DIR holds a model's config and tokenizer (weights optional: without them the architecture is
built with seeded random weights, which exercises the same code and costs the same compute). For
each model and dtype it reports, side by side in one run:
- batched vs one-at-a-time greedy generation on MD3 prompts: items/s, ratio, identical texts;
- shared-prompt vs naive candidate scoring: max per-token difference in nats;
- when vLLM is installed (`make vllm` installs the CPU build; on a GPU machine `pip install vllm`): the
  vllm and hf backends on the same GlobalOpinionsQA and MD3 requests (benchmarks/vllm_vs_hf.py's
  `side_by_side`): scores (max difference), tokens/s, requests/s, identical greedy texts.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

from globalign.data.md3 import load_md3_items
from globalign.models.hf import TransformersModel
from globalign.requests import GenerateRequest, ScoreRequest
from globalign.tasks.md3 import MAX_NEW_TOKENS, build_prompt, choice_candidates, stratified_sample


def _materialise(folder: Path, work: Path) -> Path:
    """`folder` itself when it has weights, else a copy with seeded random weights."""
    if any(folder.glob("*.safetensors")):
        return folder
    import shutil

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder))
    target = work / folder.name
    model.save_pretrained(target)
    for file in folder.iterdir():
        if file.name.startswith("tokenizer") or file.suffix == ".jinja":
            shutil.copy(file, target / file.name)
    return target


def _timed(fn, *args):
    import torch

    torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn(*args)
    torch.cuda.synchronize()
    return out, time.perf_counter() - start


def check(folder: Path, dtype: str, items, batch_size: int) -> None:
    model = TransformersModel(folder, name=folder.name, source=str(folder), dtype=dtype, batch_size=batch_size,
                              content_hash=hashlib.sha256(str(folder).encode()).hexdigest())
    requests = [GenerateRequest(build_prompt(item).raw, MAX_NEW_TOKENS) for item in items]
    model.generate(requests[:4])  # warm-up
    batched, t_batched = _timed(model.generate, requests)
    single, t_single = _timed(model.generate_unbatched, requests)
    same = sum(a == b for a, b in zip(batched, single))
    scores = [ScoreRequest(build_prompt(item).raw, choice_candidates(item, 221)[0]) for item in items[:16]]
    shared, t_shared = _timed(model.score, scores)
    naive, t_naive = _timed(model.score_naive, scores)
    diff = max(abs(a.nll_sum - b.nll_sum) / max(1, a.n_tokens) for ra, rb in zip(shared, naive) for a, b in zip(ra, rb))
    n = len(requests)
    print(f"{folder.name} {dtype} on {model.device}: generation batched {n / t_batched:.1f} items/s, "
          f"one at a time {n / t_single:.1f} items/s, ratio {t_single / t_batched:.1f}x, identical {same}/{n}; "
          f"scoring shared {t_shared:.2f} s vs naive {t_naive:.2f} s, max diff {diff:.1e} nats/token", flush=True)
    if same != n:
        for a, b in zip(batched, single):
            if a != b:
                print(f"  first difference: batched {a!r} vs single {b!r}")
                break
    model.close()


def check_vllm(folder: Path, dtype: str, data_dir: Path, items, questions: int) -> None:
    """The vllm backend beside the hf backend on the GPU, same requests, same dtype."""
    try:
        import vllm  # noqa: F401
    except ImportError:
        print(f"{folder.name} {dtype}: vllm vs hf skipped: vLLM is not installed")
        return
    import random

    from vllm_vs_hf import report, side_by_side

    from globalign.data.global_opinions import load_global_opinions
    from globalign.models.resolve import ModelSpec, load_model
    from globalign.tasks import global_opinions

    pool = load_global_opinions(data_dir).questions
    picked = sorted(random.Random(221).sample(range(len(pool)), min(questions, len(pool))))
    scoring = [ScoreRequest(global_opinions.build_prompt(pool[i]).raw, global_opinions.candidates(pool[i]))
               for i in picked]
    generation = [GenerateRequest(build_prompt(item).raw, MAX_NEW_TOKENS) for item in items]
    hf = load_model(ModelSpec(str(folder), dtype=dtype))
    start = time.perf_counter()
    engine = load_model(ModelSpec(str(folder), dtype=dtype, backend="vllm"))
    print(f"{folder.name} {dtype}: vLLM engine start {time.perf_counter() - start:.1f} s", flush=True)
    try:
        report(side_by_side(hf, engine, scoring, generation))
    finally:
        engine.close()
        hf.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--questions", type=int, default=200, help="GlobalOpinionsQA questions for vllm vs hf")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device; nothing to check")
        return
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    items = stratified_sample(load_md3_items(args.data_dir).items, args.items, 221)
    with tempfile.TemporaryDirectory() as work:
        for folder in args.models:
            real = _materialise(folder, Path(work))
            for dtype in ("float32", "bfloat16"):
                check(real, dtype, items, args.batch_size)
                check_vllm(real, dtype, args.data_dir, items, args.questions)


if __name__ == "__main__":
    main()
