"""The CPU thread policy (docs/engine.md, "Threads on a shared machine"): usable CPUs from the affinity
mask and the cgroup quota, a passive wait policy that never overrides the user's, `--threads` first,
the manifest's record of all that, and one warning when the machine is busy at start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from globalign import cli, threads
from globalign.threads import (
    apply_runtime_defaults,
    busy_warning,
    cgroup_cpu_limit,
    cpu_threads,
    threads_source,
    usable_cpus,
    wait_policy,
)


def _cgroup(tmp_path: Path, files: dict[str, str], proc_line: str) -> tuple[Path, Path]:
    """A fake /sys/fs/cgroup tree and /proc/self/cgroup file."""
    root = tmp_path / "cgroup"
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    root.mkdir(exist_ok=True)
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(proc_line + "\n")
    return root, proc


def test_cgroup_v2_quota_caps_the_affinity_mask_rounded_up(tmp_path):
    root, proc = _cgroup(tmp_path, {"user.slice/job/cpu.max": "150000 100000\n"}, "0::/user.slice/job")
    assert cgroup_cpu_limit(root, proc) == 1.5
    assert usable_cpus(root, proc, affinity=range(8)) == 2
    assert usable_cpus(root, proc, affinity=[3]) == 1  # taskset -c 3: one CPU whatever the quota


def test_no_quota_means_the_affinity_mask(tmp_path):
    root, proc = _cgroup(tmp_path, {"cpu.max": "max 100000\n"}, "0::/")
    assert cgroup_cpu_limit(root, proc) is None
    assert usable_cpus(root, proc, affinity={0, 2, 5}) == 3


def test_a_stricter_parent_cgroup_wins(tmp_path):
    root, proc = _cgroup(tmp_path, {"kube/cpu.max": "100000 100000", "kube/pod/cpu.max": "400000 100000"},
                         "0::/kube/pod")
    assert usable_cpus(root, proc, affinity=range(16)) == 1


def test_cgroup_v1_quota_and_its_unlimited_value(tmp_path):
    files = {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000", "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000"}
    root, proc = _cgroup(tmp_path, files, "4:cpu,cpuacct:/docker/abc")
    assert usable_cpus(root, proc, affinity=range(32)) == 2
    unlimited = {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}
    root, proc = _cgroup(tmp_path / "v1", unlimited, "1:cpu:/")
    assert usable_cpus(root, proc, affinity=range(4)) == 4


def test_a_container_whose_cgroup_path_is_hidden_reads_the_mount_root(tmp_path):
    # Inside a container /proc/self/cgroup names the host's path, which is not mounted here.
    root, proc = _cgroup(tmp_path, {"cpu.max": "300000 100000"}, "0::/system.slice/docker-123.scope")
    assert usable_cpus(root, proc, affinity=range(64)) == 3


def test_unreadable_cgroup_files_fall_back_to_the_affinity_mask(tmp_path):
    root, proc = _cgroup(tmp_path, {"cpu.max": "lots\n"}, "0::/")
    assert usable_cpus(root, proc, affinity=range(6)) == 6
    assert usable_cpus(tmp_path / "absent", tmp_path / "absent_proc", affinity=range(6)) == 6


def test_threads_flag_wins_then_omp_num_threads_then_usable_cpus(monkeypatch):
    monkeypatch.setattr(threads, "usable_cpus", lambda: 3)
    assert cpu_threads(5, {"OMP_NUM_THREADS": "2"}) == 5
    assert threads_source(5, {"OMP_NUM_THREADS": "2"}) == "threads (flag or config)"
    assert cpu_threads(None, {"OMP_NUM_THREADS": "2,1"}) == 2
    assert threads_source(None, {"OMP_NUM_THREADS": "2"}) == "OMP_NUM_THREADS"
    assert cpu_threads(None, {"OMP_NUM_THREADS": "many"}) == 3
    assert cpu_threads(None, {}) == 3
    assert threads_source(None, {}) == "usable CPUs"


@pytest.fixture
def torch_not_loaded(monkeypatch):
    """This test process may have imported torch already; pretend it has not, and forget what an
    earlier call set."""
    monkeypatch.setattr(threads, "_torch_loaded", lambda: False)
    monkeypatch.setattr(threads, "_set_by_globalign", set())


def test_runtime_defaults_are_set_but_never_override_the_user(torch_not_loaded):
    environ: dict[str, str] = {}
    assert apply_runtime_defaults(environ) == {"GOMP_SPINCOUNT": "1000", "KMP_BLOCKTIME": "1"}
    assert environ == {"GOMP_SPINCOUNT": "1000", "KMP_BLOCKTIME": "1"}
    # a user's OMP_WAIT_POLICY decides alone (an explicit GOMP_SPINCOUNT would override it in libgomp)
    users = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert apply_runtime_defaults(users) == {} and users == {"OMP_WAIT_POLICY": "ACTIVE"}
    spins = {"GOMP_SPINCOUNT": "50"}
    assert apply_runtime_defaults(spins) == {"KMP_BLOCKTIME": "1"} and spins["GOMP_SPINCOUNT"] == "50"


def test_nothing_is_set_once_torch_is_loaded(monkeypatch):
    # the OpenMP runtime has read its settings by then: setting them now would only mislead the manifest
    monkeypatch.setattr(threads, "_torch_loaded", lambda: True)
    environ: dict[str, str] = {}
    assert apply_runtime_defaults(environ) == {} and environ == {}


def test_the_cli_sets_the_wait_policy_before_any_command_and_keeps_the_users(torch_not_loaded, monkeypatch):
    for name in (*threads.RUNTIME_DEFAULTS, "OMP_WAIT_POLICY"):
        monkeypatch.setenv(name, "placeholder")  # so that monkeypatch restores the real state afterwards
        monkeypatch.delenv(name)
    assert cli.main(["tasks"]) == 0
    assert os.environ["GOMP_SPINCOUNT"] == "1000" and "OMP_WAIT_POLICY" not in os.environ
    assert wait_policy() == threads.WaitPolicy("GOMP_SPINCOUNT=1000", "globalign")

    monkeypatch.setattr(threads, "_set_by_globalign", set())
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert cli.main(["tasks"]) == 0
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    assert wait_policy() == threads.WaitPolicy("ACTIVE", "environment")


def test_busy_means_load_of_at_least_one_core_or_half_the_cpus():
    assert busy_warning(None, 2) is None
    assert busy_warning(0.6, 2) is None
    assert "load average 1.2" in busy_warning(1.2, 2)
    assert busy_warning(0.9, 1) is None and busy_warning(1.0, 1) is not None
    assert busy_warning(20.0, 64) is None and busy_warning(40.0, 64) is not None


def _tiny_chat(path: Path) -> Path:
    rows = [{"messages": [{"role": "user", "content": f"Where is the nearest train station, please? {i}"}]}
            for i in range(4)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_an_audit_warns_once_on_stderr_when_busy_but_a_user_error_stays_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(threads, "load_average_1min", lambda: 3.5)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
    source = _tiny_chat(tmp_path / "chat.jsonl")
    assert cli.main(["audit-data", str(source), "--output", str(tmp_path / "o"), "--quiet", "--no-map",
                     "--no-countries"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "machine is busy" in err[0], err
    assert "load average 3.5" in err[0] and "2 usable CPUs" in err[0]
    # the warning comes after the fail-fast checks: a command that fails at once prints its error alone
    assert cli.main(["audit-data", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("globalign: error:") and "missing.jsonl" in err[0], err
    monkeypatch.setattr(threads, "load_average_1min", lambda: 0.2)
    assert cli.main(["audit-data", str(source), "--output", str(tmp_path / "o"), "--quiet", "--no-map",
                     "--no-countries"]) == 0
    assert "busy" not in capsys.readouterr().err


def _run_manifest(tmp_path: Path, data_dir: Path, env: dict[str, str], *flags: str) -> dict:
    output = tmp_path / "run"
    command = [sys.executable, "-m", "globalign.cli", "run", "--model", "smollm2-135m-instruct", "--task",
               "global_opinions", "--limit", "2", "--n-boot", "50", "--quiet", "--data-dir", str(data_dir),
               "--output", str(output), *flags]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((output / "manifest.json").read_text())


@pytest.mark.slow
def test_the_manifest_records_threads_wait_policy_and_load(private_cache, data_dir, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in (*threads.RUNTIME_DEFAULTS, "OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    cpu = _run_manifest(tmp_path / "a", data_dir, {**env, "OMP_NUM_THREADS": "1"})["cpu"]
    assert cpu["usable_cpus"] == usable_cpus()
    assert isinstance(cpu["load_average_1min"], float)
    assert (cpu["wait_policy"], cpu["wait_policy_set_by"]) == ("GOMP_SPINCOUNT=1000", "globalign")
    assert cpu["threads"] == {"smollm2-135m-instruct": {"count": 1, "from": "OMP_NUM_THREADS"}}

    cpu = _run_manifest(tmp_path / "b", data_dir, {**env, "OMP_WAIT_POLICY": "active", "OMP_NUM_THREADS": "1"},
                        "--threads", "2")["cpu"]
    assert (cpu["wait_policy"], cpu["wait_policy_set_by"]) == ("active", "environment")
    assert cpu["threads"] == {"smollm2-135m-instruct": {"count": 2, "from": "threads (flag or config)"}}


def test_the_audit_manifest_records_workers_cpus_and_load(tmp_path, monkeypatch):
    from globalign.audit.run import AuditOptions, audit

    monkeypatch.setattr(threads, "usable_cpus", lambda: 3)  # the default worker count follows it
    source = _tiny_chat(tmp_path / "chat.jsonl")
    audit(AuditOptions(str(source), tmp_path / "out", progress=False, world_map=False, countries=False))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["workers"] == 3
    assert manifest["cpu"]["usable_cpus"] == 3
    assert set(manifest["cpu"]) == {"usable_cpus", "load_average_1min", "wait_policy", "wait_policy_set_by"}


def test_the_busy_note_can_be_turned_off_for_scripts_that_read_stderr(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(threads, "load_average_1min", lambda: 3.5)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
    monkeypatch.setenv(threads.BUSY_WARNING_ENV, "0")
    source = _tiny_chat(tmp_path / "chat.jsonl")
    assert cli.main(["audit-data", str(source), "--output", str(tmp_path / "o"), "--quiet", "--no-map",
                     "--no-countries"]) == 0
    assert capsys.readouterr().err == ""
