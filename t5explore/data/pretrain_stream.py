"""The pretraining example stream: token store → chunks → objective → the model's features.

Batch k is a pure function of (store, objective, seed, k, host): the split's tokens are cut into
non-overlapping chunks of `objective.plan(inputs_length).raw_length`; epoch e visits them in the order
`numpy_rng(seed, STREAM_CHUNK_ORDER, e).permutation`; global batch k takes positions [k·B, (k+1)·B) of the
concatenated epochs and host h its slice [h·B/H, (h+1)·B/H); the objective corrupts that slice with
`numpy_rng(seed, STREAM_OBJECTIVE, k, h)`; an objective that `needs_boundaries` also gets each row's
sentence and document starts (data/sentences.py). A mixture of parts with different raw lengths (UL2) reads
each row a chunk of its own part's length from that part's pool instead (data/chunk_pools.py), the
row's part a pure function of (seed, row). So exact resume is "start at batch k" (`state()`/`restore()`),
no chunk repeats within an epoch, and hosts never overlap (`for_process`: host = this JAX process). A
multi-process run uses one host (the global batch) in every process unless it asks for `for_process`,
and each process transfers only its devices' rows (t5explore/distributed.py). A background thread
computes the next batches while the trainer steps; `wait_seconds` is the time the trainer spent blocked.
"""

from __future__ import annotations

import queue
import threading
import time
import weakref
from collections.abc import Callable

import numpy as np

from t5explore.data.chunk_pools import ChunkPools
from t5explore.data.features import encdec_features
from t5explore.data.sentences import SentenceSplitter, row_boundaries
from t5explore.distributed import ProcessLocalBatch
from t5explore.objectives.base import PartedObjective
from t5explore.seeds import STREAM_OBJECTIVE, numpy_rng

_STOP_POLL_S = 0.1


class PretrainStream:
    """Iterator of feature dicts for one host; also random access via `batch(k)`."""

    def __init__(
        self,
        store,
        objective,
        inputs_length: int,
        batch_size: int,
        seed: int,
        split: str = "train",
        host_index: int = 0,
        host_count: int = 1,
        prefetch: int = 2,
        tokens=None,
        process_local: bool = False,
        features: Callable[[np.ndarray, np.ndarray], dict] = encdec_features,
        sentences: SentenceSplitter | None = None,
    ):
        """process_local: batches are marked ProcessLocalBatch (this process's rows only; see for_process).
        features: (inputs, targets) -> the model's batch (its `Model.features`; the encoder-decoder's by default).
        sentences: the splitter for an objective that `needs_boundaries` (BART's permutation and rotation);
        None = the one of the store's vocabulary (data/sentences.py)."""
        if host_count < 1 or not 0 <= host_index < host_count:
            raise ValueError(f"host_index={host_index} must be in [0, host_count={host_count})")
        if batch_size < 1 or batch_size % host_count:
            raise ValueError(f"batch_size={batch_size} must be a positive multiple of host_count={host_count}")
        self.store, self.objective, self.seed, self.split = store, objective, int(seed), split
        self.plan = objective.plan(inputs_length)
        self.chunk_length = int(self.plan.raw_length)
        self.batch_size, self.host_index, self.host_count = batch_size, host_index, host_count
        self.local_batch_size = batch_size // host_count
        self.tokens = tokens if tokens is not None else store.token_space
        self.first_token, stop = store.split_bounds(split)
        self.parted = isinstance(objective, PartedObjective)
        widths, rates = (
            ([p.raw_length for p in objective.part_plans(self.plan)], objective.probabilities)
            if self.parted
            else ([self.chunk_length], [1.0])
        )
        self.pools = ChunkPools(self.first_token, stop - self.first_token, widths, rates, seed)
        self.num_chunks = self.pools.num_groups  # chunks per pool
        needed = self.pools.max_rows_per_pool(batch_size)
        if self.num_chunks < needed:
            raise ValueError(
                f"the {split} split of {store} has {stop - self.first_token} tokens = {self.num_chunks} chunks of "
                f"{self.pools.group_width} (objective {getattr(objective, 'name', objective)!r}, inputs_length "
                f"{inputs_length}); one batch needs {needed}: use a bigger corpus or a smaller batch"
            )
        self.sentences = None
        if getattr(objective, "needs_boundaries", False):
            if self.parted:
                raise ValueError(f"objective {objective.name!r}: a mixture's parts cannot use sentence boundaries")
            self.sentences = sentences if sentences is not None else SentenceSplitter.for_store(store)
        self.prefetch, self.process_local, self.features = prefetch, process_local, features
        self.wait_seconds = 0.0
        self._next = 0
        self._worker: tuple[threading.Thread, queue.Queue, threading.Event] | None = None

    # ---- pure functions of k -------------------------------------------------------------------------------
    def _first_row(self, k: int) -> int:
        return k * self.batch_size + self.host_index * self.local_batch_size

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The chunk visiting order of one epoch of a one-part objective."""
        return self.pools.order(0, epoch)

    def chunk_ids(self, k: int) -> np.ndarray:
        """Ids (chunk index within the split) of this host's rows of global batch k (one-part objectives)."""
        return (self.row_starts(k)[1] - self.first_token) // self.chunk_length

    def row_starts(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(part, first token in the store) of this host's rows of global batch k."""
        return self.pools.rows(self._first_row(k), self.local_batch_size)

    def chunks(self, k: int) -> np.ndarray:
        """int32 [local_batch, chunk_length] raw tokens of this host's rows of batch k (one-part objectives;
        a mixture's rows have their parts' widths: `part_chunks`)."""
        if self.parted:
            raise ValueError("a mixture's rows have different widths; use part_chunks(k)")
        return self.part_chunks(k)[1][0]

    def part_chunks(self, k: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """(part of each row, per part the int32 [its rows, its raw length] tokens) of this host's batch k."""
        return self.pools.read(self.store.tokens, self._first_row(k), self.local_batch_size)

    def batch(self, k: int) -> dict[str, np.ndarray]:
        """Features of batch k for this host (pure: same arguments, same arrays)."""
        if k < 0:
            raise ValueError(f"batch index must be >= 0, got {k}")
        rng = numpy_rng(self.seed, STREAM_OBJECTIVE, k, self.host_index)
        choice, part_chunks = self.part_chunks(k)
        if self.parted:
            out = self.objective.encode_parts(choice, part_chunks, rng, self.tokens, plan=self.plan)
        elif self.sentences is not None:  # sentences and documents of the rows (data/sentences.py)
            bounds = row_boundaries(self.sentences, self.store.doc_offsets, self.row_starts(k)[1], part_chunks[0])
            out = self.objective(part_chunks[0], rng, self.tokens, boundaries=bounds)
        else:
            out = self.objective(part_chunks[0], rng, self.tokens)
        inputs, targets = out["inputs"], out["targets"]
        want = (self.local_batch_size, self.plan.inputs_length)
        if inputs.shape != want or targets.ndim != 2 or targets.shape[0] != want[0]:
            raise ValueError(
                f"objective {getattr(self.objective, 'name', self.objective)!r} returned inputs "
                f"{inputs.shape} and targets {targets.shape}; expected inputs {want}"
            )
        features = self.features(inputs, targets)
        return ProcessLocalBatch(features) if self.process_local else features

    @classmethod
    def for_process(
        cls,
        store,
        objective,
        inputs_length: int,
        batch_size: int,
        seed: int,
        split: str = "train",
        partitioner=None,
        **kwargs,
    ) -> PretrainStream:
        """The stream of this process's rows of every global batch, as host jax.process_index() of
        jax.process_count() (or, given a Partitioner, the block of rows its mesh puts on this process's
        devices). Each process corrupts only its rows, so the numbers differ from a one-process run's; the
        default (every process computes the global batch, t5explore/distributed.py) does not."""
        import jax

        if partitioner is not None:
            first, stop = partitioner.process_rows(batch_size)
            host_count, host_index = batch_size // (stop - first), first // (stop - first)
        else:
            host_index, host_count = jax.process_index(), jax.process_count()
        return cls(
            store,
            objective,
            inputs_length,
            batch_size,
            seed,
            split,
            host_index=host_index,
            host_count=host_count,
            process_local=True,
            **kwargs,
        )

    def epoch_of(self, k: int) -> float:
        """Passes over the split before batch k (a mixture's: in tokens read, its pools cycle separately)."""
        return k * self.batch_size / self.pools.rows_per_epoch

    @property
    def batches_per_epoch(self) -> int:
        """Whole batches in one pass over the split (e.g. the size of a full validation pass)."""
        return int(self.pools.rows_per_epoch + 1e-9) // self.batch_size

    # ---- position ----------------------------------------------------------------------------------------
    def state(self) -> dict:
        """JSON-able position: the index of the next batch `next()` returns (goes into checkpoints)."""
        return {"next_batch": self._next, "seed": self.seed, "split": self.split, "batch_size": self.batch_size}

    def restore(self, state: dict) -> None:
        for field in ("seed", "split", "batch_size"):
            if field in state and state[field] != getattr(self, field):
                raise ValueError(
                    f"stream state has {field}={state[field]!r} but this stream has "
                    f"{getattr(self, field)!r}; refusing to resume a different stream"
                )
        k = state.get("next_batch")
        if not isinstance(k, int) or k < 0:
            raise ValueError(f"stream state needs a non-negative int 'next_batch', got {state!r}")
        self._stop_worker()
        self._next = k

    # ---- iteration with prefetch --------------------------------------------------------------------------
    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        if self.prefetch <= 0:
            features = self.batch(self._next)
        else:
            worker = self._worker if self._worker is not None else self._start_worker(self._next)
            k, features = worker[1].get()
            if isinstance(features, BaseException):
                self._stop_worker()
                raise features
            assert k == self._next, (k, self._next)
        self.wait_seconds += time.perf_counter() - t0
        self._next += 1
        return features

    def _start_worker(self, start: int) -> tuple[threading.Thread, queue.Queue, threading.Event]:
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        # The thread holds only a weak reference, so an abandoned stream is collected and its thread ends.
        thread = threading.Thread(
            target=_produce,
            args=(weakref.ref(self), start, q, stop),
            daemon=True,
            name=f"PretrainStream-{self.split}-host{self.host_index}",
        )
        self._worker = (thread, q, stop)
        thread.start()
        return self._worker

    def _stop_worker(self) -> None:
        if self._worker is not None:
            thread, _, stop = self._worker
            stop.set()
            thread.join()
            self._worker = None

    def close(self) -> None:
        self._stop_worker()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        worker = getattr(self, "_worker", None)  # absent if __init__ failed
        if worker is not None:
            worker[2].set()


def _produce(stream_ref, k: int, q: queue.Queue, stop: threading.Event) -> None:
    """Prefetch thread: compute batches k, k+1, ... into `q` until stopped or the stream is gone."""
    while not stop.is_set():
        stream = stream_ref()
        if stream is None:
            return
        try:
            item = (k, stream.batch(k))
        except BaseException as e:  # noqa: BLE001 - hand the error to the consumer, which re-raises it
            item = (k, e)
        del stream
        while not stop.is_set() and stream_ref() is not None:
            try:
                q.put(item, timeout=_STOP_POLL_S)
                break
            except queue.Full:
                continue
        if isinstance(item[1], BaseException):
            return
        k += 1
