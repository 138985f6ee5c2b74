"""The report's charts as inline SVG text, drawn with matplotlib (docs/report.md: offline, no JavaScript,
the same library the maps use). Each function takes plain numbers and labels and returns an `<svg>`
element; text in labels is escaped by matplotlib's SVG writer, so a model name cannot become markup.

Deterministic: a fixed hash salt and no date, so the same input gives the same SVG.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# text.parse_math off: a "$" in a model or country name must stay text, not become mathtext.
_RC = {"svg.hashsalt": "globalign-report", "svg.fonttype": "none", "font.family": "DejaVu Sans", "font.size": 9,
       "text.parse_math": False}
SIGNIFICANT = 0.05


@dataclass(frozen=True)
class Interval:
    label: str
    value: float
    low: float
    high: float
    significant: bool = False


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _svg(fig) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": "globalign"})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _short(name: str, width: int = 28) -> str:
    """A model name as a label: the part after the last '/', cut to `width` characters."""
    tail = name.rsplit("/", 1)[-1]
    return tail if len(tail) <= width else tail[: width - 1] + "…"


def _err(values: Sequence[float], lows: Sequence[float], highs: Sequence[float]) -> np.ndarray:
    v, lo, hi = (np.asarray(x, dtype=float) for x in (values, lows, highs))
    return np.nan_to_num(np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)]))


def grouped_bars(series: Mapping[str, Sequence[Interval]], groups: Sequence[str], *, title: str, ylabel: str,
                 scale: float = 1.0) -> str:
    """Bars per group (x) and series (one colour per model), each with its 95% CI as an error bar."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        n = max(len(series), 1)
        fig = _figure(min(2.0 + len(groups) * (0.35 + 0.16 * n), 14), 3.6)
        ax = fig.add_subplot()
        width = 0.8 / n
        colours = matplotlib.colormaps["tab20" if n > 10 else "tab10"]
        x = np.arange(len(groups))
        for i, (name, cells) in enumerate(series.items()):
            by_group = {c.label: c for c in cells}
            vals = [scale * by_group[g].value if g in by_group else math.nan for g in groups]
            lows = [scale * by_group[g].low if g in by_group else math.nan for g in groups]
            highs = [scale * by_group[g].high if g in by_group else math.nan for g in groups]
            ax.bar(x + (i - (n - 1) / 2) * width, vals, width, yerr=_err(vals, lows, highs), capsize=1.5,
                   label=_short(name), color=colours(i % colours.N), error_kw={"linewidth": 0.7})
        ax.set_xticks(x, list(groups), rotation=30 if len(groups) > 6 else 0, ha="right" if len(groups) > 6 else "center")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.axhline(0, color="#444444", linewidth=0.6)
        ax.legend(fontsize=7, ncol=min(n, 4), loc="upper center", bbox_to_anchor=(0.5, -0.18 if len(groups) <= 6 else -0.3),
                  frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return _svg(fig)


def forest(panels: Mapping[str, Sequence[Interval]], *, title: str, xlabel: str, scale: float = 1.0) -> str:
    """One panel per comparison: each row a group's paired difference with its 95% CI; a filled dot is
    significant after Holm (p_holm < 0.05), an open one is not."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        names = list(panels)
        cols = min(3, max(len(names), 1))
        rows = math.ceil(len(names) / cols) if names else 1
        height = max(len(p) for p in panels.values()) if panels else 1
        fig = _figure(4.2 * cols, rows * (0.8 + 0.22 * height) + 0.4)
        for i, name in enumerate(names):
            ax = fig.add_subplot(rows, cols, i + 1)
            cells = list(panels[name])
            y = np.arange(len(cells))[::-1]
            vals = [scale * c.value for c in cells]
            err = _err(vals, [scale * c.low for c in cells], [scale * c.high for c in cells])
            ax.errorbar(vals, y, xerr=err, fmt="none", ecolor="#555555", elinewidth=0.8, capsize=1.5)
            sig = [c.significant for c in cells]
            ax.scatter([v for v, s in zip(vals, sig) if s], [yy for yy, s in zip(y, sig) if s], color="#c0392b",
                       zorder=3, s=16, label="p_holm < 0.05")
            ax.scatter([v for v, s in zip(vals, sig) if not s], [yy for yy, s in zip(y, sig) if not s],
                       facecolors="white", edgecolors="#555555", zorder=3, s=16, label="not significant")
            ax.axvline(0, color="#999999", linewidth=0.7)
            ax.set_yticks(y, [c.label for c in cells])
            ax.set_title(name, fontsize=8)
            ax.set_xlabel(xlabel, fontsize=8)
            ax.spines[["top", "right"]].set_visible(False)
        fig.suptitle(title)
        fig.tight_layout()
        return _svg(fig)


def rank_scatter(panels: Mapping[str, tuple[Sequence[str], Sequence[float], float]], *, title: str,
                 reference: str) -> str:
    """Small multiples: x = the reference list's position of each country, y = the model's rank of it
    (by mean rank among the listed countries); the panel title carries the model's Spearman rho."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        names = list(panels)
        cols = min(4, max(len(names), 1))
        rows = math.ceil(len(names) / cols) if names else 1
        fig = _figure(3.0 * cols, 2.8 * rows + 0.4)
        for i, name in enumerate(names):
            countries, model_ranks, rho = panels[name]
            ax = fig.add_subplot(rows, cols, i + 1)
            pos = np.arange(1, len(countries) + 1)
            ax.scatter(pos, model_ranks, s=10, color="#2c7fb8")
            ax.plot([1, len(pos)], [1, len(pos)], color="#bbbbbb", linewidth=0.7)
            ax.set_title(f"{_short(name, 24)}\nrho = {rho:.2f}", fontsize=8)
            ax.set_xlabel(f"{reference} position", fontsize=7)
            ax.set_ylabel("model's rank", fontsize=7)
            ax.invert_yaxis()
        fig.suptitle(title)
        fig.tight_layout()
        return _svg(fig)


def heatmap(matrix: np.ndarray, labels: Sequence[str], *, title: str, colourbar: str) -> str:
    """A symmetric model x model matrix (NaN = not compared), the value written in each cell."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        n = len(labels)
        fig = _figure(2.5 + 0.45 * n, 1.8 + 0.4 * n)
        ax = fig.add_subplot()
        image = ax.imshow(np.ma.masked_invalid(matrix), cmap="viridis", vmin=-1 if np.nanmin(matrix) < 0 else 0,
                          vmax=1)
        short = [_short(m, 22) for m in labels]
        ax.set_xticks(range(n), short, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(n), short, fontsize=7)
        for i in range(n):
            for j in range(n):
                if np.isfinite(matrix[i, j]):
                    ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if matrix[i, j] < 0.6 else "black")
        fig.colorbar(image, ax=ax, label=colourbar, shrink=0.8)
        ax.set_title(title)
        return _svg(fig)


def hbars(series: Mapping[str, Mapping[str, float]], labels: Sequence[str], *, title: str, xlabel: str,
          scale: float = 100.0) -> str:
    """Horizontal bars per label (y) and series (colours): shares under each rule, say."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        n = max(len(series), 1)
        fig = _figure(6.5, 0.8 + 0.28 * len(labels) * max(1, n / 2))
        ax = fig.add_subplot()
        y = np.arange(len(labels))[::-1]
        height = 0.8 / n
        for i, (name, values) in enumerate(series.items()):
            ax.barh(y + (i - (n - 1) / 2) * height, [scale * values.get(lab, math.nan) for lab in labels], height,
                    label=name)
        ax.set_yticks(y, list(labels))
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.legend(fontsize=7, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        return _svg(fig)
