"""Packed scoring rows (models/packing.py, models/hf_scoring.py): the plan, the layout, the attention mask,
and scores equal to one full pass per candidate on small randomly initialised transformers models of the
two packaged architectures (Llama; Gemma 3 with sliding-window layers shorter than the prompts)."""

from __future__ import annotations

import random

import pytest
import torch

from globalign.models.hf_scoring import PackedScorer, full_pass_nll, mask_plan
from globalign.models.packing import (
    PAD,
    PROMPT,
    Row,
    attention_mask,
    layout,
    plan_batches,
    plan_rows,
)


def test_rows_keep_one_prefix_and_split_only_past_the_tail_limit():
    groups = [((1, 2, 3), [(0, (7, 8)), (1, (9,)), (2, (4, 5, 6))]), ((1, 2), [(3, (5, 5, 5, 5))])]
    rows = plan_rows(groups, max_tail=10)
    assert [(r.prefix, sorted(r.owners)) for r in rows] == [((1, 2, 3), [0, 1, 2]), ((1, 2), [3])]
    assert rows[0].tail == 0 + 1 + 2 and rows[0].fed == 3 + 3
    split = plan_rows(groups[:1], max_tail=2)  # 3 fed tokens do not fit: the prefix is repeated
    assert [r.prefix for r in split] == [(1, 2, 3), (1, 2, 3)]
    assert sorted(o for r in split for o in r.owners) == [0, 1, 2] and all(r.tail <= 2 for r in split)
    with pytest.raises(ValueError):
        plan_rows([((1,), [(0, ())])], max_tail=4)


def _rows(prompt_lengths, tail=1):
    return [Row(tuple(range(1, n + 1)), ((1,) * (tail + 1),), (i,)) for i, n in enumerate(prompt_lengths)]


def test_batches_group_similar_lengths_and_respect_every_limit():
    rows = _rows([100, 12, 101, 11, 99, 10])
    batches = plan_batches(rows, max_rows=8, max_tokens=10_000, max_read=100, pass_cost=24)
    # Padding the three short prompts to ~100 tokens costs ~270 tokens, a second pass 24.
    assert sorted(sorted(b) for b, _ in batches) == [[0, 2, 4], [1, 3, 5]]
    assert [stem for _, stem in batches] == [0, 0]  # no stems unless max_stem allows them
    for limit in ({"max_rows": 2}, {"max_tokens": 210}, {"max_read": 4}):
        kwargs = {"max_rows": 8, "max_tokens": 10_000, "max_read": 100, **limit}
        batches = plan_batches(rows, **kwargs, pass_cost=10_000)  # passes expensive: as few as allowed
        assert sorted(i for b, _ in batches for i in b) == list(range(6))
        for batch, _ in batches:
            width = max(len(rows[i].prefix) for i in batch) + max(rows[i].tail for i in batch)
            assert len(batch) <= kwargs["max_rows"] and len(batch) * width <= kwargs["max_tokens"]
            assert len(batch) * (max(rows[i].tail for i in batch) + 1) <= kwargs["max_read"]
    # A single row over the token limit still runs, alone.
    assert plan_batches(_rows([50, 50]), max_rows=8, max_tokens=10, max_read=100) == [([0], 0), ([1], 0)]


def test_a_common_instruction_runs_once_per_batch_as_a_stem_when_that_saves_a_pass():
    instruction = tuple(range(500, 540))  # 40 tokens every prompt starts with
    rows = [Row(instruction + tuple(range(n, n + 10 + n % 3)), ((1, 2),), (n,)) for n in range(6)]
    rows.append(Row(instruction[:30], ((1,),), (6,)))  # a prompt that is only part of the instruction
    # Padding the short prompt to 52 tokens and cutting the stem to 29 costs more than its own pass.
    plan = plan_batches(rows, max_rows=8, max_tokens=10_000, max_read=100, max_stem=1000)
    assert [(sorted(batch), stem) for batch, stem in plan] == [([6], 0), (list(range(6)), 40)]
    assert plan_batches(rows[:6], max_rows=8, max_tokens=10_000, max_read=100, max_stem=8)[0][1] == 8  # a window cap
    assert plan_batches(rows[:2], max_rows=8, max_tokens=10_000, max_read=100, max_stem=1000,
                        pass_cost=40)[0][1] == 0  # one row's 39 tokens saved do not pay for the stem's pass
    whole = [Row(instruction, ((1,),), (0,)), *rows[:3]]  # the stem leaves every prompt its last token
    plan = plan_batches(whole, max_rows=8, max_tokens=10_000, max_read=100, max_stem=1000)
    assert [(sorted(batch), stem) for batch, stem in plan] == [([0, 1, 2, 3], 39)]
    # Positions count on from the stem; the stem's tokens are not columns.
    plan = layout([Row((1, 2, 3, 4, 5), ((6,),), (0,)), Row((1, 2, 3, 9), ((6, 7),), (1,))], pad_id=0, stem=3)
    assert plan.input_ids == [[4, 5, 0], [0, 9, 6]] and plan.prompt_end == 2
    assert plan.positions == [[3, 4, 0], [0, 3, 4]]


def test_layout_right_aligns_prompts_and_reads_each_candidate_token_where_it_is_predicted():
    rows = [Row((5, 6, 7), ((8, 9), (10,)), (0, 1)), Row((5, 6), ((11, 12, 13),), (2,))]
    plan = layout(rows, pad_id=0)
    assert plan.prompt_end == 3 and plan.tail_width == 2 and plan.kept == 3 and plan.width == 5
    assert plan.input_ids == [[5, 6, 7, 8, 0], [0, 5, 6, 11, 12]]
    assert plan.positions == [[0, 1, 2, 3, 0], [0, 0, 1, 2, 3]]
    assert plan.segments == [[PROMPT] * 3 + [1, PAD], [PAD, PROMPT, PROMPT, 1, 1]]
    # (row, kept column, target, owner); kept column 0 is the prompt's last column (2).
    assert plan.reads == [(0, 0, 8, 0), (0, 1, 9, 0), (0, 0, 10, 1), (1, 0, 11, 2), (1, 1, 12, 2), (1, 2, 13, 2)]


def _allowed_by_definition(segments, positions, window, stem=0):
    """Row of the mask per query column: the stem's keys (positions 0 .. stem - 1), then the columns."""
    width = len(segments)
    out = []
    for q in range(width):
        row = [segments[q] != PAD and (window is None or positions[q] - k < window) for k in range(stem)]
        for k in range(width):
            if segments[q] == PAD:
                row.append(q == k)
            else:
                row.append(segments[k] != PAD and k <= q and segments[k] in (PROMPT, segments[q])
                           and (window is None or positions[q] - positions[k] < window))
        out.append(row)
    return out


@pytest.mark.parametrize(("window", "stem"), [(None, 0), (2, 0), (3, 0), (None, 2), (3, 2)])
def test_attention_mask_matches_its_definition(window, stem):
    rows = [Row((4, 3, 5, 6, 7), ((8, 9, 1), (10, 2)), (0, 1)), Row((4, 3, 5), ((11, 12),), (2,))]
    plan = layout(rows, pad_id=0, stem=stem)
    mask = attention_mask(plan.segments, plan.positions, window, stem)
    assert mask.shape == (2, 1, plan.width, stem + plan.width) and mask.dtype == torch.bool
    for r in range(2):
        assert mask[r, 0].tolist() == _allowed_by_definition(plan.segments[r], plan.positions[r], window, stem)


def _tiny(kind: str):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    if kind == "llama":
        config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
        return LlamaForCausalLM(config).eval()
    config = Gemma3TextConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=4,
                              layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                              max_position_embeddings=256)
    return Gemma3ForCausalLM(config).eval()


@pytest.mark.parametrize("kind", ["llama", "gemma3"])
@pytest.mark.parametrize("pass_cost", [0, 10_000])  # stems wherever they save a token, or never
def test_packed_rows_score_like_one_full_pass_per_candidate(kind, pass_cost):
    model = _tiny(kind)
    masks, why = mask_plan(model.config)
    assert masks is not None, why
    if kind == "gemma3":  # a window of 4 tokens, shorter than every prompt below
        assert masks == {"full_attention": None, "sliding_attention": 4}
    rng = random.Random(1)
    groups, owner = [], 0
    stem = tuple(rng.randrange(1, 97) for _ in range(6))  # an instruction every prompt starts with
    for prompt_length in (3, 9, 10, 17, 2):
        members = []
        for length in (1, 1, 2, 5, 3):  # one-token candidates need no fed token
            members.append((owner, tuple(rng.randrange(1, 97) for _ in range(length))))
            owner += 1
        groups.append((stem + tuple(rng.randrange(1, 97) for _ in range(prompt_length)), members))
    rows = plan_rows(groups, max_tail=6)  # some prompts split over two rows
    scorer = PackedScorer(model, pad_id=0, device="cpu", max_rows=3, max_tokens=4096, max_logits=97 * 64,
                          masks=masks)
    scorer.pass_cost = pass_cost
    packed = scorer.score(rows)
    batches = plan_batches(rows, max_rows=3, max_tokens=4096, max_read=64, pass_cost=pass_cost,
                           max_stem=scorer.max_stem)
    stems = sum(stem > 0 for _, stem in batches)  # each runs its own pass first
    assert scorer.forward_passes == len(batches) + stems
    assert stems if pass_cost == 0 else not stems  # (gemma's window of 4 caps its stems at 3 tokens)
    assert len(packed) == owner
    for prefix, members in groups:
        for index, ids in members:
            assert packed[index] == pytest.approx(full_pass_nll(model, prefix, ids, "cpu"), abs=1e-5 * len(ids))


def test_architectures_without_prepared_masks_are_refused_by_name():
    from transformers import LlamaConfig

    config = LlamaConfig()
    config._attn_implementation = "flash_attention_2"
    assert mask_plan(config) == (None, "attention implementation 'flash_attention_2' does not take a prepared mask")
    config._attn_implementation = "sdpa"
    config.layer_types = ["chunked_attention"] * config.num_hidden_layers
    assert mask_plan(config)[0] is None
