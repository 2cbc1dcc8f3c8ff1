"""Fine-tuning data: downstream tasks read and checked up front, tokenised per task, and the deterministic
batch samplers (shuffled epochs per task; examples-proportional mixing with a cap for a mixture) whose position
a fine-tuning checkpoint holds (finetune_resume.py): `MixtureSampler` gives one example per row (padded),
`PackedSampler` (Finetune.packing, the default) packs as many examples per row as fit (data/packing.py)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from t5explore.config import ConfigError
from t5explore.data.block_draws import BlockDraws
from t5explore.data.packing import RowPacker, example_lengths, token_counts
from t5explore.run_config import Finetune
from t5explore.seeds import (
    STREAM_FINETUNE_ORDER,
    STREAM_MIXTURE,
    STREAM_SELECTION,
    STREAM_TRAIN_SUBSET,
    numpy_rng,
)
from t5explore.special_ids import EOS_ID


@dataclasses.dataclass
class TokenizedTask:
    name: str
    task: Any  # DownstreamTask
    train_inputs: np.ndarray
    train_targets: np.ndarray
    val_examples: list  # TextExample, capped at eval_max_examples
    val_inputs: np.ndarray
    sel_examples: list = dataclasses.field(default_factory=list)  # held-out training examples choosing the best
    sel_inputs: np.ndarray | None = None


def encode(texts: Sequence[str], vocab, length: int) -> tuple[np.ndarray, int]:
    """Encode, append EOS, truncate to `length` (EOS kept last) and right-pad with 0; also how many texts
    were truncated."""
    ids = vocab.encode_batch(list(texts)) if hasattr(vocab, "encode_batch") else [vocab.encode(t) for t in texts]
    out = np.zeros((len(ids), length), np.int32)
    truncated = 0
    for row, seq in enumerate(ids):
        if len(seq) + 1 > length:
            truncated += 1
            seq = seq[: length - 1]
        out[row, : len(seq)] = seq
        out[row, len(seq)] = EOS_ID
    return out, truncated


def tokenize(texts: Sequence[str], vocab, length: int, what: str) -> np.ndarray:
    """`encode`; truncation is never silent: one line on stderr says how many of `what` were cut."""
    out, truncated = encode(texts, vocab, length)
    report_truncation(what, [("texts", truncated, len(out), length)])
    return out


def report_truncation(what: str, parts: Sequence[tuple[str, int, int, int]]) -> None:
    """One line on stderr for (kind, truncated, total, length) parts with any truncation, e.g.
    `warning: task glue_rte train: truncated 12 of 2490 inputs to 512 tokens (0.5%), 3 of 2490 targets ...`."""
    cut = [
        f"{n} of {total} {kind} to {length} tokens ({100 * n / max(total, 1):.1f}%)"
        for kind, n, total, length in parts
        if n
    ]
    if cut:
        print(f"warning: {what}: truncated {', '.join(cut)}", file=sys.stderr, flush=True)


def detokenize(ids: np.ndarray, vocab) -> list[str]:
    """Decoded rows up to (not including) the first EOS."""
    out = []
    for row in np.asarray(ids):
        end = np.flatnonzero(row == EOS_ID)
        row = row[: end[0]] if end.size else row
        out.append(vocab.decode([int(t) for t in row if t > 0]))
    return out


def prepare_tasks(cfg: Finetune) -> dict[str, Any]:
    """{name: DownstreamTask} of `cfg.tasks`, each task's train and validation examples read now, before any
    pretraining, so that a missing file, column or field (or an empty split) stops the run at once with one
    TaskDataError naming the file and field. The tasks returned hand these same examples on to `load_task`:
    nothing is read or tokenised twice."""
    from t5explore.data.tasks import SPLITS, TASK_NAMES, TaskDataError, get_task

    out = {}
    for name in cfg.tasks:
        if name not in TASK_NAMES:
            raise ConfigError(
                f"gin binding Finetune.tasks: unknown downstream task {name!r}; known tasks: {', '.join(TASK_NAMES)}"
            )
        task = get_task(name)
        examples = {}
        for split in SPLITS:
            try:
                examples[split] = task.examples(split, cfg.data_dir)
            except FileNotFoundError as e:
                raise TaskDataError(f"task {name}: {e}") from None
            if not examples[split]:
                raise TaskDataError(f"task {name}: no {split} examples (Finetune.data_dir = {cfg.data_dir!r})")
        out[name] = dataclasses.replace(task, loader=_read_already(examples))
    return out


def _read_already(examples: dict[str, list]) -> Callable[[str, str | None], list]:
    """A task loader that hands on examples read before: {split: examples} -> (split, data_dir) -> examples."""

    def load(split: str, data_dir: str | None) -> list:
        return examples[split]

    return load


def validation_examples(task: Any, cfg: Finetune) -> list:
    """The validation examples every evaluation scores: the first `eval_max_examples` (all if None)."""
    val = task.examples("validation", cfg.data_dir)
    return val[: cfg.eval_max_examples] if cfg.eval_max_examples else val


def selection_split(name: str, train: list, cfg: Finetune) -> tuple[list, list]:
    """(selection examples, the training examples left): `Finetune.selection_examples` training examples held
    out to choose the best checkpoint, at most a quarter of the task's training split (so one setting serves
    SuperGLUE CB's 250 examples and QNLI's 100k). The held-out set depends on neither the seed nor the variant
    (stream STREAM_SELECTION), so every row of a sweep is selected on the same examples; both parts keep file
    order."""
    if not cfg.selection_examples:
        return [], train
    n = min(cfg.selection_examples, len(train) // 4)
    if n == 0:
        raise ConfigError(
            f"gin binding Finetune.selection_examples: task {name} has {len(train)} training examples, too few "
            "to hold out a quarter for checkpoint selection; set it to 0 to select on the validation examples"
        )
    held = np.zeros(len(train), bool)
    held[numpy_rng(0, STREAM_SELECTION, len(train)).permutation(len(train))[:n]] = True
    return [e for e, h in zip(train, held, strict=True) if h], [e for e, h in zip(train, held, strict=True) if not h]


def held_out_texts(tasks: dict[str, Any], cfg: Finetune) -> list[str]:
    """The inputs of every example a run evaluates or selects on (all validation examples, uncapped, and the
    selection examples): the texts the pre-training corpus is de-duplicated against (data/decontaminate.py)."""
    texts = []
    for name, task in tasks.items():
        selection, _ = selection_split(name, task.examples("train", cfg.data_dir), cfg)
        texts += [e.inputs for e in task.examples("validation", cfg.data_dir)] + [e.inputs for e in selection]
    return texts


def load_task(name: str, task: Any, cfg: Finetune, vocab) -> TokenizedTask:
    selection, train = selection_split(name, task.examples("train", cfg.data_dir), cfg)
    val = validation_examples(task, cfg)
    train = train_subset(train, cfg.max_train_examples)
    if not train or not val:
        raise ValueError(
            f"task {name}: {len(train)} train / {len(val)} validation examples (data_dir={cfg.data_dir!r})"
        )
    train_inputs, cut_inputs = encode([e.inputs for e in train], vocab, cfg.inputs_length)
    train_targets, cut_targets = encode([e.targets for e in train], vocab, cfg.targets_length)
    val_inputs, cut_val = encode([e.inputs for e in val], vocab, cfg.inputs_length)
    report_truncation(
        f"task {name} train",
        [
            ("inputs", cut_inputs, len(train), cfg.inputs_length),
            ("targets", cut_targets, len(train), cfg.targets_length),
        ],
    )
    report_truncation(f"task {name} validation", [("inputs", cut_val, len(val), cfg.inputs_length)])
    sel_inputs = tokenize([e.inputs for e in selection], vocab, cfg.inputs_length, f"task {name} selection")
    return TokenizedTask(name, task, train_inputs, train_targets, val, val_inputs, selection, sel_inputs)


def train_subset(examples: list, max_examples: int | None) -> list:
    """A fixed random subset of `max_examples` training examples (all of them if None or fewer).

    The subset depends on neither the run seed nor the variant (stream STREAM_TRAIN_SUBSET, index 0), so every
    row and seed of a sweep fine-tunes on the same examples and paired comparisons stay paired; the seed
    still sets their order. The kept examples stay in their original order.
    """
    if not max_examples or len(examples) <= max_examples:
        return examples
    keep = np.sort(numpy_rng(0, STREAM_TRAIN_SUBSET, len(examples)).permutation(len(examples))[:max_examples])
    return [examples[i] for i in keep]


class MixtureSampler:
    """Deterministic batches: shuffled epochs per task; in a mixture each row's task is drawn with
    probability proportional to min(n_task, cap) (examples-proportional mixing with a cap)."""

    def __init__(self, tasks: Sequence[TokenizedTask], batch_size: int, seed: int, cap: int, task_ids: Sequence[int]):
        self.tasks, self.batch_size, self.seed, self.task_ids = list(tasks), batch_size, seed, list(task_ids)
        sizes = np.array([len(t.train_inputs) for t in self.tasks], np.float64)
        self.rates = np.minimum(sizes, cap) / np.minimum(sizes, cap).sum()
        self._order = [np.empty(0, np.int64)] * len(self.tasks)
        self._pos = [0] * len(self.tasks)
        self._epoch = [0] * len(self.tasks)

    def state(self) -> dict:
        """JSON-able position: per task, how many epochs were started and how far into the current one."""
        return {"pos": list(self._pos), "epoch": list(self._epoch)}

    def restore(self, state: dict) -> None:
        """Continue from `state()`; the current epoch's order is drawn again from (seed, task, epoch)."""
        if len(state["pos"]) != len(self.tasks):
            raise ValueError(f"sampler state of {len(state['pos'])} tasks for a mixture of {len(self.tasks)}")
        self._pos, self._epoch = [int(p) for p in state["pos"]], [int(e) for e in state["epoch"]]
        self._order = [
            numpy_rng(self.seed, STREAM_FINETUNE_ORDER, self.task_ids[t], e - 1).permutation(
                len(self.tasks[t].train_inputs)
            )
            if e
            else np.empty(0, np.int64)
            for t, e in enumerate(self._epoch)
        ]

    def _peek(self, t: int) -> int:
        """The next example of task t (starting its next epoch if the current one is used up), not consumed.
        Starting an epoch early changes nothing: (epoch e, at its end) and (epoch e + 1, at 0) give the same
        next example, and `restore` redraws either order from (seed, task, epoch)."""
        if self._pos[t] >= len(self._order[t]):
            rng = numpy_rng(self.seed, STREAM_FINETUNE_ORDER, self.task_ids[t], self._epoch[t])
            self._order[t] = rng.permutation(len(self.tasks[t].train_inputs))
            self._pos[t], self._epoch[t] = 0, self._epoch[t] + 1
        return int(self._order[t][self._pos[t]])

    def _take(self, t: int) -> int:
        i = self._peek(t)
        self._pos[t] += 1
        return i

    def batch(self, step: int) -> dict[str, np.ndarray]:
        if len(self.tasks) == 1:
            which = np.zeros(self.batch_size, np.int64)
        else:
            which = numpy_rng(self.seed, STREAM_MIXTURE, step).choice(len(self.tasks), self.batch_size, p=self.rates)
        rows = [(t, self._take(t)) for t in which.tolist()]
        return {
            "inputs": np.stack([self.tasks[t].train_inputs[i] for t, i in rows]),
            "targets": np.stack([self.tasks[t].train_targets[i] for t, i in rows]),
        }


_MIX_BLOCK = 1024  # task draws per Generator in a packed mixture


class PackedSampler(MixtureSampler):
    """Packed batches: `batch_size` rows of `inputs_length` / `targets_length` tokens, each filled with as many
    whole examples as fit, in the same per-task order as MixtureSampler (data/packing.py: first-fit, the first
    example that fits no row opens the next batch).

    In a mixture the task of the k-th example drawn is a pure function of (seed, k): draws come in blocks of
    _MIX_BLOCK from numpy_rng(seed, STREAM_MIXTURE, block, 1) (the 1 keeps them apart from MixtureSampler's
    per-step draws). The state adds `drawn`, the number of examples packed so far."""

    def __init__(
        self,
        tasks: Sequence[TokenizedTask],
        batch_size: int,
        seed: int,
        cap: int,
        task_ids: Sequence[int],
        inputs_length: int,
        targets_length: int,
    ):
        super().__init__(tasks, batch_size, seed, cap, task_ids)
        self.inputs_length, self.targets_length = inputs_length, targets_length
        self._lengths = [(example_lengths(t.train_inputs), example_lengths(t.train_targets)) for t in self.tasks]
        self._drawn = 0
        self._draws = BlockDraws(self.rates, lambda b: numpy_rng(self.seed, STREAM_MIXTURE, b, 1), _MIX_BLOCK)

    def state(self) -> dict:
        return {**super().state(), "drawn": self._drawn}

    def restore(self, state: dict) -> None:
        super().restore(state)
        self._drawn = int(state["drawn"])

    def batch(self, step: int) -> dict[str, np.ndarray]:
        """The next packed batch (a function of the sampler's position; `step` is not needed)."""
        packer = RowPacker(self.batch_size, self.inputs_length, self.targets_length)
        while True:
            t = self._draws.part(self._drawn)
            i = self._peek(t)
            n_in, n_tg = self._lengths[t][0][i], self._lengths[t][1][i]
            task = self.tasks[t]
            if not packer.add(task.train_inputs[i, :n_in], task.train_targets[i, :n_tg]):
                return packer.features()
            self._pos[t] += 1
            self._drawn += 1


def make_sampler(tasks: Sequence[TokenizedTask], cfg: Finetune, seed: int, task_ids: Sequence[int]) -> MixtureSampler:
    """The sampler `cfg` asks for: packed rows (Finetune.packing) or one example per row."""
    if cfg.packing:
        return PackedSampler(
            tasks, cfg.batch_size, seed, cfg.mixing_cap, task_ids, cfg.inputs_length, cfg.targets_length
        )
    return MixtureSampler(tasks, cfg.batch_size, seed, cfg.mixing_cap, task_ids)


def batch_token_counts(batch: dict[str, np.ndarray]) -> tuple[int, int]:
    """(real tokens, token slots), encoder and decoder together, of a packed batch or an unpacked
    {'inputs', 'targets'} one."""
    if "encoder_input_tokens" in batch:
        return token_counts(batch)
    return token_counts({"encoder_input_tokens": batch["inputs"], "decoder_target_tokens": batch["targets"]})
