"""How many CPU threads a run uses, and how they wait: sized to the CPUs this process may use, and
spinning only briefly, so that a core taken by another program slows a run down instead of stalling it.

Measured on 2 cores (docs/engine.md, `benchmarks/thread_policy.py`, all in one run): with the OpenMP
runtime's default wait policy each parallel region spins for a thread whose core is busy elsewhere, and a
run with one core taken was 3.3-3.6x slower than idle. OMP_WAIT_POLICY=PASSIVE (sleep at once) fixes that
but costs 26-28% when idle. A short spin (GNU libgomp's GOMP_SPINCOUNT=1000, then sleep) was 5% slower
than the old default when idle and 1.9x idle with one core busy.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")

# Read by the OpenMP runtime once, when it is loaded (with torch): set before torch is imported.
# GOMP_SPINCOUNT is GNU libgomp's (torch's Linux wheels): spin this many times, then sleep. KMP_BLOCKTIME is
# Intel's OpenMP (some builds ship it): its shortest spin, 1 ms (not measured here: no such build).
RUNTIME_DEFAULTS: dict[str, str] = {"GOMP_SPINCOUNT": "1000", "KMP_BLOCKTIME": "1"}
# A user's OMP_WAIT_POLICY decides for both runtimes (an explicit GOMP_SPINCOUNT would override it).
_OVERRIDDEN_BY = ("OMP_WAIT_POLICY",)

# The names globalign itself set in this process (the rest came from the user's environment).
_set_by_globalign: set[str] = set()


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> float | None:
    """CPUs' worth of time the cgroup quota allows this process (2.5 for `250000 100000`), the smallest
    over its cgroup and the ancestors that are visible; None when there is no quota (or no cgroup)."""
    limits = [limit for folder in _cgroup_folders(root, proc_cgroup) if (limit := _quota_in(folder)) is not None]
    return min(limits) if limits else None


def usable_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP,
                affinity: Iterable[int] | None = None) -> int:
    """CPUs this process may run on (its affinity mask, e.g. under taskset), capped by the cgroup CPU
    quota (a container's --cpus) rounded up; at least 1. Not os.cpu_count(): that counts the machine."""
    if affinity is None:
        affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cpus = max(1, len(set(affinity)))
    limit = cgroup_cpu_limit(root, proc_cgroup)
    return max(1, min(cpus, math.ceil(limit))) if limit is not None else cpus


def cpu_threads(requested: int | None = None, environ: Mapping[str, str] = os.environ) -> int:
    """Threads for torch on CPU: `--threads` / config `threads` when given, else the user's
    OMP_NUM_THREADS, else the usable CPUs."""
    return requested or _omp_num_threads(environ) or usable_cpus()


def threads_source(requested: int | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """Which rule `cpu_threads` followed, for the manifest."""
    if requested:
        return "threads (flag or config)"
    return "OMP_NUM_THREADS" if _omp_num_threads(environ) else "usable CPUs"


def _omp_num_threads(environ: Mapping[str, str]) -> int | None:
    # OMP_NUM_THREADS may be a list for nested levels ("4,2"): the first is the outer level's.
    value = environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def apply_runtime_defaults(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set the short-spin wait policy for the OpenMP runtime, keeping every value the user set (and all
    of the runtime's settings when the user chose OMP_WAIT_POLICY).

    Returns what was set. Does nothing once torch is imported: the runtime has read its settings by
    then, and an environment that says otherwise would make the manifest lie.
    """
    if _torch_loaded():
        return {}
    applied: dict[str, str] = {}
    if any(name in environ for name in _OVERRIDDEN_BY):
        return applied
    for name, value in RUNTIME_DEFAULTS.items():
        if name not in environ:
            environ[name] = value
            applied[name] = value
    if environ is os.environ:
        _set_by_globalign.update(applied)
    return applied


def _torch_loaded() -> bool:
    return "torch" in sys.modules


@dataclass(frozen=True)
class WaitPolicy:
    """How the OpenMP runtime's threads wait, as it read it, and who chose it."""

    value: str  # "PASSIVE" / "ACTIVE" (OMP_WAIT_POLICY), "GOMP_SPINCOUNT=1000", or "runtime default"
    set_by: str  # "globalign", "environment" (the user) or "nobody"


def wait_policy(environ: Mapping[str, str] = os.environ) -> WaitPolicy:
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        value = environ.get(name)
        if value is not None:
            shown = value if name == "OMP_WAIT_POLICY" else f"{name}={value}"
            return WaitPolicy(shown, "globalign" if name in _set_by_globalign else "environment")
    return WaitPolicy("runtime default", "nobody")


@dataclass(frozen=True)
class CpuAtStart:
    """The CPUs a run could use and how busy the machine was when it started, for its manifest."""

    usable_cpus: int
    load_average_1min: float | None
    wait_policy: str
    wait_policy_set_by: str


def cpu_at_start() -> CpuAtStart:
    policy = wait_policy()
    load = load_average_1min()
    return CpuAtStart(usable_cpus(), None if load is None else round(load, 2), policy.value, policy.set_by)


def load_average_1min() -> float | None:
    """The 1-minute load average (runnable processes, averaged); None where the OS has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def busy_warning(load: float | None, cpus: int) -> str | None:
    """One line when the machine is already busy at start-up, else None.

    Busy = the 1-minute load average is at least max(1, cpus / 2): other programs keep at least a
    core's worth (or half the CPUs) busy, so this run shares cores and its timings will be slower than
    on an idle machine (up to 2x with globalign's short-spin policy; docs/engine.md).
    """
    if load is None or load < max(1.0, cpus / 2):
        return None
    return (f"globalign: note: the machine is busy (load average {load:.1f} over the last minute, {cpus} usable "
            f"CPUs): this run will be slower than on an idle one; see docs/engine.md to pin threads")


BUSY_WARNING_ENV = "GLOBALIGN_BUSY_WARNING"  # "0": never print the busy-machine note


def warn_if_busy(cpu: CpuAtStart) -> None:
    """Print `busy_warning` on stderr. Runs call it once, after their fail-fast checks: a user error
    stays the only line a failed command prints."""
    if os.environ.get(BUSY_WARNING_ENV, "1") == "0":  # scripts that read stderr, clusters that are always busy
        return
    if warning := busy_warning(cpu.load_average_1min, cpu.usable_cpus):
        print(warning, file=sys.stderr)


def _cgroup_folders(root: Path, proc_cgroup: Path) -> list[Path]:
    """This process's cgroup folders for the CPU controller (v2 unified, or v1 cpu), with their
    visible ancestors up to the mount root. Inside a container the path may not exist: the root stays."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    folders: list[Path] = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        relative = Path(path.lstrip("/"))
        if controllers == "":  # cgroup v2: "0::/path"
            bases = [root]
        elif "cpu" in controllers.split(","):  # cgroup v1: "4:cpu,cpuacct:/path"
            bases = [root / controllers, root / "cpu", root / "cpu,cpuacct"]
        else:
            continue
        for base in bases:
            for part in (relative, *relative.parents):
                folders.append(base / part)
    if not folders:
        folders = [root, root / "cpu", root / "cpu,cpuacct"]
    return [f for f in dict.fromkeys(folders) if f.is_dir()]


def _quota_in(folder: Path) -> float | None:
    """CPUs allowed by one cgroup folder's quota: v2 `cpu.max` ("max 100000" = none), v1
    `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1 = none)."""
    try:
        if (folder / "cpu.max").is_file():
            quota, _, period = (folder / "cpu.max").read_text().strip().partition(" ")
            if quota == "max":
                return None
            return int(quota) / int(period or "100000")
        if (folder / "cpu.cfs_quota_us").is_file():
            quota_us = int((folder / "cpu.cfs_quota_us").read_text().strip())
            period_us = int((folder / "cpu.cfs_period_us").read_text().strip())
            return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None  # an unreadable or odd file: no limit known, fall back to the affinity mask
    return None
