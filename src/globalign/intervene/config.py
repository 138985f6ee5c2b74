"""The typed configuration of `globalign intervene` (YAML) and its validation.

Example (examples/intervention_languages.yaml is the full one):
    base: gemma-3-270m                 # any model `run` accepts in HF form: alias, HF folder, hub id
    output: out/intervention
    split: {seed: 221, eval_fraction: 0.5}       # TyDi QA articles held out for evaluation
    recipe: {lora_r: 16, epochs: 1, learning_rate: 2.0e-4, max_length: 256, batch_size: 4}
    arms:
      english:
        size: 108
        mix: [{source: tydiqa, languages: [en], share: 1.0, max_context_chars: 700}]
      multilingual:
        size: 108
        mix: [{source: tydiqa, languages: all, share: 1.0, max_context_chars: 700}]
    evaluation:                        # the fields of a `run` config, less models and output
      tasks: [{name: tydiqa, limit: 180, max_context_chars: 700}]

An arm may override recipe fields (`recipe:` inside the arm, e.g. `method: dpo`) and its seed. The TyDi QA
task of the evaluation always runs on the held-out side of the split (`split: eval`): no evaluated question
shares an article with a training example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from globalign.config import RunConfig, load_config_file, parse_config
from globalign.data.tydiqa import CODE_BY_NAME, LANGUAGES
from globalign.errors import ConfigError
from globalign.intervene.mix import MixEntry, MixSpec
from globalign.intervene.split import ArticleSplit
from globalign.intervene.train import Recipe
from globalign.models.resolve import ModelSpec

FIELDS = {"base", "output", "data_dir", "seed", "split", "recipe", "arms", "evaluation", "threads"}
ARM_FIELDS = {"size", "mix", "seed", "recipe"}
ENTRY_FIELDS = {"source", "share", "languages", "path", "max_context_chars"}
SOURCES = ("tydiqa", "tydiqa_preference", "file")
EVAL_FIELDS = {"tasks", "limit", "seed", "prompt_format", "stats", "batch_size", "cache"}
BASE_FIELDS = {"name", "dtype", "revision", "threads", "batch_size"}
_ARM_NAME = re.compile(r"^[A-Za-z][\w-]{0,39}$")  # a folder name and a family name
RUN_SUBDIR = "run"  # the evaluation's run folder inside the intervention folder


@dataclass(frozen=True)
class Arm:
    name: str
    mix: MixSpec
    recipe: Recipe


@dataclass(frozen=True)
class InterventionConfig:
    base: ModelSpec
    arms: tuple[Arm, ...]
    split: ArticleSplit
    evaluation: dict[str, Any]  # the run config's fields (tasks, limit, ...), validated by config.parse_config
    output: Path
    data_dir: str | None = None
    seed: int = 221
    threads: int | None = None
    source: str = ""  # where the config came from (errors, manifest)
    raw: dict[str, Any] = field(default_factory=dict, compare=False)  # as written, for the manifest

    def arm_dir(self, arm: str) -> Path:
        return self.output / "arms" / arm

    def adapter_dir(self, arm: str) -> Path:
        # named after the arm: the report and the verdicts name a model by its folder's last part
        return self.output / "adapters" / arm

    @property
    def run_dir(self) -> Path:
        return self.output / RUN_SUBDIR

    def eval_config(self, adapters: dict[str, str] | None = None) -> RunConfig:
        """The evaluation run: one family per arm (base -> tuned), and every pair compared: base vs each
        arm, and arm vs arm. `adapters` maps an arm to its adapter folder (default: where intervene writes it)."""
        adapters = adapters or {a.name: str(self.adapter_dir(a.name)) for a in self.arms}
        base = self.base.name
        families = {arm.name: {"base": _base_entry(self.base), arm.name: adapters[arm.name]} for arm in self.arms}
        names = [adapters[a.name] for a in self.arms]
        compare = [[base, n] for n in names] + [[a, b] for i, a in enumerate(names) for b in names[i + 1:]]
        raw = {**self.evaluation, "families": families, "compare": compare, "output": str(self.run_dir),
               "data_dir": self.data_dir,
               "tasks": [_held_out(t, self.split, self.source) for t in self.evaluation["tasks"]]}
        if self.threads is not None:
            raw["threads"] = self.threads
        return parse_config(raw, f"{self.source}: evaluation")


def _base_entry(spec: ModelSpec) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": spec.name, "dtype": spec.dtype, "batch_size": spec.batch_size}
    if spec.revision:
        entry["revision"] = spec.revision
    return entry


def _held_out(task: Any, split: ArticleSplit, source: str) -> Any:
    """TyDi QA runs on the evaluation side of the split, whatever the config says."""
    entry = {"name": task} if isinstance(task, str) else dict(task)
    if entry.get("name") != "tydiqa":
        return task
    if entry.get("split", "eval") != "eval":
        raise ConfigError(f"{source}: evaluation task tydiqa: split must be eval in an intervention (got {entry['split']!r}): "
                          "the other side holds the training articles")
    return {**entry, "split": "eval", "split_seed": split.seed, "split_eval_fraction": split.eval_fraction}


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _mapping(value: Any, where: str, known: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, f"must be a mapping of fields ({', '.join(sorted(known))}), got {type(value).__name__}")
    extra = set(value) - known
    if extra:
        raise _fail(f"{where}.{min(extra)}", f"unknown field (known: {', '.join(sorted(known))})")
    return value


def _int(value: Any, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(where, f"must be a whole number >= {minimum}, got {value!r}")
    return value


def _number(value: Any, where: str, low: float, high: float | None = None, *, open_low: bool = True) -> float:
    ok = not isinstance(value, bool) and isinstance(value, int | float)
    if ok:
        ok = (value > low if open_low else value >= low) and (high is None or value <= high)
    if not ok:
        bound = f"{'>' if open_low else '>='} {low}" + (f" and <= {high}" if high is not None else "")
        raise _fail(where, f"must be a number {bound}, got {value!r}")
    return float(value)


def parse_recipe(raw: Any, where: str, base: Recipe) -> Recipe:
    """Recipe fields over `base` (the config's recipe for an arm's overrides); each checked by its type."""
    if raw is None:
        return base
    known = {f.name for f in fields(Recipe)}
    values = _mapping(raw, where, known)
    out: dict[str, Any] = {}
    for key, value in values.items():
        at = f"{where}.{key}"
        if key == "method":
            if value not in ("sft", "dpo"):
                raise _fail(at, f"must be sft or dpo, got {value!r}")
            out[key] = value
        elif key == "target_modules":
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                raise _fail(at, f"must be a list of module names (e.g. [q_proj, v_proj]), got {value!r}")
            out[key] = tuple(value)
        elif key == "max_steps":
            out[key] = None if value is None else _int(value, at, 1)
        elif key in ("lora_r", "lora_alpha", "max_length", "batch_size", "grad_accum"):
            out[key] = _int(value, at, 1)
        elif key == "seed":
            out[key] = _int(value, at, 0)
        elif key == "lora_dropout":
            out[key] = _number(value, at, 0.0, 0.9, open_low=False)
        else:  # epochs, learning_rate, dpo_beta
            out[key] = _number(value, at, 0.0)
    return replace(base, **out)


def _languages(value: Any, where: str) -> tuple[str, ...]:
    if value is None or value == "all":
        return tuple(LANGUAGES)
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _fail(where, f"must be all or a list of language codes ({', '.join(LANGUAGES)}), got {value!r}")
    codes = [CODE_BY_NAME.get(v.lower(), v.lower()) for v in value]
    for code in codes:
        if code not in LANGUAGES:
            raise _fail(where, f"unknown TyDi QA language {code!r} (known: {', '.join(LANGUAGES)})")
    if len(set(codes)) != len(codes):
        raise _fail(where, "a language is listed twice")
    return tuple(codes)


def _entry(raw: Any, where: str, config_dir: Path) -> MixEntry:
    values = _mapping(raw, where, ENTRY_FIELDS)
    source = values.get("source")
    if source not in SOURCES:
        raise _fail(f"{where}.source", f"must be one of {', '.join(SOURCES)}, got {source!r}")
    share = _number(values.get("share"), f"{where}.share", 0.0, 1.0)
    path = values.get("path")
    if source == "file":
        if not isinstance(path, str) or not path:
            raise _fail(f"{where}.path", "a file source needs the path of a JSONL, JSON or Parquet file")
        resolved = Path(path).expanduser()
        if not resolved.is_absolute():  # relative to the config file, as a user reads it
            resolved = config_dir / resolved
        if not resolved.is_file():
            raise _fail(f"{where}.path", f"{resolved}: no such file")
        path = str(resolved)
        if "languages" in values:
            raise _fail(f"{where}.languages", "is for tydiqa sources (a file's languages are measured by the audit)")
    elif path is not None:
        raise _fail(f"{where}.path", f"is for file sources, not {source}")
    chars = values.get("max_context_chars")
    return MixEntry(
        source=source, share=share,
        languages=_languages(values.get("languages"), f"{where}.languages") if source != "file" else (),
        path=path, max_context_chars=_int(chars, f"{where}.max_context_chars", 1) if chars is not None else None,
    )


def _arm(name: Any, raw: Any, where: str, recipe: Recipe, seed: int, config_dir: Path) -> Arm:
    if not isinstance(name, str) or not _ARM_NAME.match(name) or name == "base":
        raise _fail(where, f"an arm name is a letter then letters, digits, - or _ (up to 40), not 'base'; got {name!r}")
    values = _mapping(raw, where, ARM_FIELDS)
    entries_raw = values.get("mix")
    if not isinstance(entries_raw, list) or not entries_raw:
        raise _fail(f"{where}.mix", "give a list of sources, e.g. [{source: tydiqa, languages: all, share: 1.0}]")
    entries = tuple(_entry(e, f"{where}.mix[{i}]", config_dir) for i, e in enumerate(entries_raw))
    total = sum(e.share for e in entries)
    if abs(total - 1.0) > 1e-6:
        raise _fail(f"{where}.mix", f"the shares must sum to 1, they sum to {total:g}")
    arm_recipe = parse_recipe(values.get("recipe"), f"{where}.recipe", recipe)
    kinds = {"preference" if e.source == "tydiqa_preference" else "sft" for e in entries if e.source != "file"}
    wanted = "preference" if arm_recipe.method == "dpo" else "sft"
    if kinds - {wanted}:
        raise _fail(f"{where}.mix", f"method {arm_recipe.method} trains on {wanted} examples; "
                                    f"{'tydiqa_preference' if wanted == 'sft' else 'tydiqa'} gives the other kind")
    mix_seed = _int(values.get("seed", seed), f"{where}.seed", 0)
    return Arm(name, MixSpec(entries, _int(values.get("size"), f"{where}.size", 1), mix_seed), arm_recipe)


def parse_intervention(raw: Any, source: str, config_dir: Path = Path(".")) -> InterventionConfig:
    """Validate an intervention config mapping; errors name the field and the source."""
    values = _mapping(raw, source, FIELDS)
    base_raw = values.get("base")
    if isinstance(base_raw, str):
        base_raw = {"name": base_raw}
    base_values = _mapping(base_raw, f"{source}: base", BASE_FIELDS) if base_raw is not None else None
    if not base_values or not isinstance(base_values.get("name"), str) or not base_values["name"]:
        raise _fail(f"{source}: base", "give the base model (a packaged alias, an HF folder or a hub id)")
    if not values.get("output") or not isinstance(values["output"], str | Path):
        raise _fail(f"{source}: output", "give the output folder")
    seed = _int(values.get("seed", 221), f"{source}: seed", 0)
    split_raw = _mapping(values.get("split") or {}, f"{source}: split", {"by", "seed", "eval_fraction"})
    if split_raw.get("by", "article") != "article":
        raise _fail(f"{source}: split.by", f"only article is supported (got {split_raw['by']!r})")
    split = ArticleSplit(seed=_int(split_raw.get("seed", seed), f"{source}: split.seed", 0),
                         eval_fraction=_number(split_raw.get("eval_fraction", 0.5), f"{source}: split.eval_fraction",
                                               0.0, 0.95))
    recipe = parse_recipe(values.get("recipe"), f"{source}: recipe", Recipe(seed=seed))
    arms_raw = values.get("arms")
    if not isinstance(arms_raw, dict) or not arms_raw:
        raise _fail(f"{source}: arms", "give at least one arm: {name: {size: N, mix: [...]}}")
    arms = tuple(_arm(n, a, f"{source}: arms.{n}", recipe, seed, config_dir) for n, a in arms_raw.items())
    evaluation = dict(_mapping(values.get("evaluation") or {}, f"{source}: evaluation", EVAL_FIELDS))
    if not evaluation.get("tasks"):
        raise _fail(f"{source}: evaluation.tasks", "give the tasks to measure base and arms on, e.g. [tydiqa]")
    threads = values.get("threads")
    base = ModelSpec(**{k: v for k, v in base_values.items()})
    config = InterventionConfig(
        base=base, arms=arms, split=split, evaluation=evaluation, output=Path(values["output"]).expanduser(),
        data_dir=str(values["data_dir"]) if values.get("data_dir") is not None else None, seed=seed,
        threads=_int(threads, f"{source}: threads", 1) if threads is not None else None, source=source, raw=raw,
    )
    config.eval_config()  # the evaluation's fields, base model and tasks are checked now, not after training
    return config


def load_intervention(path: Path, overrides: dict[str, Any] | None = None) -> InterventionConfig:
    raw = load_config_file(path)
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return parse_intervention(raw, str(path), path.parent)
