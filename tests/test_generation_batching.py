"""Batched greedy generation (left padding, per-row early stops) gives exactly the strings of unbatched
greedy decoding, on the real packaged models."""

from __future__ import annotations

import pytest
import torch

from globalign.engine.runner import Engine
from globalign.models.hf import _cut_at_stop, _RowStops
from globalign.models.resolve import ModelSpec, load_model
from globalign.requests import GenerateRequest
from globalign.store.request_cache import RequestCache

STOP = ("\n\n",)

TABOO = (
    "You are playing Taboo. Read the transcript and guess the secret word.\n\n"
    "Transcript:\n"
    "A: Okay so this is something you find in the kitchen.\n"
    "B: A fridge?\n"
    "A: No, smaller. You use it every morning to make a hot drink.\n"
    "B: A kettle?\n"
    "A: Close, but it's for a drink with beans, dark and bitter.\n"
    "B: Coffee maker!\n"
    "A: Not the machine, the drink itself.\n\n"
    "Secret Word:"
)
EXTRACT = (
    "Question: Which planet is known as the Red Planet?\n"
    "Model response: I think the answer is clearly Mars, because of its reddish iron oxide surface.\n"
    "Extract the final answer from the response above.\n"
    "Extracted Answer:"
)
# Over 550 tokens: longer than Gemma 3's 512-token sliding window, and it pads its batch a lot.
LONG = " ".join(
    f"On day {i} the travellers crossed the {['river', 'valley', 'desert', 'forest'][i % 4]} and counted "
    f"{i * 7} stones before resting under the {['oak', 'pine', 'palm'][i % 3]} trees."
    for i in range(1, 25)
) + "\n\nSummary of the journey:"
# 1 to ~560 tokens, so every batch of 3 is padded; two end in "\n", where a stop string could start in
# the prompt (only the continuation counts).
PROMPTS = [
    TABOO,
    "What is the capital of France?",
    "Q: How many legs does a spider have?\nA:",
    "Hi",
    EXTRACT,
    LONG,
    "Translate to French: The cat sleeps on the warm windowsill.\nFrench:",
    "List three primary colours:\n1.",
    "The quick brown fox",
    'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
    "Write one sentence about the ocean.\n\n",
    "Hi\n",
]
SHORT = [GenerateRequest(p, 10) for p in PROMPTS]
# The longer runs on two prompts, to keep the test near a minute on two cores: one ending in "\n"
# (smollm2 starts its answer with "\n"), and one that both models stop after a few tokens.
STOPPED = [GenerateRequest(p, 50, STOP) for p in ("Hi\n", "The quick brown fox")]


# -- the per-row stopping criterion, without a model -------------------------------------------------
def _criterion(limits, stops, width=2):
    chars = {0: "x", 1: "\n", 2: "a", 9: "<eos>"}
    return _RowStops(width, limits, stops, frozenset({9}), lambda ids: "".join(chars[t] for t in ids))


def test_row_stops_look_at_the_continuation_only():
    rows = _criterion([5, 5], [STOP, STOP])
    # Both prompts end in "\n"; a generated "\n" must not complete "\n\n" across the boundary.
    assert rows(torch.tensor([[0, 1, 1], [0, 1, 2]]), None).tolist() == [False, False]
    assert rows(torch.tensor([[0, 1, 1, 1], [0, 1, 2, 1]]), None).tolist() == [True, False]
    assert rows(torch.tensor([[0, 1, 1, 1, 0], [0, 1, 2, 1, 1]]), None).tolist() == [True, True]
    assert [rows.kept(0), rows.kept(1)] == [2, 3]


def test_row_stops_each_row_at_its_own_limit_stop_or_eos():
    rows = _criterion([1, 3, 3], [(), ("a",), ()])
    assert rows(torch.tensor([[0, 0, 0], [0, 0, 0], [0, 0, 9]]), None).tolist() == [True, False, True]
    assert rows(torch.tensor([[0, 0, 0, 0], [0, 0, 0, 2], [0, 0, 9, 0]]), None).tolist() == [True] * 3
    assert [rows.kept(0), rows.kept(1), rows.kept(2)] == [1, 2, 1]


def test_cut_at_first_stop():
    assert _cut_at_stop("a\nb\n\nc", ("\n\n", "b")) == "a\n"
    assert _cut_at_stop("abc", ()) == "abc"


# -- the real models -----------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["smollm2-135m-instruct", "gemma-3-270m"])
def model(request):
    loaded = load_model(ModelSpec(request.param, batch_size=3))  # small batches: several padded ones
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def reference(model):
    """Unbatched greedy texts, run to EOS or max_new_tokens, then cut: request -> text."""
    requests = SHORT + STOPPED
    return dict(zip(requests, model.generate_unbatched(requests)))


@pytest.mark.slow
def test_batched_equals_unbatched(model, reference):
    assert model.generate(SHORT) == [reference[r] for r in SHORT]


@pytest.mark.slow
def test_batched_with_stop_strings_equals_unbatched(model, reference):
    assert model.generate(STOPPED) == [reference[r] for r in STOPPED]


@pytest.mark.slow
def test_stop_strings_cut_the_text(model, reference):
    assert not any(STOP[0] in reference[r] for r in STOPPED)
    cut = 0
    for request in STOPPED:
        # Greedy decoding: the 10-token text is a prefix of the 50-token one; where it already has the
        # stop string, the stopped text is what comes before it.
        short = reference[GenerateRequest(request.prompt, 10)]
        if STOP[0] in short:
            assert reference[request] == short[: short.index(STOP[0])]
            cut += 1
    assert cut >= 1


@pytest.mark.slow
def test_one_batch_mixing_settings_gives_each_request_its_own_result(model, reference):
    # 10 or 50 new tokens, with or without a stop string, and none at all; the stopped row (quick brown
    # fox) ends early in both models, so the batch ends at 10 tokens.
    mixed = [SHORT[0], STOPPED[1], GenerateRequest(PROMPTS[1], 0), SHORT[2], SHORT[11], SHORT[8]]
    saved = model.batch_size
    model.batch_size = len(mixed)  # one batch with 10 and 50 new tokens, with and without stop strings
    try:
        texts = model.generate(mixed)
    finally:
        model.batch_size = saved
    assert texts == [reference.get(r, "") for r in mixed]


@pytest.mark.slow
def test_engine_generates_in_caller_order_and_caches(model, reference, tmp_path):
    requests = [STOPPED[1], SHORT[3], SHORT[0], SHORT[8], SHORT[3]]  # one repeated
    cache = RequestCache(tmp_path / "requests.sqlite")
    engine = Engine(model, cache, progress=False)
    assert engine.generate(requests) == [reference[r] for r in requests]
    assert engine.computed == 4
    again = Engine(model, cache, progress=False)
    assert again.generate(requests) == [reference[r] for r in requests]
    assert again.computed == 0 and again.reused == 4


def test_token_budget_batches_split_long_prompts():
    from globalign.models.hf import _token_budget_batches

    lengths = [10, 10, 10, 500, 600, 5000]
    assert _token_budget_batches(range(6), lengths, 32, 1200) == [[0, 1, 2], [3, 4], [5]]
    assert _token_budget_batches(range(6), lengths, 2, 10**9) == [[0, 1], [2, 3], [4, 5]]
    assert _token_budget_batches([], lengths, 4, 100) == []
