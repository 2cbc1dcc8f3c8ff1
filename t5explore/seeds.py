"""One run seed; every other random stream is derived from it by a fixed stream number.

No global RNG state anywhere: `np.random.seed` and `random.seed` are bugs in this project.
Each consumer asks for its own generator with `numpy_rng(seed, STREAM_X, index...)` or a JAX key
with `jax_key(seed, STREAM_X)`, so adding a new consumer never shifts another's numbers.
"""

from __future__ import annotations

import numpy as np

# Stream numbers are part of the reproducibility contract: never renumber, only append.
STREAM_PARAMS = 1  # model initialisation
STREAM_DROPOUT = 2  # dropout keys (folded with the step)
STREAM_CHUNK_ORDER = 3  # permutation of pretraining chunks (folded with the epoch)
STREAM_OBJECTIVE = 4  # corruption noise (folded with the batch index and host)
STREAM_FINETUNE_ORDER = 5  # downstream example order (folded with the task and epoch)
STREAM_MIXTURE = 6  # choice of objective / task within a mixture
STREAM_SPLIT = 7  # deterministic train/validation splits of built-in tasks
STREAM_VOCAB = 8  # sentencepiece sampling of training sentences
STREAM_TRAIN_SUBSET = 9  # which downstream training examples a low-resource fine-tune keeps (seed-independent)
STREAM_EVAL_BOOTSTRAP = 10  # resampled evaluation examples (folded with the task's id and the replicate)
STREAM_REPORT_BOOTSTRAP = 11  # the report's resampling of seeds (Kendall τ intervals; run seed 0)
STREAM_PRETRAIN_PART = 12  # the part of a pretraining mixture each row gets (folded with the block of rows)
STREAM_SELECTION = 13  # which downstream training examples are held out to choose checkpoints (seed-independent)


def numpy_rng(seed: int, stream: int, *index: int) -> np.random.Generator:
    """A numpy Generator that is a pure function of (seed, stream, index...)."""
    return np.random.default_rng([int(seed), int(stream), *(int(i) for i in index)])


def jax_key(seed: int, stream: int):
    """A JAX PRNG key that is a pure function of (seed, stream); fold in steps as needed."""
    import jax

    return jax.random.fold_in(jax.random.PRNGKey(int(seed)), int(stream))
