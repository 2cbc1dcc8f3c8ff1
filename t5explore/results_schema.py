"""result.json as one typed, versioned record: `RunResult`, written by train/run.py, read by report/.

It lives at the package top, beside neither side, because it is the contract between the two: the run fills it,
the report reads every result.json through `RunResult.from_json`, and docs/ARCHITECTURE.md's field table is
generated from it (`python -m t5explore.results_schema --update docs/ARCHITECTURE.md`; tests/test_results_schema.py
fails when the two disagree).

Versions (the JSON key is `schema`, as version 1 wrote it; the dataclass calls it `schema_version`):

- 1: everything up to the task registry. A file without `schema` is read as version 1.
- 2: adds `registry`: what the task registry says about the tasks, benchmarks and metrics in the file
  (display labels, benchmark membership, the paper's tasks behind a benchmark average), so the report
  labels a table without importing data/. Version-1 files get the report's own legacy table instead.
- 3: adds `numerics_version` (t5explore/numerics.py: the version of the code's arithmetic that made the numbers),
  `hygiene` (what the run measured and removed of its evaluation text in the pre-training corpus, and which split
  chose its best checkpoint) and `budgets` (the run's scores at every pre-training budget it was evaluated at,
  `Pretrain.eval_at_steps`). Older files load with these absent (None).

A file whose version is newer than SCHEMA_VERSION (or not a positive integer) fails with one ResultSchemaError
naming the file and the version. Fields are only ever added, never renamed; top-level fields a version does not
define are kept (`extra`) and written back unchanged.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t5explore.errors import InputError

SCHEMA_VERSION = 3
VERSION_KEY = "schema"  # the JSON key of `schema_version`
NULL = type(None)


class ResultSchemaError(InputError):
    """A result.json does not fit the schema; the message names the file and the field (or version)."""


def _meta(doc: str, types: tuple, since: int = 1, omit_if_none: bool = False, identity: bool = False) -> dict:
    """Field metadata: its meaning (for the docs), JSON types, the version that added it, if it names the run."""
    return {"doc": doc, "types": types, "since": since, "omit_if_none": omit_if_none, "identity": identity}


# ----------------------------------------------------------------------------------- registry records


@dataclass(frozen=True)
class TaskInfo:
    """A downstream task as tables show it."""

    label: str  # table label, e.g. "CoLA"
    benchmarks: tuple[str, ...] = ()  # the `benchmarks` scores this task is averaged into


@dataclass(frozen=True)
class BenchmarkInfo:
    """A benchmark score (a `benchmarks.best` key) as tables show it."""

    label: str  # table label, e.g. "GLUE"
    paper_column: str | None = None  # the T5 paper's column it corresponds to
    paper_tasks: tuple[str, ...] = ()  # the tasks the paper's score averages (empty: a single task's metric)
    headline: bool = True  # shown in the main table (False: per-task tables only, e.g. SQuAD F1)
    axis: str | None = None  # plot axis label


@dataclass(frozen=True)
class MetricInfo:
    """A task metric as tables show it."""

    label: str  # table label, e.g. "MCC"
    axis: str | None = None  # plot axis label
    better: str = "higher"  # "higher" | "lower"


@dataclass(frozen=True)
class RegistryInfo:
    """result.json's `registry` (version 2): the registry's records of what this file scores."""

    tasks: dict[str, TaskInfo] = field(default_factory=dict)
    benchmarks: dict[str, BenchmarkInfo] = field(default_factory=dict)
    metrics: dict[str, MetricInfo] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            part: {name: _record_json(rec) for name, rec in getattr(self, part).items()}
            for part in ("tasks", "benchmarks", "metrics")
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> RegistryInfo:
        if not isinstance(data, dict):
            raise ResultSchemaError(f"{where}: field 'registry' must be an object")
        kinds = {"tasks": TaskInfo, "benchmarks": BenchmarkInfo, "metrics": MetricInfo}
        unknown = sorted(set(data) - set(kinds))
        if unknown:
            raise ResultSchemaError(f"{where}: field 'registry' has unknown part(s) {unknown}")
        parts = {}
        for part, kind in kinds.items():
            entries = data.get(part, {})
            if not isinstance(entries, dict):
                raise ResultSchemaError(f"{where}: field 'registry.{part}' must be an object")
            parts[part] = {
                name: _record_from_json(kind, rec, f"{where}: field 'registry.{part}.{name}'")
                for name, rec in entries.items()
            }
        return cls(**parts)


def _record_json(rec: Any) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(rec).items()}


def _record_from_json(kind: type, rec: Any, where: str) -> Any:
    if not isinstance(rec, dict):
        raise ResultSchemaError(f"{where} must be an object")
    names = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(rec) - set(names))
    if unknown:
        raise ResultSchemaError(f"{where} has unknown key(s) {unknown}")
    values = {}
    for name, value in rec.items():
        if names[name].type.startswith("tuple"):
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise ResultSchemaError(f"{where}.{name} must be a list of strings, got {value!r:.60}")
            value = tuple(value)
        elif names[name].type == "bool" and not isinstance(value, bool):
            raise ResultSchemaError(f"{where}.{name} must be true or false, got {value!r:.60}")
        elif names[name].type.startswith("str") and not isinstance(value, str) and value is not None:
            raise ResultSchemaError(f"{where}.{name} must be a string, got {value!r:.60}")
        values[name] = value
    try:
        return kind(**values)
    except TypeError as e:  # a required key missing
        raise ResultSchemaError(f"{where}: {e}") from None


# ----------------------------------------------------------------------------------------- the run


@dataclass(kw_only=True)
class RunResult:
    """One finished run. Scores are on the paper's 0-100 scale."""

    schema_version: int = field(
        default=SCHEMA_VERSION,
        metadata=_meta("version of this schema (JSON key `schema`); a file without it is version 1", (int,)),
    )
    sweep: str = field(metadata=_meta("sweep name (a standalone run: its parent directory's)", (str,), identity=True))
    run: str = field(metadata=_meta("run name (its directory)", (str,), identity=True))
    variant: str = field(metadata=_meta("the table row this run belongs to", (str,), identity=True))
    variant_bindings: dict = field(
        default_factory=dict, metadata=_meta("the variant's bindings: binding -> value text", (dict,), identity=True)
    )
    seed: int | None = field(metadata=_meta("Experiment.seed; null when a sweep declares no seeds", (int, NULL)))
    scale: str | None = field(
        default=None,
        metadata=_meta("Experiment.scale, the label a scale file gives itself (`tiny`, `cpu_repro`, ...)", (str, NULL)),
    )
    baseline: bool = field(default=False, metadata=_meta("the variant is the sweep's ★ row", (bool,), identity=True))
    objective: str | None = field(
        default=None, metadata=_meta("the pretraining objective's name; null without pretraining", (str, NULL))
    )
    pretrain: dict = field(
        metadata=_meta(
            "steps, tokens_seen, final_loss, final_accuracy, eval_loss, eval_accuracy (numbers or null)", (dict,)
        )
    )
    downstream: dict = field(
        default_factory=dict,
        metadata=_meta(
            "task -> {best, last: {metric: score}, best_step, primary_metric, selected_on (selection | validation: the "
            "examples that chose best_step), best_selection (with a selection split: their scores at best_step)}",
            (dict, NULL),
        ),
    )
    benchmarks: dict = field(
        default_factory=lambda: {"best": {}, "last": {}},
        metadata=_meta("{best, last}: benchmark score name -> score (e.g. glue_average, squad_em)", (dict, NULL)),
    )
    bootstrap: dict | None = field(
        default=None,
        metadata=_meta(
            "intervals over evaluation examples of the best checkpoint (below); null without tasks", (dict, NULL)
        ),
    )
    timing: dict = field(
        default_factory=dict,
        metadata=_meta(
            "compile_s, pretrain_s, finetune_s, eval_s, heldout_eval_s, decode_wall_s, decode_compile_s, "
            "checkpoint_pretrain_s, checkpoint_finetune_s, compile_all_s, compiles, compile_cache_hits, total_s, "
            "summed over `attempts` (train/attempts.py)",
            (dict, NULL),
        ),
    )
    attempts: list = field(
        default_factory=list,
        metadata=_meta("one object per attempt: attempt, started, host, pid, resumed and its timing keys", (list,)),
    )
    throughput: dict = field(
        default_factory=dict,
        metadata=_meta(
            "pretrain_tokens_per_s, mfu, data_wait_share, finetune_tokens_per_s (padded slots), "
            "finetune_real_tokens_per_s, finetune_packing_ratio of the last attempt (null when it trained no step)",
            (dict, NULL),
        ),
    )
    model: dict = field(
        default_factory=dict,
        metadata=_meta(
            "name, num_params; since the model registry records them: architecture, embedding_params, "
            "train_flops_per_example",
            (dict, NULL),
        ),
    )
    versions: dict = field(
        default_factory=dict,
        metadata=_meta(
            "versions of every package that can change the numbers, python, machine, cpu, jax_backend", (dict, NULL)
        ),
    )
    git_commit: str | None = field(default=None, metadata=_meta("the repository's HEAD, if known", (str, NULL)))
    devices: dict = field(default_factory=dict, metadata=_meta("platform, count, kind", (dict, NULL)))
    host: str | None = field(default=None, metadata=_meta("the machine's host name", (str, NULL)))
    registry: RegistryInfo | None = field(
        default=None,
        metadata=_meta(
            "{tasks, benchmarks, metrics}: display labels and benchmark membership from the task registry (below)",
            (dict,),
            since=2,
            omit_if_none=True,
        ),
    )
    shared_from: str | None = field(
        default=None,
        metadata=_meta(
            "`<sweep>/<run>` this run was copied from (an identical run, sweep/sharing.py); absent when trained",
            (str,),
            omit_if_none=True,
        ),
    )
    numerics_version: int | None = field(
        default=None,
        metadata=_meta(
            "t5explore/numerics.py's NUMERICS_VERSION of the code that computed this run's numbers",
            (int,),
            since=3,
            omit_if_none=True,
        ),
    )
    hygiene: dict | None = field(
        default=None,
        metadata=_meta(
            "{decontamination: {ngram, eval_examples, contaminated_before, documents_removed, overlap_after}, "
            "selection: {split, examples per task}}: evaluation text removed from the corpus, the selection split",
            (dict,),
            since=3,
            omit_if_none=True,
        ),
    )
    budgets: list | None = field(
        default=None,
        metadata=_meta(
            "one object per evaluated pre-training budget (Pretrain.eval_at_steps): steps, input_tokens, "
            "target_tokens, flops, wall_s, pretrain losses, downstream, benchmarks, bootstrap",
            (list,),
            since=3,
            omit_if_none=True,
        ),
    )
    extra: dict = field(default_factory=dict, repr=False)  # top-level fields this version does not define

    def to_json(self) -> dict:
        """The JSON object, keys in field order (`schema_version` under its key `schema`), extras last."""
        out: dict[str, Any] = {}
        for f in schema_fields():
            value = getattr(self, f.name)
            if value is None and f.metadata["omit_if_none"]:
                continue
            out[json_key(f)] = value.to_json() if isinstance(value, RegistryInfo) else value
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, data: Any, path: str | Path = "result.json") -> RunResult:
        """Check a parsed result.json against its version's fields; errors name `path` and the field."""
        if not isinstance(data, dict):
            raise ResultSchemaError(f"{path}: expected a JSON object")
        version = read_version(data, path)
        values: dict[str, Any] = {}
        for f in schema_fields():
            key = json_key(f)
            if key not in data or f.metadata["since"] > version:
                if _required(f):
                    raise ResultSchemaError(f"{path}: missing required field {key!r}")
                continue
            values[f.name] = _checked(f, data[key], path)
        values["schema_version"] = version
        if "registry" in values:
            values["registry"] = RegistryInfo.from_json(values["registry"], str(path))
        known = {json_key(f) for f in schema_fields()}
        values["extra"] = {k: v for k, v in data.items() if k not in known}
        return cls(**values)


def schema_fields() -> list[dataclasses.Field]:
    """RunResult's JSON fields, in the order they are written."""
    return [f for f in dataclasses.fields(RunResult) if f.name != "extra"]


def json_key(f: dataclasses.Field) -> str:
    return VERSION_KEY if f.name == "schema_version" else f.name


def read_version(data: Mapping[str, Any], path: str | Path) -> int:
    """The file's schema version (1 without the key); newer than SCHEMA_VERSION is an error."""
    version = data.get(VERSION_KEY, 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ResultSchemaError(f"{path}: schema version {version!r} is not a positive integer")
    if version > SCHEMA_VERSION:
        raise ResultSchemaError(
            f"{path}: schema version {version} is newer than this t5explore reads "
            f"(versions 1-{SCHEMA_VERSION}); update t5explore to read it"
        )
    return version


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _checked(f: dataclasses.Field, value: Any, path: str | Path) -> Any:
    types = f.metadata["types"]
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        if bool in types:
            raise ResultSchemaError(f"{path}: field {json_key(f)!r} must be true or false, got {value!r}")
        names = " or ".join(
            "null" if t is NULL else {"dict": "object", "list": "array"}.get(t.__name__, t.__name__) for t in types
        )
        raise ResultSchemaError(f"{path}: field {json_key(f)!r} must be {names}, got {value!r:.80}")
    return value


# ------------------------------------------------------------------------------------------- docs

DOC_BEGIN = "<!-- result-schema:begin (generated by `python -m t5explore.results_schema`; do not edit) -->"
DOC_END = "<!-- result-schema:end -->"


def schema_markdown() -> str:
    """The field table of docs/ARCHITECTURE.md's result.json section."""
    lines = [
        f"Schema version {SCHEMA_VERSION} (`t5explore/results_schema.py`, `RunResult`):",
        "",
        "| key | type | since | meaning |",
        "|:---|:---|---:|:---|",
    ]
    for f in schema_fields():
        types = " \\| ".join(
            "null" if t is NULL else {"dict": "object", "list": "array"}.get(t.__name__, t.__name__)
            for t in f.metadata["types"]
        )
        required = "" if not _required(f) else " (required)"
        lines.append(f"| `{json_key(f)}` | {types} | {f.metadata['since']} | {f.metadata['doc']}{required} |")
    lines += ["", "`registry` holds three maps of records (`RegistryInfo`):", ""]
    for part, kind in (("tasks", TaskInfo), ("benchmarks", BenchmarkInfo), ("metrics", MetricInfo)):
        keys = ", ".join(f"`{f.name}`" for f in dataclasses.fields(kind))
        lines.append(f"- `registry.{part}`: name -> {{{keys}}} ({(kind.__doc__ or kind.__name__).strip()})")
    return "\n".join(lines) + "\n"


def documented_block(text: str) -> str | None:
    """The generated block inside `text` (between DOC_BEGIN and DOC_END), or None without markers."""
    start, end = text.find(DOC_BEGIN), text.find(DOC_END)
    if start < 0 or end < start:
        return None
    return text[start + len(DOC_BEGIN) : end].strip("\n") + "\n"


def update_docs(path: str | Path) -> bool:
    """Rewrite the generated block of `path`; True when it changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if documented_block(text) is None:
        raise ResultSchemaError(f"{path}: no {DOC_BEGIN!r} ... {DOC_END!r} block to update")
    start, end = text.index(DOC_BEGIN) + len(DOC_BEGIN), text.index(DOC_END)
    new = text[:start] + "\n" + schema_markdown() + text[end:]
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":  # python -m t5explore.results_schema [--update FILE]
    if len(sys.argv) == 3 and sys.argv[1] == "--update":
        print(f"{sys.argv[2]}: {'updated' if update_docs(sys.argv[2]) else 'already up to date'}")
    else:
        print(schema_markdown(), end="")
