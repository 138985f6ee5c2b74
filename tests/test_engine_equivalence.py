"""The shared-prompt engine gives the same scores as naive per-candidate scoring, on the real models."""

from __future__ import annotations

import pytest
from score_checks import assert_same_scores

from globalign.data.global_opinions import load_global_opinions
from globalign.data.reward_probe import load_where_from_countries
from globalign.engine.runner import Engine
from globalign.models.resolve import ModelSpec, load_model
from globalign.requests import Prompt, ScoreRequest
from globalign.store.request_cache import RequestCache
from globalign.tasks.global_opinions import build_prompt, candidates

pytestmark = pytest.mark.slow
TOLERANCE_NATS = 1e-4


@pytest.fixture(scope="module", params=["smollm2-135m-instruct", "gemma-3-270m"])
def model(request):
    loaded = load_model(ModelSpec(request.param, batch_size=3))  # small batches: exercise chunking too
    yield loaded
    loaded.close()


def _requests(data_dir) -> list[ScoreRequest]:
    questions = load_global_opinions(data_dir).questions
    picked = [questions[i] for i in (0, 48, 700, 2300, 2555)]  # GAS, numeric options, WVS
    return [
        *(ScoreRequest(build_prompt(q).raw, candidates(q)) for q in picked),
        # Multi-token continuations of different lengths, as in the AskReddit country probe.
        ScoreRequest("Which country has the best food? I think", (" Italy", " the United Kingdom", " Côte d'Ivoire")),
        # A prompt ending in a space: " " + "A" may merge across the boundary.
        ScoreRequest("The answer is ", ("A", "Bahamas", "")),
    ]


def test_shared_prompt_scores_equal_naive_full_passes(model, data_dir):
    requests = _requests(data_dir)
    shared = model.score(requests)
    naive = model.score_naive(requests)
    for request, row_shared, row_naive in zip(requests, shared, naive):
        assert len(row_shared) == len(request.continuations)
        for a, b in zip(row_shared, row_naive):
            assert a.n_tokens == b.n_tokens
            assert a.boundary_merge == b.boundary_merge
            if a.n_tokens:
                assert abs(a.nll_mean - b.nll_mean) < TOLERANCE_NATS


def test_one_call_packs_chat_prompts_merges_long_prompts_and_split_rows_like_naive(model, data_dir, monkeypatch):
    # A small logits budget: the 40-country prompt's candidates split over several rows (each repeating
    # the prompt) and batches are cut by the read limit, as for long candidate lists on a large vocabulary.
    monkeypatch.setattr(model.scorer, "max_read", 24)
    countries = load_where_from_countries(data_dir)[:40]
    chat = (Prompt.chat("Which country has the best food?", "I think it is") if model.has_chat_template
            else Prompt.raw("Which country has the best food? I think it is"))
    requests = [
        ScoreRequest(chat, (" Italy", " the United Kingdom", "")),
        # Past Gemma 3's 512-token sliding window, in the same batch plan as short prompts.
        ScoreRequest("The history of the old harbour town, told slowly. " * 60 + "In short, the town is",
                     (" old", " very old indeed", " new", "")),
        ScoreRequest("Answer: (", ("A)", "B)", "Bahamas")),  # merges across the boundary: own prefix rows
        ScoreRequest("The answer is ", ("A", "Bahamas", "")),
        ScoreRequest("Where is the most beautiful place on earth? I would say", tuple(f" {c}" for c in countries)),
    ]
    passes = model.scorer.forward_passes
    shared = model.score(requests)
    assert model.scorer.forward_passes - passes < 40  # rows of many prompts share forward passes
    assert any(s.boundary_merge for row in shared for s in row)
    assert_same_scores(shared, model.score_naive(requests), TOLERANCE_NATS, per_token=True)


def test_empty_continuation_scores_zero_tokens(model):
    (row,) = model.score([ScoreRequest("Hello", ("",))])
    assert row[0].n_tokens == 0 and row[0].nll_mean == float("inf")


def test_engine_deduplicates_and_caches(model, data_dir, tmp_path):
    requests = _requests(data_dir)[:3]
    cache = RequestCache(tmp_path / "requests.sqlite")
    engine = Engine(model, cache, progress=False)
    first = engine.score(requests + requests[:1])  # a repeated request is scored once
    n_candidates = sum(len(r.continuations) for r in requests)
    assert engine.computed == n_candidates
    again = Engine(model, cache, progress=False)
    second = again.score(requests)
    assert again.computed == 0 and again.reused == n_candidates
    assert second == first[:3]
    assert first[3] == first[0]


def _independent_reference(model, prompt: str, continuation: str) -> tuple[float, int, bool]:
    """(NLL sum, tokens, boundary merge) without models/tokenization.py: tokenise the prompt and the joint
    text with the model's own tokenizer, take the joint tokens past the prompt's count, one full pass."""
    import torch

    def tokens(text: str) -> list[int]:
        ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
        return [model.tokenizer.bos_token_id, *ids] if model.info.add_bos else ids

    prompt_ids, joint = tokens(prompt), tokens(prompt + continuation)
    n = len(prompt_ids)
    tail = joint[n:]
    if not tail:
        return 0.0, 0, joint[:n] != prompt_ids
    with torch.inference_mode():
        logits = model.model(input_ids=torch.tensor([joint], device=model.device)).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    nll = -sum(logprobs[n - 1 + i, token].item() for i, token in enumerate(tail))
    return nll, len(tail), joint[:n] != prompt_ids


def test_engine_scores_equal_an_independently_tokenised_reference(model):
    # "(" + "A)" and " " + "A" are where byte-level BPE merges across the boundary, if anywhere.
    cases = [("Answer: (", ("A)", "B)", "Bahamas")), ("The answer is ", ("A", "Bahamas", "")),
             ("Which country? I think", (" Italy", " Côte d'Ivoire"))]
    requests = [ScoreRequest(prompt, continuations) for prompt, continuations in cases]
    for request, row in zip(requests, model.score(requests)):
        for continuation, got in zip(request.continuations, row):
            nll, n, merge = _independent_reference(model, request.prompt.text, continuation)
            assert (got.n_tokens, got.boundary_merge) == (n, merge), (request.prompt.text, continuation)
            if n:
                assert abs(got.nll_sum - nll) < TOLERANCE_NATS * n
