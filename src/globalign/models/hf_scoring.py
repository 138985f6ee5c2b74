"""Continuation scoring on a transformers model: packed rows (`models/packing.py`) in few forward passes,
and the one-full-pass-per-candidate reference (the study's way)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from globalign.models.packing import (
    PASS_COST_TOKENS,
    Row,
    attention_mask,
    layout,
    plan_batches,
    plan_rows,
)
from globalign.models.tokenization import split_candidates

FULL, SLIDING = "full_attention", "sliding_attention"  # transformers' names of layer types
# Two prompts with a common instruction (run once, as a cached stem) and multi-token candidates.
_PROBE_STEM = ("You are answering a short quiz about European geography. Answer each question with the name "
               "of a city and nothing else.")
PROBE = ((f"{_PROBE_STEM} Question: Which city is the capital of France? Answer:",
          (" Paris, of course.", " Lyon or maybe Marseille", " Brussels")),
         (f"{_PROBE_STEM} Question: Which city is the capital of Italy? Answer:", (" Rome", " Milan, I think")))


def mask_plan(config) -> tuple[dict[str, int | None] | None, str]:
    """How packed rows tell this architecture what to attend: ({layer type: sliding window or None},
    "") when its attention takes a prepared 4D mask, else (None, why not). A single entry under ""
    means one mask for every layer; several entries go to the model as a dict keyed by layer type
    (how transformers' models with mixed layers, e.g. Gemma 3, accept prepared masks)."""
    implementation = getattr(config, "_attn_implementation", None)
    if implementation not in ("sdpa", "eager"):
        return None, f"attention implementation '{implementation}' does not take a prepared mask"
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None)
    if not layer_types:
        uses_window = window is not None and getattr(config, "use_sliding_window", True)
        return {"": window if uses_window else None}, ""
    unknown = set(layer_types) - {FULL, SLIDING}
    if unknown:
        return None, f"layer types {sorted(unknown)} need masks that packed rows do not build"
    if set(layer_types) == {FULL}:
        return {"": None}, ""
    return {kind: (window if kind == SLIDING else None) for kind in set(layer_types)}, ""


class PackedScorer:
    """Scores packed rows on `model`; `tokens_fed` counts the tokens of every batch run (padding
    included)."""

    def __init__(self, model, *, pad_id: int, device: str, max_rows: int, max_tokens: int, max_logits: int,
                 masks: dict[str, int | None]) -> None:
        self.model = model
        self.pad_id = pad_id
        self.device = device
        self.max_rows = max_rows
        self.max_tokens = max_tokens
        self.vocab = int(model.get_output_embeddings().weight.shape[0])
        # Read positions per batch, so that its logits (positions x vocabulary) stay within max_logits.
        self.max_read = max(1, max_logits // self.vocab)
        self.masks = masks
        # A stem cached before a batch must stay whole in a sliding-window layer's cache (it keeps the
        # last window - 1 tokens).
        windows = [w for w in masks.values() if w]
        self.max_stem = min(windows) - 1 if windows else 1 << 30
        self.pass_cost = PASS_COST_TOKENS  # padded tokens one more forward pass is worth (batch planning)
        self.tokens_fed = 0
        self.forward_passes = 0

    @property
    def max_tail(self) -> int:
        """Candidate tokens one row may feed: its logits alone must fit in the budget."""
        return max(1, self.max_read - 1)

    def score(self, rows: Sequence[Row]) -> dict[int, float]:
        """NLL sum of every candidate of `rows`, keyed by owner."""
        import torch

        nll: dict[int, float] = {}
        batches = plan_batches(rows, max_rows=self.max_rows, max_tokens=self.max_tokens, max_read=self.max_read,
                               pass_cost=self.pass_cost, max_stem=self.max_stem)
        with torch.inference_mode():
            for batch, stem in batches:
                chosen = [rows[i] for i in batch]
                plan = layout(chosen, self.pad_id, stem)
                cache = self._stem_cache(chosen[0].prefix[:stem], len(batch)) if stem else None
                logits = self.model(
                    input_ids=torch.tensor(plan.input_ids, device=self.device),
                    position_ids=torch.tensor(plan.positions, device=self.device),
                    attention_mask=self._masks(plan, stem),
                    past_key_values=cache,
                    use_cache=cache is not None,
                    logits_to_keep=plan.kept,
                ).logits
                self.tokens_fed += len(batch) * plan.width
                self.forward_passes += 1
                # Row by row: a log-sum-exp over the whole batch would hold a second logits-sized tensor.
                lse = torch.stack([torch.logsumexp(logits[r].float(), dim=-1) for r in range(len(batch))])
                row, column, target, owners = zip(*plan.reads)
                row_t, column_t = torch.tensor(row), torch.tensor(column)
                picked = logits[row_t, column_t, torch.tensor(target)].float() - lse[row_t, column_t]
                for owner, logprob in zip(owners, picked.double().tolist()):
                    nll[owner] = nll.get(owner, 0.0) - logprob
        return nll

    def check(self, encode: Callable[[str], list[int]]) -> str:
        """'' when packed rows, a cached stem included, score the probe like full passes on this model,
        else why not (an architecture that ignores a prepared attention mask gives wrong numbers, not
        an error)."""
        splits = [split for prompt, continuations in PROBE for split in split_candidates(encode, prompt, continuations)]
        groups = defaultdict(list)
        for owner, split in enumerate(splits):
            groups[split.prefix_ids].append((owner, split.continuation_ids))
        packed = self.score(plan_rows(groups.items(), self.max_tail))
        worst = max(abs(packed[i] - full_pass_nll(self.model, s.prefix_ids, s.continuation_ids, self.device))
                    / len(s.continuation_ids) for i, s in enumerate(splits))
        return "" if worst < 1e-3 else f"packed rows differ from full passes by {worst:.2g} nats per token"

    def _stem_cache(self, stem: Sequence[int], rows: int):
        """The KV cache of the stem, one copy per row (the batch's pass extends it in place)."""
        import torch

        cache = self.model(input_ids=torch.tensor([list(stem)], device=self.device), use_cache=True,
                           logits_to_keep=1).past_key_values
        cache.batch_repeat_interleave(rows)
        self.tokens_fed += len(stem)
        self.forward_passes += 1
        return cache

    def _masks(self, plan, stem: int = 0):
        import torch

        dtype = self.model.dtype
        eager = getattr(self.model.config, "_attn_implementation", None) == "eager"
        built = {}
        for kind, window in self.masks.items():
            allowed = attention_mask(plan.segments, plan.positions, window, stem).to(self.device)
            if eager:  # eager attention adds its mask to the scores
                allowed = torch.zeros(allowed.shape, dtype=dtype, device=self.device).masked_fill(
                    ~allowed, torch.finfo(dtype).min)
            built[kind] = allowed
        return built.get("", built)


def full_pass_nll(model, prefix: Sequence[int], continuation: Sequence[int], device: str) -> float:
    """NLL sum of `continuation` after `prefix`: one forward pass of prefix + continuation (the study's
    way, and the reference the packed rows are checked against)."""
    import torch

    with torch.inference_mode():
        full = torch.tensor([[*prefix, *continuation]], device=device)
        logprobs = torch.log_softmax(model(input_ids=full).logits[0].float(), dim=-1)
        n_prefix, n = len(prefix), len(continuation)
        positions = torch.arange(n_prefix - 1, n_prefix - 1 + n)
        return -logprobs[positions, full[0, n_prefix:]].sum().item()
