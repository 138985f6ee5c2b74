"""The study's tokenisation boundary rule (models/tokenization.py) on a tiny deterministic tokenizer whose
merges cross the prompt/continuation boundary. Every expected token list is worked out by hand below."""

from __future__ import annotations

import pytest

from globalign.models.tokenization import SplitCandidate, split_candidates

# Greedy longest match, left to right, over this vocabulary (id = position). "(A", " (", "A)" and " (A" are
# merges: "(" + "A" and " " + "(" are one token when they meet, wherever the prompt ends.
VOCAB = ("<s>", "a", "b", "c", " ", "(", ")", "A", "B", "(A", " (", "A)", " (A", "ab")
ID = {piece: i for i, piece in enumerate(VOCAB)}
LONGEST = max(map(len, VOCAB))


def encode(text: str) -> list[int]:
    ids, i = [], 0
    while i < len(text):
        for size in range(min(LONGEST, len(text) - i), 0, -1):
            if text[i : i + size] in ID:
                ids.append(ID[text[i : i + size]])
                i += size
                break
        else:
            raise ValueError(f"no token for {text[i]!r}")
    return ids


def encode_with_bos(text: str) -> list[int]:
    return [ID["<s>"], *encode(text)]


def ids(*pieces: str) -> tuple[int, ...]:
    return tuple(ID[p] for p in pieces)


def test_the_fake_tokenizer_merges_as_intended() -> None:
    assert encode("ab (") == [ID["ab"], ID[" ("]]
    assert encode("ab (A)") == [ID["ab"], ID[" (A"], ID[")"]]
    assert encode("c(") == [ID["c"], ID["("]] and encode("c(A)") == [ID["c"], ID["(A"], ID[")"]]


def test_no_merge_the_continuation_is_its_own_tokens() -> None:
    (split,) = split_candidates(encode, "ab", ["c"])
    assert split == SplitCandidate(prefix_ids=ids("ab"), continuation_ids=ids("c"), boundary_merge=False)


def test_a_merge_across_the_boundary_scores_the_tail_past_the_prompts_token_count() -> None:
    # prompt "c(" -> [c, (] (2 tokens); joint "c(A)" -> [c, (A, )]: the first 2 joint tokens are the prefix
    # (their last one, "(A", holds the continuation's "A"), and only ")" is scored, as in the study.
    (split,) = split_candidates(encode, "c(", ["A)"])
    assert split == SplitCandidate(prefix_ids=ids("c", "(A"), continuation_ids=ids(")"), boundary_merge=True)
    assert encode("A)") == [ID["A)"]]  # tokenising the continuation alone would give another token


def test_a_merge_can_leave_nothing_to_score() -> None:
    # prompt "ab (" -> [ab,  (] (2 tokens); joint "ab (A" -> [ab,  (A] (2 tokens): no continuation token left.
    (split,) = split_candidates(encode, "ab (", ["A"])
    assert split == SplitCandidate(prefix_ids=ids("ab", " (A"), continuation_ids=(), boundary_merge=True)


def test_each_candidate_is_split_on_its_own() -> None:
    splits = split_candidates(encode, "c(", ["A)", "B)", "", "a"])
    assert splits == [
        SplitCandidate(ids("c", "(A"), ids(")"), True),
        SplitCandidate(ids("c", "("), ids("B", ")"), False),
        SplitCandidate(ids("c", "("), (), False),  # an empty continuation scores no token
        SplitCandidate(ids("c", "("), ids("a"), False),
    ]


def test_the_prompts_bos_stays_in_the_prefix() -> None:
    # encode() prepends BOS to both the prompt and the joint text (as a model's encode does): 3 prompt tokens.
    (split,) = split_candidates(encode_with_bos, "c(", ["A)"])
    assert split == SplitCandidate(ids("<s>", "c", "(A"), ids(")"), True)


@pytest.mark.parametrize(("prompt", "continuation"), [("ab", "c"), ("c(", "A)"), ("ab (", "A"), ("a", "b"),
                                                      ("ab (", "A)"), ("", "abc")])
def test_prefix_and_continuation_rebuild_the_joint_tokenisation(prompt: str, continuation: str) -> None:
    (split,) = split_candidates(encode, prompt, [continuation])
    assert split.prefix_ids + split.continuation_ids == tuple(encode(prompt + continuation))
    assert len(split.prefix_ids) == len(encode(prompt))
    assert split.boundary_merge == (split.prefix_ids != tuple(encode(prompt)))
