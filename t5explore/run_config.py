"""What a run is, as gin-configurable dataclasses: `Experiment`, `Pretrain`, `Finetune`, `Optimizer`.

Each is a plain frozen dataclass so that a run's settings are one readable object, and `validate()`
raises a `ConfigError` naming the gin binding at fault (not a shape error ten minutes into training).
They sit at the bottom of the package order (docs/ARCHITECTURE.md), beside the run directory's layout
(run_layout.py), because more than the trainer reads them: `distributed.py` refuses multi-process
fine-tuning, `t5explore data` builds a run's token store, the sweep type-checks and fingerprints a run's
bindings. So this module imports no JAX; the optax optimiser an `Optimizer` describes is built by
train/optimizers.py. The gin names (`Pretrain`, ...) are what gin files and every run's fingerprint use.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import functools
import sys
import types
import typing
from collections.abc import Sequence
from typing import Any

import gin

from t5explore.config import ConfigError


def _require(cond: bool, binding: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"gin binding {binding}: {message}")


# ------------------------------------------------------------------ types, from the dataclasses' annotations


def check_types(obj: Any, scope: str) -> None:
    """Every field of the dataclass `obj` has its annotated type; else one ConfigError naming `scope.field`."""
    cls: type = type(obj)  # annotated: mypy takes type(obj) of an Any for unhashable (the cache's key)
    hints = _type_hints(cls)
    for field in dataclasses.fields(obj):
        check_value(f"{scope}.{field.name}", getattr(obj, field.name), hints[field.name])


def check_value(binding: str, value: Any, annotation: Any) -> None:
    if not _matches(value, annotation):
        raise ConfigError(
            f"gin binding {binding}: must be {_describe(annotation)}, got {value!r:.60} ({type(value).__name__})"
        )


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


# `Optional[X]` and `X | None` (PEP 604) have different origins before Python 3.14.
UNION_TYPES = (typing.Union, types.UnionType)


def _matches(value: Any, tp: Any) -> bool:
    """isinstance for the annotations used here: Any, int, float (an int is fine), str, bool, Optional[...],
    Sequence[...]. A bool is no int or float (gin reads `True` for a typo'd `1`-valued binding as a bool)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True
    if origin in UNION_TYPES:
        return any(_matches(value, a) for a in args)
    if tp is type(None):
        return value is None
    # A numpy scalar can only exist once numpy is imported; not importing it here keeps `--help` light.
    np = sys.modules.get("numpy")
    bools, ints, floats = (
        ((bool, np.bool_), (int, np.integer), (float, np.floating)) if np else ((bool,), (int,), (float,))
    )
    if isinstance(value, bools):
        return tp is bool
    if tp is int:
        return isinstance(value, ints)
    if tp is float:
        return isinstance(value, ints + floats)
    if origin in (collections.abc.Sequence, list, tuple):
        return isinstance(value, (list, tuple)) and all(_matches(v, args[0] if args else Any) for v in value)
    return isinstance(value, origin or tp)


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in UNION_TYPES:
        return " or ".join(_describe(a) for a in args)
    if tp is type(None):
        return "None"
    if origin in (collections.abc.Sequence, list, tuple):
        return f"a list of {_describe(args[0]) if args else 'values'}"
    return getattr(tp, "__name__", str(tp))


def check_gin_bindings() -> None:
    """Type-check the parsed gin bindings of Experiment, Pretrain, Finetune and Optimizer (any scope) before
    anything is built: `t5explore sweep --dry_run` and every run's fingerprint call this. References
    (`@x()`, `%MACRO`) are checked when the dataclass is built (`validate()`)."""
    from gin import config as gc

    classes = {cls.__name__: cls for cls in (Experiment, Pretrain, Finetune, Optimizer)}
    try:
        bound = list(gc._CONFIG.items())  # gin has no public listing of bindings
    except AttributeError:
        return
    for (scope, selector), params in bound:
        module, _, name = selector.rpartition(".")
        if module != __name__ or name not in classes:
            continue
        hints = _type_hints(classes[name])
        for param, value in params.items():
            if param in hints and not isinstance(value, gc.ConfigurableReference):
                check_value(f"{scope + '/' if scope else ''}{name}.{param}", value, hints[param])


@gin.configurable("Experiment")
@dataclasses.dataclass(frozen=True)
class Experiment:
    """Run-wide settings: the one seed everything derives from, and names for the report."""

    seed: int = 0
    model_name: str | None = None  # None -> T5Config.name
    notes: str = ""
    scale: str = ""  # a label for the report, e.g. 'tiny' (gin/runs/tiny_cpu.gin: tables say it is a smoke test)
    cache_dir: str | None = None  # vocab / token-store cache; None -> $T5EXPLORE_CACHE or ~/.cache/t5explore

    def validate(self) -> None:
        check_types(self, "Experiment")


@gin.configurable("Optimizer")
@dataclasses.dataclass(frozen=True)
class Optimizer:
    """An optax optimiser + schedule (built by train/optimizers.py). `learning_rate` is always the peak value.

    rsqrt (the paper): lr(step) = learning_rate * sqrt(warmup_steps / max(step, warmup_steps)); with
    learning_rate=0.01 and warmup_steps=10_000 this is exactly 1/sqrt(max(step, 10^4)).
    cosine: linear warm-up to learning_rate, cosine decay to 0 at `decay_steps` (None -> Pretrain.steps).
    """

    name: str = "adafactor"  # 'adafactor' | 'adamw'
    schedule: str = "rsqrt"  # 'rsqrt' | 'cosine' | 'constant'
    learning_rate: float = 0.01
    warmup_steps: int = 10_000
    weight_decay: float = 0.0
    decay_steps: int | None = None
    grad_clip_norm: float | None = None

    def validate(self, scope: str = "Optimizer") -> None:
        check_types(self, scope)
        _require(
            self.name in ("adafactor", "adamw"), f"{scope}.name", f"must be 'adafactor' or 'adamw', got {self.name!r}"
        )
        _require(
            self.schedule in ("rsqrt", "cosine", "constant"),
            f"{scope}.schedule",
            f"must be 'rsqrt', 'cosine' or 'constant', got {self.schedule!r}",
        )
        _require(self.learning_rate > 0, f"{scope}.learning_rate", f"must be > 0, got {self.learning_rate}")
        _require(self.warmup_steps >= 0, f"{scope}.warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        _require(self.weight_decay >= 0, f"{scope}.weight_decay", f"must be >= 0, got {self.weight_decay}")


@gin.configurable("Pretrain")
@dataclasses.dataclass(frozen=True)
class Pretrain:
    """Pretraining: which objective on which corpus, for how long. `steps = 0` means no pre-training."""

    objective: Any = None  # gin: @span_corruption() etc.
    corpus: Any = None  # gin: @builtin_corpus() etc.
    inputs_length: int = 512
    batch_size: int = 128
    steps: int = 0
    eval_every: int = 0  # 0 -> only at the end
    eval_batches: int = 4
    log_every: int = 50
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    z_loss: float = 0.0
    label_smoothing: float = 0.0
    optimizer: Any = None  # an Optimizer; None -> Optimizer() with its gin bindings
    # Drop every corpus document sharing a word n-gram of this length with an evaluation or selection example of
    # the run's tasks (data/decontaminate.py), before the vocabulary and the token store; 0 keeps the corpus whole.
    decontaminate_ngram: int = 13
    # Budgets (train/budgets.py): steps < `steps` at which the params are kept, then fine-tuned and evaluated as
    # the final ones are; the final step is always a budget too. Each must equal a run of that many steps, so a
    # schedule that depends on the total is refused unless `allow_total_dependent_budgets` (then labelled).
    eval_at_steps: Sequence[int] = ()
    allow_total_dependent_budgets: bool = False
    # A local transformers T5 checkpoint (config.json + safetensors, e.g. from `t5explore export`) whose weights
    # replace the random initialisation; its shape must be the run's T5Config and its spiece.model the run's
    # vocabulary (a public T5's: vocabulary.sp_model_file = 'DIR/spiece.model'; t5explore/model/hf_import.py).
    init_from_hf: str | None = None

    def validate(self) -> None:
        check_types(self, "Pretrain")
        _require(self.steps >= 0, "Pretrain.steps", f"must be >= 0, got {self.steps}")
        self._validate_budgets()
        _require(
            self.decontaminate_ngram >= 0,
            "Pretrain.decontaminate_ngram",
            f"must be >= 0 (0: off), got {self.decontaminate_ngram}",
        )
        if self.steps == 0:
            return
        _require(
            self.objective is not None,
            "Pretrain.objective",
            "is required when Pretrain.steps > 0 (include e.g. gin/objectives/span_corruption.gin)",
        )
        for name in ("inputs_length", "batch_size", "log_every", "checkpoint_every", "keep_checkpoints"):
            _require(getattr(self, name) > 0, f"Pretrain.{name}", f"must be > 0, got {getattr(self, name)}")
        _require(self.eval_every >= 0 and self.eval_batches >= 0, "Pretrain.eval_every/eval_batches", "must be >= 0")
        _require(self.z_loss >= 0, "Pretrain.z_loss", f"must be >= 0, got {self.z_loss}")
        _require(
            0 <= self.label_smoothing < 1, "Pretrain.label_smoothing", f"must be in [0, 1), got {self.label_smoothing}"
        )

    def get_optimizer(self) -> Optimizer:
        opt = self.optimizer if self.optimizer is not None else Optimizer()
        _require(isinstance(opt, Optimizer), "Pretrain.optimizer", f"must be @Optimizer(), got {type(opt).__name__}")
        opt.validate()
        return opt

    def budget_steps(self) -> list[int]:
        """Every evaluated budget, ascending: `eval_at_steps` and the final step (none without pre-training)."""
        return [*self.eval_at_steps, self.steps] if self.steps else []

    def schedule_depends_on_total(self) -> bool:
        """Whether the learning rate before the last step depends on `steps` (optimizers.make_schedule): only the
        cosine schedule without an explicit `decay_steps` decays to the total; rsqrt and constant do not."""
        opt = self.get_optimizer()
        return opt.schedule == "cosine" and opt.decay_steps is None

    def _validate_budgets(self) -> None:
        """eval_at_steps: distinct ascending steps in [1, steps), on a schedule that does not depend on the total
        (the step-k checkpoint must be what a k-step run ends with) unless opted in."""
        at, binding = list(self.eval_at_steps), "Pretrain.eval_at_steps"
        _require(
            all(0 < k < self.steps for k in at),
            binding,
            f"every budget must be a step in [1, Pretrain.steps) (the final step {self.steps} is always one), got {at}",
        )
        _require(at == sorted(set(at)), binding, f"must be distinct steps in ascending order, got {at}")
        if at and not self.allow_total_dependent_budgets and self.schedule_depends_on_total():
            raise ConfigError(
                f"gin binding {binding}: the cosine schedule decays to Pretrain.steps = {self.steps} "
                "(Optimizer.decay_steps is None), so the checkpoint at step k is not what a k-step run ends with; "
                "use schedule 'rsqrt' or 'constant', set Optimizer.decay_steps, or set "
                "Pretrain.allow_total_dependent_budgets = True to evaluate them anyway (each such budget is "
                "labelled schedule_depends_on_total in result.json)"
            )


@gin.configurable("Finetune")
@dataclasses.dataclass(frozen=True)
class Finetune:
    """Downstream fine-tuning (the paper: Adafactor, constant lr 1e-3) and evaluation by greedy decoding.

    mode 'per_task' restarts from the pretrained params for every task (the paper's ablation protocol);
    'multi_task' trains once on an examples-proportional mixture with rates min(n_task, mixing_cap).

    packing (the default, as in T5's own fine-tuning) fills each of the `batch_size` rows of `inputs_length` /
    `targets_length` tokens with as many whole examples as fit (data/packing.py): a step then trains on more
    examples than `batch_size`, and nothing attends or contributes loss across examples. False: one example
    per row, right-padded (the pre-packing behaviour, numbers unchanged).
    """

    tasks: Sequence[str] = ()
    data_dir: str | None = None  # None -> TFDS; else a local directory in the original file formats
    mode: str = "per_task"
    mixing_cap: int = 2**19
    steps: int = 0
    batch_size: int = 32
    inputs_length: int = 512
    targets_length: int = 16
    learning_rate: float = 1e-3
    eval_every: int = 0  # 0 -> only at the end
    eval_max_examples: int | None = None
    max_train_examples: int | None = None  # low-resource fine-tuning: a fixed subset of each task's train split
    eval_batch_size: int | None = None  # None -> batch_size
    log_every: int = 50
    optimizer: Any = None  # None -> Adafactor at constant `learning_rate`; or e.g. @finetune/Optimizer()
    packing: bool = True  # several examples per row (segment ids + positions); False: one padded example per row
    # Training examples held out per task (a fixed, seed-independent subset, never trained on; at most a quarter of
    # the task's training split) to choose the best checkpoint, so the reported validation score is of examples
    # selection never saw. 0: the best checkpoint is chosen on the reported validation examples themselves
    # (optimistic; result.json's `hygiene` and every table say so).
    selection_examples: int = 0

    def validate(self) -> None:
        _require(
            self.mode in ("per_task", "multi_task"),
            "Finetune.mode",
            f"must be 'per_task' or 'multi_task', got {self.mode!r}",
        )
        _require(not isinstance(self.tasks, str), "Finetune.tasks", "must be a list of task names, e.g. ['glue_sst2']")
        check_types(self, "Finetune")
        _require(self.steps >= 0, "Finetune.steps", f"must be >= 0, got {self.steps}")
        if not self.tasks or self.steps == 0:
            return
        for name in ("batch_size", "inputs_length", "targets_length", "log_every", "mixing_cap"):
            _require(getattr(self, name) > 0, f"Finetune.{name}", f"must be > 0, got {getattr(self, name)}")
        _require(self.targets_length >= 2, "Finetune.targets_length", "must be >= 2 (one token and EOS)")
        _require(self.learning_rate > 0, "Finetune.learning_rate", f"must be > 0, got {self.learning_rate}")
        _require(self.eval_every >= 0, "Finetune.eval_every", f"must be >= 0, got {self.eval_every}")
        _require(
            self.selection_examples >= 0,
            "Finetune.selection_examples",
            f"must be >= 0, got {self.selection_examples}",
        )
        _require(
            self.max_train_examples is None or self.max_train_examples > 0,
            "Finetune.max_train_examples",
            f"must be > 0 or None, got {self.max_train_examples}",
        )

    def get_optimizer(self) -> Optimizer:
        if self.optimizer is None:
            return Optimizer(name="adafactor", schedule="constant", learning_rate=self.learning_rate, warmup_steps=0)
        _require(
            isinstance(self.optimizer, Optimizer),
            "Finetune.optimizer",
            f"must be @Optimizer() (e.g. @finetune/Optimizer()), got {type(self.optimizer).__name__}",
        )
        self.optimizer.validate("Finetune.optimizer")
        return self.optimizer
