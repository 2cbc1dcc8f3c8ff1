"""What fine-tuning records per task and per call: `TaskRecord` (best/last scores, the step and the selection
examples' scores that chose the best, and what a checkpoint keeps of them) and `FinetuneOutcome` (the scores of
every task and the timing and token counts of one `finetune` call, result.json's `downstream`/`timing`/`throughput`
parts). Kept apart from the loop in finetune.py so that the records read on their own."""

from __future__ import annotations

import dataclasses

import numpy as np

from t5explore.train import finetune_resume as resume


@dataclasses.dataclass
class TaskRecord:
    primary_metric: str
    best: dict | None = None
    last: dict | None = None
    best_step: int | None = None
    best_predictions: list | None = None  # the best evaluation's decoded predictions (for the bootstrap)
    saved_hash: str | None = None  # restored from a checkpoint: the hash of predictions/<task>.jsonl's
    # The selection examples' scores at the best step: with a selection split, `best` is the validation score at
    # the step that scored best on the selection examples, so the reported examples never chose it.
    best_selection: dict | None = None
    selected_on: str = "validation"  # "selection" when Finetune.selection_examples > 0

    def as_dict(self) -> dict:
        return {
            "best": self.best,
            "last": self.last,
            "best_step": self.best_step,
            "primary_metric": self.primary_metric,
            "selected_on": self.selected_on,
            **({"best_selection": self.best_selection} if self.best_selection is not None else {}),
        }

    def state(self) -> dict:
        preds = self.best_predictions
        return {
            "best": self.best,
            "last": self.last,
            "best_step": self.best_step,
            "best_hash": resume.predictions_hash(preds) if preds is not None else self.saved_hash,
            "best_selection": self.best_selection,
        }

    def restore(self, state: dict) -> None:
        self.best, self.last, self.best_step = state["best"], state["last"], state["best_step"]
        self.best_predictions, self.saved_hash = None, state["best_hash"]
        self.best_selection = state.get("best_selection")

    def improves(self, scores: dict, selection: dict | None) -> bool:
        """Whether an evaluation is the new best: by the selection examples' primary metric when there are
        selection examples, else by the validation examples' (the first evaluation always is)."""
        if self.best is None:
            return True
        if selection is not None:
            return selection[self.primary_metric] > (self.best_selection or {}).get(self.primary_metric, -np.inf)
        return scores[self.primary_metric] > self.best[self.primary_metric]


@dataclasses.dataclass
class FinetuneOutcome:
    downstream: dict  # task -> {"best", "last", "best_step", "primary_metric"}
    finetune_s: float = 0.0
    eval_s: float = 0.0
    compile_s: float = 0.0
    bootstrap: dict | None = None  # result.json's `bootstrap` (data/bootstrap.py), None without tasks
    train_steps: int = 0  # steps this attempt trained, and their tokens: for `throughput()`
    real_tokens: int = 0
    token_slots: int = 0
    encoder_slots: int = 0

    def throughput(self) -> dict:
        """result.json's fine-tuning throughput of this attempt (None where it trained no step): padded encoder
        slots per second (T5's token count, as `pretrain_tokens_per_s`), real (non-pad, encoder + decoder)
        tokens per second, and the packing ratio real tokens / token slots."""
        trained = self.train_steps > 0 and self.finetune_s > 0
        return {
            "finetune_tokens_per_s": self.encoder_slots / self.finetune_s if trained else None,
            "finetune_real_tokens_per_s": self.real_tokens / self.finetune_s if trained else None,
            "finetune_packing_ratio": self.real_tokens / self.token_slots if self.token_slots else None,
        }
