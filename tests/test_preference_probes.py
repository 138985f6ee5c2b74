"""The country-preference probes on real packaged models: the LM probe's shared-prompt scores equal
naive full passes, the judge on a base model without a chat template, and both tasks end to end."""

from __future__ import annotations

import csv
import json

import pytest

from globalign.cli import main
from globalign.data.reward_probe import load_askreddit, load_where_from_countries
from globalign.models.resolve import ModelSpec, load_model
from globalign.requests import RewardRequest, ScoreRequest
from globalign.tasks.judge import JudgeReward

pytestmark = pytest.mark.slow


def test_lm_probe_shared_prompt_equals_naive(data_dir):
    """The AskReddit LM probe's ~140,000 candidates go through the shared-prompt path; on a few
    prompts (every 6th country) it must equal one full pass per candidate."""
    model = load_model(ModelSpec("smollm2-135m-instruct", batch_size=16))
    countries = load_where_from_countries(data_dir)[::6]
    questions = load_askreddit(data_dir)[:3]
    requests = [ScoreRequest(q.lm_prompt(), tuple(q.lm_candidate(c) for c in countries)) for q in questions]
    shared, naive = model.score(requests), model.score_naive(requests)
    worst = max(abs(a.nll_sum - b.nll_sum) / max(1, a.n_tokens)
                for ra, rb in zip(shared, naive) for a, b in zip(ra, rb))
    assert worst < 1e-4
    assert all(a.n_tokens == b.n_tokens for ra, rb in zip(shared, naive) for a, b in zip(ra, rb))
    model.close()


def test_judge_on_a_base_model_uses_a_plain_text_prompt():
    model = load_model(ModelSpec("gemma-3-270m"))
    judge = JudgeReward(model)
    request = judge.score_request(RewardRequest("Where are you from?", "I am from France."))
    assert not judge.uses_chat_template and judge.info.details["judge_prompt"] == "plain text"
    assert not request.prompt.is_chat and request.prompt.text.endswith("Answer Yes or No.\nAnswer:")
    assert request.continuations == (" Yes", " No")
    yes, no = model.score_naive([request])[0]
    assert judge.reward([RewardRequest("Where are you from?", "I am from France.")]) == pytest.approx(
        [no.nll_sum - yes.nll_sum], abs=1e-4)
    model.close()


def test_probe_tasks_end_to_end(private_cache, data_dir, tmp_path):
    out = tmp_path / "run"
    config = tmp_path / "probes.yaml"
    config.write_text(f"models: [smollm2-135m-instruct]\ndata_dir: {data_dir}\noutput: {out}\n"
                      "stats: {n_boot: 200, n_perm: 200}\n"
                      "tasks:\n  - {name: askreddit, limit: 3}\n"
                      "  - {name: where_from, scorer: judge, countries: gallup}\n")
    assert main(["run", str(config), "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tasks"]["askreddit"]["n_countries"] == 254
    assert manifest["tasks"]["where_from"]["scorer"] == "judge" and manifest["tasks"]["where_from"]["n_countries"] == 24
    metrics = list(csv.DictReader((out / "metrics.csv").open()))
    ranks = [r for r in metrics if r["task"] == "askreddit" and r["metric"] == "mean_rank"]
    assert len(ranks) == 181 and all(int(r["n"]) == 3 for r in ranks)
    rewards = [r for r in metrics if r["task"] == "where_from" and r["metric"] == "reward"]
    assert len(rewards) == 24  # the 2017 and 2023 lists (23 countries) and the USA
    gallup = [r for r in csv.DictReader((out / "comparisons.csv").open()) if r["metric"] == "spearman_mean_rank"]
    assert {r["group"] for r in gallup} == {"gallup_2017", "gallup_2023"}
    rows = [json.loads(line) for line in (out / "samples.jsonl").open()]
    assert sum(r["task"] == "askreddit" for r in rows) == 3 and sum(r["task"] == "where_from" for r in rows) == 1
