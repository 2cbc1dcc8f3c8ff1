"""The numerics version: one integer that names the arithmetic of the code that computed a run's numbers.

A fingerprint covers a run's gin bindings, not the code that reads them, so two commits can give one config
different numbers (a changed batch order, initialisation, train step, fine-tuning data order, decoding or
metric). Every change that alters any number a run computes bumps NUMERICS_VERSION here, and nowhere else:
it is part of every run's fingerprint and result.json, a sweep refuses to resume or share runs of another
version, and a table refuses to mix versions unless told to. Pinned tests (a batch hash, a loss sequence, a
fine-tuning score) record the version they were pinned at, so a changed value without a bump fails CI.

History:
- 1: every result.json written before this constant existed (absent from the file).
- 2: fine-tuning chooses its best checkpoint on a selection split (Finetune.selection_examples), pre-training
  corpora are de-duplicated against evaluation text (Pretrain.decontaminate); T5's random-spans mask counts
  its noise tokens in float32 like t5's random_spans_noise_mask (objectives/masks.py; unchanged at 64, 128
  and 512 inputs, where the pinned batches did not move).
"""

NUMERICS_VERSION = 2
