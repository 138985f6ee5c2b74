"""`globalign report`: the page from run folders, its verdict, its escaping, and bad input as one line."""

from __future__ import annotations

import csv
import json
import re
import shutil

import pytest
from report_fixtures import EVIL_COUNTRY, EVIL_MODEL, EVIL_OUTPUT, SCRIPT_PAYLOAD, write_payload_run

from globalign.cli import main


def _report(args, capsys):
    code = main(["report", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err.strip().splitlines()


def test_report_states_the_family_verdict_with_number_ci_and_holm_p(tmp_path, capsys):
    run = write_payload_run(tmp_path / "run")
    code, out, err = _report([run, "--output", tmp_path / "r.html"], capsys)
    assert code == 0, err
    page = (tmp_path / "r.html").read_text("utf-8")
    sentence = ("widened the US-Indian English gap (choice scores) by 8.0 points "
                "(delta = +8.0, 95% CI [5.0, 11.0]; p_holm = 0.001")
    assert "run: base -> aligned" in out and sentence in out and "1 of 3 gaps changed significantly" in out
    assert 'id="verdict"' in page and '<meta name="generator" content="globalign ' in page
    # every section the run has: the dialect bars and gap forest, the opinion map, the item browser, methods
    for anchor in ('id="axis-dialects"', 'id="axis-opinions"', 'class="map"', 'id="items"', 'id="methods"'):
        assert anchor in page
    assert page.count("<svg") >= 4


def test_the_verdict_is_one_row_per_family_and_one_cell_per_axis(tmp_path, capsys):
    runs = [write_payload_run(tmp_path / "a", base="a/base", aligned="a/chat", family_name="A -> A Chat"),
            write_payload_run(tmp_path / "b", base="b/base", aligned="b/chat", family_name="B -> B Chat", p=0.4)]
    code, out, err = _report([*runs, "--output", tmp_path / "r.html"], capsys)
    assert code == 0, err
    page = (tmp_path / "r.html").read_text("utf-8")
    grid = page[page.index('<table class="vgrid">'):page.index("</table>", page.index('<table class="vgrid">'))]
    heads = re.findall(r'<th scope="(?:col|row)">(.*?)</th>', grid)
    assert heads == ["family: base -&gt; last", "dialects", "opinions",
                     '<b>A -&gt; A Chat</b><span class="pair">base -&gt; chat</span>',
                     '<b>B -&gt; B Chat</b><span class="pair">base -&gt; chat</span>']
    rows = grid.split("<tr>")[2:]
    assert [row.count("<td") for row in rows] == [2, 2]
    # A's dialect cell is significant (bold on a tint), B's is muted; no cell repeats its row's family
    assert re.findall(r'<td class="(\w+)">', grid) == ["sig", "ns", "ns", "ns"]
    assert "widened the US-Indian English gap (choice scores): +8.0 points, 95% CI [5.0, 11.0], p_holm = 0.001" in rows[0]
    assert "no significant change in any of the 3 choice-score gaps" in rows[1]
    assert "A Chat: " not in re.sub(r'title="[^"]*"', "", grid)
    # the whole sentences stay: on the console, in each cell's title and in the folded list under the grid
    sentence = "A -> A Chat: base -> chat widened the US-Indian English gap (choice scores) by 8.0 points"
    assert sentence in out and f'title="{sentence.replace(">", "&gt;")}' in grid
    assert f"<li class=\"sig\">{sentence.replace('>', '&gt;')}" in page


def test_nothing_significant_is_said_in_words(tmp_path, capsys):
    run = write_payload_run(tmp_path / "run", p=0.4)
    code, out, _ = _report([run, "--output", tmp_path / "r.html"], capsys)
    assert code == 0
    assert "no significant change in any of the 3 choice-score gaps" in out
    assert "Nothing changed significantly" in (tmp_path / "r.html").read_text("utf-8")


def test_text_from_data_is_escaped_and_never_reaches_a_script(tmp_path, capsys):
    run = write_payload_run(tmp_path / "run")
    assert _report([run, "--output", tmp_path / "r.html"], capsys)[0] == 0
    page = (tmp_path / "r.html").read_text("utf-8")
    assert page.count("<script") == 1  # the page's own filter, nothing planted
    assert "<img" not in page and "PWNED-script'</script>" not in page
    assert "&lt;script&gt;document.title=&#x27;PWNED-script&#x27;&lt;/script&gt;" in page
    script = page[page.index("<script>"):]
    assert "PWNED" not in script and "evil" not in script
    for planted in (EVIL_MODEL, EVIL_COUNTRY, EVIL_OUTPUT, SCRIPT_PAYLOAD):
        assert planted not in page


def test_one_file_that_opens_offline(tmp_path, capsys):
    run = write_payload_run(tmp_path / "run")
    _report([run, "--output", tmp_path / "r.html"], capsys)
    page = (tmp_path / "r.html").read_text("utf-8")
    # no external reference: no src=/href= to a URL, no @import, no CDN
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "<link" not in page
    assert "default-src 'none'" in page


def test_an_earlier_report_is_replaced_and_anything_else_refused(tmp_path, capsys):
    run = write_payload_run(tmp_path / "run")
    target = tmp_path / "r.html"
    assert _report([run, "--output", target], capsys)[0] == 0
    assert _report([run, "--output", target], capsys)[0] == 0  # a globalign report: replaced
    other = tmp_path / "notes.html"
    other.write_text("<html>my notes</html>")
    code, _, err = _report([run, "--output", other], capsys)
    assert code == 2 and err == [(f"globalign: error: {other}: exists and is not a globalign report; choose another "
                                 "--output")]
    assert other.read_text() == "<html>my notes</html>"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


@pytest.mark.parametrize("damage", ["not_a_run", "future_version", "no_metrics", "audit_as_run", "bad_number"])
def test_bad_input_is_one_line_naming_the_file_and_no_report(tmp_path, capsys, damage):
    run = write_payload_run(tmp_path / "run")
    manifest = run / "manifest.json"
    if damage == "not_a_run":
        run = tmp_path / "plain"
        run.mkdir()
        (run / "data.csv").write_text("a,b\n")
        expected = f"{run}: not a globalign run folder (no manifest.json)"
    elif damage == "future_version":
        data = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**data, "schema_version": 99}))
        expected = f"{run}: run folder schema version 99"
    elif damage == "no_metrics":
        (run / "metrics.csv").unlink()
        expected = f"{run / 'metrics.csv'}: missing"
    elif damage == "audit_as_run":
        data = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**data, "schema": "globalign.audit"}))
        expected = f"{run}: an audit folder; pass it with --audit"
    else:
        rows = list(csv.reader((run / "comparisons.csv").open(newline="")))
        rows[1][5] = "zero"  # the delta
        with (run / "comparisons.csv").open("w", newline="") as handle:
            csv.writer(handle).writerows(rows)
        expected = f"{run / 'comparisons.csv'}:2: not a number"
    code, out, err = _report([run, "--output", tmp_path / "r.html"], capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith(f"globalign: error: {expected}"), err
    assert not (tmp_path / "r.html").exists() and out == ""


def test_folders_are_combined_by_task_and_a_task_model_twice_is_an_error(tmp_path, capsys):
    one = write_payload_run(tmp_path / "one", base="fam1/base", aligned="fam1/aligned")
    two = write_payload_run(tmp_path / "two", base="fam2/base", aligned="fam2/aligned")
    code, out, err = _report([one, two, "--output", tmp_path / "r.html"], capsys)
    assert code == 0, err
    assert "fam1/base -> fam1/aligned" not in out  # short names in sentences
    assert out.count("base -> aligned") >= 2
    shutil.copytree(one, tmp_path / "copy")
    code, _, err = _report([one, tmp_path / "copy", "--output", tmp_path / "r2.html"], capsys)
    assert code == 2 and err == [(f"globalign: error: {tmp_path / 'copy' / 'metrics.csv'}: task 'md3' of model "
                                 f"'fam1/base' is also in {one}; give each (task, model) once")]
    assert not (tmp_path / "r2.html").exists()


def test_one_model_under_two_names_is_an_error(tmp_path, capsys):
    one = write_payload_run(tmp_path / "one", base="m/base", aligned="m/aligned")
    # the same weights (fingerprint) as one's base, under another name
    two = write_payload_run(tmp_path / "two", base="other/name", aligned="m/aligned2", fingerprint="fp-m/base")
    data = json.loads((two / "manifest.json").read_text())
    data["models"][1]["fingerprint"] = "fp-m/aligned2"
    (two / "manifest.json").write_text(json.dumps(data))
    code, _, err = _report([one, two, "--output", tmp_path / "r.html"], capsys)
    assert code == 2 and err == [(f"globalign: error: {two / 'manifest.json'}: model 'other/name' is 'm/base' in "
                                 f"{one} (same weights under two names); rerun one of them with the same --model name")]


def test_a_folder_given_twice_and_a_missing_folder_are_errors(tmp_path, capsys):
    run = write_payload_run(tmp_path / "run")
    assert _report([run, run, "--output", tmp_path / "r.html"], capsys)[2] == [
        f"globalign: error: {run}: given twice"]
    assert _report([tmp_path / "nope", "--output", tmp_path / "r.html"], capsys)[2] == [
        f"globalign: error: {tmp_path / 'nope'}: no such run folder"]


def test_audit_folder_adds_the_data_audit_section(tmp_path, capsys):
    run = write_payload_run(tmp_path / "run")
    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "manifest.json").write_text(json.dumps({"schema": "globalign.audit", "schema_version": 1,
                                                     "source": "sft.jsonl"}))
    (audit / "languages.csv").write_text(
        "language,role,count,share,rule\nen,all,90,0.9,agree\nsw,all,10,0.1,agree\nen,all,95,0.9,cld2\n"
        "sw,all,12,0.11,cld2\nsw,all,3,0.25,dropped_cld2\n")
    (audit / "countries.csv").write_text(f"country,count,share\nKenya,5,0.5\nIndia,4,0.4\n\"{EVIL_COUNTRY}\",1,0.1\n")
    code, _, err = _report([run, "--audit", audit, "--output", tmp_path / "r.html"], capsys)
    assert code == 0, err
    page = (tmp_path / "r.html").read_text("utf-8")
    assert 'id="audit"' in page and "What the agreement rule drops" in page and "Country mentions" in page
    assert page.count("<script") == 1
    (audit / "languages.csv").unlink()
    code, _, err = _report([run, "--audit", audit, "--output", tmp_path / "r2.html"], capsys)
    assert code == 2 and err == [f"globalign: error: {audit / 'languages.csv'}: missing; the audit folder is incomplete"]
