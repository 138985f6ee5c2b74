"""lm-evaluation-harness's HF backend on given (context, continuation) pairs, timed per batch size.

Run by the lm-eval virtual environment's python (`scripts/setup-lmeval-venv.sh`), never the project's,
so lm-eval's pins cannot move globalign's; it imports nothing from globalign.

    .venv-lmeval/bin/python benchmarks/lmeval/loglikelihood.py IN.json OUT.json

IN:  {"model": folder, "dtype": "float32", "threads": 2, "add_bos": bool,
      "pairs": [[context, continuation], ...], "batch_sizes": [1, 8, 32]}
OUT: {"versions": {...}, "tokens": [[context ids, continuation ids], ...] (lm-eval's own split),
      "runs": [{"batch_size", "seconds", "cpu_seconds", "tokens_fed", "forward_passes",
                "loglikelihoods": [...]}]}
The model loads once (untimed); each batch size then scores every pair through `HFLM.loglikelihood`,
timed around that call alone. `tokens_fed` counts the input ids of every forward pass, padding included.
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        spec = json.load(handle)
    import torch

    torch.set_num_threads(spec["threads"])
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=spec["model"], backend="causal", device="cpu", dtype=spec["dtype"], batch_size=1,
              add_bos_token=spec["add_bos"])
    fed = {"tokens": 0, "passes": 0}

    def count(module, args, kwargs):
        ids = args[0] if args else kwargs["input_ids"]
        fed["tokens"] += ids.numel()
        fed["passes"] += 1

    lm.model.register_forward_pre_hook(count, with_kwargs=True)
    requests = [Instance(request_type="loglikelihood", doc={}, arguments=(context, continuation), idx=i)
                for i, (context, continuation) in enumerate(spec["pairs"])]
    runs = []
    for batch_size in spec["batch_sizes"]:
        lm.batch_size_per_gpu = batch_size
        fed.update(tokens=0, passes=0)
        start, cpu = time.perf_counter(), time.process_time()
        answers = lm.loglikelihood(requests, disable_tqdm=True)
        seconds = time.perf_counter() - start
        runs.append({"batch_size": batch_size, "seconds": seconds, "cpu_seconds": time.process_time() - cpu,
                     "tokens_fed": fed["tokens"],
                     "forward_passes": fed["passes"], "loglikelihoods": [ll for ll, _ in answers]})
        print(f"lm-eval batch {batch_size}: {seconds:.1f} s, {fed['tokens']} tokens fed", file=sys.stderr, flush=True)
    tokens = [lm._encode_pair(context, continuation) for context, continuation in spec["pairs"]]
    out = {"versions": {name: version(name) for name in ("lm_eval", "transformers", "torch")},
           "tokens": tokens, "runs": runs}
    with open(sys.argv[2], "w", encoding="utf-8") as handle:
        json.dump(out, handle)


if __name__ == "__main__":
    main()
