"""Record formats: each common SFT and preference layout is detected and read into the right turns,
roles and sides; `--fields` names the rest; a wrong row fails in one line that says where."""

from __future__ import annotations

import pytest

from globalign.audit.formats import (
    METADATA_VALUE_CHARS,
    FieldNames,
    detect_format,
    parse_field_flag,
    to_record,
)
from globalign.audit.records import Message
from globalign.errors import ConfigError, DataError

WHERE = "data/train.jsonl: line 7"
DEFAULT_NAMES = FieldNames()


def read(row: dict, names: FieldNames = DEFAULT_NAMES) -> tuple[str, tuple[Message, ...]]:
    fmt = detect_format(row, WHERE, names)
    return fmt, to_record(row, WHERE, fmt, names).messages


# --- SFT -------------------------------------------------------------------------------------------


def test_tulu_v2_sft_rows_are_messages_with_the_dataset_as_metadata():
    row = {"dataset": "flan_v2", "id": "flan_v2_1234", "messages": [
        {"role": "user", "content": "Translate to French: good morning"},
        {"role": "assistant", "content": "Bonjour"},
        {"role": "user", "content": "And good night?"},
        {"role": "assistant", "content": "Bonne nuit"},
    ]}
    assert detect_format(row, WHERE) == "messages"
    record = to_record(row, WHERE, "messages")
    assert record.locator == WHERE
    assert [(m.role, m.text, m.side) for m in record.messages] == [
        ("user", "Translate to French: good morning", ""), ("assistant", "Bonjour", ""),
        ("user", "And good night?", ""), ("assistant", "Bonne nuit", ""),
    ]
    assert record.metadata == (("dataset", "flan_v2"),)


def test_ultrachat_rows_read_their_messages_once_not_the_prompt_copy():
    row = {"prompt": "How do bees fly?", "prompt_id": "9f8e", "messages": [
        {"content": "How do bees fly?", "role": "user"}, {"content": "With four wings.", "role": "assistant"}]}
    assert read(row) == ("messages", (Message("How do bees fly?", "user"), Message("With four wings.", "assistant")))
    assert to_record(row, WHERE, "messages").metadata == ()


def test_sharegpt_conversations_map_human_and_gpt_and_a_system_turn():
    row = {"id": "QWJhYvA_0", "conversations": [
        {"from": "system", "value": "You are helpful."},
        {"from": "human", "value": "Habari?"},
        {"from": "gpt", "value": "Nzuri sana."},
    ]}
    assert read(row) == ("sharegpt", (Message("You are helpful.", "system"), Message("Habari?", "user"),
                                      Message("Nzuri sana.", "assistant")))


def test_alpaca_instruction_and_input_make_one_user_turn():
    row = {"instruction": "Summarise the text.", "input": "A long text.", "output": "Short."}
    assert read(row) == ("prompt_response", (Message("Summarise the text.\n\nA long text.", "user"),
                                             Message("Short.", "assistant")))
    assert read({"instruction": "Name a colour.", "input": "", "output": "Blue."})[1] == (
        Message("Name a colour.", "user"), Message("Blue.", "assistant"))


@pytest.mark.parametrize(("row", "user", "assistant"), [
    ({"prompt": "p", "response": "r"}, "p", "r"),
    ({"question": "q", "answer": "a"}, "q", "a"),
    ({"query": "q", "response": "r"}, "q", "r"),
    ({"instruction": "i", "context": "c", "response": "r", "category": "closed_qa"}, "i\n\nc", "r"),  # Dolly
])
def test_prompt_response_field_pairs(row, user, assistant):
    assert read(row) == ("prompt_response", (Message(user, "user"), Message(assistant, "assistant")))


def test_openorca_system_prompt_becomes_a_system_turn():
    row = {"id": "niv.242684", "system_prompt": "You are an AI assistant.", "question": "Q?", "response": "A."}
    assert read(row)[1] == (Message("You are an AI assistant.", "system"), Message("Q?", "user"),
                            Message("A.", "assistant"))


def test_multimodal_content_parts_join_their_text_and_empty_turns_are_skipped():
    row = {"messages": [
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url", "image_url": {"url": "x.png"}},
                                     {"type": "text", "text": "Be brief."}]},
        {"role": "assistant", "content": None},
        {"role": "assistant", "content": "   "},
        {"role": "Assistant", "content": "A cat."},
    ]}
    assert read(row)[1] == (Message("What is this?\nBe brief.", "user"), Message("A cat.", "assistant"))


def test_messages_stored_as_json_text_in_a_csv_cell_are_decoded():
    row = {"messages": '[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]'}
    assert read(row) == ("messages", (Message("hi", "user"), Message("hello", "assistant")))


# --- preference ------------------------------------------------------------------------------------


def test_hh_rlhf_transcripts_share_their_history_under_prompt():
    history = "\n\nHuman: What is the capital of Peru?\n\nAssistant: Lima.\n\nHuman: And of Chile?"
    row = {"chosen": history + "\n\nAssistant: Santiago.", "rejected": history + "\n\nAssistant: Lima again."}
    fmt, messages = read(row)
    assert fmt == "preference"
    assert [(m.side, m.role, m.text) for m in messages] == [
        ("prompt", "user", "What is the capital of Peru?"), ("prompt", "assistant", "Lima."),
        ("prompt", "user", "And of Chile?"),
        ("chosen", "assistant", "Santiago."), ("rejected", "assistant", "Lima again."),
    ]


def test_ultrafeedback_binarized_does_not_count_the_repeated_prompt_twice():
    prompt = "Write a haiku about rain."
    row = {
        "prompt": prompt, "prompt_id": "abc123",
        "chosen": [{"role": "user", "content": prompt}, {"role": "assistant", "content": "Soft rain on the roof"}],
        "rejected": [{"role": "user", "content": prompt}, {"role": "assistant", "content": "Rain is wet."}],
        "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": "Soft rain on the roof"}],
        "score_chosen": 8.5, "score_rejected": 4.0,
    }
    assert read(row) == ("preference", (
        Message(prompt, "user", "prompt"),
        Message("Soft rain on the roof", "assistant", "chosen"),
        Message("Rain is wet.", "assistant", "rejected"),
    ))


def test_a_prompt_chosen_rejected_string_triple():
    row = {"prompt": "Say hi in Hindi.", "chosen": "नमस्ते", "rejected": "Hello"}
    assert read(row) == ("preference", (Message("Say hi in Hindi.", "user", "prompt"),
                                        Message("नमस्ते", "assistant", "chosen"),
                                        Message("Hello", "assistant", "rejected")))


def test_conversational_prompt_list_and_an_hh_style_prompt_string():
    row = {"prompt": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "2+2?"}],
           "chosen": [{"role": "assistant", "content": "4"}], "rejected": [{"role": "assistant", "content": "5"}]}
    assert read(row)[1] == (Message("Be terse.", "system", "prompt"), Message("2+2?", "user", "prompt"),
                            Message("4", "assistant", "chosen"), Message("5", "assistant", "rejected"))
    row = {"prompt": "\n\nHuman: Hi there\n\nAssistant:", "chosen": " Hello!", "rejected": " Go away."}
    assert read(row)[1] == (Message("Hi there", "user", "prompt"), Message(" Hello!", "assistant", "chosen"),
                            Message(" Go away.", "assistant", "rejected"))


# --- --fields --------------------------------------------------------------------------------------


def test_field_flag_parses_format_fields_and_roles():
    names = parse_field_flag("format=preference, prompt=instruction,chosen=good,rejected=bad,role:Tool=skip")
    assert names == FieldNames("preference", (("prompt", "instruction"), ("chosen", "good"), ("rejected", "bad"),
                                              ("role:tool", "skip")))


@pytest.mark.parametrize(("flag", "message"), [
    ("", r"--fields: empty"),
    ("prompt", r"--fields: 'prompt' is not key=FIELD"),
    ("prompt=", r"--fields: 'prompt=' is not key=FIELD"),
    ("promt=question", r"unknown --fields key 'promt'; did you mean 'prompt'\?"),
    ("format=prefs", r"unknown record format 'prefs'; did you mean 'preference'\?"),
    ("prompt=a,prompt=b", r"--fields: 'prompt' given twice"),
    ("role:tool=robot", r"expected role:NAME=user, assistant, system or skip"),
])
def test_field_flag_errors(flag, message):
    with pytest.raises(ConfigError, match=message):
        parse_field_flag(flag)


def test_named_fields_read_a_layout_the_defaults_miss():
    row = {"title": "Q1", "body": "Why is the sky blue?", "best_answer": "Rayleigh scattering."}
    with pytest.raises(DataError, match=r"unknown record format \(fields: title, body, best_answer\); name the fields"):
        detect_format(row, WHERE)
    names = parse_field_flag("prompt=body,response=best_answer")
    assert read(row, names) == ("prompt_response", (Message("Why is the sky blue?", "user"),
                                                    Message("Rayleigh scattering.", "assistant")))
    row = {"dialog": [{"speaker": "narrator", "utterance": "Once..."}, {"speaker": "user", "utterance": "Hi"}]}
    names = parse_field_flag("format=messages,messages=dialog,role=speaker,content=utterance,role:narrator=skip")
    assert read(row, names)[1] == (Message("Hi", "user"),)


def test_preference_with_named_fields():
    row = {"instruction": "Pick one.", "good": "This one.", "bad": "No."}
    names = parse_field_flag("format=preference,prompt=instruction,chosen=good,rejected=bad")
    assert read(row, names)[1] == (Message("Pick one.", "user", "prompt"), Message("This one.", "assistant", "chosen"),
                                   Message("No.", "assistant", "rejected"))


# --- errors on later rows --------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "row", "message"), [
    ("messages", {"text": "hi"}, r"line 7: missing field messages \(looked for messages, .*fields: text\)"),
    ("messages", {"messages": "hello"}, r"line 7: messages: expected a list of messages, got text"),
    ("messages", {"messages": [{"role": "user", "content": 42}]}, r"line 7: messages\[0\]\.content: expected text, got a number"),
    ("messages", {"messages": ["hi"]}, r"line 7: messages\[0\]: expected a message object, got text"),
    ("messages", {"messages": [{"role": "user"}]}, r"line 7: messages\[0\]: no content field"),
    ("messages", {"messages": [{"role": "tool", "content": "{}"}]},
     r"line 7: messages\[0\]: unknown role 'tool' .*--fields role:tool=user\|assistant\|system\|skip"),
    ("sharegpt", {"conversations": [{"from": "human"}, {"value": "x"}]}, r"conversations\[0\]: no content field"),
    ("prompt_response", {"instruction": "x"}, r"line 7: missing field a response \(response, output"),
    ("prompt_response", {"prompt": ["a", 1], "response": "r"}, r"line 7: prompt\[1\]: expected text or a content part"),
    ("preference", {"prompt": "p", "chosen": "c"}, r"line 7: missing field 'rejected' .*--fields rejected=FIELD"),
    ("preference", {"chosen": 3, "rejected": "r"}, r"line 7: chosen: expected text or a list of messages, got a number"),
])
def test_a_bad_later_row_fails_in_one_line_naming_where(fmt, row, message):
    with pytest.raises(DataError, match=message) as err:
        to_record(row, WHERE, fmt)
    assert str(err.value).startswith(WHERE) and "\n" not in str(err.value)


def test_unknown_roles_are_errors_unless_mapped():
    row = {"messages": [{"role": "tool", "content": "{\"ok\": 1}"}, {"role": "assistant", "content": "Done."}]}
    with pytest.raises(DataError, match="unknown role 'tool'"):
        to_record(row, WHERE, "messages")
    record = to_record(row, WHERE, "messages", parse_field_flag("role:tool=skip"))
    assert record.messages == (Message("Done.", "assistant"),)


# --- metadata --------------------------------------------------------------------------------------


def test_metadata_fields_at_the_top_and_one_level_down_as_short_strings():
    row = {
        "id": "r1", "prompt": "p", "response": "r",
        "language": "sw", "locale": "sw-KE", "source": "x" * 200, "worker_country": "Kenya", "worker_id": "w77",
        "languages": ["en", "sw", None], "annotator": {"country": "Kenya", "age": 31, "id": 9},
        "meta": {"region": "East Africa", "note": "ignored", "subset": {"deep": "ignored"}},
        "dataset": None, "country": "",
    }
    assert to_record(row, WHERE, "prompt_response").metadata == (
        ("language", "sw"), ("locale", "sw-KE"), ("source", "x" * METADATA_VALUE_CHARS), ("worker_country", "Kenya"),
        ("languages", "en,sw"), ("annotator.country", "Kenya"), ("annotator.age", "31"), ("meta.region", "East Africa"),
    )


def test_fields_read_as_text_are_not_metadata():
    row = {"source": "Translate this.", "response": "Done.", "model": "gpt-4\nturbo"}
    record = to_record(row, WHERE, "prompt_response", parse_field_flag("prompt=source"))
    assert record.messages[0] == Message("Translate this.", "user")
    assert record.metadata == (("model", "gpt-4 turbo"),)
