"""The full AskReddit LM probe (554 questions x 254 countries) through the shared-prompt path, against
naive per-candidate scoring measured on a sample of questions and scaled, in one run.

    .venv/bin/python benchmarks/askreddit_lm_probe.py [--model smollm2-135m-instruct] [--questions 554] [--naive-questions 4]
        [--unsorted-questions 0]

Prints the wall time of the shared-prompt probe on `--questions` questions (all 554 by default) and
its projection to 554, the naive time per question on the sample and its projection, the ratio, and
the largest difference between the two methods on the sampled questions (nats per token).
`--unsorted-questions N` also times the shared-prompt path with candidates batched in their given
order (what the engine did before it sorted them by length) on N of the sampled questions.
"""

from __future__ import annotations

import argparse
import random
import time

from globalign.data.locate import resolve_data_dir
from globalign.data.reward_probe import load_askreddit, load_where_from_countries
from globalign.models.resolve import ModelSpec, load_model
from globalign.requests import ScoreRequest
from globalign.threads import apply_runtime_defaults


def score_unsorted(model, request: ScoreRequest) -> list:
    """The shared-prompt path with candidate batches in request order (before length sorting)."""
    import torch

    from globalign.models.tokenization import split_candidates

    splits = split_candidates(model.encode, request.prompt, request.continuations)
    prefix = splits[0].prefix_ids
    assert all(s.prefix_ids == prefix for s in splits), "a boundary merge: not comparable"
    with torch.inference_mode():
        out = model.model(input_ids=torch.tensor([prefix]), use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        scores = []
        for start in range(0, len(splits), model.batch_size):
            scores += model._score_chunk(prefix, out.past_key_values, first, splits[start : start + model.batch_size])
    return scores


def main() -> None:
    apply_runtime_defaults()  # globalign's thread policy, as the CLI has it: set before torch loads
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--questions", type=int, default=554, help="questions for the shared-prompt path")
    parser.add_argument("--naive-questions", type=int, default=4)
    parser.add_argument("--unsorted-questions", type=int, default=0)
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
    start = time.perf_counter()
    naive = model.score_naive([requests[i] for i in sample])
    naive_seconds = time.perf_counter() - start
    start = time.perf_counter()
    shared = dict(zip(shared_ids, model.score([requests[i] for i in shared_ids])))
    shared_seconds = time.perf_counter() - start
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
    print(f"max |diff| per token         : {diff:.1e} nats (sampled questions)")
    if args.unsorted_questions:
        picked = shared_ids[: args.unsorted_questions]
        start = time.perf_counter()
        unsorted = [score_unsorted(model, requests[i]) for i in picked]
        unsorted_seconds = time.perf_counter() - start
        start = time.perf_counter()
        model.score([requests[i] for i in picked])
        sorted_seconds = time.perf_counter() - start
        same = max(abs(a.nll_sum - b.nll_sum) for i, row in zip(picked, unsorted) for a, b in zip(shared[i], row))
        print(f"unsorted vs sorted batches, {len(picked)} questions: {unsorted_seconds:.1f} s vs {sorted_seconds:.1f} s "
              f"({unsorted_seconds / sorted_seconds:.2f}x); max |diff| {same:.1e} nats")


if __name__ == "__main__":
    main()
