"""The local tokenizer of a served model (backend option `tokenizer`): with it, chat prompts are rendered
here with the model's chat template, and prompts go to the server as token ids, so that the study's
tokenisation rule (models/tokenization.py) and the BOS rule are exactly those of the transformers backend.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from globalign.errors import GlobalignError
from globalign.models.checks import TOKENIZER_FILES, check_tokenizer_files, load_failure
from globalign.models.fingerprint import file_sha256
from globalign.models.packaged import PACKAGED_MODELS
from globalign.requests import Prompt

# Files of a model folder that are not the tokenizer: left out of the tokenizer's hash.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack")


@dataclass
class LocalTokenizer:
    tokenizer: Any  # a transformers tokenizer
    add_bos: bool
    content_hash: str  # of the tokenizer's files: part of the served model's fingerprint
    source: str

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def render(self, prompt: Prompt, model: str) -> str:
        """The prompt's text: as is, or its user turn in the chat template followed by the assistant prefix
        (what the transformers backend's `render` gives)."""
        if not prompt.is_chat:
            return prompt.text
        if not self.has_chat_template:
            raise GlobalignError(f"model '{model}': the tokenizer {self.source} has no chat template; "
                                 "use --prompt-format raw")
        user = [{"role": "user", "content": prompt.user}]
        return self.tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True) + prompt.text

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, BOS prepended when the model expects one (the transformers backend's rule)."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        bos = self.tokenizer.bos_token_id
        if self.add_bos and bos is not None and not (ids and ids[0] == bos):
            ids = [bos, *ids]
        return ids


def load_local_tokenizer(name: str, model: str) -> LocalTokenizer:
    """The tokenizer of a packaged alias (its converted folder, with the BOS rule of its GGUF) or of a local
    folder (BOS as its tokenizer adds it)."""
    from transformers import AutoTokenizer

    from globalign.models.hf import tokenizer_adds_bos

    add_bos: bool | None = None
    if name in PACKAGED_MODELS:
        from globalign.models.resolve import ModelSpec, locate_model

        located = locate_model(ModelSpec(name))
        assert located.folder is not None
        folder, add_bos = located.folder, located.add_bos
    else:
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise GlobalignError(f"model '{model}': backend option tokenizer={name!r} is neither a packaged alias "
                                 f"({', '.join(PACKAGED_MODELS)}) nor a folder")
        check_tokenizer_files(folder, model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except Exception as exc:  # transformers and tokenizers raise many types for bad files
        raise load_failure(model, "tokenizer", folder, exc) from exc
    if add_bos is None:
        add_bos = tokenizer_adds_bos(tokenizer)
    return LocalTokenizer(tokenizer, add_bos, _tokenizer_hash(folder), str(folder))


def _tokenizer_hash(folder: Path) -> str:
    """One hash over the folder's tokenizer and config files (not its weights, which a served model's
    fingerprint cannot cover anyway)."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix not in _WEIGHT_SUFFIXES and (
                path.suffix in (".json", ".jinja", ".model", ".txt") or path.name in TOKENIZER_FILES):
            digest.update(path.name.encode())
            digest.update(file_sha256(path).encode())
    return digest.hexdigest()
