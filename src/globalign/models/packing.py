"""How the transformers backend lays many prompts and their candidates into few forward passes.

A *row* is one prompt's tokens followed by the tokens that score its candidates: a candidate of n tokens
feeds its first n - 1 (its first token is predicted at the prompt's last position, its last token is
only a target). Each candidate token attends to the prompt and to the earlier tokens of its own
candidate, never to another candidate's (an attention mask per row), and its position id continues the
prompt's, so every row computes exactly what one full pass of prompt + candidate computes, with the
prompt run once. Rows of similar length share a batch: the prompts are right-aligned (left padding),
so every row's prompt ends in the same column and the logits that are read lie in the last columns.

This module plans rows and batches and builds their tensors; `models/hf_scoring.py` runs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PAD, PROMPT = -1, 0  # segment ids of a column; candidate j of a row is segment j + 1


@dataclass(frozen=True)
class Row:
    """One prompt (`prefix`, token ids) and candidates scored against it; `owners[j]` is candidate j's
    index in the caller's list."""

    prefix: tuple[int, ...]
    candidates: tuple[tuple[int, ...], ...]
    owners: tuple[int, ...]

    @property
    def tail(self) -> int:
        """Candidate tokens fed after the prompt."""
        return sum(len(c) - 1 for c in self.candidates)

    @property
    def fed(self) -> int:
        return len(self.prefix) + self.tail


def plan_rows(groups: Iterable[tuple[Sequence[int], Sequence[tuple[int, Sequence[int]]]]], max_tail: int) -> list[Row]:
    """Rows for `(prefix, [(owner, continuation ids), ...])` groups: one row per prefix, split into
    several (each repeating the prefix) when its candidates would feed more than `max_tail` tokens.
    Every continuation must have at least one token."""
    rows = []
    for prefix, members in groups:
        # Short candidates first: a split then keeps the many short ones together.
        members = sorted(members, key=lambda m: len(m[1]))
        batch: list[tuple[int, Sequence[int]]] = []
        tail = 0
        for owner, ids in members:
            if not ids:
                raise ValueError("a candidate with no tokens has no row; answer it without the model")
            if batch and tail + len(ids) - 1 > max_tail:
                rows.append(_row(prefix, batch))
                batch, tail = [], 0
            batch.append((owner, ids))
            tail += len(ids) - 1
        if batch:
            rows.append(_row(prefix, batch))
    return rows


def _row(prefix: Sequence[int], members: Sequence[tuple[int, Sequence[int]]]) -> Row:
    return Row(tuple(prefix), tuple(tuple(ids) for _, ids in members), tuple(owner for owner, _ in members))


# What one more forward pass costs, in padded tokens: the per-pass work that does not grow with the
# batch (Python and kernel launches per layer, ~50 ms for SmolLM2 on one CPU core, where a token costs
# ~2.3 ms), so a batch is cut where padding the next rows to its width would cost more than that.
PASS_COST_TOKENS = 24


def plan_batches(rows: Sequence[Row], *, max_rows: int, max_tokens: int, max_read: int,
                 pass_cost: int = PASS_COST_TOKENS, max_stem: int = 0) -> list[tuple[list[int], int]]:
    """Row indices cut into batches, each with its stem: the fewest padded tokens run, counting
    `pass_cost` per forward pass.

    Rows are sorted by (prompt length, tail) and cut into consecutive runs (dynamic programming over the
    cut points, so each batch's rows have similar widths). A batch whose prompts all start with the same
    tokens (an instruction, few-shot examples) may run up to `max_stem` of them once, in a pass of their
    own, into a KV cache its rows share: worth it when (rows - 1) x stem > `pass_cost`. A batch holds at
    most `max_rows` rows, rows x padded width <= `max_tokens` tokens and rows x (longest tail + 1) <=
    `max_read` read positions (its logits are that times the vocabulary). A row over a limit alone gets
    its own batch.
    """
    order = sorted(range(len(rows)), key=lambda i: (len(rows[i].prefix), rows[i].tail))
    n = len(order)
    best: list[float] = [0.0] + [float("inf")] * n  # best[i]: cost of the first i rows
    choice = [(0, 0)] * (n + 1)  # (start, stem) of the last batch of the best plan for the first i rows
    for end in range(1, n + 1):
        last = rows[order[end - 1]].prefix
        prompt = len(last)  # the longest prompt of any run ending here
        tail, common = 0, len(last) - 1
        for start in range(end - 1, -1, -1):
            size = end - start
            row = rows[order[start]]
            tail = max(tail, row.tail)
            if size > 1 and (size > max_rows or size * (prompt + tail) > max_tokens or size * (tail + 1) > max_read):
                break
            common = _common_start(row.prefix, last, min(common, len(row.prefix) - 1))
            stem = min(common, max_stem) if (size - 1) * min(common, max_stem) > pass_cost else 0
            cost = best[start] + pass_cost + size * (prompt - stem + tail) + (stem + pass_cost if stem else 0)
            if cost < best[end]:
                best[end], choice[end] = cost, (start, stem)
    batches = []
    end = n
    while end:
        start, stem = choice[end]
        batches.append((order[start:end], stem))
        end = start
    return batches[::-1]


def _common_start(a: Sequence[int], b: Sequence[int], bound: int) -> int:
    """How many first tokens `a` and `b` share, counting at most `bound`."""
    if bound <= 0:
        return 0
    if a[:bound] == b[:bound]:
        return bound
    return next(i for i in range(bound) if a[i] != b[i])


@dataclass(frozen=True)
class Layout:
    """A batch of rows as columns. Row r's prompt (past the batch's stem, if any) ends at column
    `prompt_end`, its
    candidates' fed tokens follow from `prompt_end`, pads fill the rest. The logits read are those of
    columns prompt_end - 1 .. width - 1 (`kept` = tail_width + 1 of them); `reads` lists, for each
    candidate token, (row, kept column, target token id, owner)."""

    input_ids: list[list[int]]
    positions: list[list[int]]
    segments: list[list[int]]
    prompt_end: int
    tail_width: int
    reads: list[tuple[int, int, int, int]]

    @property
    def width(self) -> int:
        return self.prompt_end + self.tail_width

    @property
    def kept(self) -> int:
        return self.tail_width + 1


def layout(rows: Sequence[Row], pad_id: int, stem: int = 0) -> Layout:
    """The batch's columns; with `stem`, the first `stem` tokens of every prompt are left out (they run
    once, before, into a KV cache that every row attends to) and positions count on from them."""
    prompt_end = max(len(r.prefix) for r in rows) - stem
    tail_width = max(r.tail for r in rows)
    width = prompt_end + tail_width
    input_ids, positions, segments, reads = [], [], [], []
    for r, row in enumerate(rows):
        n = len(row.prefix)
        ids = [pad_id] * (prompt_end - n + stem) + list(row.prefix[stem:])
        pos = [0] * (prompt_end - n + stem) + list(range(stem, n))
        seg = [PAD] * (prompt_end - n + stem) + [PROMPT] * (n - stem)
        for j, (candidate, owner) in enumerate(zip(row.candidates, row.owners)):
            start = len(ids) - prompt_end  # this candidate's first fed token, counted from prompt_end
            reads.append((r, 0, candidate[0], owner))
            for t in range(1, len(candidate)):
                # Token t is predicted where token t - 1 was fed: column prompt_end + start + t - 1,
                # kept column start + t (kept column 0 is prompt_end - 1).
                reads.append((r, start + t, candidate[t], owner))
            ids += candidate[:-1]
            pos += range(n, n + len(candidate) - 1)
            seg += [j + 1] * (len(candidate) - 1)
        pad = width - len(ids)
        input_ids.append(ids + [pad_id] * pad)
        positions.append(pos + [0] * pad)
        segments.append(seg + [PAD] * pad)
    return Layout(input_ids, positions, segments, prompt_end, tail_width, reads)


def attention_mask(segments, positions, window: int | None = None, stem: int = 0):
    """Boolean mask (rows, 1, width, stem + width), True where a query column (dim 2) may attend a key
    (dim 3): the `stem` cached tokens (keys 0 .. stem - 1, positions 0 .. stem - 1), then the batch's
    columns: an earlier or the same column of the prompt or of its own candidate. With `window` (a
    sliding-window layer) only keys fewer than `window` positions back. A pad column attends only to
    itself: a query that attends nothing would give NaN, which a later layer would carry into real
    columns through the (masked, zero-weight) values."""
    import torch

    seg = torch.as_tensor(segments)
    pos = torch.as_tensor(positions)
    width = seg.shape[1]
    column = torch.arange(width)
    query_seg, key_seg = seg[:, :, None], seg[:, None, :]
    allowed = (column[None, None, :] <= column[None, :, None]) & ((key_seg == PROMPT) | (key_seg == query_seg))
    allowed &= (query_seg != PAD) & (key_seg != PAD)
    key_pos = pos[:, None, :]
    if stem:
        allowed = torch.cat([(query_seg != PAD).expand(-1, -1, stem), allowed], dim=2)
        key_pos = torch.cat([torch.arange(stem).expand(len(seg), 1, stem), key_pos], dim=2)
    if window is not None:
        allowed &= (pos[:, :, None] - key_pos) < window
    allowed[:, :, stem:] |= torch.eye(width, dtype=torch.bool)[None] & (query_seg == PAD)
    return allowed[:, None]
