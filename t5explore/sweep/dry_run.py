"""`t5explore sweep FILE --dry_run`: every selected run with its bindings, its state in the results directory,
and what the runs still to do would cost, judged from runs that finished there. Nothing is written.

States are `status`'s (rundir.py): done, pending, failed, corrupt, stale (made under another config: the sweep
refuses it until --rerun_changed or --force) and `running elsewhere` (a live claim by another worker). A pending
run whose exact config a finished run already computed is copied, not trained (sharing.py), and costs nothing.

The cost estimate: each run still to do (pending, failed, corrupt or stale) is matched with the finished runs
of the same scale (`Experiment.scale`) under the results directory, every sweep's, read from their
fingerprint.json (what they ran) and result.json (`timing.total_s`, summed over attempts). A run with the same
pre-training steps, budgets and fine-tuning steps as some of them takes their median. Otherwise it takes a
rate: pre-training seconds per pre-training step (`timing.pretrain_s`) plus the rest of the wall time per
fine-tuning step (every budget fine-tunes again). Where no finished run of that scale did what the run does
(pre-train, fine-tune), it says that no estimate is possible. The numbers are seconds of the machines that ran
those runs, and one run at a time; a run resumed from its checkpoints takes less.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from t5explore import io_utils
from t5explore.sweep import claim, fingerprint, rundir, sharing, stale
from t5explore.sweep.fingerprint import Fingerprint
from t5explore.sweep.grid import RunSpec, SweepSpec

TO_RUN = ("pending", "failed", "corrupt", "stale")  # the states a sweep would (re)run
SHOWN = {"running": "running elsewhere"}  # a dry run runs nothing: a live claim is another worker's


@dataclasses.dataclass(frozen=True)
class Work:
    """What a run does, from its config: the scale label, pre-training steps, fine-tunings and their steps."""

    scale: str
    pretrain_steps: int
    finetunes: int  # budgets + the final params, when there are tasks
    finetune_steps: int  # per fine-tuning: Finetune.steps, times the tasks when they are fine-tuned one by one

    @property
    def key(self) -> tuple[int, int, int]:
        return self.pretrain_steps, self.finetunes, self.finetune_steps


@dataclasses.dataclass(frozen=True)
class Finished:
    label: str  # <sweep>/<run>
    work: Work
    total_s: float
    pretrain_s: float


def work_of(statements: Sequence[str]) -> Work:
    """A run's Work from its canonical gin statements (fingerprint.json's `config`; unbound = the default)."""
    config = {fingerprint.binding_key(s): s.split(" = ", 1)[1] for s in statements if " = " in s}

    def value(key: str, default: Any) -> Any:
        if key not in config:
            return default
        try:
            return ast.literal_eval(config[key])
        except (ValueError, SyntaxError):
            return default

    steps = _int(value("Pretrain.steps", 0))
    budgets = [b for b in value("Pretrain.eval_at_steps", ()) or () if isinstance(b, int) and 0 < b < steps]
    tasks = list(value("Finetune.tasks", ()) or ())
    per_task = value("Finetune.mode", "per_task") != "multi_task"
    ft_steps = _int(value("Finetune.steps", 0)) * (len(tasks) if per_task else 1) if tasks else 0
    return Work(str(value("Experiment.scale", "") or ""), steps, (len(budgets) + 1) if ft_steps else 0, ft_steps)


def _int(x: Any) -> int:
    return x if isinstance(x, int) and not isinstance(x, bool) else 0


def finished_runs(results_dir: str | os.PathLike) -> list[Finished]:
    """Every run under results_dir (any sweep) with a readable result.json, its config recorded and its wall time;
    copies of another run (`shared_from`) are left out: their time is their source's."""
    from t5explore.report.results import find_sweep_dirs, is_run_dir, subdirs

    root = Path(results_dir)
    out = []
    for sdir in find_sweep_dirs(root) if root.is_dir() else []:
        for run in (d for d in subdirs(sdir) if is_run_dir(d)):
            fp = fingerprint.read(run)
            try:
                result = io_utils.read_json(run / rundir.RESULT_FILE)
            except (OSError, ValueError):
                continue
            timing = result.get("timing") if isinstance(result, dict) else None
            if fp is None or not isinstance(timing, dict) or result.get("shared_from"):
                continue
            total, pre = timing.get("total_s"), timing.get("pretrain_s") or 0.0
            if isinstance(total, (int, float)) and total > 0 and isinstance(pre, (int, float)):
                label = os.path.relpath(run, root)
                out.append(Finished(label, work_of(fp.config), float(total), float(pre)))
    return out


def estimate(work: Work, refs: Sequence[Finished]) -> tuple[float | None, str]:
    """(seconds or None, how): the median of the same-work finished runs, else per-step rates (module doc)."""
    same = [r.total_s for r in refs if r.work.key == work.key]
    if same:
        return statistics.median(same), "same steps"
    pre = [r for r in refs if r.work.pretrain_steps > 0]
    ft = [r for r in refs if r.work.finetunes and r.work.finetune_steps]
    if (work.pretrain_steps and not pre) or (work.finetunes and not ft) or not refs:
        return None, "no finished run of this scale " + (
            "pre-trained" if work.pretrain_steps and not pre else "fine-tuned"
        )
    pre_rate = sum(r.pretrain_s for r in pre) / sum(r.work.pretrain_steps for r in pre) if pre else 0.0
    ft_rate = (
        sum(r.total_s - r.pretrain_s for r in ft) / sum(r.work.finetunes * r.work.finetune_steps for r in ft)
        if ft
        else 0.0
    )
    return pre_rate * work.pretrain_steps + ft_rate * work.finetunes * work.finetune_steps, "per-step rates"


def states(
    sdir: Path, runs: Sequence[RunSpec], prints: dict[str, Fingerprint], stale_after: float
) -> dict[str, rundir.RunState]:
    """Each run's state as `status` would show it, `stale` included (judged against this sweep's configs)."""
    changed = dict(stale.changed_runs(sdir, runs, prints)) if sdir.is_dir() else {}
    out = {}
    for r in runs:
        s = rundir.run_state(rundir.run_dir(sdir, r.name), stale_after)
        if r.name in changed and s.state != "running":
            s = rundir.RunState(r.name, "stale", f"made under another config: {fingerprint.describe(changed[r.name])}")
        out[r.name] = s
    return out


def print_dry_run(
    spec: SweepSpec,
    selected: Sequence[RunSpec],
    out: TextIO,
    results_dir: str | os.PathLike,
    prints: dict[str, Fingerprint],
    stale_after: float = claim.DEFAULT_STALE_AFTER_S,
) -> None:
    """The runs, their bindings and states, the counts, and the cost estimate of what is left to do."""
    sdir = rundir.sweep_dir(results_dir, spec.name)
    now = states(sdir, selected, prints, stale_after)
    shared = {r.name: src[0] for r in selected if now[r.name].state == "pending"
              for src in [sharing.find_source(results_dir, prints[r.name], exclude=sdir / r.name)] if src}  # fmt: skip
    print(f"sweep {spec.name}: {len(selected)} of {len(spec.runs)} runs ({spec.sweep_file}) in {sdir}", file=out)
    for r in selected:
        s = now[r.name]
        detail = f"copied from {shared[r.name]}" if r.name in shared else s.detail
        star = " ★" if r.baseline else ""
        print(
            f"\n{r.name}  [{r.variant}{star}]  {SHOWN.get(s.state, s.state)}{': ' + detail if detail else ''}", file=out
        )
        for f in r.gin_files[1:]:
            print(f"    include {f}", file=out)
        for b in r.bindings:
            print(f"    {b}", file=out)
    counts = [f"{n} {SHOWN.get(k, k)}" for k in rundir.STATES if (n := sum(s.state == k for s in now.values()))]
    print(f"\n{len(selected)} runs: {', '.join(counts)}", file=out)
    todo = [r for r in selected if now[r.name].state in TO_RUN and r.name not in shared]
    for line in cost_lines(todo, prints, finished_runs(results_dir), len(shared)):
        print(line, file=out)


def cost_lines(
    todo: Sequence[RunSpec], prints: dict[str, Fingerprint], refs: Sequence[Finished], n_shared: int
) -> list[str]:
    """The estimate, per scale: the total, what it rests on (which finished runs), and the runs it cannot cover."""
    if n_shared:
        lines = [f"{n_shared} pending run(s) will be copied from finished runs of the same config (no cost)"]
    else:
        lines = []
    if not todo:
        return [*lines, "nothing left to run"]
    by_scale: dict[str, list[RunSpec]] = {}
    for r in todo:
        by_scale.setdefault(work_of(prints[r.name].config).scale, []).append(r)
    for scale, runs in by_scale.items():
        same = [f for f in refs if f.work.scale == scale]
        name = f"scale {scale!r}" if scale else "no Experiment.scale"
        if not same:
            lines.append(f"cost of {len(runs)} run(s) to do ({name}): no estimate, no finished run of this scale here")
            continue
        est = [(r.name, *estimate(work_of(prints[r.name].config), same)) for r in runs]
        known = [(n, s, how) for n, s, how in est if s is not None]
        total = sum(s for _, s, _ in known)
        lines.append(
            f"cost of {len(runs)} run(s) to do ({name}): ~{_duration(total)} of wall time for {len(known)} of them, "
            f"from {len(same)} finished run(s) of this scale: {_labels(same)}"
        )
        ways = sorted({how for _, _, how in known})
        if ways:
            lines.append(
                f"  based on: {' and '.join(ways)} (seconds of the machine(s) that ran them, one run at a time)"
            )
        for n, _, how in (e for e in est if e[1] is None):
            lines.append(f"  {n}: no estimate ({how})")
    return lines


def _labels(refs: Sequence[Finished], limit: int = 4) -> str:
    shown = ", ".join(f"{r.label} ({_duration(r.total_s)})" for r in refs[:limit])
    return shown + (f", and {len(refs) - limit} more" if len(refs) > limit else "")


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
