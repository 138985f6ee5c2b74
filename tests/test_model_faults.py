"""A damaged, truncated or foreign model file is one line at the CLI (`globalign: error: ...`, exit 2, no
traceback) that names the file and what to do; a damaged entry of the converted-model cache is rebuilt.

The models are tiny random-weight Llama folders with a word-level tokenizer (built here in seconds); each
case damages a copy of a sound folder, and the sound folder itself runs, so a case fails only for its
damage. Checkpoints are never unpickled without weights_only (checked in the source too).
"""

from __future__ import annotations

import ast
import json
import shutil
import struct
from pathlib import Path

import pytest
from test_cli_errors import cli, isolated, one_error_line, small_data  # noqa: F401 (fixtures: private cache, data)

from globalign.errors import GlobalignError
from globalign.models import gguf_convert
from globalign.models.checks import ModelFileError
from globalign.models.resolve import ModelSpec, locate_model
from globalign.models.reward import load_reward_model

WORDS = ["<unk>", "<s>", "</s>", "Yes", "No", "DK", "/", "Refused", "Question", "?", "0", "1", "2", "3",
         "Answer", ":", "the", "a"]
SRC = Path(__file__).resolve().parents[1] / "src" / "globalign"


def save_tiny_tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>",
                            eos_token="</s>", pad_token="</s>").save_pretrained(folder)


def tiny_config(**overrides):
    from transformers import LlamaConfig

    values = {"vocab_size": len(WORDS), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
              "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 128,
              "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2}
    return LlamaConfig(**{**values, **overrides})


def build_tiny_lm(folder: Path) -> Path:
    """A random-weight Llama causal LM folder (safetensors) with a tokenizer."""
    import torch
    from transformers import LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # (as the CLI does) a bar on stderr would reach a test's capsys
    torch.manual_seed(0)
    LlamaForCausalLM(tiny_config()).save_pretrained(folder)
    save_tiny_tokenizer(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("tiny") / "lm")


@pytest.fixture
def goqa(request) -> Path:
    """test_cli_errors' small GlobalOpinionsQA folder."""
    return request.getfixturevalue("small_data")


def run_model(capsys, model: Path | str, data: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return cli(capsys, "run", "--model", model, "--task", "global_opinions", "--data-dir", data, "--output", out,
               *extra)


# -- damage: each takes a folder and returns the file the message must name ---------------------------
def _truncate(path: Path, fraction: float) -> None:
    _keep_bytes(path, int(path.stat().st_size * fraction))


def _keep_bytes(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def _edit_config(folder: Path, **changes) -> str:
    config = json.loads((folder / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    return "config.json"


def _safetensors_half(folder):
    _truncate(folder / "model.safetensors", 0.5)
    return "model.safetensors"


def _safetensors_last_byte(folder):
    _keep_bytes(folder / "model.safetensors", (folder / "model.safetensors").stat().st_size - 1)
    return "model.safetensors"


def _safetensors_four_bytes(folder):
    _keep_bytes(folder / "model.safetensors", 4)
    return "model.safetensors"


def _safetensors_header_garbage(folder):
    path = folder / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[8:40] = b"\x00garbage that is not json here!!"
    path.write_bytes(bytes(data))
    return "model.safetensors"


def _safetensors_huge_header_length(folder):
    path = folder / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(struct.pack("<Q", 1 << 40) + data[8:])
    return "model.safetensors"


def _safetensors_foreign(folder):
    (folder / "model.safetensors").write_text("<html>404 Not Found</html>\n" * 20)
    return "model.safetensors"


def _no_tokenizer(folder):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    return "tokenizer"


def _tokenizer_json_damaged(folder):
    (folder / "tokenizer.json").write_text("{")
    return "tokenizer"


def _config_not_json(folder):
    (folder / "config.json").write_text("{not json")
    return "config.json"


def _config_a_list(folder):
    (folder / "config.json").write_text("[1, 2]")
    return "config.json"


def _config_no_model_type(folder):
    return _edit_config(folder, model_type=None)


def _config_unknown_architecture(folder):
    return _edit_config(folder, model_type="not_a_real_arch")


def _remote_code_not_trusted(folder):
    _edit_config(folder, model_type="custom_arch",
                 auto_map={"AutoConfig": "modeling_custom.CustomConfig",
                           "AutoModelForCausalLM": "modeling_custom.CustomForCausalLM"})
    return "--trust-remote-code"


def _as_bin(folder: Path, payload=None) -> Path:
    """Replace model.safetensors by pytorch_model.bin (the model's own weights, or `payload`)."""
    import torch
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(state if payload is None else payload, folder / "pytorch_model.bin")
    return folder / "pytorch_model.bin"


class _RunsCodeWhenUnpickled:
    def __reduce__(self):
        return (print, ("PICKLE CODE RAN",))


def _bin_pickle_refused(folder):
    import torch

    _as_bin(folder, {"model.embed_tokens.weight": torch.zeros(1), "x": _RunsCodeWhenUnpickled()})
    return "pytorch_model.bin"


def _bin_truncated(folder):
    _truncate(_as_bin(folder), 0.6)
    return "pytorch_model.bin"


def _index_names_missing_shard(folder):
    (folder / "model.safetensors").rename(folder / "model-00001-of-00002.safetensors")
    weight_map = {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return "model-00002-of-00002.safetensors"


def _index_not_json(folder):
    (folder / "model.safetensors.index.json").write_text("{")
    return "model.safetensors.index.json"


def _no_weights(folder):
    (folder / "model.safetensors").unlink()
    return "no weight files"


LM_DAMAGE = [_safetensors_half, _safetensors_last_byte, _safetensors_four_bytes, _safetensors_header_garbage,
             _safetensors_huge_header_length, _safetensors_foreign, _no_tokenizer, _tokenizer_json_damaged,
             _config_not_json, _config_a_list, _config_no_model_type, _config_unknown_architecture,
             _remote_code_not_trusted, _bin_pickle_refused, _bin_truncated, _index_names_missing_shard,
             _index_not_json, _no_weights]


def test_a_sound_tiny_folder_runs(capsys, tiny_lm, goqa, tmp_path):
    code, _, err = run_model(capsys, tiny_lm, goqa, tmp_path / "out")
    assert code == 0, err


def test_a_sound_bin_checkpoint_runs(capsys, tiny_lm, goqa, tmp_path):
    folder = tmp_path / "bin"
    shutil.copytree(tiny_lm, folder)
    _as_bin(folder)
    code, _, err = run_model(capsys, folder, goqa, tmp_path / "out")
    assert code == 0, err


@pytest.mark.parametrize("damage", LM_DAMAGE, ids=lambda f: f.__name__.strip("_"))
def test_damaged_model_folder_is_one_line_naming_the_file(capsys, tiny_lm, goqa, tmp_path, damage):
    folder = tmp_path / "model"
    shutil.copytree(tiny_lm, folder)
    named = damage(folder)
    code, out, err = run_model(capsys, folder, goqa, tmp_path / "out")
    line = one_error_line(err)
    assert code == 2
    assert named in line and "model" in line
    assert "PICKLE CODE RAN" not in out + err
    assert not (tmp_path / "out").exists()


def test_remote_code_is_checked_only_when_trusted(capsys, tiny_lm, goqa, tmp_path):
    """With --trust-remote-code the config's code must be in the folder; without it the built-in class
    of a known model_type is used, as transformers does."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_lm, folder)
    _edit_config(folder, auto_map={"AutoModelForCausalLM": "modeling_custom.CustomForCausalLM"})
    code, _, err = run_model(capsys, folder, goqa, tmp_path / "trusted", "--trust-remote-code")
    assert code == 2 and "modeling_custom.py is missing" in one_error_line(err)
    code, _, err = run_model(capsys, folder, goqa, tmp_path / "built-in")
    assert code == 0, err


# -- GGUF files -------------------------------------------------------------------------------------
def _packaged_gguf() -> Path | None:
    from globalign.models.packaged import packaged_gguf_path

    try:
        return packaged_gguf_path("smollm2-135m-instruct")
    except GlobalignError:
        return None


@pytest.mark.parametrize("kind", ["empty", "text", "magic_only", "prefix_100", "prefix_2mb"])
def test_damaged_gguf_is_one_line(capsys, goqa, tmp_path, kind):
    path = tmp_path / "model.gguf"
    real = _packaged_gguf()
    if kind.startswith("prefix") and real is None:
        pytest.skip("packaged GGUF not installed")
    content = {"empty": b"", "text": b"this is not a model\n", "magic_only": b"GGUF\x03\x00\x00\x00"}
    if kind in content:
        path.write_bytes(content[kind])
    else:
        with real.open("rb") as handle:
            path.write_bytes(handle.read(100 if kind == "prefix_100" else 2 << 20))
    code, _, err = run_model(capsys, path, goqa, tmp_path / "out")
    line = one_error_line(err)
    assert code == 2 and str(path) in line and "download it again" in line
    assert not list((tmp_path / "cache").glob("converted/*"))  # nothing half-converted left behind


# -- reward-model folders ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory) -> Path:
    import torch
    from transformers import LlamaForSequenceClassification

    folder = tmp_path_factory.mktemp("clf") / "clf"
    torch.manual_seed(0)
    config = tiny_config(num_labels=1)
    config.architectures = ["LlamaForSequenceClassification"]
    LlamaForSequenceClassification(config).save_pretrained(folder)
    save_tiny_tokenizer(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_value_head(tmp_path_factory) -> Path:
    """Starling-RM's layout: a config, a tokenizer and one torch checkpoint with trunk + v_head.weight."""
    import torch
    from transformers import LlamaModel

    folder = tmp_path_factory.mktemp("vh") / "vh"
    folder.mkdir()
    torch.manual_seed(0)
    config = tiny_config()
    trunk = LlamaModel(config)
    config.save_pretrained(folder)
    save_tiny_tokenizer(folder)
    state = {f"transformer.{k}": v for k, v in trunk.state_dict().items()}
    state["v_head.weight"] = torch.randn(1, config.hidden_size)
    torch.save(state, folder / "pytorch_model.bin")
    return folder


def _value_head_pickle_refused(folder):
    import torch

    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    torch.save({**state, "x": _RunsCodeWhenUnpickled()}, folder / "pytorch_model.bin")
    return "pytorch_model.bin"


def _value_head_truncated(folder):
    _truncate(folder / "pytorch_model.bin", 0.5)
    return "pytorch_model.bin"


REWARD_DAMAGE = {
    "classifier": [_safetensors_half, _safetensors_header_garbage, _tokenizer_json_damaged, _config_not_json,
                   _config_unknown_architecture, _remote_code_not_trusted, _bin_pickle_refused, _bin_truncated],
    "value_head": [_value_head_pickle_refused, _value_head_truncated, _config_not_json, _tokenizer_json_damaged,
                   _config_no_model_type],
}


def test_sound_reward_folders_load(tiny_classifier, tiny_value_head):
    assert load_reward_model(tiny_classifier).info.details["kind"] == "classifier"
    assert load_reward_model(tiny_value_head).info.details["kind"] == "value_head"


@pytest.mark.parametrize("kind,damage", [(k, d) for k, ds in REWARD_DAMAGE.items() for d in ds],
                         ids=lambda x: x if isinstance(x, str) else x.__name__.strip("_"))
def test_damaged_reward_folder_is_one_line_naming_the_file(capsys, tiny_classifier, tiny_value_head, tmp_path,
                                                           kind, damage):
    folder = tmp_path / kind
    shutil.copytree(tiny_classifier if kind == "classifier" else tiny_value_head, folder)
    named = damage(folder)
    with pytest.raises(GlobalignError) as error:
        load_reward_model(folder)
    message = str(error.value)
    assert "\n" not in message and named in message
    assert "PICKLE CODE RAN" not in capsys.readouterr().out


# -- the converted-model cache ------------------------------------------------------------------------
@pytest.fixture
def fake_conversion(monkeypatch, tiny_lm, tmp_path):
    """converted_folder() on a stand-in GGUF whose 'conversion' copies the tiny folder (counted)."""
    calls = []

    def convert(gguf_path, out):
        calls.append(gguf_path)
        for path in tiny_lm.iterdir():
            shutil.copy(path, out / path.name)

    monkeypatch.setattr(gguf_convert, "_convert", convert)
    monkeypatch.setattr(gguf_convert, "read_gguf_add_bos", lambda path: False)
    gguf = tmp_path / "stand-in.gguf"
    gguf.write_bytes(b"GGUF stand-in")
    return gguf, calls


def _marker(folder: Path) -> dict:
    return json.loads((folder / gguf_convert.MARKER).read_text())


def _flip_a_byte(folder):
    path = folder / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # same size, sound header: only the recorded sha256 tells
    path.write_bytes(bytes(data))


def _remove(name):
    def remove(folder):
        (folder / name).unlink()

    remove.__name__ = f"remove_{name}"
    return remove


def _marker_garbage(folder):
    (folder / gguf_convert.MARKER).write_text("{")


def _marker_without_hash(folder):
    (folder / gguf_convert.MARKER).write_text(json.dumps({"add_bos": False}))


def _legacy_marker_truncated_weights(folder):
    meta = _marker(folder)
    del meta["files"]
    (folder / gguf_convert.MARKER).write_text(json.dumps(meta))
    _truncate(folder / "model.safetensors", 0.5)


def _emptied(folder):
    for path in folder.iterdir():
        path.unlink()


CONVERTED_DAMAGE = [
    lambda folder: _truncate(folder / "model.safetensors", 0.5), _flip_a_byte, _remove("model.safetensors"),
    _remove("config.json"), _remove("tokenizer.json"), _remove(gguf_convert.MARKER), _marker_garbage,
    _marker_without_hash, _legacy_marker_truncated_weights, _emptied,
]


def test_conversion_records_every_file_and_reuses_a_sound_folder(fake_conversion):
    gguf, calls = fake_conversion
    folder = gguf_convert.converted_folder(gguf)
    files = _marker(folder)["files"]
    assert set(files) == {p.name for p in folder.iterdir()} - {gguf_convert.MARKER}
    assert files["model.safetensors"]["size"] == (folder / "model.safetensors").stat().st_size
    assert gguf_convert.converted_folder(gguf) == folder and len(calls) == 1
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp folder left


@pytest.mark.parametrize("damage", CONVERTED_DAMAGE, ids=lambda f: f.__name__.strip("_"))
def test_damaged_converted_folder_is_rebuilt(capsys, fake_conversion, damage):
    gguf, calls = fake_conversion
    folder = gguf_convert.converted_folder(gguf)
    damage(folder)
    capsys.readouterr()
    assert gguf_convert.converted_folder(gguf) == folder
    assert len(calls) == 2
    assert gguf_convert.verify_converted(folder) is None
    (warning,) = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith("globalign: warning: converted model folder") and str(folder) in warning
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # the damaged copy is gone


def test_a_folder_from_before_the_file_list_is_checked_and_then_recorded(fake_conversion):
    gguf, calls = fake_conversion
    folder = gguf_convert.converted_folder(gguf)
    meta = _marker(folder)
    files = meta.pop("files")
    (folder / gguf_convert.MARKER).write_text(json.dumps(meta))
    assert gguf_convert.converted_folder(gguf) == folder and len(calls) == 1  # sound: kept
    assert _marker(folder)["files"] == files


def test_a_damaged_converted_folder_that_cannot_be_moved_names_the_folder(monkeypatch, fake_conversion):
    gguf, _ = fake_conversion
    folder = gguf_convert.converted_folder(gguf)
    _truncate(folder / "model.safetensors", 0.5)

    def refuse(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(gguf_convert.os, "replace", refuse)
    with pytest.raises(GlobalignError) as error:
        gguf_convert.converted_folder(gguf)
    message = str(error.value)
    assert "\n" not in message and str(folder) in message and "delete that folder" in message


def test_a_failed_conversion_leaves_nothing_that_looks_finished(monkeypatch, fake_conversion):
    gguf, _ = fake_conversion

    def half_then_fail(gguf_path, out):
        (out / "config.json").write_text("{}")
        raise ModelFileError("conversion failed")

    monkeypatch.setattr(gguf_convert, "_convert", half_then_fail)
    with pytest.raises(ModelFileError):
        gguf_convert.converted_folder(gguf)
    assert not list((Path.cwd() / "cache" / "converted").iterdir())


@pytest.mark.slow
def test_a_truncated_packaged_conversion_is_rebuilt_and_loads(tmp_path, monkeypatch):
    """The real packaged model: its converted folder, copied with model.safetensors cut short into a
    private cache (the user's cache is never touched), is converted again on the next use."""
    from globalign.models.fingerprint import file_sha256
    from globalign.models.resolve import load_model
    from globalign.requests import ScoreRequest

    gguf = _packaged_gguf()
    if gguf is None:
        pytest.skip("packaged GGUF not installed")
    from globalign.paths import cache_dir

    name = file_sha256(gguf)[:24]
    real = Path.home() / ".cache" / "globalign" / "converted" / name  # read only, never verified in place
    if not (real / "model.safetensors").is_file():
        pytest.skip("the packaged model has not been converted yet")
    private = tmp_path / "private-cache"
    monkeypatch.setenv("GLOBALIGN_CACHE_DIR", str(private))
    assert cache_dir() == private
    copy = private / "converted" / name
    copy.mkdir(parents=True)
    for path in real.iterdir():
        if path.name == "model.safetensors":
            with path.open("rb") as handle:
                (copy / path.name).write_bytes(handle.read(1 << 20))
        else:
            shutil.copy(path, copy / path.name)
    located = locate_model(ModelSpec("smollm2-135m-instruct"))
    assert located.folder == copy and gguf_convert.verify_converted(copy) is None
    (row,) = load_model(located).score([ScoreRequest("The capital of France is", (" Paris",))])
    assert row[0].n_tokens > 0


# -- no unsafe loading --------------------------------------------------------------------------------
def _calls(name: str):
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Call) and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) == name:
                yield path, node


def _keyword(node: ast.Call, name: str):
    return next((k.value for k in node.keywords if k.arg == name), None)


def test_peft_loads_adapter_checkpoints_with_weights_only():
    import inspect

    from peft.utils import save_and_load

    assert inspect.signature(save_and_load.torch_load).parameters["weights_only"].default is True
    assert "torch_load(" in inspect.getsource(save_and_load.load_peft_weights)


def test_checkpoints_are_never_unpickled_without_weights_only():
    loads = list(_calls("load"))
    torch_loads = [(p, n) for p, n in loads if getattr(n.func, "value", None) is not None
                   and getattr(n.func.value, "id", "") == "torch"]
    assert torch_loads, "expected torch.load calls to check"
    for path, node in torch_loads:
        value = _keyword(node, "weights_only")
        assert isinstance(value, ast.Constant) and value.value is True, f"{path}:{node.lineno}"
    assert not [(p, n.lineno) for p, n in loads + list(_calls("loads")) + list(_calls("Unpickler"))
                if getattr(getattr(n.func, "value", None), "id", "") in ("pickle", "dill", "joblib")]
    for path, node in _calls("from_pretrained"):
        remote = _keyword(node, "trust_remote_code")
        assert not (isinstance(remote, ast.Constant) and remote.value is True), f"{path}:{node.lineno}"
        if ast.unparse(node.func) == "PeftModel.from_pretrained":
            continue  # PEFT reads an adapter's .bin through its own torch_load: weights_only=True (checked below)
        if "Model" in ast.unparse(node.func) and _keyword(node, "gguf_file") is None:
            weights_only = _keyword(node, "weights_only")
            assert isinstance(weights_only, ast.Constant) and weights_only.value is True, f"{path}:{node.lineno}"
