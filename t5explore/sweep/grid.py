"""A sweep is a gin file: building blocks by `include`, the grid by binding the `Sweep` configurable.

    include 'gin/runs/tiny_cpu.gin'
    include 'gin/objectives/iid_replace_spans.gin'
    Sweep.variants = {                       # named rows, in table order (not a product)
        'prefix_lm': {'include': 'gin/objectives/prefix_lm.gin'},
        'no_pretraining': {'Pretrain.steps': '0'},
    }
    Sweep.axes = {'iid_replace_spans.noise_density': ['0.1', '0.15']}   # a full product
    Sweep.seeds = [0, 1]                      # an axis bound to Experiment.seed
    Sweep.baseline = 'prefix_lm'              # the paper's ★ row
    Sweep.display_names = {'prefix_lm': 'Prefix language modeling'}

Runs = variants × product(axes) × seeds, in that (declared) order. A sweep file that says two things is refused
(exit 2): a dict key given twice (e.g. two variants of one name, which gin would silently reduce to the last),
or `Sweep.seeds = []` (no seed at all; leave Sweep.seeds unbound for seed 0, or bind None for no seed axis).
Binding values are gin text: strings are pasted verbatim (`'@prefix_lm()'`, `'0.25'`, `"'c4/en'"` for a string
literal); numbers, booleans and lists are written with `repr`. A variant's `include` key (a path or list of
paths) adds gin files.

Each run parses, in this order (a later binding of a parameter wins): the sweep file, the command-line gin
files, its variant's `include` files, its grid bindings (variant and axis values, then `Experiment.seed`),
and last the `--gin.X=` overrides. So command-line gin files apply to every run and win over the sweep file
and its includes (e.g. a scale file replacing the sweep's default scale), but not over a variant's includes
or the grid's values; `--gin.X=` overrides win over everything. Overrides of `Sweep.*` change the grid
itself (e.g. `--gin.Sweep.seeds=[0,1,2]`).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gin

from t5explore import config
from t5explore.sweep import naming
from t5explore.sweep.duplicates import refuse_duplicate_keys

SEED_BINDING = "Experiment.seed"
INCLUDE_KEY = "include"
_BINDING_KEY = re.compile(r"[A-Za-z_][\w./]*\.[A-Za-z_]\w*")


@dataclasses.dataclass(frozen=True)
class SweepSettings:
    """What a sweep file binds on `Sweep`, before expansion."""

    name: str | None = None
    variants: Any = None
    axes: Any = None
    seeds: Any = (0,)
    baseline: str | None = None
    display_names: Any = None


@gin.configurable("Sweep")
def sweep_settings(name=None, variants=None, axes=None, seeds=(0,), baseline=None, display_names=None):
    """The gin face of a sweep declaration (see the module docstring)."""
    return SweepSettings(name, variants, axes, seeds, baseline, display_names)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: everything the executor needs besides the run directory."""

    index: int
    name: str  # directory name, e.g. 'replace_spans__noise_density_0.25__seed_1'
    point: str  # the name without the seed: identifies the table row
    variant: str  # display name of the row, e.g. 'Replace corrupted spans' or 'μ = 3'
    variant_bindings: dict[str, str]  # the grid's bindings for this row (no seed, no overrides)
    seed: int | None
    gin_files: tuple[str, ...]
    bindings: tuple[str, ...]  # every gin statement, in order: grid, seed, then overrides
    baseline: bool

    def metadata(self, sweep_name: str) -> dict[str, Any]:
        """What the executor copies into result.json (see ARCHITECTURE.md, result.json schema 1)."""
        return {
            "sweep": sweep_name,
            "run": self.name,
            "point": self.point,
            "variant": self.variant,
            "variant_bindings": dict(self.variant_bindings),
            "seed": self.seed,
            "baseline": self.baseline,
        }


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    name: str
    sweep_file: str
    runs: tuple[RunSpec, ...]
    baseline: str | None
    display_names: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        """The content of `sweep.json`, so reports can name and order rows without parsing gin."""
        return {
            "schema": 1,
            "name": self.name,
            "sweep_file": self.sweep_file,
            "baseline": self.baseline,
            "display_names": dict(self.display_names),
            "runs": [
                {
                    **r.metadata(self.name),
                    "index": r.index,
                    "gin_files": list(r.gin_files),
                    "bindings": list(r.bindings),
                }
                for r in self.runs
            ],
        }


def load_sweep(sweep_file: str, overrides: Sequence[str] = (), gin_files: Sequence[str] = ()) -> SweepSpec:
    """Parse a sweep gin file for real (every configurable it mentions must resolve) and expand it."""
    sweep_path = os.path.abspath(config.resolve_gin_file(sweep_file))
    refuse_duplicate_keys(Path(sweep_path).read_text(encoding="utf-8"), sweep_path)
    for binding in overrides:
        refuse_duplicate_keys(binding, "the command line")
    try:
        config.parse_gin([sweep_path, *gin_files], overrides)
        settings = sweep_settings()
    finally:
        gin.clear_config()
    run_overrides = [b for b in overrides if not b.lstrip().startswith("Sweep.")]
    default_name = Path(sweep_path).stem
    return expand(settings, sweep_path, default_name, extra_gin_files=gin_files, overrides=run_overrides)


def expand(
    settings: SweepSettings,
    sweep_file: str,
    default_name: str,
    extra_gin_files: Sequence[str] = (),
    overrides: Sequence[str] = (),
) -> SweepSpec:
    """variants × product(axes) × seeds -> ordered RunSpecs with unique, safe names. Pure and deterministic."""
    name = _sweep_name(settings.name, default_name)
    variants = _variants(settings.variants)
    axes = _axes(settings.axes)
    seeds = _seeds(settings.seeds)
    if not variants and not axes:
        raise config.ConfigError(f"sweep file {sweep_file} declares neither Sweep.variants nor Sweep.axes")
    _check_no_overlap(variants, axes, seeds)
    labels = _axis_labels(list(axes))

    points = []  # (point name, display, bindings, includes)
    display_names = _display_names(settings.display_names)
    for vname, (vbind, vincl) in variants.items() or [(None, ({}, ()))]:
        for values in itertools.product(*axes.values()) if axes else [()]:
            abind = dict(zip(axes, values))
            parts = ([naming.slug(vname)] if vname is not None else []) + [
                naming.axis_part(labels[k], v) for k, v in abind.items()
            ]
            shown_parts = ([display_names.get(vname, vname)] if vname is not None else []) + [
                display_names.get(naming.axis_part(labels[k], v), f"{labels[k]} = {v}") for k, v in abind.items()
            ]
            bind = {**vbind, **abind}
            if vincl:
                bind = {INCLUDE_KEY: ", ".join(vincl), **bind}
            points.append((parts, vname, ", ".join(shown_parts), bind, vincl))

    known = {vn for _, vn, *_ in points if vn is not None} | {naming.join_parts(p) for p, *_ in points}
    known |= {naming.axis_part(labels[k], v) for k, vals in axes.items() for v in vals}
    for key in display_names:
        if key not in known:
            raise config.ConfigError(
                f"Sweep.display_names names {key!r}, which is no variant or axis value "
                f"of this sweep (known: {sorted(known)})"
            )
    if settings.baseline is not None and settings.baseline not in known:
        raise config.ConfigError(
            f"Sweep.baseline = {settings.baseline!r} is no variant of this sweep (known: {sorted(known)})"
        )

    raw, idents, rows = [], [], []
    for parts, vname, shown, bind, vincl in points:
        for seed in seeds if seeds else (None,):
            raw.append(naming.join_parts(parts + ([f"seed_{seed}"] if seed is not None else [])))
            idents.append(repr((sorted(bind.items()), seed)))
            rows.append((parts, vname, shown, bind, vincl, seed))
    try:
        names = naming.make_unique(raw, idents)
    except ValueError as e:
        raise config.ConfigError(f"sweep file {sweep_file}: {e}") from None

    runs = []
    for i, (run_name, (parts, vname, shown, bind, vincl, seed)) in enumerate(zip(names, rows)):
        point = naming.join_parts(parts)
        statements = [f"{k} = {v}" for k, v in bind.items() if k != INCLUDE_KEY]
        if seed is not None:
            statements.append(f"{SEED_BINDING} = {seed}")
        runs.append(
            RunSpec(
                index=i,
                name=run_name,
                point=point,
                variant=shown,
                variant_bindings=bind,
                seed=seed,
                gin_files=(sweep_file, *extra_gin_files, *vincl),
                bindings=(*statements, *overrides),
                baseline=_is_baseline(settings.baseline, variants, vname, point),
            )
        )
    return SweepSpec(name, sweep_file, tuple(runs), settings.baseline, display_names)


def _is_baseline(baseline: str | None, variants: Mapping[str, Any], vname: str | None, point: str) -> bool:
    """★: the variant named exactly `baseline`; only when no variant has that name, the point so named
    (axis-only sweeps). Never by slug: a variant '../a' has the point name 'a' too."""
    if baseline is None:
        return False
    return vname == baseline if baseline in variants else point == baseline


def _sweep_name(name, default: str) -> str:
    chosen = default if name is None else name
    try:
        return naming.check_safe_name(str(chosen))
    except ValueError as e:
        raise config.ConfigError(f"Sweep.name: {e}") from None


def _variants(variants) -> dict[str, tuple[dict[str, str], tuple[str, ...]]]:
    """Accept {name: {binding: value}} or [[name, {...}], ...] or [{'name': ..., binding: value}, ...]."""
    if variants is None:
        return {}
    if isinstance(variants, Mapping):
        items = list(variants.items())
    elif isinstance(variants, (list, tuple)):
        items = []
        for i, v in enumerate(variants):
            if isinstance(v, Mapping) and "name" in v:
                items.append((v["name"], {k: x for k, x in v.items() if k != "name"}))
            elif isinstance(v, (list, tuple)) and len(v) == 2:
                items.append(tuple(v))
            else:
                raise config.ConfigError(
                    f"Sweep.variants[{i}] must be [name, {{binding: value}}] or a dict with a 'name' key, got {v!r}"
                )
    else:
        raise config.ConfigError(f"Sweep.variants must be a dict or list of named variants, got {variants!r}")
    out: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {}
    for vname, body in items:
        where = f"Sweep.variants[{vname!r}]"
        if not isinstance(vname, str) or not vname.strip():
            raise config.ConfigError(f"{where}: a variant name must be a non-empty string")
        if vname in out:
            raise config.ConfigError(f"{where}: variant declared twice")
        if not isinstance(body, Mapping):
            raise config.ConfigError(f"{where} must be a dict {{gin binding: value}}, got {body!r}")
        includes: tuple[str, ...] = ()
        bindings: dict[str, str] = {}
        for key, value in body.items():
            if key == INCLUDE_KEY:
                includes = _includes(where, value)
            else:
                bindings[_binding_key(where, key)] = _gin_text(f"{where}[{key!r}]", value)
        out[vname] = (bindings, includes)
    return out


def _includes(where: str, value) -> tuple[str, ...]:
    paths = [value] if isinstance(value, str) else value
    if not isinstance(paths, (list, tuple)) or not all(isinstance(p, str) for p in paths):
        raise config.ConfigError(f"{where}['include'] must be a gin file path or a list of them, got {value!r}")
    for p in paths:
        try:
            config.resolve_gin_file(p)
        except config.ConfigError as e:
            raise config.ConfigError(f"{where}['include']: {e}") from None
    return tuple(paths)


def _axes(axes) -> dict[str, list[str]]:
    if axes is None:
        return {}
    if not isinstance(axes, Mapping):
        raise config.ConfigError(f"Sweep.axes must be a dict {{gin binding: [values]}}, got {axes!r}")
    out = {}
    for key, values in axes.items():
        where = f"Sweep.axes[{key!r}]"
        key = _binding_key("Sweep.axes", key)
        if not isinstance(values, (list, tuple)) or not values:
            raise config.ConfigError(f"{where} must be a non-empty list of values, got {values!r}")
        texts = [_gin_text(where, v) for v in values]
        if len(set(texts)) != len(texts):
            raise config.ConfigError(f"{where} repeats a value: {texts}")
        out[key] = texts
    return out


def _seeds(seeds) -> list[int]:
    if seeds is None:
        return []
    if (
        isinstance(seeds, int)
        or not isinstance(seeds, (list, tuple))
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise config.ConfigError(f"Sweep.seeds must be a list of integers, got {seeds!r}")
    if not seeds:
        raise config.ConfigError(
            "Sweep.seeds = [] declares no seed: list at least one (e.g. [0]); leave Sweep.seeds unbound for seed 0 "
            "or bind None for runs without a seed axis"
        )
    if len(set(seeds)) != len(seeds):
        raise config.ConfigError(f"Sweep.seeds repeats a seed: {list(seeds)}")
    return list(seeds)


def _display_names(display_names) -> dict[str, str]:
    if display_names is None:
        return {}
    if not isinstance(display_names, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in display_names.items()
    ):
        raise config.ConfigError(f"Sweep.display_names must be a dict {{name: 'display text'}}, got {display_names!r}")
    return dict(display_names)


def _binding_key(where: str, key) -> str:
    if not isinstance(key, str) or not _BINDING_KEY.fullmatch(key.strip()):
        raise config.ConfigError(
            f"{where}: {key!r} is not a gin binding (expected 'Configurable.parameter' or the key 'include')"
        )
    return key.strip()


def _gin_text(where: str, value) -> str:
    """Binding values are gin text; Python literals are written as gin reads them back."""
    if isinstance(value, str):
        if not value.strip():
            raise config.ConfigError(f"{where}: empty value")
        return value.strip()
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, (list, tuple, dict)):
        return repr(value)
    raise config.ConfigError(
        f"{where}: value {value!r} of type {type(value).__name__} is not gin text; quote it, e.g. '@span_corruption()'"
    )


def _check_no_overlap(variants, axes, seeds) -> None:
    for vname, (vbind, _) in variants.items():
        for key in vbind:
            if key in axes:
                raise config.ConfigError(f"{key} is bound both by Sweep.variants[{vname!r}] and by Sweep.axes")
            if seeds and key == SEED_BINDING:
                raise config.ConfigError(f"Sweep.variants[{vname!r}] binds {SEED_BINDING}; use Sweep.seeds")
    if seeds and SEED_BINDING in axes:
        raise config.ConfigError(f"Sweep.axes binds {SEED_BINDING}; use Sweep.seeds instead")


def _axis_labels(keys: list[str]) -> dict[str, str]:
    """Short labels for axis bindings; the full binding where two axes share a parameter name."""
    short = [naming.binding_label(k) for k in keys]
    return {k: (s if short.count(s) == 1 else naming.binding_slug(k)) for k, s in zip(keys, short)}
