"""The typed run configuration (YAML file or CLI flags) and its validation.

Example:
    models:
      - gemma-3-270m                       # base
      - name: smollm2-135m-instruct        # aligned
        dtype: float32
    # or families of checkpoints, each stage a model (compared step by step and base -> last; families.py):
    # families:
    #   zephyr: {base: mistralai/Mistral-7B-v0.1, sft: HuggingFaceH4/mistral-7b-sft-beta,
    #            pt: HuggingFaceH4/zephyr-7b-beta}
    tasks:
      - name: global_opinions
        countries: study7
    limit: 50
    seed: 221
    prompt_format: raw                     # raw (the study's) or chat (the model's chat template)
    output: out/run1
    compare: [[gemma-3-270m, smollm2-135m-instruct]]   # default: the families' steps (models: one family)
    stats: {n_boot: 10000, n_perm: 10000}
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from globalign.data.tables import parse_yaml
from globalign.errors import ConfigError
from globalign.families import Comparison, Family, Stage, comparisons, explicit, families_for, parse_families
from globalign.models.backends import BACKENDS, DEFAULT_BACKEND, check_backend_options
from globalign.models.openai_backend import check_openai_options
from globalign.models.resolve import MODEL_KINDS, REWARD_KINDS, ModelSpec
from globalign.tasks.base import PROMPT_FORMATS, StatsSettings

_RUN_FIELDS = {"models", "families", "tasks", "output", "limit", "seed", "prompt_format", "data_dir", "compare", "stats",
               "cache", "threads", "batch_size"}
DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class TaskConfig:
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None  # overrides the run-level limit for this task (e.g. the demo's per-task samples)


@dataclass(frozen=True)
class RunConfig:
    models: tuple[ModelSpec, ...]
    tasks: tuple[TaskConfig, ...]
    output: Path
    limit: int | None = None
    seed: int = 221
    prompt_format: str = "raw"
    data_dir: str | None = None
    compare: tuple[tuple[str, str], ...] = ()
    stats: StatsSettings = field(default_factory=StatsSettings)
    cache: bool = True

    families: tuple[Family, ...] = ()

    def model_families(self) -> list[Family]:
        """The config's families, else the models (base first) as one family."""
        if self.families:
            return list(self.families)
        # reward models are measured beside the checkpoints, not stages of them
        return families_for([m.name for m in self.models if not m.is_reward_model])

    def comparisons(self) -> list[Comparison]:
        """What is compared, from families.py (the one place that derives pairs), or `compare:` when given."""
        if self.compare:
            return explicit(self.compare, self.model_families())
        return comparisons(self.model_families())

    def comparison_pairs(self) -> list[tuple[str, str]]:
        return [c.pair for c in self.comparisons()]

    def to_json(self) -> dict[str, Any]:
        return {
            "models": [{**vars(m), "backend_options": dict(m.backend_options)} for m in self.models],
            "tasks": [{"name": t.name, **t.options, **({"limit": t.limit} if t.limit else {})} for t in self.tasks],
            "output": str(self.output),
            "limit": self.limit,
            "seed": self.seed,
            "prompt_format": self.prompt_format,
            "data_dir": self.data_dir,
            **({"families": {f.name: {st.name: st.model for st in f.stages} for f in self.families}}
               if self.families else {}),
            "compare": [list(p) for p in self.compare],  # the derived comparisons: manifest "comparisons"
            "stats": vars(self.stats),
            "cache": self.cache,
        }


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _int(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(where, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _model(entry: Any, where: str, defaults: dict[str, Any]) -> ModelSpec:
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
        raise _fail(where, "must be a model id or a mapping with a 'name'")
    known = {f.name for f in fields(ModelSpec)}
    extra = set(entry) - known
    if extra:
        raise _fail(where, f"unknown field '{min(extra)}' (known: {', '.join(sorted(known))})")
    values = {**defaults, **entry}
    for key in ("batch_size", "threads"):
        if values.get(key) is not None:
            _int(values[key], f"{where}.{key}", 1)
    if not isinstance(values.get("trust_remote_code", False), bool):
        raise _fail(f"{where}.trust_remote_code", "must be true or false")
    if values.get("kind", "lm") not in MODEL_KINDS:
        raise _fail(f"{where}.kind", f"must be one of {', '.join(MODEL_KINDS)}, got {values['kind']!r}")
    if values.get("tokenizer") is not None:
        if not isinstance(values["tokenizer"], str) or not values["tokenizer"]:
            raise _fail(f"{where}.tokenizer", f"must be a folder or hub id, got {values['tokenizer']!r}")
        if values.get("kind", "lm") not in REWARD_KINDS:
            raise _fail(f"{where}.tokenizer", "is for reward models (kind: reward) whose folder has no tokenizer")
    if values.get("dtype", "float32") not in DTYPES:
        raise _fail(f"{where}.dtype", f"must be one of {', '.join(DTYPES)}, got {values['dtype']!r}")
    backend = values.get("backend", DEFAULT_BACKEND)
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise _fail(f"{where}.backend", f"must be one of {', '.join(BACKENDS)}, got {backend!r}")
    options = values.get("backend_options") or {}
    if isinstance(options, tuple):  # already a spec's (key, value) pairs
        options = dict(options)
    if not isinstance(options, dict):
        raise _fail(f"{where}.backend_options", "must be a mapping of option: value")
    checked = check_backend_options(backend, options, f"{where}.backend_options")
    if backend == "openai":
        check_openai_options(checked, f"{where}.backend_options")
    values["backend_options"] = tuple(sorted(checked.items()))
    return ModelSpec(**values)


def _task(entry: Any, where: str) -> TaskConfig:
    if isinstance(entry, str):
        return TaskConfig(entry)
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise _fail(where, "must be a task name or a mapping with a 'name'")
    options = {k: v for k, v in entry.items() if k not in ("name", "limit")}
    limit = _int(entry["limit"], f"{where}.limit", 1) if entry.get("limit") is not None else None
    return TaskConfig(entry["name"], options, limit)


def _list_field(raw: dict[str, Any], name: str, source: str, item: str) -> list[Any]:
    """`models:` / `tasks:`: a non-empty list; a single name written without the list says how to write it."""
    value = raw.get(name)
    if isinstance(value, str) and value.strip():
        raise _fail(f"{source}: {name}", f"must be a list of {item}s, got the text {value!r}; write "
                                         f"`{name}: [{value}]`, or one `- {value}` line per {item}")
    if value is not None and not isinstance(value, list):
        raise _fail(f"{source}: {name}", f"must be a list of {item}s, got {type(value).__name__} {value!r}")
    if not value:
        raise _fail(f"{source}: {name}", f"give at least one {item}")
    return value


def parse_config(raw: Any, source: str) -> RunConfig:
    """Validate a config mapping (from YAML or flags); errors name the field and the source."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a mapping of fields (models, tasks, output, ...)")
    extra = set(raw) - _RUN_FIELDS
    if extra:
        raise _fail(f"{source}: {min(extra)}", f"unknown field (known: {', '.join(sorted(_RUN_FIELDS))})")
    defaults = {k: raw[k] for k in ("threads", "batch_size") if raw.get(k) is not None}
    families_raw = parse_families(raw["families"], f"{source}: families") if raw.get("families") is not None else []
    models_raw = _list_field(raw, "models", source, "model") if raw.get("models") is not None or not families_raw else []
    models = [_model(m, f"{source}: models[{i}]", defaults) for i, m in enumerate(models_raw)]
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise _fail(f"{source}: models", "a model is listed twice")
    families = []
    for family, stages in families_raw:
        chosen = []
        for stage, entry in stages:
            spec = _model(entry, f"{source}: families.{family}.{stage}", defaults)
            same = next((m for m in models if m.name == spec.name), None)
            if same is None:
                models.append(spec)
            elif same != spec and not isinstance(entry, str):
                raise _fail(f"{source}: families.{family}.{stage}",
                            f"model '{spec.name}' is given elsewhere with other settings; give its settings once")
            chosen.append(Stage(stage, spec.name))
        if len({s.model for s in chosen}) != len(chosen):
            raise _fail(f"{source}: families.{family}", "a model is two stages of the same family")
        families.append(Family(family, tuple(chosen)))
    names = [m.name for m in models]
    tasks_raw = _list_field(raw, "tasks", source, "task")
    tasks = tuple(_task(t, f"{source}: tasks[{i}]") for i, t in enumerate(tasks_raw))
    task_names = [t.name for t in tasks]
    if len(set(task_names)) != len(task_names):
        raise _fail(f"{source}: tasks", "a task is listed twice")
    if not raw.get("output") or not isinstance(raw["output"], str | Path):
        raise _fail(f"{source}: output", "give the output folder")
    prompt_format = raw.get("prompt_format", "raw")
    if prompt_format not in PROMPT_FORMATS:
        raise _fail(f"{source}: prompt_format", f"must be one of {', '.join(PROMPT_FORMATS)}, got {prompt_format!r}")
    limit = raw.get("limit")
    if limit is not None:
        limit = _int(limit, f"{source}: limit", 1)
    compare_raw = raw.get("compare") or []
    if not isinstance(compare_raw, list):
        raise _fail(f"{source}: compare", f"must be a list of [model_a, model_b] pairs, got {compare_raw!r}")
    compare = []
    for i, pair in enumerate(compare_raw):
        if not (isinstance(pair, list) and len(pair) == 2 and all(p in names for p in pair)):
            raise _fail(f"{source}: compare[{i}]", f"must be [model_a, model_b] naming listed models, got {pair!r}")
        compare.append((pair[0], pair[1]))
    stats_raw = raw.get("stats") or {}
    if not isinstance(stats_raw, dict) or set(stats_raw) - {"n_boot", "n_perm", "seed"}:
        raise _fail(f"{source}: stats", "may hold n_boot, n_perm and seed")
    stats = StatsSettings(**{k: _int(v, f"{source}: stats.{k}", 0 if k == "seed" else 1) for k, v in stats_raw.items()})
    data_dir = raw.get("data_dir")
    if data_dir is not None and not isinstance(data_dir, str | Path):
        raise _fail(f"{source}: data_dir", f"must be a folder path, got {data_dir!r}")
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise _fail(f"{source}: data_dir", f"{data_dir}: no such folder (the evaluation data; see data/README.md)")
    cache = raw.get("cache", True)
    if not isinstance(cache, bool):
        raise _fail(f"{source}: cache", f"must be true or false, got {cache!r}")
    return RunConfig(
        models=tuple(models),
        families=tuple(families),
        tasks=tasks,
        output=Path(raw["output"]),
        limit=limit,
        seed=_int(raw.get("seed", 221), f"{source}: seed"),
        prompt_format=prompt_format,
        data_dir=str(data_dir) if data_dir is not None else None,
        compare=tuple(compare),
        stats=stats,
        cache=cache,
    )


def load_config_file(path: Path) -> dict[str, Any]:
    """The raw mapping of a YAML config file (validated later, after CLI overrides)."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:  # a folder, no permission, ...
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or type(exc).__name__})") from None
    raw = parse_yaml(text, path, ConfigError)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping of fields (models, tasks, output, ...), got a {type(raw).__name__}")
    return raw


def config_from_json(data: Any, source: str) -> RunConfig:
    """A config back from its `to_json()` (a shard's or a worker's copy); validated like a config file."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config is not a mapping")
    return parse_config(data, source)
