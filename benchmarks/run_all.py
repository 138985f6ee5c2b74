"""Run every benchmark in this folder, one after another (each prints ratios measured in one run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
GPU_ONLY = {"gpu_check.py"}  # needs a CUDA device and model folders: run it by hand (see its docstring)
for script in sorted(here.glob("*.py")):
    if script.name == Path(__file__).name:
        continue
    if script.name in GPU_ONLY:
        print(f"== {script.name}: skipped (GPU only; see its docstring)", flush=True)
        continue
    print(f"== {script.name}", flush=True)
    subprocess.run([sys.executable, str(script)], check=True)
