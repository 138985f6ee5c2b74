"""The report's intervention section: each mix next to its effect, every manifest text escaped, and a damaged
intervention.json refused in one line."""

from __future__ import annotations

import pytest

from globalign.errors import GlobalignError
from globalign.records import ComparisonRow
from globalign.report.intervention import intervention_section, read_intervention

ADAPTER = "out/<script>alert(1)</script>/adapters/multi"


def _manifest():
    return {
        "schema": "globalign.intervention", "base": {"name": "base-model"}, "split": {"seed": 221, "eval_fraction": 0.5},
        "arms": {"multi": {
            "adapter": ADAPTER, "mix": {"counts": {"tydiqa": {"sw": 3, "en": 2}}},
            "recipe": {"method": "sft", "lora_r": 16, "batch_size": 4, "grad_accum": 1},
            "training": {"steps": 5, "first_step_loss": 2.5, "final_loss": 1.25, "base_nll": 2.5,
                         "first_step_check": "ok", "tokens": 1000, "seconds": 12.0, "reused": False},
            "audit": {"non_english_share": {"agree": 0.6}},
        }},
    }


def test_each_language_shows_its_examples_and_its_paired_change():
    rows = [ComparisonRow("tydiqa", "sw", "f1", "base-model", ADAPTER, 0.125, 0.02, 0.23, 0.01, 0.02, "paired", 30),
            ComparisonRow("tydiqa", "en", "f1", "base-model", ADAPTER, -0.01, -0.09, 0.07, 0.7, 0.7, "paired", 30),
            ComparisonRow("tydiqa", "sw", "f1", "other", ADAPTER, 0.99, 0.98, 1.0, 0.0, 0.0, "paired", 30)]
    html = intervention_section(_manifest(), rows, 100.0, "points")  # f1 is a fraction, shown in points
    swahili = html[html.index(">Swahili<"):html.index(">English<")]
    assert "<td>3</td>" in swahili and "+12.5 [+2.0, +23.0]" in swahili and 'class="sig"' in swahili
    english = html[html.index(">English<"):]
    assert "<td>2</td>" in english and "-1.0" in english and 'class="ns"' in english
    assert "+99.0" not in html  # only base -> arm
    assert "loss 2.500 -&gt; 1.250" in html and "60.0% of the mix" in html


def test_manifest_text_is_escaped():
    html = intervention_section(_manifest(), [])
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_a_damaged_manifest_is_one_line(tmp_path):
    assert read_intervention(tmp_path) is None
    (tmp_path / "intervention.json").write_text("{not json", "utf-8")
    with pytest.raises(GlobalignError, match="not a readable intervention manifest"):
        read_intervention(tmp_path)
    (tmp_path / "intervention.json").write_text('{"schema": "other"}', "utf-8")
    with pytest.raises(GlobalignError, match="not a globalign intervention manifest"):
        read_intervention(tmp_path)
