#!/usr/bin/env bash
# The vllm backend's engine in the project venv ($VENV, default .venv): pyproject's `vllm` extra
# (vLLM's CPU build), then out with the torchvision, torchaudio and torchcodec it pulls in. Those are
# not the builds that match the CPU torch: while they are installed, `import transformers` fails
# (`operator torchvision::nms does not exist`), so they go in the same run, even when pip fails.
# Idempotent: does nothing when the pinned vLLM is there and those three are not.
#
# The model stack already installed (torch, transformers, tokenizers, safetensors, huggingface_hub,
# ray) is held at its versions, and every other dependency of the project stays in its pyproject range.
# numpy cannot be held: every mistral_common that vLLM accepts needs numpy<2.4, so pip moves numpy to
# the newest release below 2.4 (2.3.5), inside the project's range (docs/backends.md).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
UNMATCHED="torchvision torchaudio torchcodec"

if [ ! -x "$PY" ]; then
    echo "install-vllm: no virtualenv at $VENV (run make setup first, or set VENV)" >&2
    exit 1
fi

# The extra's requirements, read from pyproject.toml (one place names the version).
mapfile -t REQUIREMENTS < <("$PY" -c '
import tomllib
for line in tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["vllm"]:
    print(line)')

installed() {  # the requirements are installed at their pins, and none of the unmatched builds is
    "$PY" - "${REQUIREMENTS[@]}" <<'EOF'
import importlib.metadata as md
import sys

for requirement in sys.argv[1:]:
    name, _, version = requirement.partition("==")
    try:
        if md.version(name) != version:
            sys.exit(1)
    except md.PackageNotFoundError:
        sys.exit(1)
for name in ("torchvision", "torchaudio", "torchcodec"):
    try:
        md.version(name)
        sys.exit(1)
    except md.PackageNotFoundError:
        pass
EOF
}

if installed; then
    exit 0
fi

CONSTRAINTS=$(mktemp)
remove_unmatched() {
    "$PY" -m pip uninstall --quiet -y $UNMATCHED 2>/dev/null || true
    rm -f "$CONSTRAINTS"
}
trap remove_unmatched EXIT

"$PY" - "$CONSTRAINTS" <<'EOF'
import importlib.metadata as md
import re
import sys
import tomllib

held = ("torch", "transformers", "tokenizers", "safetensors", "huggingface_hub", "ray")
lines = []
for name in held:
    try:
        lines.append(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        pass
project = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
lines += [r for r in project if re.match(r"[\w.-]+", r).group() not in held]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
EOF

echo "install-vllm: installing ${REQUIREMENTS[*]} into $VENV (about a minute, 3.4 GB)" >&2
"$PY" -m pip install --quiet -c "$CONSTRAINTS" "${REQUIREMENTS[@]}"
remove_unmatched
trap - EXIT
if ! failure=$("$PY" -c "import transformers, torch; from vllm import LLM" 2>&1); then
    echo "$failure" | tail -n 3 >&2
    echo "install-vllm: vLLM was installed but 'from vllm import LLM' fails in $VENV" >&2
    exit 1
fi
