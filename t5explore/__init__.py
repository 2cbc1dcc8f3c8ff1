"""t5explore: a JAX/Flax research harness for T5-style pretraining objectives.

Subpackages (one concern each; data flows one way):
  objectives/  noise masks x input/target encodings, length planning, named objectives, mixtures
  data/        corpora, vocabulary, token store, pretraining stream, downstream tasks and metrics
  model/       the Flax T5 encoder-decoder with logical axis names
  train/       train state, optimisers, jit steps, pretrain/fine-tune loops, checkpoints, metric writers
  sweep/       gin experiment grids -> run directories (claim, resume, isolate, shard)
  report/      results directories -> tables and plots
See docs/ARCHITECTURE.md for the interfaces between them.
"""

__version__ = "0.1.0"
