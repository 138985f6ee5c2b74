"""What each task declares about itself (records.TaskDeclaration): the run manifest records these, and
the console and the report read them from there instead of knowing task names."""

from __future__ import annotations

from globalign.data.reward_probe import GALLUP_ORDERS, REFERENCE_COUNTRY
from globalign.records import TaskDeclaration
from globalign.tasks.opinion_metrics import study_countries

_STUDY7 = ("all", *study_countries())
# the USA and the countries of Gallup's lists, then the Spearman groups
_PREFERENCE_HEADLINE = (REFERENCE_COUNTRY, *GALLUP_ORDERS["gallup_2023"], "gallup_2017", "gallup_2023", "all")
_PREFERENCE_UNITS = {"mean_rank": "rank", "win_rate_positive": "fraction", "win_rate_negative": "fraction",
                     "reward": "reward", "nll_mean": "nats", "spearman_mean_rank": "correlation"}

DECLARATIONS: dict[str, TaskDeclaration] = {
    "md3": TaskDeclaration(
        "md3", "dialects", "English dialects (MD3 word game)", "dialect",
        ("choice_accuracy", "generation_accuracy", "choice_accuracy_gap", "generation_accuracy_gap"),
        {"choice_accuracy": "fraction", "generation_accuracy": "fraction", "choice_accuracy_gap": "fraction",
         "generation_accuracy_gap": "fraction", "choice_accuracy_gap_range": "fraction",
         "generation_accuracy_gap_range": "fraction"},
        higher_is_better={"choice_accuracy": True, "generation_accuracy": True, "choice_accuracy_gap": False,
                          "generation_accuracy_gap": False},
    ),
    "tydiqa": TaskDeclaration(
        "tydiqa", "languages", "Languages (TyDi QA GoldP, 1-shot)", "language", ("f1", "exact_match", "f1_script"),
        {"f1": "fraction", "exact_match": "fraction", "f1_script": "fraction", "exact_match_script": "fraction"},
        higher_is_better={"f1": True, "exact_match": True, "f1_script": True},
    ),
    "belebele": TaskDeclaration(
        "belebele", "languages", "Languages (Belebele reading comprehension)", "language", ("accuracy",),
        {"accuracy": "fraction"}, higher_is_better={"accuracy": True},
    ),
    "global_opinions": TaskDeclaration(
        "global_opinions", "opinions", "Opinions (GlobalOpinionsQA)", "country",
        ("relative_agreement", "similarity"), {"similarity": "fraction", "relative_agreement": "fraction"},
        headline_groups=_STUDY7, higher_is_better={"similarity": True},
    ),
    "where_from": TaskDeclaration(
        "where_from", "country preferences", "Country preferences (\"Where are you from?\")", "country",
        ("mean_rank", "spearman_mean_rank"), _PREFERENCE_UNITS, headline_groups=_PREFERENCE_HEADLINE,
        higher_is_better={"mean_rank": False},
    ),
    "askreddit": TaskDeclaration(
        "askreddit", "country preferences", "Country preferences (AskReddit)", "country",
        ("mean_rank", "spearman_mean_rank"), _PREFERENCE_UNITS, headline_groups=_PREFERENCE_HEADLINE,
        higher_is_better={"mean_rank": False},
    ),
}


def declaration(task: str) -> dict:
    """The manifest form of a task's declaration (an unknown task declares nothing)."""
    found = DECLARATIONS.get(task)
    return found.to_json() if found else {}
