"""The vllm backend beside the hf backend on the same requests, in one run (needs `make vllm`).

    .venv/bin/python benchmarks/vllm_vs_hf.py [--questions 40] [--items 16] [--model smollm2-135m-instruct]

Prints the vLLM engine's start time, GlobalOpinionsQA scoring time and throughput of both backends (vLLM
runs prefix + candidate as one request per candidate; hf runs the prompt once and the candidates on its KV
cache), the largest per-candidate difference in nats, and MD3 greedy generation time and equality.
"""

from __future__ import annotations

import argparse
import random
import time

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

    located = locate_model(ModelSpec(args.model))
    hf = load_model(located)
    start = time.perf_counter()
    vllm_model = load_model(locate_model(ModelSpec(args.model, backend="vllm")))
    started = time.perf_counter() - start
    try:
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
        n_candidates = sum(len(r.continuations) for r in scoring)
        pairs = [(a, b) for ra, rb in zip(scores["hf"], scores["vllm"]) for a, b in zip(ra, rb)]
        worst_sum = max(abs(a.nll_sum - b.nll_sum) for a, b in pairs)
        worst_token = max(abs(a.nll_sum - b.nll_sum) / a.n_tokens for a, b in pairs if a.n_tokens)

        texts, generation_s = {}, {}
        for name, model in (("hf", hf), ("vllm", vllm_model)):
            t0 = time.perf_counter()
            texts[name] = model.generate(generation)
            generation_s[name] = time.perf_counter() - t0
    finally:
        vllm_model.close()
        hf.close()
    same = sum(a == b for a, b in zip(texts["hf"], texts["vllm"]))
    print(f"model {args.model}, float32; vLLM engine start {started:.1f} s")
    print(f"scoring {len(scoring)} GlobalOpinionsQA questions, {n_candidates} candidates:")
    for name in ("hf", "vllm"):
        print(f"  {name:5}: {timings[name]:7.2f} s, {n_candidates / timings[name]:6.1f} candidates/s, "
              f"{computed[name]} prompt tokens computed ({computed[name] / timings[name]:6.0f} tokens/s)")
    print(f"  max |vllm - hf|: {worst_sum:.2e} nats per candidate, {worst_token:.2e} per token")
    print(f"generation, {len(generation)} MD3 prompts x {md3.MAX_NEW_TOKENS} tokens: hf {generation_s['hf']:.2f} s, "
          f"vllm {generation_s['vllm']:.2f} s; identical texts {same}/{len(generation)}")


if __name__ == "__main__":
    main()
