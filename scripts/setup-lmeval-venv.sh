#!/usr/bin/env bash
# lm-evaluation-harness in its own virtual environment, for `make bench`'s side-by-side comparison:
# its pins (transformers, datasets, ...) cannot move the project's. Idempotent: a venv whose stamp
# matches the pins is kept.
set -euo pipefail
VENV="${1:-.venv-lmeval}"
PYTHON="${PYTHON:-python3.11}"
# transformers as pinned in pyproject.toml, so both harnesses run the same model code.
PINS=("lm-eval[hf]==0.4.13" torch==2.13.0 transformers==5.19.0)
STAMP="$VENV/.globalign-lmeval"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "${PINS[*]}" ]]; then
    exit 0
fi
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
# torch==2.13.0: pip takes the CPU wheel that lies on the machine (its find-links), as for .venv.
"$VENV/bin/pip" install --quiet "${PINS[@]}"
echo "${PINS[*]}" > "$STAMP"
