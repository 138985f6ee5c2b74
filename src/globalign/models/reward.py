"""Reward models behind one interface: a scalar reward for each (prompt, response).

Two backends:
- `SequenceClassificationReward`: any transformers `AutoModelForSequenceClassification` with exactly
  one output label (reward = logits[:, 0]).
- `ValueHeadReward`: the Starling-RM-7B-alpha layout (a causal-LM trunk without its LM head plus a
  `Linear(hidden, 1, bias=False)` value head, both read from one checkpoint file); reward = the value
  head at the last non-padding token.
(A language model as a judge is a protocol, not a backend: tasks/judge.py.)

Text conventions (see docs/reward_models.md): the classifier and value-head backends read the caller's
full text, `prompt + response` exactly as given (the probes build `<s>[INST] q </s> [/INST] r</s>`
themselves). That text is tokenised with `add_special_tokens=False` when it already starts with the
tokenizer's BOS string, else with the tokenizer's defaults; it is truncated on the LEFT (its end is
kept) to `max_length` tokens. The judge reads the question and the response separately
(`split_llama2_chat` takes a Llama-2 chat wrapper apart).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal

from globalign.errors import GlobalignError, first_line
from globalign.models.base import REWARD, ModelInfo, RewardModel
from globalign.models.checks import (
    INDEX_FILES,
    NOT_WEIGHTS,
    TORCH_SUFFIXES,
    check_config,
    check_weights,
    load_failure,
    load_torch_state,
    read_json_object,
    weight_files,
)
from globalign.models.fingerprint import combine, file_sha256, folder_sha256
from globalign.models.hf import _token_budget_batches, _torch_dtype, tokenizer_adds_bos
from globalign.models.packaged import PACKAGED_MODELS
from globalign.models.resolve import ModelSpec
from globalign.requests import RewardRequest
from globalign.threads import cpu_threads

# Part of every reward fingerprint: bump when reward code changes in a way that could change a number.
REWARD_CODE_VERSION = "reward-1"

RewardKind = Literal["auto", "classifier", "value_head"]
KINDS = ("auto", "classifier", "value_head")

DEFAULT_VALUE_HEAD_MAX_LENGTH = 2048  # Starling-RM-7B-alpha's reference code truncates to 2048 tokens
FALLBACK_MAX_LENGTH = 2048  # a classifier whose config and tokenizer state no limit

# Trunk weights in a value-head checkpoint sit under one of these prefixes, tried in this order:
# "transformer." (Starling-RM's GPTRewardModel: self.transformer = causal_lm.model), "model.model."
# (the same module saved through its `model` attribute), "model." (a CausalLM state dict + v_head),
# "backbone.", and "" (bare trunk keys next to v_head.weight).
TRUNK_PREFIXES = ("transformer.", "model.model.", "model.", "backbone.", "")
VALUE_HEAD_KEY = "v_head.weight"
VALUE_HEAD_BIAS_KEY = "v_head.bias"

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json",
                    "vocab.txt", "spiece.model", "sentencepiece.bpe.model")
_HUB_BASE_FILES = ["*.json", "tokenizer*", "*.model", "*.jinja", "*.txt"]


# -- requests and the interface -----------------------------------------------------------------
# -- Llama-2 chat text ----------------------------------------------------------------------------
_LLAMA2_CHAT = re.compile(r"^\s*(?:<s>)?\s*\[INST\](?P<q>.*?)(?:</s>)?\s*\[/INST\](?P<r>.*)$", re.DOTALL)
_LLAMA2_SYSTEM = re.compile(r"^\s*<<SYS>>.*?<</SYS>>", re.DOTALL)


def llama2_chat_text(question: str, response: str) -> str:
    """The single-turn text Starling-RM-7B-alpha's model card scores: `<s>[INST] q </s> [/INST] r</s>`."""
    return f"<s>[INST] {question} </s> [/INST] {response}</s>"


def split_llama2_chat(text: str) -> tuple[str, str]:
    """(question, response) of a single-turn Llama-2 chat text.

    Accepts `<s>[INST] q </s> [/INST] r</s>` (Starling-RM's card) and `<s>[INST] q [/INST] r</s>`
    (Llama-2's own template), with or without the leading `<s>` and trailing `</s>`. A `<<SYS>>...<</SYS>>`
    block at the start of the user turn is dropped; both parts are stripped of surrounding whitespace.
    """
    match = _LLAMA2_CHAT.match(text)
    if not match:
        raise GlobalignError("not a Llama-2 chat text: expected '<s>[INST] question [/INST] response</s>'")
    question, response = match.group("q"), match.group("r")
    if "[INST]" in question or "[INST]" in response or "[/INST]" in response:
        raise GlobalignError("only single-turn Llama-2 chat texts can be split into (question, response)")
    question = _LLAMA2_SYSTEM.sub("", question, count=1).strip()
    response = response.strip()
    if response.endswith("</s>"):
        response = response[: -len("</s>")].rstrip()
    return question, response


# -- tokenised backends (classifier, value head) --------------------------------------------------
class _TokenizedReward:
    """Shared by the classifier and value-head backends: left-truncated tokenisation, length-sorted
    right-padded batches with an attention mask, one reward per row."""

    # Pairs per engine call: each call is committed to the request cache; batches of `batch_size` inside.
    requests_per_call: ClassVar[dict[str, int]] = {REWARD: 256}

    def __init__(self, tokenizer, *, max_length: int, add_special_tokens: bool | None, pad_id: int,
                 device: str, batch_size: int, max_batch_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.tokenizer.truncation_side = "left"  # keep the END of a long text (the response)
        self.max_length = max_length
        self.add_special_tokens = add_special_tokens
        self.pad_id = pad_id
        self.device = device
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens

    def encode(self, text: str) -> list[int]:
        """Token ids of the full text, truncated on the left to `max_length` by the tokenizer itself
        (special tokens the tokenizer adds, e.g. a BOS, are kept; the text's own tokens are cut)."""
        special = self.add_special_tokens
        if special is None:
            bos = getattr(self.tokenizer, "bos_token", None)
            special = not (bos and text.startswith(bos))
        ids = self.tokenizer(text, add_special_tokens=special, truncation=True,
                             max_length=self.max_length)["input_ids"]
        return list(ids)

    def chat_text(self, question: str, response: str) -> str:
        """The pair as one user turn and one assistant turn in the tokenizer's own chat template."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise GlobalignError(f"reward model '{self.info.name}': its tokenizer has no chat template; "
                                 "use reward_format: llama2")
        turns = [{"role": "user", "content": question}, {"role": "assistant", "content": response}]
        return self.tokenizer.apply_chat_template(turns, tokenize=False)

    def _encode_all(self, requests: Sequence[RewardRequest]) -> list[list[int]]:
        encoded = [self.encode(r.text) for r in requests]
        for index, ids in enumerate(encoded):
            if not ids:
                raise GlobalignError(f"reward request {index} has no tokens (empty prompt and response)")
        return encoded

    def reward(self, requests: Sequence[RewardRequest]) -> list[float]:
        """Rewards in request order. Rows are sorted by length and cut into batches of at most
        `batch_size` rows and `max_batch_tokens` padded tokens; padding is on the RIGHT, so every real
        token keeps the position ids and attention it has in an unpadded pass."""
        import torch

        encoded = self._encode_all(requests)
        lengths = [len(ids) for ids in encoded]
        order = sorted(range(len(encoded)), key=lambda i: lengths[i])
        rewards: list[float] = [0.0] * len(encoded)
        with torch.inference_mode():
            for batch in _token_budget_batches(order, lengths, self.batch_size, self.max_batch_tokens):
                width = max(lengths[i] for i in batch)
                ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long, device=self.device)
                mask = torch.zeros((len(batch), width), dtype=torch.long, device=self.device)
                for row, index in enumerate(batch):
                    ids[row, : lengths[index]] = torch.tensor(encoded[index], device=self.device)
                    mask[row, : lengths[index]] = 1
                values = self._forward(ids, mask)
                for row, index in enumerate(batch):
                    rewards[index] = float(values[row].item())
        return rewards

    def reward_unbatched(self, requests: Sequence[RewardRequest]) -> list[float]:
        """Reference: one request at a time, no padding."""
        import torch

        rewards = []
        with torch.inference_mode():
            for ids in self._encode_all(requests):
                tensor = torch.tensor([ids], dtype=torch.long, device=self.device)
                rewards.append(float(self._forward(tensor, torch.ones_like(tensor))[0].item()))
        return rewards

    def _forward(self, ids, mask):  # (rows, width) right-padded -> (rows,) float rewards
        raise NotImplementedError

    def _model_info(self, kind: str, *, name: str, source: str, content_hash: str, dtype: str,
                    architecture: str, **details: str) -> ModelInfo:
        """The backend's ModelInfo; the fingerprint covers what changes its rewards."""
        return ModelInfo(
            name=name,
            backend="transformers",
            fingerprint=combine("reward", REWARD_CODE_VERSION, kind, content_hash, dtype,
                                str(self.max_length), str(self.add_special_tokens)),
            source=source,
            dtype=dtype,
            add_bos=tokenizer_adds_bos(self.tokenizer),
            details={"kind": kind, "architecture": architecture, "device": self.device,
                     "max_length": str(self.max_length), **details},
        )


class SequenceClassificationReward(_TokenizedReward):
    """A transformers sequence classifier with one output label: reward = logits[:, 0].

    Decoder classifiers (LlamaForSequenceClassification, ...) pool at the rightmost token that is not
    `config.pad_token_id` (transformers' rule); batches are padded with exactly that id, so a padded
    row pools where its unpadded pass does. When the config has no pad id, the tokenizer's pad (else
    unk, else eos, else 0) is used and written into the config.
    """

    def __init__(self, folder: Path, tokenizer_folder: Path, *, name: str, source: str, content_hash: str,
                 dtype: str = "float32", device: str | None = None, threads: int | None = None,
                 batch_size: int = 32, max_batch_tokens: int = 16384, max_length: int | None = None,
                 add_special_tokens: bool | None = None, trust_remote_code: bool = False) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification

        torch.set_num_threads(cpu_threads(threads))
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
        except Exception as exc:  # transformers raises many types for bad files
            raise load_failure(name, "config", folder, exc) from exc
        _check_classifier_config(config, name)
        tokenizer = _load_tokenizer(tokenizer_folder, name, trust_remote_code)
        try:
            self.model = AutoModelForSequenceClassification.from_pretrained(
                folder, dtype=_torch_dtype(dtype), trust_remote_code=trust_remote_code, weights_only=True
            ).to(device)
        except Exception as exc:
            raise load_failure(name, "model", folder, exc) from exc
        self.model.eval()
        text_config = self.model.config.get_text_config()
        pad_id = text_config.pad_token_id
        if pad_id is None:
            pad_id = _tokenizer_pad_id(tokenizer)
            text_config.pad_token_id = pad_id
            self.model.config.pad_token_id = pad_id
        max_length = max_length or _model_max_length(config, tokenizer)
        super().__init__(tokenizer, max_length=max_length, add_special_tokens=add_special_tokens, pad_id=pad_id,
                         device=device, batch_size=batch_size, max_batch_tokens=max_batch_tokens)
        self.info = self._model_info("classifier", name=name, source=source, content_hash=content_hash, dtype=dtype,
                                     architecture=type(self.model).__name__, pad_token_id=str(pad_id))

    def _forward(self, ids, mask):
        return self.model(input_ids=ids, attention_mask=mask).logits[:, 0].float()

    def close(self) -> None:
        del self.model


class ValueHeadReward(_TokenizedReward):
    """Starling-RM-7B-alpha's layout: trunk (`AutoModel` of the folder's config, no LM head) + a linear
    value head, both from one checkpoint (`torch.load(weights_only=True)` or safetensors).

    reward = v_head(last hidden state at the LAST NON-PADDING token) of each row. Batches are padded on
    the right with an attention mask, and the row's last real token is at `mask.sum() - 1`: the value
    Starling's reference code reads (the position before the first pad).
    """

    def __init__(self, folder: Path, tokenizer_folder: Path, checkpoint_files: Sequence[Path], *, name: str,
                 source: str, content_hash: str, dtype: str = "float32", device: str | None = None,
                 threads: int | None = None, batch_size: int = 32, max_batch_tokens: int = 16384,
                 max_length: int | None = None, add_special_tokens: bool | None = None,
                 trust_remote_code: bool = False) -> None:
        import torch
        from accelerate import init_empty_weights
        from transformers import AutoConfig, AutoModel

        torch.set_num_threads(cpu_threads(threads))
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = _torch_dtype(dtype)
        try:
            config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
        except Exception as exc:  # transformers raises many types for bad files
            raise load_failure(name, "config", folder, exc) from exc
        tokenizer = _load_tokenizer(tokenizer_folder, name, trust_remote_code)
        state: dict = {}
        for path in checkpoint_files:
            state.update(_load_tensors(path))
        # Parameters on the meta device (no 7B random init), buffers (rotary inv_freq) built for real.
        with init_empty_weights():
            trunk = AutoModel.from_config(config, dtype=torch_dtype, trust_remote_code=trust_remote_code)
        expected = list(trunk.state_dict())
        prefix = _trunk_prefix(state, expected, name)
        trunk.load_state_dict({k: state[prefix + k].to(torch_dtype) for k in expected}, strict=True, assign=True)
        if any(p.is_meta for p in trunk.parameters()):
            raise GlobalignError(f"reward model '{name}': checkpoint leaves some trunk weights unset")
        hidden = config.get_text_config().hidden_size
        weight = state[VALUE_HEAD_KEY]
        if tuple(weight.shape) != (1, hidden):
            raise GlobalignError(
                f"reward model '{name}': v_head.weight has shape {tuple(weight.shape)}, expected (1, {hidden})"
            )
        bias = state.get(VALUE_HEAD_BIAS_KEY)
        v_head = torch.nn.Linear(hidden, 1, bias=bias is not None, dtype=torch_dtype)
        with torch.no_grad():
            v_head.weight.copy_(weight.to(torch_dtype))
            if bias is not None:
                v_head.bias.copy_(bias.reshape(1).to(torch_dtype))
        self.trunk = trunk.to(device).eval()
        self.v_head = v_head.to(device).eval()
        self.trunk_prefix = prefix
        max_length = max_length or DEFAULT_VALUE_HEAD_MAX_LENGTH
        super().__init__(tokenizer, max_length=max_length, add_special_tokens=add_special_tokens,
                         pad_id=_tokenizer_pad_id(tokenizer), device=device, batch_size=batch_size,
                         max_batch_tokens=max_batch_tokens)
        self.info = self._model_info("value_head", name=name, source=source, content_hash=content_hash, dtype=dtype,
                                     architecture=type(trunk).__name__,
                                     checkpoint=",".join(p.name for p in checkpoint_files), trunk_prefix=prefix,
                                     v_head_bias=str(bias is not None))

    def _forward(self, ids, mask):
        import torch

        hidden = self.trunk(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        last = mask.sum(dim=1) - 1  # right padding: index of each row's last real token
        picked = hidden[torch.arange(ids.shape[0], device=ids.device), last]
        return self.v_head(picked).squeeze(-1).float()

    def close(self) -> None:
        del self.trunk, self.v_head


# -- loading --------------------------------------------------------------------------------------
def load_reward_model(
    spec_or_path: ModelSpec | str | Path,
    kind: RewardKind = "auto",
    *,
    tokenizer: str | Path | None = None,
    max_length: int | None = None,
    add_special_tokens: bool | None = None,
    max_batch_tokens: int = 16384,
) -> RewardModel:
    """Load a reward model from a local folder or a hub id (`kind` "auto", "classifier", "value_head").
    A language model as a judge is tasks/judge.py's `load_judge`.

    "auto" picks the value head when a checkpoint in the folder holds `v_head.weight`, else the
    classifier when config.json names a `*ForSequenceClassification` architecture with one label.
    `tokenizer` (folder or hub id) is needed when the folder ships none (Starling-RM-7B-alpha: use
    meta-llama/Llama-2-7b-chat-hf). `max_length`: left-truncation limit in tokens (value head: 2048;
    classifier: the model's own limit).
    """
    spec = spec_or_path if isinstance(spec_or_path, ModelSpec) else ModelSpec(str(spec_or_path))
    if kind not in KINDS:
        raise GlobalignError(f"unknown reward model kind '{kind}'; use one of {', '.join(KINDS)}")
    if spec.name in PACKAGED_MODELS:
        raise GlobalignError(
            f"model '{spec.name}' is a packaged language model, not a reward model; a language model can "
            "judge instead (the probes' option scorer: judge)"
        )
    folder, source, folder_hash = locate_reward_folder(spec)
    checkpoint = _value_head_files(folder)
    if kind == "auto":
        if checkpoint:
            kind = "value_head"
        elif _is_classifier_config(folder):
            kind = "classifier"
        else:
            raise GlobalignError(
                f"reward model '{spec.name}': neither a checkpoint with v_head.weight nor a "
                "*ForSequenceClassification config; a language model can judge instead (the probes' option "
                "scorer: judge)"
            )
    tokenizer_folder, tokenizer_hash = _tokenizer_folder(folder, tokenizer, spec)
    common = {"name": spec.name, "source": source, "dtype": spec.dtype, "device": spec.device,
              "threads": spec.threads, "batch_size": spec.batch_size, "max_batch_tokens": max_batch_tokens,
              "max_length": max_length, "add_special_tokens": add_special_tokens,
              "trust_remote_code": spec.trust_remote_code}
    if kind == "value_head":
        if not checkpoint:
            raise GlobalignError(f"reward model '{spec.name}': no checkpoint in {folder} holds v_head.weight")
        extra = [file_sha256(p) for p in checkpoint if p.suffix not in (".safetensors", ".bin")]
        content = combine(folder_hash, tokenizer_hash, *extra)
        return ValueHeadReward(folder, tokenizer_folder, checkpoint, content_hash=content, **common)
    return SequenceClassificationReward(folder, tokenizer_folder,
                                        content_hash=combine(folder_hash, tokenizer_hash), **common)


def load_reward_spec(spec: ModelSpec) -> RewardModel:
    """The `hf` backend's reward loader: a run's reward-model entry (`kind: reward` detects the layout)."""
    return load_reward_model(spec, "auto" if spec.kind == "reward" else spec.kind, tokenizer=spec.tokenizer)


def locate_reward_folder(spec: ModelSpec) -> tuple[Path, str, str]:
    """(folder, source description, content hash) of a local folder or a hub id."""
    name = spec.name
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise GlobalignError(f"reward model '{name}': folder has no config.json (not a Hugging Face model folder)")
        _check_reward_folder(path, spec)
        return path, str(path.resolve()), folder_sha256(path)
    if _HUB_ID.match(name) and not path.exists():
        folder = _download(name, spec.revision, weights=True)
        _check_reward_folder(folder, spec)
        return folder, f"hub:{name}@{folder.name}", f"hub:{name}@{folder.name}"
    raise GlobalignError(f"reward model '{name}': not a folder or a Hugging Face hub id (owner/name)")


def _check_reward_folder(folder: Path, spec: ModelSpec) -> None:
    """config.json and every weight file present, checked before anything loads (models/checks.py); a
    folder without weights is left to the kind detection, which says what it lacks."""
    check_config(folder, trust_remote_code=spec.trust_remote_code, auto_class="AutoModelForSequenceClassification")
    check_weights(folder, spec.name, require=False)


def _load_tokenizer(folder: Path, name: str, trust_remote_code: bool):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except Exception as exc:  # transformers and tokenizers raise many types for bad files
        raise load_failure(name, "tokenizer", folder, exc) from exc


def _download(repo_id: str, revision: str | None, *, weights: bool) -> Path:
    """A hub snapshot's top-level config/tokenizer files and, with `weights`, its weights (safetensors
    when the repo has any, else .bin/.pt/.pth; training state such as optimizer files is skipped)."""
    from huggingface_hub import HfApi, snapshot_download

    try:
        patterns = list(_HUB_BASE_FILES)
        if weights:
            top = [f for f in HfApi().list_repo_files(repo_id, revision=revision) if "/" not in f]
            has_safetensors = any(f.endswith(".safetensors") for f in top)
            patterns += ["*.safetensors"] if has_safetensors else [f"*{s}" for s in TORCH_SUFFIXES]
        ignore = ["*/*", *(f"*{word}*" for word in NOT_WEIGHTS if word != "trainer_state")]
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, ignore_patterns=ignore))
    except Exception as exc:  # offline, gated, missing: the hub client raises many types
        raise GlobalignError(
            f"model '{repo_id}': cannot fetch from the Hugging Face hub ({first_line(exc)}); pass a local folder instead"
        ) from exc


def _tokenizer_folder(folder: Path, tokenizer: str | Path | None, spec: ModelSpec) -> tuple[Path, str]:
    """(tokenizer folder, its hash: "" when it is the model folder, already hashed)."""
    if tokenizer is None:
        if any((folder / f).is_file() for f in _TOKENIZER_FILES):
            return folder, ""
        try:
            base = json.loads((folder / "config.json").read_text("utf-8")).get("_name_or_path", "")
        except (OSError, ValueError):
            base = ""
        hint = f" (its config names '{base}')" if base else ""
        raise GlobalignError(
            f"reward model '{spec.name}': folder has no tokenizer files; pass tokenizer=<folder or hub id>{hint}"
        )
    path = Path(tokenizer).expanduser()
    if path.is_dir():
        return path, folder_sha256(path)
    if _HUB_ID.match(str(tokenizer)) and not path.exists():
        downloaded = _download(str(tokenizer), None, weights=False)
        return downloaded, f"hub:{tokenizer}@{downloaded.name}"
    raise GlobalignError(f"tokenizer '{tokenizer}': not a folder or a Hugging Face hub id (owner/name)")


def _is_classifier_config(folder: Path) -> bool:
    config = read_json_object(folder / "config.json")
    return any(str(a).endswith("ForSequenceClassification") for a in config.get("architectures") or [])


def _check_classifier_config(config, name: str) -> None:
    architectures = getattr(config, "architectures", None) or []
    if not any(str(a).endswith("ForSequenceClassification") for a in architectures):
        raise GlobalignError(
            f"reward model '{name}': config.json names no *ForSequenceClassification architecture "
            f"({', '.join(map(str, architectures)) or 'none'}); a classifier head would be random"
        )
    if config.num_labels != 1:
        raise GlobalignError(
            f"reward model '{name}': classifier has {config.num_labels} labels; a reward model needs exactly 1"
        )


def _model_max_length(config, tokenizer) -> int:
    limits = [getattr(config.get_text_config(), "max_position_embeddings", None),
              getattr(tokenizer, "model_max_length", None)]
    sane = [int(x) for x in limits if isinstance(x, int) and 0 < x < 1_000_000]
    return min(sane) if sane else FALLBACK_MAX_LENGTH


def _tokenizer_pad_id(tokenizer) -> int:
    """Any real token id to pad with (the attention mask hides it): pad, else unk, else eos, else 0."""
    for attribute in ("pad_token_id", "unk_token_id", "eos_token_id"):
        value = getattr(tokenizer, attribute, None)
        if isinstance(value, int):
            return value
    return 0


# -- checkpoint files -----------------------------------------------------------------------------
def _value_head_files(folder: Path) -> list[Path]:
    """The checkpoint file(s) holding v_head.weight (all shards when an index names it), else []."""
    for index_name in INDEX_FILES:
        index = folder / index_name
        if index.is_file():
            weight_map = read_json_object(index).get("weight_map", {})
            if VALUE_HEAD_KEY in weight_map:
                return sorted({folder / f for f in weight_map.values()})
    for path in weight_files(folder):
        if VALUE_HEAD_KEY in _tensor_names(path):
            return [path]  # one self-contained checkpoint (Starling-RM ships a single file)
    return []


def _tensor_names(path: Path) -> set[str]:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                return set(handle.keys())
        except Exception as exc:  # checked before (models/checks.py); a file changed since still gets one line
            raise _unreadable(path, exc) from exc
    return set(_load_tensors(path))


def _load_tensors(path: Path) -> dict:
    """A flat name -> tensor dict; torch files are read with weights_only=True (memory-mapped when the
    file is in the zip format) and a {"module"|"state_dict"|"model": {...}} wrapper is unwrapped."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise _unreadable(path, exc) from exc
    state = load_torch_state(path)
    if not isinstance(state, dict):
        raise GlobalignError(f"checkpoint {path} does not hold a state dict")
    for wrapper in ("module", "state_dict", "model"):
        if len(state) == 1 and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _unreadable(path: Path, exc: BaseException) -> GlobalignError:
    return GlobalignError(f"cannot read checkpoint {path} ({first_line(exc)}); download or copy the model again")


def _trunk_prefix(state: dict, expected: Sequence[str], name: str) -> str:
    """The first of TRUNK_PREFIXES under which the checkpoint holds every trunk weight."""
    for prefix in TRUNK_PREFIXES:
        if all(prefix + key in state for key in expected):
            return prefix
    sample = ", ".join(sorted(k for k in state if k != VALUE_HEAD_KEY)[:3]) or "none"
    raise GlobalignError(
        f"reward model '{name}': checkpoint has no complete trunk under the prefixes "
        f"{', '.join(repr(p) for p in TRUNK_PREFIXES)} (expected e.g. 'transformer.{expected[0]}'; "
        f"found {sample})"
    )
