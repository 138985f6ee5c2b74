"""Small run folders for the report tests, written through the real output writer, with script payloads
planted in a model name, a country name and a model output."""

from __future__ import annotations

from pathlib import Path

from globalign.families import comparisons, one_family
from globalign.records import ComparisonRow, MetricRow, SampleRecord
from globalign.store.output import write_run_folder
from globalign.tasks.declarations import declaration

# Each payload would leave a mark if it ran: the browser test looks for the marks.
SCRIPT_PAYLOAD = "<script>document.title='PWNED-script'</script>"
ONERROR_PAYLOAD = "<img src=x onerror=\"document.body.setAttribute('data-pwned','onerror')\">"
EVIL_MODEL = f"evil/aligned{ONERROR_PAYLOAD}"
EVIL_COUNTRY = f"Atlantis{SCRIPT_PAYLOAD}"
EVIL_OUTPUT = f"Spring{ONERROR_PAYLOAD}{SCRIPT_PAYLOAD}"
COUNTRIES = ("United States", "China", "Jordan", "Nigeria", "Brazil", "Germany", "Australia", "India", "Japan",
             "France", "Canada", "Mexico", "Egypt", "Kenya", "Peru", "Chile", "Spain", "Italy", "Turkey", "Iran",
             "Indonesia", "Pakistan", EVIL_COUNTRY)


def _metric(task, model, group, metric, value, n=100, width=0.05):
    return MetricRow(task, model, group, metric, value, value - width, value + width, n)


def write_payload_run(path: Path, *, base: str = "demo/base", aligned: str = EVIL_MODEL, effect: float = 0.08,
                      p: float = 0.001, fingerprint: str | None = None, family_name: str | None = None) -> Path:
    """A two-model run with an md3-like dialect task and a global_opinions-like country task: the aligned
    model widens the US-Indian gap by `effect` (Holm-adjusted p = `p`)."""
    family = one_family([base, aligned], *([family_name] if family_name else []))
    metrics, comps, samples = [], [], []
    for i, model in enumerate((base, aligned)):
        for group, acc in (("all", 0.5), ("en_in", 0.45), ("en_ng", 0.5), ("en_us", 0.55)):
            metrics.append(_metric("md3", model, group, "choice_accuracy", acc - (i * effect if group == "en_in" else 0)))
        for j, country in enumerate(COUNTRIES):
            metrics.append(_metric("global_opinions", model, country, "similarity", 0.6 + 0.01 * j - 0.02 * i))
            metrics.append(_metric("global_opinions", model, country, "relative_agreement", -0.01 * j))
        for item in range(6):
            group = ("en_in", "en_ng", "en_us")[item % 3]
            correct = int(i == 0 or item % 2 == 0)
            samples.append(SampleRecord("md3", model, str(item), group, "h", EVIL_OUTPUT if i else "Spring", None,
                                        {"choice_correct": correct},
                                        {"secret_word": "Spring", "transcript": f"Speaker0: a season{SCRIPT_PAYLOAD}"}))
    for group in ("all", "en_in", "en_ng", "en_us"):
        delta = -effect if group == "en_in" else 0.0
        comps.append(ComparisonRow("md3", group, "choice_accuracy", base, aligned, delta, delta - 0.03, delta + 0.03,
                                   p if delta else 0.9, p if delta else 1.0, "McNemar exact", 100))
    for group in ("en_us-en_in", "en_us-en_ng", "range"):
        delta = effect if group == "en_us-en_in" else 0.01
        comps.append(ComparisonRow("md3", group, "choice_gap_change", base, aligned, delta, delta - 0.03,
                                   delta + 0.03, p if group == "en_us-en_in" else 0.5,
                                   p if group == "en_us-en_in" else 0.8, "paired label-swap permutation", 300))
    for country in COUNTRIES[:7]:
        comps.append(ComparisonRow("global_opinions", country, "relative_agreement", base, aligned, 0.01, -0.01,
                                   0.03, 0.3, 0.9, "paired sign-flip permutation", 245))
    models = [{"name": m, "fingerprint": fingerprint or f"fp-{m}", "source": f"src-{m}"} for m in (base, aligned)]
    manifest = {"globalign_version": "test", "models": models, "families": [family.to_json()],
                "comparisons": [c.to_json() for c in comparisons([family])],
                "tasks": {t: {"declaration": declaration(t)} for t in ("md3", "global_opinions")},
                "notes": [f"note with {SCRIPT_PAYLOAD}"], "packages": {"globalign": "test"}}
    write_run_folder(path, manifest, metrics, comps, samples)
    return path
