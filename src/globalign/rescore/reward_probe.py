"""Reading country-preference scores made elsewhere: the study's reference reward files and its
AskReddit LM-probe outputs (docs/reward_probes.md).

- where_from: CSV with columns `country, reward` (optional `reward_model`), one file per model.
- askreddit: CSV with a `Sentiment` column (positive/negative) and one column per country (Natural
  Earth names), one row per question in the order of AskRedditCountries_final.csv. A file with a
  `reward_model` column holds rewards; a file with a `model` column (and no `reward_model`) holds an
  LM's mean NLL per country (lower = preferred).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from globalign.data.reward_probe import WHERE_FROM_REFERENCE, load_country_set_181, load_where_from_countries
from globalign.data.tables import finite_number, read_rows
from globalign.errors import DataError, unknown_name
from globalign.rescore.predictions import Predictions, Rescorer, model_from_column, prediction_files
from globalign.tasks.base import SampleRecord
from globalign.tasks.country_preference import (
    ProbeScores,
    preference_comparisons,
    preference_metrics,
    samples,
)

# Columns of the study's AskReddit files that are not countries (and not scores).
ASKREDDIT_OTHER_COLUMNS = frozenset({"", "Question", "Full Prompt", "Sentiment", "reward_model", "model",
                                     "Search Query", "Response Format", "Category", "seed", "add_article",
                                     "use_chat_template"})


def read_where_from(path: Path, data_dir: Path | None = None) -> Predictions:
    records: dict[str, list[SampleRecord]] = {}
    files: dict[str, list[str]] = {}
    known = load_where_from_countries(data_dir)
    for file in prediction_files(path, ".csv"):
        rows = read_rows(file, ("country", "reward"))
        if not rows:
            raise DataError(f"{file}: no rows")
        model = model_from_column(rows, "reward_model", file)
        countries = tuple(row["country"] for _, row in rows)
        if len(set(countries)) != len(countries):
            raise DataError(f"{file}: a country appears twice")
        for where, row in rows:  # a country the probe does not ask about cannot be ranked with the others
            if row["country"] not in known:
                hint = unknown_name("country", row["country"], known)
                raise DataError(f"{where}: {hint} (the where-from probe's 254 Natural Earth names are in "
                                f"{WHERE_FROM_REFERENCE})")
        values = np.array([[finite_number(row["reward"], where, "reward") for where, row in rows]])
        probe = ProbeScores("where_from", model, "reward", countries, ("where_from",), (True,), values)
        if model in records:
            raise DataError(f"{file}: model '{model}' already read from {files[model][0]}")
        records[model], files[model] = samples(probe), [str(file)]
    return Predictions(records, files)


def read_askreddit(path: Path, data_dir: Path | None = None) -> Predictions:
    records: dict[str, list[SampleRecord]] = {}
    files: dict[str, list[str]] = {}
    notes: list[str] = []
    ranking_set = load_country_set_181(data_dir)
    known = set(load_where_from_countries(data_dir))
    for file in prediction_files(path, ".csv"):
        rows = read_rows(file, ("Sentiment", *ranking_set))
        if not rows:
            raise DataError(f"{file}: no rows")
        header = rows[0][1].keys()
        kind = "reward" if "reward_model" in header else "lm_nll" if "model" in header else None
        if kind is None:
            raise DataError(f"{file}: needs a reward_model column (rewards) or a model column (LM NLLs)")
        model = model_from_column(rows, "reward_model" if kind == "reward" else "model", file)
        countries = tuple(c for c in header if c in known)
        ignored = [c for c in header if c not in known and c not in ASKREDDIT_OTHER_COLUMNS]
        if ignored:
            notes.append(f"{file.name}: {len(ignored)} column(s) are not probe countries and were left out: "
                         f"{', '.join(ignored[:5])}{' ...' if len(ignored) > 5 else ''}")
        positive = []
        for where, row in rows:
            sentiment = row["Sentiment"].strip().lower()
            if sentiment not in ("positive", "negative"):
                raise DataError(f"{where}: Sentiment must be positive or negative, got {row['Sentiment']!r}")
            positive.append(sentiment == "positive")
        values = np.array([[finite_number(row[c], where, c) for c in countries] for where, row in rows])
        probe = ProbeScores("askreddit", model, kind, countries, tuple(str(i) for i in range(len(rows))),
                            tuple(positive), values)
        if model in records:
            raise DataError(f"{file}: model '{model}' already read from {files[model][0]}")
        records[model], files[model] = samples(probe), [str(file)]
    return Predictions(records, files, notes)


WHERE_FROM = Rescorer(read_where_from, preference_metrics, preference_comparisons,
                      "CSV files with columns country, reward (optional reward_model), one per model")
ASKREDDIT = Rescorer(read_askreddit, preference_metrics, preference_comparisons,
                     "CSV files with Sentiment and one column per country; reward_model (rewards) or model (LM NLLs)")
