"""Every way to name a model resolves to the same real weights: alias, GGUF file, local folder, hub id."""

from __future__ import annotations

import shutil

import pytest

from globalign.errors import GlobalignError
from globalign.models.packaged import packaged_gguf_path
from globalign.models.resolve import ModelSpec, load_model, locate_model
from globalign.requests import ScoreRequest

pytestmark = pytest.mark.slow
ALIAS = "smollm2-135m-instruct"


def test_gguf_file_and_alias_share_the_conversion_cache_and_fingerprint():
    by_alias = locate_model(ModelSpec(ALIAS))
    by_file = locate_model(ModelSpec(str(packaged_gguf_path(ALIAS))))
    assert by_file.folder == by_alias.folder
    assert by_file.content_hash == by_alias.content_hash
    assert by_alias.add_bos is False  # from the GGUF's tokenizer.ggml.add_bos_token


def test_gemma_keeps_the_bos_token_its_gguf_asks_for():
    assert locate_model(ModelSpec("gemma-3-270m")).add_bos is True


def test_local_folder_loads_and_fingerprint_tracks_dtype(tmp_path):
    folder = tmp_path / "smol"
    shutil.copytree(locate_model(ModelSpec(ALIAS)).folder, folder)
    model = load_model(ModelSpec(str(folder)))
    assert model.info.source == str(folder.resolve())
    assert model.info.add_bos is False  # asked of the tokenizer: SmolLM2 adds no BOS
    (row,) = model.score([ScoreRequest("The capital of France is", (" Paris",))])
    assert row[0].n_tokens > 0
    same = load_model(ModelSpec(str(folder)))
    half = load_model(ModelSpec(str(folder), dtype="bfloat16"))
    assert same.info.fingerprint == model.info.fingerprint  # same files, same settings: cache reusable
    assert half.info.fingerprint != model.info.fingerprint  # another dtype gives other numbers


def test_hub_id_path_downloads_into_a_snapshot_and_records_its_commit(tmp_path, monkeypatch):
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = tmp_path / "snapshots" / commit
    shutil.copytree(locate_model(ModelSpec(ALIAS)).folder, snapshot)
    calls = []

    def fake_snapshot_download(repo_id, revision=None, allow_patterns=None):
        calls.append((repo_id, revision, tuple(allow_patterns)))
        return str(snapshot)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    model = load_model(ModelSpec("HuggingFaceTB/SmolLM2-135M-Instruct", revision="main"))
    assert calls and calls[0][:2] == ("HuggingFaceTB/SmolLM2-135M-Instruct", "main")
    assert "*.safetensors" in calls[0][2]
    assert model.info.source == f"hub:HuggingFaceTB/SmolLM2-135M-Instruct@{commit}"


def test_hub_id_offline_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(GlobalignError) as error:
        locate_model(ModelSpec("some-org/not-a-local-model"))
    message = str(error.value)
    assert "\n" not in message and "cannot fetch from the Hugging Face hub" in message


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(GlobalignError, match="no config.json"):
        locate_model(ModelSpec(str(tmp_path)))
