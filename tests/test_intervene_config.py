"""`globalign intervene`'s config: what it accepts, every refusal in one line, and the dry-run plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from globalign.cli import main
from globalign.errors import ConfigError
from globalign.intervene.config import load_intervention, parse_intervention
from globalign.intervene.plan import dry_run

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "examples" / "intervention_tiny.yaml"
LANGUAGES = ROOT / "examples" / "intervention_languages.yaml"
DATA = ROOT.parent / "shared" / "data"


def _raw(**changes):
    raw = {
        "base": "smollm2-135m-instruct", "output": "out/x", "data_dir": str(DATA),
        "arms": {"en": {"size": 4, "mix": [{"source": "tydiqa", "languages": ["en"], "share": 1.0}]}},
        "evaluation": {"tasks": [{"name": "tydiqa", "limit": 4}]},
    }
    raw.update(changes)
    return raw


def test_the_presets_parse_and_evaluate_tydiqa_on_the_held_out_side():
    for path in (TINY, LANGUAGES, ROOT / "examples" / "intervention_languages_7b.yaml"):
        config = load_intervention(path, {"data_dir": str(DATA)})
        run = config.eval_config()
        tydiqa = next(t for t in run.tasks if t.name == "tydiqa")
        assert tydiqa.options["split"] == "eval"
        assert tydiqa.options["split_seed"] == config.split.seed
        # base vs every arm, and arm vs arm
        assert len(run.comparisons()) == len(config.arms) + len(config.arms) * (len(config.arms) - 1) // 2
        assert [f.name for f in run.model_families()] == [a.name for a in config.arms]


def test_arm_recipes_override_the_config_recipe():
    raw = _raw(recipe={"lora_r": 4, "max_steps": 3},
               arms={"a": {"size": 2, "recipe": {"lora_r": 2}, "mix": [{"source": "tydiqa", "share": 1}]},
                     "b": {"size": 2, "mix": [{"source": "tydiqa", "share": 1}]}})
    config = parse_intervention(raw, "cfg")
    assert [a.recipe.lora_r for a in config.arms] == [2, 4]
    assert all(a.recipe.max_steps == 3 for a in config.arms)


@pytest.mark.parametrize(("change", "message"), [
    ({"arms": {"en": {"size": 4, "mix": [{"source": "tydiqa", "share": 0.6}]}}}, "shares must sum to 1"),
    ({"arms": {"en": {"size": 4, "mix": [{"source": "wiki", "share": 1.0}]}}}, "must be one of tydiqa"),
    ({"arms": {"base": {"size": 4, "mix": [{"source": "tydiqa", "share": 1.0}]}}}, "not 'base'"),
    ({"arms": {"en": {"size": 0, "mix": [{"source": "tydiqa", "share": 1.0}]}}}, "size: must be a whole number"),
    ({"arms": {"en": {"size": 4, "mix": [{"source": "tydiqa", "languages": ["xx"], "share": 1.0}]}}},
     "unknown TyDi QA language 'xx'"),
    ({"arms": {"en": {"size": 4, "recipe": {"method": "dpo"}, "mix": [{"source": "tydiqa", "share": 1.0}]}}},
     "method dpo trains on preference examples"),
    ({"arms": {"en": {"size": 4, "mix": [{"source": "file", "share": 1.0, "path": "nowhere.jsonl"}]}}},
     "no such file"),
    ({"recipe": {"lora_rank": 8}}, "recipe.lora_rank: unknown field"),
    ({"recipe": {"learning_rate": -1}}, "recipe.learning_rate: must be a number > 0"),
    ({"split": {"eval_fraction": 1.5}}, "split.eval_fraction"),
    ({"evaluation": {"tasks": [{"name": "tydiqa", "split": "train"}]}}, "split must be eval"),
    ({"evaluation": {"tasks": ["tydiqa"], "models": ["x"]}}, "evaluation.models: unknown field"),
    ({"evaluation": {}}, "evaluation.tasks"),
    ({"base": None}, "give the base model"),
    ({"surprise": 1}, "surprise: unknown field"),
])
def test_bad_configs_are_one_line_errors(change, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_intervention(_raw(**change), "cfg.yaml")
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("cfg.yaml")


def test_a_file_source_path_is_relative_to_the_config(tmp_path):
    (tmp_path / "mine.jsonl").write_text('{"prompt": "hi", "response": "hello"}\n', "utf-8")
    raw = _raw(arms={"mine": {"size": 1, "mix": [{"source": "file", "path": "mine.jsonl", "share": 1.0}]}})
    config = parse_intervention(raw, "cfg", tmp_path)
    assert config.arms[0].mix.entries[0].path == str(tmp_path / "mine.jsonl")


def test_dry_run_prints_examples_per_language_steps_and_the_evaluation(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["intervene", str(TINY), "--data-dir", str(DATA), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "arm english: 8 examples" in out
    assert "arm multilingual: 9 examples" in out
    assert "(ar 1, bn 1, en 1, fi 1, id 1, ko 1, ru 1, sw 1, te 1)" in out
    assert "2 steps of 4x1" in out
    assert "Evaluation (base and every arm" in out and "tydiqa" in out
    assert list(tmp_path.iterdir()) == []  # a plan writes nothing


def test_dry_run_counts_tokens_and_drops_long_examples():
    config = parse_intervention(_raw(recipe={"max_length": 10, "max_steps": 1}), "cfg")
    lines = dry_run(config, count=lambda text: len(text.split()))
    assert any("4 longer than max_length 10 dropped" in line for line in lines)


def test_an_output_folder_of_something_else_is_refused(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", "utf-8")
    assert main(["intervene", str(TINY), "--data-dir", str(DATA), "--output", str(out)]) == 2
    assert "not a globalign intervention" in capsys.readouterr().err
    assert (out / "notes.txt").read_text("utf-8") == "keep me"
