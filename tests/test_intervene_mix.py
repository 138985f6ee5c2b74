"""Held-out split and fine-tuning mixes (globalign.intervene.split / sources / mix): the article split
is deterministic and holds out its fraction; no training example shares a passage or an article with
an evaluation item on the real data; shares round to the mix size; shortages and bad rows are clear
errors; user files are read through audit-data's formats; the tydiqa task without a split is unchanged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from globalign.audit.formats import detect_format, to_record
from globalign.data.tydiqa import LANGUAGES, QAItem, load_tydiqa
from globalign.errors import ConfigError, DataError, UnknownNameError
from globalign.intervene.mix import MixEntry, MixSpec, build_mix, largest_remainder, write_mix
from globalign.intervene.sources import file_examples, tydiqa_prompt, wrong_span
from globalign.intervene.split import ArticleSplit, passage_hash, passages_sha256, split_items
from globalign.tasks.base import TaskSettings
from globalign.tasks.tydiqa import INSTRUCTION, TyDiQATask, build_prompt

SPLIT = ArticleSplit(221, 0.5)
# The default task's (question, demonstration, prompt) list on the real data, computed with the code
# before the split options existed (commit b4743d0): the options must not change a default run.
DEFAULT_TASK_SHA256 = "7570d8f55ade0ea8ad3fbfdf9e281bb1364602c389be3798681399aae7cdf422"


@pytest.fixture(scope="module")
def dev(data_dir) -> tuple[QAItem, ...]:
    return load_tydiqa(data_dir).dev


def _article(item: QAItem) -> tuple[str, str]:
    return item.language, item.title or item.context


def _fingerprint(task: TyDiQATask) -> str:
    lines = [f"{i.item_id} {task.demos[i.item_id].item_id} "
             f"{hashlib.sha256(build_prompt(i, task.demos[i.item_id]).raw.encode()).hexdigest()}" for i in task.items]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


# --------------------------------------------------------------------------------------------- split
def test_split_is_a_deterministic_function_of_seed_and_article(dev):
    sides = [SPLIT.side(q) for q in dev]
    assert sides == [ArticleSplit(221, 0.5).side(q) for q in dev]
    assert sides != [ArticleSplit(222, 0.5).side(q) for q in dev]
    by_article: dict[tuple[str, str], set[str]] = {}
    for item, side in zip(dev, sides):
        by_article.setdefault(_article(item), set()).add(side)
    assert all(len(s) == 1 for s in by_article.values())  # every question of an article on one side
    assert SPLIT.to_json() == {"by": "article", "seed": 221, "eval_fraction": 0.5}


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
def test_split_holds_out_its_fraction_of_articles(dev, fraction):
    split = ArticleSplit(7, fraction)
    articles = {_article(q): split.side(q) for q in dev}
    held_out = sum(side == "eval" for side in articles.values()) / len(articles)
    assert len(articles) > 4000 and abs(held_out - fraction) < 0.03


@pytest.mark.parametrize("seed, fraction", [(221, 0.0), (221, 1.0), (221, True), (221, "half"), ("x", 0.5)])
def test_split_rejects_bad_settings(seed, fraction):
    with pytest.raises(ConfigError, match="split"):
        ArticleSplit(seed, fraction)


def test_a_passage_under_two_articles_never_trains_when_one_is_held_out():
    items = [QAItem(f"english-{t}", "en", t, "One shared passage.", "q?", ("a",)) for t in ("A", "B", "C")]
    seed = next(s for s in range(100) if len({ArticleSplit(s).side(q) for q in items}) == 2)
    train, held_out = split_items(items, ArticleSplit(seed))
    assert held_out and not train  # the train-side article's copy of the passage is dropped
    assert passage_hash("One shared passage.") == hashlib.sha256(b"One shared passage.").hexdigest()


# ----------------------------------------------------------------------------------------- leakage
@pytest.mark.parametrize("source", ["tydiqa", "tydiqa_preference"])
def test_no_training_example_shares_a_passage_or_article_with_an_evaluation_item(data_dir, dev, source):
    mix = build_mix(MixSpec((MixEntry(source, 1.0, ("all",)),), 108, 221), data_dir, SPLIT)
    assert mix.counts == {source: dict.fromkeys(LANGUAGES, 12)}
    task = TyDiQATask(TaskSettings(data_dir=data_dir, options={"split": "eval"}))
    shown = [*task.items, *task.demos.values()]  # a demonstration's passage is in the prompt too
    eval_passages = {passage_hash(q.context) for q in shown}
    eval_articles = {_article(q) for q in shown}
    trained = {q.item_id: q for q in dev}
    train_ids = [e.example_id.split(":", 1)[1] for e in mix.examples]
    assert {e.passage_hash for e in mix.examples} == {passage_hash(trained[i].context) for i in train_ids}
    assert not {e.passage_hash for e in mix.examples} & eval_passages
    assert not {_article(trained[i]) for i in train_ids} & eval_articles
    assert len(task.items) == sum(SPLIT.side(q) == "eval" for q in dev) == 2490
    manifest = task.manifest()
    assert manifest["split"] == {"by": "article", "seed": 221, "eval_fraction": 0.5, "side": "eval"}
    assert manifest["passages_sha256"] == passages_sha256(task.items)
    assert mix.to_json()["passage_hashes"] == sorted({e.passage_hash for e in mix.examples})


def test_task_sides_partition_the_questions_and_keep_demonstrations_on_their_side(data_dir, dev):
    options = {"split_seed": 5, "split_eval_fraction": 0.3, "max_context_chars": 700}
    held_out = TyDiQATask(TaskSettings(data_dir=data_dir, options={**options, "split": "eval"}))
    train = TyDiQATask(TaskSettings(data_dir=data_dir, options={**options, "split": "train"}))
    split = ArticleSplit(5, 0.3)
    short = [q for q in dev if len(q.context) <= 700]
    assert {q.item_id for q in held_out.items} == {q.item_id for q in short if split.side(q) == "eval"}
    assert {q.item_id for q in held_out.items} | {q.item_id for q in train.items} == {q.item_id for q in short}
    for task, side in ((held_out, "eval"), (train, "train")):
        assert {split.side(d) for d in task.demos.values()} == {side}
    assert held_out.manifest()["split"]["eval_fraction"] == 0.3


def test_the_task_without_a_split_is_unchanged(data_dir):
    default = TyDiQATask(TaskSettings(data_dir=data_dir))
    explicit = TyDiQATask(TaskSettings(data_dir=data_dir, options={"split": "all", "split_seed": 9}))
    assert _fingerprint(default) == _fingerprint(explicit) == DEFAULT_TASK_SHA256
    assert "split" not in default.manifest() and default.manifest() == explicit.manifest()


@pytest.mark.parametrize("options, message", [({"split": "heldout"}, "split must be one of all, eval, train"),
                                              ({"split": "eval", "split_eval_fraction": 1}, "eval_fraction"),
                                              ({"split_seed": "abc"}, "seed must be a whole number")])
def test_task_split_options_are_checked(data_dir, options, message):
    with pytest.raises(ConfigError, match=message):
        TyDiQATask(TaskSettings(data_dir=data_dir, options=options))


# -------------------------------------------------------------------------------------------- mixes
def test_largest_remainder_sums_to_the_total():
    assert largest_remainder(100, [0.29, 0.71]) == [29, 71]  # 0.29 * 100 is 28.999...
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]  # ties go to the earlier weight
    assert largest_remainder(7, [0.5, 0.25, 0.25]) == [3, 2, 2]  # 3.5, 1.75, 1.75: the .75s win
    assert sum(largest_remainder(108, [1.0] * 9)) == 108


def test_shares_round_to_the_size_and_no_example_is_drawn_twice(data_dir):
    spec = MixSpec((MixEntry("tydiqa", 0.3, ("english",)), MixEntry("tydiqa", 0.7, ("all",))), 100, 3)
    mix = build_mix(spec, data_dir, SPLIT)
    assert len(mix.examples) == 100 and len({e.example_id for e in mix.examples}) == 100
    # 70 over 9 languages: 7 each, and the 7 left to the first 7 listed (ar ... ru)
    assert mix.counts["tydiqa"] == {"ar": 8, "bn": 8, "en": 30 + 8, "fi": 8, "id": 8, "ko": 8, "ru": 8, "sw": 7,
                                    "te": 7}
    assert spec.entries[1].languages == tuple(LANGUAGES)
    again = build_mix(spec, data_dir, SPLIT)
    assert again.sha256 == mix.sha256 and again.examples == mix.examples
    assert build_mix(MixSpec(spec.entries, 100, 4), data_dir, SPLIT).sha256 != mix.sha256
    assert [e.language for e in mix.examples[:9]] != sorted(e.language for e in mix.examples[:9])  # shuffled


def test_bad_mix_specs_are_config_errors():
    with pytest.raises(ConfigError, match=r"mix shares must sum to 1, got 0.5 \+ 0.4 = 0.9"):
        MixSpec((MixEntry("tydiqa", 0.5), MixEntry("tydiqa", 0.4)), 10, 1)
    with pytest.raises(ConfigError, match="mix size must be a positive whole number"):
        MixSpec((MixEntry("tydiqa", 1.0),), 0, 1)
    with pytest.raises(UnknownNameError, match="mix entry 'tydiqa': unknown TyDi QA language 'sv'"):
        MixEntry("tydiqa", 1.0, ("sv",))
    with pytest.raises(ConfigError, match="listed twice"):
        MixEntry("tydiqa", 1.0, ("en", "english"))


@pytest.mark.parametrize("kwargs, message", [({"source": "tydiqa", "share": 0}, "share must be a number above 0"),
                                             ({"source": "file", "share": 1.0}, "needs a path"),
                                             ({"source": "tydiqa", "share": 1.0, "path": "x.jsonl"}, "'file' only"),
                                             ({"source": "file", "share": 1.0, "path": "x", "languages": ("en",)},
                                              "TyDi QA sources only")])
def test_bad_mix_entries_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        MixEntry(**kwargs)
    with pytest.raises(UnknownNameError, match="did you mean 'tydiqa'"):
        MixEntry("tydiqa_sft", 1.0)


def test_not_enough_examples_names_source_language_and_counts(data_dir, dev):
    available = sum(1 for q in split_items(dev, SPLIT)[0] if q.language == "bn" and len(q.context) <= 300)
    spec = MixSpec((MixEntry("tydiqa", 0.5, ("bn",), max_context_chars=300), MixEntry("tydiqa", 0.5, ("en",))),
                   2 * (available + 1), 1)
    with pytest.raises(DataError, match=rf"mix entry 1 \(tydiqa, language bn\): {available} examples on the train "
                                        rf"side .*seed 221.*at most 300 characters\), {available + 1} needed"):
        build_mix(spec, data_dir, SPLIT)


def test_preference_pairs_reject_a_wrong_span_of_the_same_passage(data_dir):
    mix = build_mix(MixSpec((MixEntry("tydiqa_preference", 1.0, ("all",), max_context_chars=700),), 90, 2),
                    data_dir, SPLIT)
    questions = {q.item_id: q for q in load_tydiqa(data_dir).dev}
    for example in mix.examples:
        item = questions[example.example_id.split(":", 1)[1]]
        wrong = example.rejected.strip()
        assert example.kind == "preference" and example.prompt == tydiqa_prompt(item)
        assert example.chosen == f" {item.answers[0]}\n\n" and example.rejected == f" {wrong}\n\n"
        assert wrong in item.context and wrong not in item.answers
        assert not any(wrong in gold or gold in wrong for gold in item.answers)
        assert abs(len(wrong.split()) - len(item.answers[0].split())) <= 1
    assert tydiqa_prompt(item).startswith(INSTRUCTION) and tydiqa_prompt(item).endswith("\nExtracted Answer:")


def test_wrong_span_skips_a_passage_that_is_all_answer():
    import random

    assert wrong_span("Nairobi", ("Nairobi",), random.Random(0)) is None
    assert wrong_span("Nairobi, Kenya.", ("Nairobi",), random.Random(0)) == "Kenya"  # punctuation stripped


def test_sft_mix_writes_files_audit_data_reads(data_dir, tmp_path):
    mix = build_mix(MixSpec((MixEntry("tydiqa", 1.0, ("sw", "fi")),), 6, 1), data_dir, SPLIT)
    paths = write_mix(mix, tmp_path / "arm")
    assert hashlib.sha256(paths["mix"].read_bytes()).hexdigest() == mix.sha256
    rows = [json.loads(line) for line in paths["mix"].read_text(encoding="utf-8").splitlines()]
    assert [r["example_id"] for r in rows] == [e.example_id for e in mix.examples]
    assert all(r["completion"].endswith("\n\n") and r["passage_hash"] for r in rows)
    chat = [json.loads(line) for line in paths["chat"].read_text(encoding="utf-8").splitlines()]
    assert detect_format(chat[0], "row 1") == "messages"
    record = to_record(chat[0], "row 1", "messages")
    assert [m.role for m in record.messages] == ["user", "assistant"]
    assert dict(record.metadata)["language"] == mix.examples[0].language
    assert sorted(p.name for p in paths["mix"].parent.iterdir()) == ["mix.jsonl", "mix_chat.jsonl"]  # no temp left


# ------------------------------------------------------------------------------------- user files
def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_file_source_reads_chat_rows_through_audit_formats(tmp_path):
    path = _jsonl(tmp_path / "chat.jsonl", [
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Capital of Kenya?"},
                      {"role": "assistant", "content": "Nairobi"}]},
        {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}], "language": "en"},
    ])
    examples = file_examples(path)
    assert [(e.example_id, e.prompt, e.completion, e.language, e.kind) for e in examples] == [
        ("file:chat.jsonl:1", "Capital of Kenya?", "Nairobi", None, "sft"),
        ("file:chat.jsonl:2", "2+2?", "4", None, "sft")]
    sharegpt = _jsonl(tmp_path / "sharegpt.jsonl", [{"conversations": [{"from": "human", "value": "Q"},
                                                                      {"from": "gpt", "value": "A"}]}])
    assert [(e.prompt, e.completion) for e in file_examples(sharegpt)] == [("Q", "A")]
    parquet = tmp_path / "alpaca.parquet"
    pq.write_table(pa.table({"instruction": ["Name a river."], "output": ["The Nile"]}), parquet)
    assert [(e.prompt, e.completion) for e in file_examples(parquet)] == [("Name a river.", "The Nile")]


def test_file_source_reads_preference_rows_and_a_mix_of_them(tmp_path, data_dir):
    path = _jsonl(tmp_path / "pairs.jsonl", [
        {"prompt": "Capital of Kenya?", "chosen": "Nairobi", "rejected": "Mombasa"},
        {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."},
        {"prompt": [{"role": "user", "content": "2+2?"}], "chosen": [{"role": "assistant", "content": "4"}],
         "rejected": [{"role": "assistant", "content": "5"}]},
    ])
    assert [(e.prompt, e.chosen, e.rejected, e.kind) for e in file_examples(path)] == [
        ("Capital of Kenya?", "Nairobi", "Mombasa", "preference"), ("Hi", "Hello!", "Go away.", "preference"),
        ("2+2?", "4", "5", "preference")]
    mix = build_mix(MixSpec((MixEntry("file", 0.5, path=str(path)), MixEntry("tydiqa_preference", 0.5, ("en",))),
                            4, 1), data_dir, SPLIT)
    assert mix.counts == {"file": {"?": 2}, "tydiqa_preference": {"en": 2}}
    chat = write_mix(mix, tmp_path / "arm")["chat"]
    first = json.loads(chat.read_text(encoding="utf-8").splitlines()[0])
    assert detect_format(first, "row 1") == "preference"
    with pytest.raises(DataError, match=r"pairs.jsonl\): the file has 3 usable rows, .* needs 4"):
        build_mix(MixSpec((MixEntry("file", 1.0, path=str(path)),), 4, 1), data_dir, SPLIT)


def test_a_mix_of_sft_examples_and_preference_pairs_is_refused(data_dir):
    spec = MixSpec((MixEntry("tydiqa", 0.5, ("en",)), MixEntry("tydiqa_preference", 0.5, ("en",))), 4, 1)
    with pytest.raises(ConfigError, match=r"SFT examples \(tydiqa\) and preference pairs \(tydiqa_preference\)"):
        build_mix(spec, data_dir, SPLIT)


@pytest.mark.parametrize("rows, message", [
    ([{"messages": [{"role": "user", "content": "Q"}]}], "bad.jsonl: line 1: needs a user turn followed by an assistant"),
    ([{"prompt": "Q", "response": "A"}, {"prompt": "Q2"}], r"bad.jsonl: line 2: missing field"),
    ([{"text": "no format"}], r"bad.jsonl: line 1: unknown record format"),
    ([{"prompt": "Q", "chosen": [{"role": "user", "content": "again"}], "rejected": "No"}],
     r"bad.jsonl: line 1: preference row without an assistant turn in 'chosen'"),
])
def test_file_rows_that_cannot_train_name_the_file_and_row(tmp_path, rows, message):
    with pytest.raises(DataError, match=message):
        file_examples(_jsonl(tmp_path / "bad.jsonl", rows))
    with pytest.raises(DataError, match="not found"):
        file_examples(tmp_path / "missing.jsonl")
