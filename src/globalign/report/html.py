"""`globalign report`: run folders (and audit folders) -> one self-contained HTML file (docs/report.md).

The page opens from disk with no network: CSS inline, charts and maps inline SVG (matplotlib), and a
few lines of vanilla JavaScript for the item browser's filter. Every text from data (model outputs,
model, country and group names, manifest notes) is escaped with html.escape; no data enters a script
or style context (the filter reads data-* attributes).

The file is written to a temporary sibling and renamed at the end, so a failure leaves no partial
report; an existing file is replaced only when it is a globalign report (its generator meta tag).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from globalign import __version__
from globalign.errors import GlobalignError, first_line
from globalign.report.inputs import ReportInputs, read_inputs
from globalign.report.intervention import EFFECT_METRIC, EFFECT_TASK, intervention_section
from globalign.report.items import Flip, flips
from globalign.report.labels import group_name, scale
from globalign.report.sections import audit_section, esc, task_section
from globalign.report.verdict import Verdict, family_verdicts, headline_pairs, nothing_significant

GENERATOR = "globalign"  # <meta name="generator" content="globalign VERSION report">
AXIS_ORDER = ("dialects", "languages", "opinions", "country preferences")
MANIFEST_CHARS = 20_000

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#222;background:#fafafa}
header,main{max-width:1200px;margin:0 auto;padding:0 16px}
header{padding-top:16px}h1{font-size:22px;margin:8px 0}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}
nav a{margin-right:12px}.verdict{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 16px}
.verdict li{margin:4px 0}.sig{font-weight:600}
.vgrid{table-layout:fixed;font-size:12px;line-height:1.3;margin-top:4px}.vgrid th,.vgrid td{overflow-wrap:anywhere}.vgrid thead th:first-child{width:15%}
.vgrid th[scope=row]{background:#f7f7f7}.vgrid .pair{display:block;font-weight:400;color:#555;font-size:11px}
.vgrid td.sig{background:#fff4e0;color:#222}.vgrid td.ns,.vgrid td.none,.vgrid div.ns{color:#888;font-weight:400}
.vgrid td div+div{margin-top:3px}.verdict details{margin:4px 0 8px;font-size:12px}
figure{margin:12px 0;background:#fff;border:1px solid #eee;padding:8px;overflow-x:auto}
figure svg{max-width:100%;height:auto}figcaption{color:#555;font-size:12px}
table{border-collapse:collapse;font-size:12px;width:100%}td,th{border:1px solid #ddd;padding:3px 5px;vertical-align:top}
th{background:#f0f0f0;text-align:left}td.t{white-space:pre-wrap;max-width:320px;word-break:break-word}
.src{color:#666;font-size:12px}pre{white-space:pre-wrap;word-break:break-word;font-size:11px;background:#fff;padding:8px}
.filters{margin:8px 0}.filters select,.filters input{margin-right:8px}
"""

# The filter reads only data-* attributes and sets `hidden`: no data string is ever parsed as HTML.
# The last lines record, for the browser test and for readers, how long the page took, each SVG's size and
# the verdict's height.
_JS = """
(function(){
  var rows=[].slice.call(document.querySelectorAll('#items tbody tr'));
  var task=document.getElementById('f-task'),pair=document.getElementById('f-pair'),grp=document.getElementById('f-group');
  function apply(){var t=task.value,p=pair.value,g=grp.value.trim().toLowerCase(),shown=0;
    rows.forEach(function(r){var ok=(!t||r.dataset.task===t)&&(!p||r.dataset.pair===p)&&
      (!g||r.dataset.group.toLowerCase().indexOf(g)>=0);r.hidden=!ok;if(ok)shown++;});
    document.getElementById('f-count').textContent=shown+' of '+rows.length+' items';}
  [task,pair].forEach(function(e){e.addEventListener('change',apply);});grp.addEventListener('input',apply);apply();
  window.addEventListener('load',function(){
    var svgs=[].slice.call(document.querySelectorAll('figure svg'));
    svgs.forEach(function(s){var b=s.getBoundingClientRect();s.setAttribute('data-rendered',
      Math.round(b.width)+'x'+Math.round(b.height)+'x'+s.querySelectorAll('path,use,rect,text').length);});
    document.body.setAttribute('data-render-ms',String(Math.round(performance.now())));
    document.body.setAttribute('data-svg-count',String(svgs.length));
    var v=document.getElementById('verdict');
    if(v)document.body.setAttribute('data-verdict-px',String(Math.round(v.getBoundingClientRect().height)));});
})();
"""


_VERDICT_LEGEND = ('<p class="src">Bold on a tint: a significant change (p_holm &lt; 0.05, Holm across the groups '
                   "of one task, metric and pair); grey: no significant change, or rank correlations (not a test). "
                   "Each cell names the group with the smallest p_holm; hover it for its sentence.</p>")


def _verdict_cell(found: Sequence[Verdict]) -> str:
    if not found:
        return '<td class="none">&ndash;</td>'
    titled = len({v.task for v in found}) > 1  # an axis with two tasks (AskReddit and where-from)
    entries = "".join(f'<div class="{"sig" if v.significant else "ns"}" title="{esc(v.text)}">'
                      + (f"<i>{esc(v.title)}:</i> " if titled else "") + f"{esc(v.cell)}</div>" for v in found)
    return f'<td class="{"sig" if any(v.significant for v in found) else "ns"}">{entries}</td>'


def _verdict_html(verdicts: Sequence[Verdict], axes: Sequence[str]) -> str:
    """One row per family (its name and base -> last models once), one cell per axis with its short
    findings: significant ones bold on a tint, the rest muted. The full sentences follow, folded."""
    if not verdicts:
        return '<p class="verdict">No compared pairs in these run folders: nothing to conclude.</p>'
    columns = list(dict.fromkeys([*(a for a in axes if any(v.axis == a for v in verdicts)),
                                  *(v.axis for v in verdicts)]))
    rows: dict[tuple[str, str], dict[str, list[Verdict]]] = {}
    for v in verdicts:
        rows.setdefault((v.family, v.row), {}).setdefault(v.axis, []).append(v)
    body = []
    for (family, pair), cells in rows.items():
        head = (f'<b>{esc(family)}</b><span class="pair">{esc(pair)}</span>' if family and pair
                else f"<b>{esc(pair or 'models in no pair')}</b>")
        body.append(f'<tr><th scope="row">{head}</th>{"".join(_verdict_cell(cells.get(a, [])) for a in columns)}</tr>')
    heads = "".join(f'<th scope="col">{esc(a)}</th>' for a in columns)
    grid = (f'<table class="vgrid"><thead><tr><th scope="col">family: base -&gt; last</th>{heads}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')
    out = [grid, _VERDICT_LEGEND]
    if nothing_significant(verdicts):
        out.append("<p><b>Nothing changed significantly</b> after Holm correction in any family and axis.</p>")
    sentences = "".join(f'<li class="{"sig" if v.significant else "ns"}">{esc(v.text)}</li>' for v in verdicts)
    out.append(f"<details><summary>The verdict as sentences</summary><ul>{sentences}</ul></details>")
    return '<div class="verdict" id="verdict">' + "".join(out) + "</div>"


def _item_browser(items: Sequence[Flip]) -> str:
    if not items:
        return "<p>No per-item records with a changed score (samples.jsonl absent or no pair compared).</p>"
    tasks = list(dict.fromkeys(f.task for f in items))
    pairs = list(dict.fromkeys(f"{f.model_a} -> {f.model_b}" for f in items))
    opts = lambda values: "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
    head = ('<div class="filters"><label>task <select id="f-task"><option value="">all</option>'
            f'{opts(tasks)}</select></label><label>pair <select id="f-pair"><option value="">all</option>'
            f'{opts(pairs)}</select></label><label>group <input id="f-group" placeholder="e.g. sw, en_ng">'
            '</label><span id="f-count"></span></div>')
    rows = []
    for f in items:
        score = "" if f.score_a != f.score_a else f"{f.score_a:.2f} -> {f.score_b:.2f}"
        rows.append(f'<tr data-task="{esc(f.task)}" data-pair="{esc(f.model_a + " -> " + f.model_b)}" '
                    f'data-group="{esc(f.group)}"><td>{esc(f.task)}</td><td>{esc(f.model_a)} -&gt; {esc(f.model_b)}'
                    f'</td><td>{esc(group_name(f.group))}</td><td>{esc(f.item_id)}</td><td class="t">{esc(f.prompt)}</td>'
                    f'<td class="t">{esc(f.answer_a)}</td><td class="t">{esc(f.answer_b)}</td>'
                    f'<td class="t">{esc(f.gold)}</td><td>{esc(score)}</td></tr>')
    return (head + '<table id="items"><thead><tr><th>task</th><th>pair</th><th>group</th><th>item</th>'
            '<th>prompt / question</th><th>earlier answer</th><th>later answer</th><th>gold</th><th>score</th></tr>'
            '</thead><tbody>' + "".join(rows) + "</tbody></table>")


_METHODS = """<ul>
<li>Every value carries a 95% percentile-bootstrap CI over items (seeded); n is the number of items.</li>
<li>Every comparison is paired on the same items (model_b - model_a): exact McNemar for 0/1 outcomes, a
sign-flip permutation test for continuous scores, a paired stratified bootstrap and label-swap permutation
test for changes in a gap.</li>
<li>Multiple comparisons: Holm-Bonferroni within one task, metric and pair, across its groups;
<i>significant</i> means p_holm &lt; 0.05.</li>
<li>Country orders: Spearman's rho of mean ranks, CI from resampling questions.</li>
<li>Full description: docs/statistics.md in the globalign repository.</li></ul>"""


def _methods(inputs: ReportInputs) -> str:
    parts = [_METHODS]
    for run in inputs.runs:
        m = run.manifest
        notes = "".join(f"<li>{esc(n)}</li>" for n in (m.get("notes") or []))
        packages = ", ".join(f"{esc(k)} {esc(v)}" for k, v in (m.get("packages") or {}).items())
        text = json.dumps(m, indent=1, ensure_ascii=False, default=str)
        if len(text) > MANIFEST_CHARS:
            text = text[:MANIFEST_CHARS] + f"\n... ({len(text) - MANIFEST_CHARS} more characters in manifest.json)"
        parts.append(f"<h3>{esc(run.path)}</h3><p>globalign {esc(m.get('globalign_version', '?'))}, created "
                     f"{esc(m.get('created', '?'))}, data {esc(m.get('data_dir', '?'))}; {packages}</p>"
                     + (f"<p>Notes:</p><ul>{notes}</ul>" if notes else "")
                     + f"<details><summary>manifest.json</summary><pre>{esc(text)}</pre></details>")
    return "".join(parts)


def build_html(inputs: ReportInputs) -> tuple[str, list[Verdict]]:
    """The whole page, and its verdict sentences."""
    verdicts = family_verdicts(inputs)
    axes = list(dict.fromkeys([*(a for a in AXIS_ORDER if any(t.declaration.axis == a for t in inputs.tasks.values())),
                               *(t.declaration.axis for t in inputs.tasks.values())]))
    body, nav = [], []
    for axis in axes:
        anchor = "axis-" + "-".join(axis.split())
        nav.append(f'<a href="#{esc(anchor)}">{esc(axis)}</a>')
        sections = "".join(task_section(inputs, t) for t in inputs.tasks.values() if t.declaration.axis == axis)
        body.append(f'<section id="{esc(anchor)}"><h2>{esc(axis.capitalize())}</h2>{sections}</section>')
    if inputs.interventions:
        rows = [r for t in inputs.tasks.values() for r in t.comparisons]
        effect = inputs.tasks.get(EFFECT_TASK)
        factor, unit = scale(effect.declaration.units.get(EFFECT_METRIC, "") if effect else "")
        nav.insert(0, '<a href="#intervention">intervention</a>')
        body.insert(0, "".join(intervention_section(m, rows, factor, unit) for m in inputs.interventions))
    if inputs.audits:
        nav.append('<a href="#audit">data audit</a>')
        body.append('<section id="audit"><h2>Data audit</h2>' + "".join(audit_section(a) for a in inputs.audits)
                    + "</section>")
    pairs = [*headline_pairs(inputs), *(c for c in inputs.comparisons if c.kind != "whole")]
    pairs = list({c.pair: c for c in pairs}.values())
    items = [f for t in inputs.tasks.values() for f in flips(t, pairs)]
    nav += ['<a href="#items-section">item browser</a>', '<a href="#methods">methods</a>']
    models = ", ".join(esc(m) for m in inputs.models)
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="generator" content="{GENERATOR} {esc(__version__)} report">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<title>globalign report</title><style>{_CSS}</style></head><body>"
        f"<header><h1>What alignment did: globalign report</h1><p class=\"src\">{len(inputs.tasks)} tasks, "
        f"{len(inputs.models)} models ({models})</p><nav>{''.join(nav)}</nav></header><main>"
        f"<section id=\"verdicts\"><h2>Verdict</h2>{_verdict_html(verdicts, axes)}</section>"
        + "".join(body)
        + f'<section id="items-section"><h2>Item browser</h2><p>The largest changes from one stage to the next '
          f"(up to 50 per task and pair; the rest are in samples.jsonl).</p>{_item_browser(items)}</section>"
        + f'<section id="methods"><h2>Methods</h2>{_methods(inputs)}</section></main>'
        + f"<script>{_JS}</script></body></html>"
    )
    return page, verdicts


def _check_target(output: Path) -> None:
    if output.is_dir():
        raise GlobalignError(f"{output}: is a folder; name the report file to write (e.g. --output report.html)")
    if output.exists() or output.is_symlink():
        try:
            head = output.read_bytes()[:4096].decode("utf-8", "replace") if not output.is_symlink() else ""
        except OSError as exc:
            raise GlobalignError(f"{output}: cannot read it ({first_line(exc)}); choose another --output") from None
        if f'name="generator" content="{GENERATOR} ' not in head:
            raise GlobalignError(f"{output}: exists and is not a globalign report; choose another --output")
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise GlobalignError(f"{output}: the folder {parent} does not exist")


def write_report(html: str, output: Path) -> int:
    """Write atomically (temporary sibling, then rename); returns the size in bytes."""
    _check_target(output)
    handle, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(html)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return output.stat().st_size


def report(run_dirs: Sequence[Path], output: Path, audit_dirs: Sequence[Path] = ()) -> tuple[list[Verdict], int, float]:
    """Read, check, draw and write; (verdicts, size in bytes, seconds). Nothing is written on error."""
    started = time.perf_counter()
    _check_target(output)  # before the slow part
    inputs = read_inputs(run_dirs, audit_dirs)
    page, verdicts = build_html(inputs)
    size = write_report(page, output)
    return verdicts, size, time.perf_counter() - started
