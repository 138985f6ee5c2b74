"""The `globalign` command line: run, merge, demo, rescore, import-paper, report, items, audit-data, intervene,
models, tasks, backends."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from globalign import __version__
from globalign.errors import GlobalignError
from globalign.models.backends import BACKENDS
from globalign.tasks.base import PROMPT_FORMATS
from globalign.text_safety import one_line
from globalign.threads import apply_runtime_defaults

EXIT_USER_ERROR = 2


def _quiet_libraries() -> None:
    # transformers' own warnings and weight-loading bars drown the progress that matters.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", action="append", metavar="ID",
                        help="model: packaged alias, local HF folder, GGUF file or hub id (repeatable; "
                             "the first is the base every other model is compared against)")
    parser.add_argument("--reward-model", action="append", metavar="ID",
                        help="trained reward model (local folder or hub id; value head or classifier, detected), "
                             "added after the models; runs the where_from and askreddit probes (repeatable)")
    parser.add_argument("--reward-tokenizer", metavar="ID",
                        help="tokenizer for --reward-model folders that ship none (Starling-RM-7B-alpha: "
                             "meta-llama/Llama-2-7b-chat-hf)")
    parser.add_argument("--task", action="append", metavar="NAME", help="task to run (repeatable); see `globalign tasks`")
    parser.add_argument("--limit", type=int, metavar="N", help="score a seeded sample of N items per task")
    parser.add_argument("--seed", type=int, help="seed for sampling and prompts (default 221, the study's)")
    parser.add_argument("--prompt-format", choices=PROMPT_FORMATS, help="raw text (the study's) or the model's chat template")
    parser.add_argument("--countries", metavar="SET",
                        help="global_opinions countries: all (default), study7, or a comma-separated list")
    parser.add_argument("--study-parser", action="store_true",
                        help="global_opinions: replay the study's selections-parsing bug (reproduction only)")
    parser.add_argument("--output", metavar="DIR", help="run folder to write")
    parser.add_argument("--data-dir", metavar="DIR", help="evaluation data (default: $GLOBALIGN_DATA_DIR, ../shared/data)")
    parser.add_argument("--backend", choices=tuple(BACKENDS),
                        help="engine for every --model: " + "; ".join(f"{b.name}: {b.summary}" for b in BACKENDS.values())
                        + " (default hf)")
    parser.add_argument("--backend-option", action="append", metavar="KEY=VALUE", default=None,
                        help="a backend option for every --model (repeatable), e.g. tensor_parallel_size=8 or "
                             "base_url=http://127.0.0.1:8000/v1; `globalign backends` lists them")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), help="model dtype (default float32)")
    parser.add_argument("--batch-size", type=int, metavar="N", help="candidates or prompts per forward pass")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads (default: $OMP_NUM_THREADS, else the CPUs this process may use)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow model code from the checkpoint (off by default)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the request cache")
    parser.add_argument("--n-boot", type=int, metavar="N", help="bootstrap resamples (default 10000)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the config and data, and print the plan (models, tasks, items, requests, "
                             "candidates, tokens, estimated GPU-hours, work units) without loading a model")
    parser.add_argument("--shard", metavar="I/N",
                        help="run only shard I of N (1-based: 1/8 .. 8/8) of the run's work units (model x task) "
                             "and write them to --output as a shard folder; `globalign merge` makes the run "
                             "folder from all N (docs/scaling.md)")
    parser.add_argument("--gpus-per-model", type=int, metavar="K",
                        help="run models in parallel on this machine, one worker process per K visible GPUs "
                             "(CUDA_VISIBLE_DEVICES); with --engine ray, the GPUs each model's Ray task holds")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="where the work units run: this machine (default) or a Ray cluster (one Ray task "
                             "per model; --ray-address, else a local Ray instance)")
    parser.add_argument("--ray-address", metavar="ADDR", help="with --engine ray: the cluster to join, e.g. auto "
                                                              "or ray://head:10001")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="globalign",
        description="Audit what alignment does to who a language model serves (dialects, languages, countries).",
    )
    parser.add_argument("--version", action="version", version=f"globalign {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    # --debug is accepted after the command too (`globalign run cfg.yaml --debug`); SUPPRESS keeps the
    # subcommand's default from overwriting a --debug given before the command.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run models on tasks from a YAML config and/or flags",
                         description="Run models on tasks. Flags override the config file's fields.")
    run.add_argument("config", nargs="?", type=Path, help="YAML run config (see docs/usage.md)")
    _add_run_flags(run)

    demo = sub.add_parser("demo", parents=[common],
                          help="run the packaged demo models on a small sample (< 5 min on 2 cores)")
    demo.add_argument("--output", default="out/demo", metavar="DIR", help="run folder (default out/demo)")
    demo.add_argument("--data-dir", metavar="DIR", help="evaluation data (default: $GLOBALIGN_DATA_DIR, ../shared/data)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")

    models = sub.add_parser("models", parents=[common], help="list the packaged models, or prepare (convert) them")
    models.add_argument("action", nargs="?", choices=("list", "prepare"), default="list")

    sub.add_parser("tasks", parents=[common], help="list the tasks and their options")
    sub.add_parser("backends", parents=[common], help="list the model backends (hf, vllm, openai) and their options")

    items = sub.add_parser("items", parents=[common], help="print a task's item counts per group (e.g. MD3 per dialect)",
                           description="Build a task's items from the data folder and print how many there are "
                                       "per group, and what was dropped and why.")
    items.add_argument("task", choices=("md3",), help="task whose items to count")
    items.add_argument("--source", default="study", choices=("study", "raw"),
                       help="md3: the study's 894 items (default) or items built from the raw MD3 files")
    items.add_argument("--overrides", type=Path, metavar="FILE", help="md3 with --source raw: overrides file")
    items.add_argument("--data-dir", metavar="DIR", help="evaluation data (default: $GLOBALIGN_DATA_DIR, ../shared/data)")

    rescore = sub.add_parser(
        "rescore", parents=[common], help="compute a task's metrics from predictions made elsewhere (no model runs)",
        description="Re-score predictions produced elsewhere (e.g. the study's raw outputs) with globalign's "
                    "metrics and statistics, and write a run folder.",
    )
    rescore.add_argument("--task", required=True, metavar="NAME",
                         help="task of the predictions (md3, tydiqa, where_from, askreddit, global_opinions)")
    rescore.add_argument("--predictions", required=True, type=Path, metavar="FILE_OR_DIR",
                         help="a prediction file or a folder of them (md3, global_opinions: one CSV per model; "
                              "tydiqa: <language>.json files, one folder per model)")
    rescore.add_argument("--output", required=True, type=Path, metavar="DIR", help="run folder to write")
    rescore.add_argument("--compare", action="append", metavar="BASE:ALIGNED",
                         help="model pair to compare (repeatable; default: the study's family pairs when the "
                              "models are the study's checkpoints, else every model vs the first)")
    rescore.add_argument("--data-dir", metavar="DIR",
                         help="evaluation data (tydiqa gold answers, the askreddit country set; default: $GLOBALIGN_DATA_DIR, ../shared/data)")
    rescore.add_argument("--study-parser", action="store_true",
                         help="global_opinions: score against the country distributions as the study's buggy "
                              "parser read them (reproduces the study's stored similarities)")
    rescore.add_argument("--countries", metavar="SET",
                         help="global_opinions countries: all (default), study7, or a comma-separated list")
    rescore.add_argument("--n-boot", type=int, metavar="N", help="bootstrap resamples (default 10000)")
    rescore.add_argument("--n-perm", type=int, metavar="N", help="permutations for permutation tests (default 10000)")

    paper = sub.add_parser(
        "import-paper", parents=[common], help="the study's raw outputs, every axis, as one run folder (no model runs)",
        description="Re-score the raw outputs of Ryan, Held & Yang (ACL 2024) (the paper_outputs folder: md3-game, "
                    "tydiqa-goldp, globalopinionsqa, ask-reddit-perplexity-testing, ask-reddit-reward-testing, "
                    "reward-testing) with each task's rescore reader, metrics and statistics, compare the study's "
                    "family steps, and write one run folder (manifest.json with the families, metrics.csv, "
                    "comparisons.csv, samples.jsonl). An absent axis folder is skipped and named; none is an error.",
    )
    paper.add_argument("source", type=Path, metavar="DIR", help="the paper_outputs folder, or its outputs/ subfolder")
    paper.add_argument("--output", required=True, type=Path, metavar="RUN_DIR", help="run folder to write")
    paper.add_argument("--study-parser", action="store_true",
                       help="global_opinions: score against the distributions as the study's buggy parser read "
                            "them (its published numbers) instead of the correctly parsed ones")
    paper.add_argument("--data-dir", metavar="DIR",
                       help="evaluation data (TyDi QA gold answers, GlobalOpinionsQA, the AskReddit country set; "
                            "default: $GLOBALIGN_DATA_DIR, ../shared/data)")
    paper.add_argument("--n-boot", type=int, metavar="N", help="bootstrap resamples (default 10000)")
    paper.add_argument("--n-perm", type=int, metavar="N", help="permutations for permutation tests (default 10000)")
    paper.add_argument("--quiet", action="store_true", help="no progress lines")

    report = sub.add_parser(
        "report", parents=[common], help="one self-contained HTML report from run folders (and audit folders)",
        description="Turn run folders into one HTML file that opens offline: a verdict per family and axis, "
                    "charts and maps per axis, the largest per-item changes, and the methods (docs/report.md). "
                    "Folders are combined by task; the same task and model in two folders is an error.",
    )
    report.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run folders (run, rescore, import-paper)")
    report.add_argument("--audit", action="append", type=Path, default=[], metavar="AUDIT_DIR",
                        help="audit-data folder to add as the data-audit section (repeatable)")
    report.add_argument("--output", required=True, type=Path, metavar="FILE", help="HTML file to write")

    merge = sub.add_parser(
        "merge", parents=[common], help="one run folder from the shard folders of `run --shard I/N`",
        description="Aggregate the shard folders of one run (`globalign run ... --shard I/N`) into the run folder "
                    "an unsplit run writes. Refused when the shards are of different configs, when a shard is "
                    "given twice, or when one is missing.",
    )
    merge.add_argument("shards", nargs="+", type=Path, metavar="SHARD_DIR", help="shard folders, all N of them")
    merge.add_argument("--output", required=True, type=Path, metavar="RUN_DIR", help="run folder to write")
    merge.add_argument("--data-dir", metavar="DIR",
                       help="evaluation data on this machine (default: the shards' data_dir, $GLOBALIGN_DATA_DIR, "
                            "../shared/data)")

    intervene = sub.add_parser(
        "intervene", parents=[common], help="fine-tune a base model on chosen data mixes (LoRA) and measure what it did",
        description="Build each arm's training mix (chosen shares per source and language; TyDi QA articles held "
                    "out for evaluation), audit it with audit-data, fine-tune the base with LoRA (TRL + PEFT), and "
                    "measure the base and every arm on the held-out items with paired tests, into one folder with "
                    "a report. Every stage resumes after a kill (rerun the same command); a finished adapter is "
                    "reused by content hash. docs/interventions.md",
    )
    intervene.add_argument("config", type=Path, help="YAML intervention config (examples/intervention_tiny.yaml)")
    intervene.add_argument("--output", metavar="DIR", help="intervention folder (overrides the config's output)")
    intervene.add_argument("--data-dir", metavar="DIR", help="evaluation and TyDi QA data (default: $GLOBALIGN_DATA_DIR, "
                                                              "../shared/data)")
    intervene.add_argument("--threads", type=int, metavar="N", help="CPU threads for training and evaluation")
    intervene.add_argument("--dry-run", action="store_true",
                           help="print the plan (examples per source and language in each arm, steps, tokens, "
                                "estimated time, the evaluation's requests) without training or loading a model")
    intervene.add_argument("--quiet", action="store_true", help="no progress bars")

    audit = sub.add_parser(
        "audit-data", parents=[common], help="the language and country make-up of an SFT or preference dataset",
        description="Label the language of every message (two identifiers, each alone and the study's agreement "
                    "rule, with what that rule drops), count country mentions and metadata fields, and write "
                    "languages.csv, countries.csv, metadata.csv, a world map and manifest.json. Streams any size; "
                    "a killed audit resumes where it stopped (rerun the same command).",
    )
    audit.add_argument("source", help="a JSONL/JSON/CSV/Parquet file, a folder of them, or a Hugging Face dataset id "
                                      "(owner/name[@revision], online only)")
    audit.add_argument("--output", required=True, type=Path, metavar="DIR", help="audit folder to write")
    audit.add_argument("--fields", metavar="SPEC",
                       help="name the record fields when auto-detection fails, e.g. "
                            "'format=preference,prompt=instruction,chosen=good,rejected=bad' or 'role:tool=skip' "
                            "(docs/audit.md)")
    audit.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local process pool (default) or Ray Data (a cluster with --ray-address, else local Ray)")
    audit.add_argument("--workers", type=int, metavar="N", help="processes (local) or CPUs for local Ray (default: the CPUs this process may use)")
    audit.add_argument("--ray-address", metavar="ADDR", help="Ray cluster to join, e.g. auto or ray://head:10001")
    audit.add_argument("--rows-per-shard", type=int, default=2000, metavar="N",
                       help="records per unit of work and of resume (JSONL, Parquet row groups; default 2000)")
    audit.add_argument("--no-countries", action="store_true", help="skip country mentions (language only, faster)")
    audit.add_argument("--no-map", action="store_true", help="do not draw the world map")
    audit.add_argument("--restart", action="store_true", help="ignore the saved progress of an earlier, unfinished audit")
    audit.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _with_overrides(entry: Any, overrides: dict[str, Any]) -> Any:
    """A config list entry (a name or a mapping) with flag overrides; anything else is left for parse_config.
    Backend options from flags are added to the entry's own (a flag wins on the same key)."""
    if isinstance(entry, str):
        return {"name": entry, **overrides}
    if not isinstance(entry, dict):
        return entry
    merged = {**entry, **overrides}
    if isinstance(entry.get("backend_options"), dict) and "backend_options" in overrides:
        merged["backend_options"] = {**entry["backend_options"], **overrides["backend_options"]}
    return merged


def _backend_options(pairs: Sequence[str] | None) -> dict[str, Any] | None:
    """`--backend-option KEY=VALUE` flags as a mapping; a value is read as a YAML scalar (8 -> int,
    0.9 -> float, true -> bool, anything else a string), never evaluated."""
    if not pairs:
        return None
    from globalign.data.tables import parse_yaml

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise GlobalignError(f"--backend-option {pair!r}: expected KEY=VALUE")
        parsed = parse_yaml(value, Path("--backend-option"), GlobalignError) if value.strip() else ""
        options[key.strip()] = parsed if isinstance(parsed, (bool, int, float, str)) else value
    return options


def _config_from_args(args: argparse.Namespace):
    from globalign.config import load_config_file, parse_config

    raw: dict[str, Any] = load_config_file(args.config) if args.config else {}
    source = str(args.config) if args.config else "command line"
    if args.model:
        raw["models"] = list(args.model)
    if args.reward_tokenizer and not args.reward_model:
        raise GlobalignError("--reward-tokenizer goes with --reward-model")
    if args.reward_model:
        tokenizer = {"tokenizer": args.reward_tokenizer} if args.reward_tokenizer else {}
        models = raw.get("models") if isinstance(raw.get("models"), list) else []
        raw["models"] = [*models, *({"name": r, "kind": "reward", **tokenizer} for r in args.reward_model)]
    if args.task:
        raw["tasks"] = list(args.task)
    for flag, key in (("limit", "limit"), ("seed", "seed"), ("prompt_format", "prompt_format"),
                      ("output", "output"), ("batch_size", "batch_size"),
                      ("threads", "threads")):
        if getattr(args, flag) is not None:
            raw[key] = getattr(args, flag)
    if args.no_cache:
        raw["cache"] = False
    if args.n_boot is not None:
        stats = raw.get("stats") or {}
        # a non-mapping `stats:` is left for parse_config to reject with its field name
        raw["stats"] = {**stats, "n_boot": args.n_boot} if isinstance(stats, dict) else stats
    model_overrides = {k: v for k, v in (("dtype", args.dtype), ("trust_remote_code", args.trust_remote_code or None),
                                         ("backend", args.backend),
                                         ("backend_options", _backend_options(args.backend_option)))
                       if v is not None}
    if model_overrides and isinstance(raw.get("models"), list):
        raw["models"] = [_with_overrides(m, model_overrides) for m in raw["models"]]
    if model_overrides and isinstance(raw.get("families"), dict):
        raw["families"] = {name: {stage: _with_overrides(m, model_overrides) for stage, m in stages.items()}
                           if isinstance(stages, dict) else stages for name, stages in raw["families"].items()}
    task_overrides = {k: v for k, v in (("countries", args.countries), ("study_parser", args.study_parser or None))
                      if v is not None}
    if task_overrides and isinstance(raw.get("tasks"), list):
        raw["tasks"] = [_with_overrides(t, task_overrides) for t in raw["tasks"]]
    if not args.config and not args.model and not args.reward_model:
        raise GlobalignError("give a config file or at least one --model (see `globalign run --help`)")
    config = parse_config(raw, source)
    # --data-dir is checked when the run starts (after the output folder) and named as the flag, never
    # as the config file's data_dir field.
    return dataclasses.replace(config, data_dir=args.data_dir) if args.data_dir is not None else config


def _execution(args: argparse.Namespace):
    from globalign.pipeline import Execution
    from globalign.units import parse_shard

    if args.gpus_per_model is not None and args.gpus_per_model < (0 if args.engine == "ray" else 1):
        raise GlobalignError(f"--gpus-per-model must be at least 1, got {args.gpus_per_model}")
    if args.ray_address and args.engine != "ray":
        raise GlobalignError("--ray-address goes with --engine ray")
    return Execution(parse_shard(args.shard) if args.shard is not None else None, args.gpus_per_model, args.engine,
                     args.ray_address)


def cmd_run(args: argparse.Namespace) -> int:
    from globalign.pipeline import ShardSummary, dry_run, run
    from globalign.report.console import print_summary

    execution = _execution(args)
    config = _config_from_args(args)
    if args.dry_run:
        for line in dry_run(config, execution.shard):
            print(one_line(line))
        return 0
    summary = run(config, progress=not args.quiet, execution=execution)
    if summary.resumed_units:
        print(f"resumed: {summary.resumed_units} work unit(s) were finished by an earlier, interrupted run")
    if isinstance(summary, ShardSummary):
        print(one_line(f"Wrote shard {summary.shard} ({summary.units} of {summary.total_units} work units, config hash "
                       f"{summary.config_hash}) to {summary.output}/; when all {summary.shard.count} shards are "
                       "written: globalign merge SHARD_DIR... --output RUN_DIR"))
        return 0
    print_summary(summary)
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from globalign.merge import merge
    from globalign.report.console import print_summary

    summary = merge(args.shards, args.output, data_dir=args.data_dir)
    print_summary(summary)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from globalign.data.locate import resolve_data_dir
    from globalign.demo import run_demo

    resolve_data_dir(args.data_dir)  # a missing --data-dir is named as the flag
    run_demo(Path(args.output), data_dir=args.data_dir, progress=not args.quiet)
    return 0


def cmd_items(args: argparse.Namespace) -> int:
    from globalign.data.locate import resolve_data_dir
    from globalign.data.md3 import load_md3_items

    item_set = load_md3_items(resolve_data_dir(args.data_dir), args.source, args.overrides)
    counts = item_set.counts()
    print(f"md3 items ({item_set.source}, {item_set.path}): {sum(counts.values())}")
    for dialect, count in counts.items():
        dropped = item_set.dropped.get(dialect) if item_set.dropped else None
        detail = f"  dropped: {', '.join(f'{reason} {n}' for reason, n in dropped.items())}" if dropped else ""
        print(f"  {dialect}: {count}{detail}")
    return 0


def _stats_flags(args: argparse.Namespace):
    from globalign.tasks.base import StatsSettings

    defaults = StatsSettings()
    for flag in ("n_boot", "n_perm"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise GlobalignError(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    return StatsSettings(args.n_boot or defaults.n_boot, args.n_perm or defaults.n_perm, defaults.seed)


def cmd_rescore(args: argparse.Namespace) -> int:
    from globalign.report.console import print_summary
    from globalign.rescore.run import parse_pair, rescore

    stats = _stats_flags(args)
    pairs = [parse_pair(p) for p in args.compare] if args.compare else None
    from globalign.data.locate import resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir)
    options = {k: v for k, v in (("study_parser", args.study_parser or None), ("countries", args.countries))
               if v is not None}
    print_summary(rescore(args.task, args.predictions, args.output, pairs=pairs, stats=stats, data_dir=data_dir,
                          options=options))
    return 0


def cmd_import_paper(args: argparse.Namespace) -> int:
    import time

    from globalign.data.locate import resolve_data_dir
    from globalign.rescore.paper import import_paper

    started = time.perf_counter()
    stats = _stats_flags(args)
    data_dir = resolve_data_dir(args.data_dir)
    summary, manifest = import_paper(args.source, args.output, data_dir=data_dir, study_parser=args.study_parser,
                                     stats=stats, progress=not args.quiet)
    print(one_line(f"Wrote {summary.output}/ (manifest.json, metrics.csv, comparisons.csv, samples.jsonl)"))
    for task, entry in manifest["tasks"].items():
        metric_rows = sum(r.task == task for r in summary.metrics)
        comparison_rows = sum(r.task == task for r in summary.comparisons)
        items = sum(m["n_items"] for m in entry["models"])
        print(f"  {task:16} {len(entry['models']):2} models  {items:7} samples  {metric_rows:6} metric rows  "
              f"{comparison_rows:6} comparison rows  {summary.seconds[task]:6.1f} s")
    for item in manifest["missing"]:
        print(one_line(f"  not imported: {item['folder']} ({item['task']}): folder absent"))
    parsing = "the study's (--study-parser)" if args.study_parser else "corrected"
    print(f"  families: {len(manifest['families'])}; notes: {len(summary.notes)} (manifest.json); "
          f"global_opinions parsing: {parsing}")
    print(f"Total time: {time.perf_counter() - started:.1f} s")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from globalign.report.html import report

    verdicts, size, seconds = report(args.runs, args.output, args.audit)
    for verdict in verdicts:
        print(one_line(verdict.text))  # model and group names come from data files
    print(one_line(f"Wrote {args.output} ({size / 1e6:.1f} MB) in {seconds:.1f} s"))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from globalign.models.packaged import PACKAGED_MODELS

    if args.action == "prepare":
        from globalign.models.gguf_convert import converted_folder
        from globalign.models.packaged import packaged_gguf_path

        for alias in PACKAGED_MODELS:
            print(f"{alias}: {converted_folder(packaged_gguf_path(alias))}")
        return 0
    for model in PACKAGED_MODELS.values():
        kind = "aligned" if model.aligned else "base"
        print(f"{model.alias:24} {kind:8} {model.family:26} {model.description}  [{model.package}]")
    print("Also accepted: a local Hugging Face folder, a .gguf file, or a hub id (owner/name, online only).")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from globalign.tasks.registry import TASK_OPTIONS

    for name, options in TASK_OPTIONS.items():
        print(name)
        for option, help_text in options.items():
            print(f"  {option}: {help_text}")
    return 0


def cmd_backends(args: argparse.Namespace) -> int:
    for backend in BACKENDS.values():
        reward = "language and reward models" if backend.reward_model else "language models"
        print(f"{backend.name}: {backend.summary} ({reward})")
        for option, spec in backend.options.items():
            print(f"  {option} ({spec.kind.__name__}): {spec.help}")
    return 0


def cmd_intervene(args: argparse.Namespace) -> int:
    from globalign.intervene.config import load_intervention

    if args.threads is not None and args.threads < 1:
        raise GlobalignError(f"--threads must be at least 1, got {args.threads}")
    config = load_intervention(args.config, {"output": args.output, "data_dir": args.data_dir, "threads": args.threads})
    if args.dry_run:
        from globalign.intervene.plan import dry_run

        for line in dry_run(config):
            print(one_line(line))
        return 0
    from globalign.intervene.run import intervene

    for line in intervene(config, progress=not args.quiet).headline():
        print(one_line(line))  # verdicts name models and groups from the data
    return 0


def cmd_audit_data(args: argparse.Namespace) -> int:
    from globalign.audit.formats import FieldNames, parse_field_flag
    from globalign.audit.run import AuditOptions, audit

    if args.workers is not None and args.workers < 1:
        raise GlobalignError(f"--workers must be at least 1, got {args.workers}")
    options = AuditOptions(
        source=args.source, output=args.output,
        fields=parse_field_flag(args.fields) if args.fields else FieldNames(),
        engine=args.engine, workers=args.workers, ray_address=args.ray_address,
        rows_per_shard=args.rows_per_shard, countries=not args.no_countries, world_map=not args.no_map,
        restart=args.restart, progress=not args.quiet,
    )
    result = audit(options)
    if result.resumed_shards:
        print(f"resumed: {result.resumed_shards} shard(s) were counted by an earlier, interrupted audit")
    for line in result.summary:
        print(one_line(line))  # languages, countries and metadata values come from the audited data
    print(f"wrote {result.output}/ (languages.csv, countries.csv, metadata.csv, manifest.json) in {result.seconds:.1f} s")
    return 0


COMMANDS = {"audit-data": cmd_audit_data, "run": cmd_run, "merge": cmd_merge, "demo": cmd_demo, "models": cmd_models, "tasks": cmd_tasks, "backends": cmd_backends, "rescore": cmd_rescore,
            "items": cmd_items, "import-paper": cmd_import_paper, "report": cmd_report,
            "intervene": cmd_intervene}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Before any command imports torch: the OpenMP runtime reads its wait policy once, when it loads.
    apply_runtime_defaults()
    try:
        if args.command in ("run", "demo", "models", "intervene"):
            _quiet_libraries()
        return COMMANDS[args.command](args)
    except (GlobalignError, OSError) as exc:  # OSError: a full disk, an unreadable file: the user's to fix
        if args.debug:
            traceback.print_exc()
        # one line, whatever a data file or a library put in the message (newlines, escape sequences)
        print(f"globalign: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("globalign: interrupted; rerun the same command to resume where it stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
