"""The report's item browser (report/items.py): the items whose score changed, their score, and the prompt
column, which shows what the samples keep of the prompt (md3: the transcript's end, TyDi QA: the question)."""

from __future__ import annotations

from pathlib import Path

from globalign.data.md3 import WordGameItem
from globalign.data.tydiqa import QAItem
from globalign.families import Comparison
from globalign.records import TaskDeclaration
from globalign.report.html import _item_browser
from globalign.report.inputs import TaskData
from globalign.report.items import TEXT_CHARS, flips
from globalign.tasks.declarations import declaration
from globalign.tasks.md3 import TRANSCRIPT_CHARS, records_for_item
from globalign.tasks.tydiqa import make_record

PAIR = Comparison("run", "base", "aligned", "base", "aligned", "step")
PAYLOAD = "<script>document.title='PWNED'</script>"


def _task(name: str, records) -> TaskData:
    return TaskData(TaskDeclaration.from_json(declaration(name)), [], [], list(records), (Path("run"),))


def test_md3_rows_show_the_end_of_the_transcript_and_escape_it_and_the_answers():
    transcript = "Speaker0: " + "it is a season " * 60 + f"flowers bloom{PAYLOAD}"
    item = WordGameItem("7", "en_in", transcript, "Spring", ("Summer", "Winter", "Autumn", "Rain", "Sun"))
    base = records_for_item(item, "base", "prompt", "Summer", ("Spring", *item.distractors), 0, None)
    aligned = records_for_item(item, "aligned", "prompt", f"Spring{PAYLOAD}", ("Spring", *item.distractors), 0, None)
    (flip,) = flips(_task("md3", [base, aligned]), [PAIR])
    assert (flip.score_a, flip.score_b) == (0.0, 1.0)
    assert flip.prompt.startswith("…") and flip.prompt.endswith(f"flowers bloom{PAYLOAD}")
    assert len(flip.prompt) == TRANSCRIPT_CHARS <= TEXT_CHARS  # the item browser shows it whole
    html = _item_browser([flip])
    assert "flowers bloom&lt;script&gt;" in html and "Spring&lt;script&gt;" in html and "<script>" not in html


def test_a_short_md3_transcript_is_kept_whole():
    item = WordGameItem("8", "en_us", "Speaker0: it falls from clouds", "Rain", ("Snow",))
    assert records_for_item(item, "m", "", "Rain", ("Rain", "Snow"), 0, None).extra["transcript"] == item.transcript


def test_tydiqa_rows_show_the_question():
    item = QAItem("sw-1", "sw", "Nairobi", "Nairobi ni mji mkuu wa Kenya.", "Mji mkuu wa Kenya ni upi?", ("Nairobi",))
    records = [make_record(item, "base", "prompt", "Kenya", "sw-2"), make_record(item, "aligned", "p", "Nairobi", "sw-2")]
    (flip,) = flips(_task("tydiqa", records), [PAIR])
    assert flip.prompt == "Mji mkuu wa Kenya ni upi?" and flip.gold == "Nairobi"
    assert (flip.answer_a, flip.answer_b, flip.score_a, flip.score_b) == ("Kenya", "Nairobi", 0.0, 1.0)
