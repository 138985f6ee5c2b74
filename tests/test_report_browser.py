"""The report in a real browser (Debian's chromium, installed by scripts/install-test-deps.sh): opened from
a file:// URL with the network unreachable, every chart and map renders, the verdict is there, and
script payloads planted in a model output, a model name and a country name do not run.

The page records, once loaded, each figure's rendered size (data-rendered="WxHxELEMENTS") and the
load time (body data-render-ms, performance.now()); `--dump-dom` returns the DOM after that.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import in_ci
from report_fixtures import write_payload_run

from globalign.cli import main

pytestmark = pytest.mark.slow

PAPER = "paper_outputs/outputs"
MAX_BYTES = 15_000_000
SCREEN = (1280, 900)  # the verdict fits one screen of a laptop browser


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if in_ci():
        pytest.fail("chromium is missing; `make test` installs it (scripts/install-test-deps.sh)", pytrace=False)
    pytest.skip("chromium is not installed (scripts/install-test-deps.sh installs it)")


def browse(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    """chromium on a file:// URL, offline: every proxy and host lookup goes nowhere."""
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
               *extra, page.resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def rendered(page: Path, profile: Path) -> tuple[str, float]:
    started = time.perf_counter()
    done = browse(page, profile, f"--window-size={SCREEN[0]},{SCREEN[1]}", "--virtual-time-budget=20000", "--dump-dom")
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, seconds


def check_page(dom: str, n_figures: int) -> int:
    """Every figure drew a plausible SVG; returns the load time in ms the page recorded."""
    sizes = re.findall(r'data-rendered="(\d+)x(\d+)x(\d+)"', dom)
    assert len(sizes) == n_figures and n_figures > 0, (len(sizes), n_figures)
    for width, height, elements in sizes:
        assert int(width) >= 300 and int(height) >= 150 and int(elements) >= 10, (width, height, elements)
    # no planted payload ran: none set the title or the body's mark, none added an element
    assert "<title>globalign report</title>" in dom and "PWNED" not in dom.split("</title>")[0]
    assert "data-pwned" not in dom.split("<body")[1].split(">")[0]
    assert "<img" not in dom
    found = re.search(r'data-render-ms="(\d+)"', dom)
    assert found, "the page's load script did not run"
    return int(found.group(1))


def test_rescored_study_and_payload_report_renders_offline(tmp_path, data_dir, capsys):
    runs = []
    for task, folder in (("md3", "md3-game"), ("askreddit", "ask-reddit-perplexity-testing"),
                         ("where_from", "reward-testing")):
        out = tmp_path / task
        assert main(["rescore", "--task", task, "--predictions", str(data_dir / PAPER / folder), "--output", str(out),
                     "--n-boot", "200", "--n-perm", "200", "--data-dir", str(data_dir)]) == 0
        runs.append(out)
    runs.append(write_payload_run(tmp_path / "payload"))
    report = tmp_path / "report.html"
    assert main(["report", *map(str, runs), "--output", str(report)]) == 0
    out = capsys.readouterr().out
    size = report.stat().st_size
    assert size < MAX_BYTES
    page = report.read_text("utf-8")
    dom, seconds = rendered(report, tmp_path / "profile")
    ms = check_page(dom, page.count("<figure"))
    # The verdict: one row per family, naming it and its base -> last models once, one cell per axis.
    grid = dom[dom.index('<table class="vgrid">'):dom.index("</table>", dom.index('<table class="vgrid">'))]
    assert '<b>Mistral -&gt; Zephyr</b><span class="pair">Mistral-7B-v0.1 -&gt; zephyr-7b-beta</span>' in grid
    assert "Mistral -&gt; Zephyr: " not in re.sub(r'title="[^"]*"', "", grid)  # cells do not repeat the family
    assert grid.count('<th scope="row">') == 7  # the study's 6 families and the payload run
    assert "widened the US-Indian English gap (choice scores): +8.0 points, 95% CI [5.0, 11.0]" in grid
    verdict_px = int(re.search(r'data-verdict-px="(\d+)"', dom).group(1))
    assert 0 < verdict_px <= SCREEN[1], verdict_px
    print(f"\nrescore report: {size / 1e6:.1f} MB, load {ms} ms in the page, dump-dom {seconds:.1f} s, verdict "
          f"{verdict_px} px tall at {SCREEN[0]} px wide:\n{out}")
    shot = browse(report, tmp_path / "profile", "--window-size=1280,2000", f"--screenshot={tmp_path / 'shot.png'}")
    assert shot.returncode == 0 and (tmp_path / "shot.png").stat().st_size > 10_000


def test_demo_report_renders_offline(demo_run, tmp_path):
    assert demo_run.returncode == 0, demo_run.stderr[-2000:]
    report = demo_run.output / "report.html"
    page = report.read_text("utf-8")
    dom, seconds = rendered(report, tmp_path / "profile")
    ms = check_page(dom, page.count("<figure"))
    assert 'id="verdict"' in dom and "gemma-3-270m -&gt; smollm2-135m-instruct" in dom
    print(f"\ndemo report: {report.stat().st_size / 1e6:.1f} MB, load {ms} ms in the page, dump-dom {seconds:.1f} s")
