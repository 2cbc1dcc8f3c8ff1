"""Throughput of the objectives, and two like-for-like comparisons with T5's own span corruption.

    python benchmarks/objectives.py [--batch 128] [--inputs_length 512] [--seconds 3] [--reps 5]

Tokens: whitespace words of the Gutenberg books in ../shared/data (ids by first occurrence), one document per
paragraph. Sections:

1. every named objective, ours alone: examples/s on batches of pre-cut raw chunks (one numpy call per batch).
2. the objective alone, like for like: span corruption on the same pre-cut chunks, batch 128. Ours: the numpy
   objective, one call per batch. T5: `t5.data.preprocessors.denoise` (random_spans_noise_mask,
   noise_span_to_unique_sentinel, nonnoise_span_to_unique_sentinel) mapped in graph mode over a tf.data
   dataset of the chunks (seqio's map, num_parallel_calls=AUTOTUNE), batched, prefetched.
3. the full stream, like for like: token store to batch. Ours: `PretrainStream` over a token store written
   from the documents (chunking, the objective and the model features, with its prefetch thread). T5:
   `t5.data.preprocessors.span_corruption` (select_random_chunk, reduce_concat_tokens, split_tokens, denoise)
   over a graph-mode dataset of the same documents (a ragged tensor's rows: no Python generator, no per-element
   slicing map), batched, prefetched with AUTOTUNE: T5's pipeline at its best (a per-element slicing map and
   a fixed prefetch of 2 made it about 1.5x slower). T5's side does less: no shuffling and no decoder features.
4. the seqio adapter (objectives/seqio_adapter.py) over the same graph-mode documents, batched: ours only.

Sections 2 and 3 run the two sides interleaved, the order rotated every repetition (A B, B A, ...), each
repetition `--seconds` long after draining the batches that prefetching filled while the other side ran, and
report each side's median, the ratio of the medians and the range of the per-repetition ratios. Each side's
config is recorded (`config[...]` lines); output: benchmarks/results/objectives.txt (benchmarks/record.py).
The reference is installed only for this script, into the git-ignored .t5ref/ (160 kB; nothing else: the
script stubs the modules t5 imports but span corruption never uses):

    pip install --no-deps --target .t5ref t5==0.9.4
"""

from __future__ import annotations

import argparse
import functools
import importlib.abc
import importlib.machinery
import os
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import record  # benchmarks/ is the script's directory

REPO = Path(__file__).resolve().parent.parent
T5REF = REPO / ".t5ref"
T5REF_INSTALL = f"pip install --no-deps --target {T5REF} t5==0.9.4"
NextBatch = Callable[[], int]  # produces one batch, returns its number of examples
# The recorded configs (benchmarks/record.py): the reference's path, as graph_documents and _batched build it
SPAN_CORRUPTION = "span corruption: noise_density = 0.15, mean_noise_span_length = 3.0"
T5_SOURCE = "source = ragged tensor rows (graph mode)"
T5_MAP = "map num_parallel_calls = AUTOTUNE (seqio)"
T5_PREFETCH = "prefetch = AUTOTUNE"
SMOKE = ["--batch", "8", "--inputs_length", "64", "--seconds", "0.2", "--reps", "2", "--max_chars", "300000"]


def load_documents(data_dir: Path, max_chars: int) -> tuple[list[np.ndarray], int]:
    text_parts, size = [], 0
    for path in sorted((data_dir / "pretrain" / "gutenberg").glob("*.txt")):
        text_parts.append(path.read_text(encoding="utf-8"))
        size += len(text_parts[-1])
        if size >= max_chars:
            break
    ids: dict[str, int] = {}
    docs = [
        np.array([ids.setdefault(w, 6 + len(ids)) for w in para.split()], np.int32)
        for para in "\n\n".join(text_parts).split("\n\n")
        if para.split()
    ]
    return docs, 6 + len(ids) + 100


# ---- timing ---------------------------------------------------------------------------------------------------
def rate(next_batch: NextBatch, seconds: float, warm: int = 3) -> float:
    """Examples/s over `seconds` (at least 3 batches), after `warm` untimed batches."""
    for _ in range(warm):
        next_batch()
    done, batches, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds or batches < 3:
        done += next_batch()
        batches += 1
    return done / (time.perf_counter() - start)


def interleaved(sides: dict[str, NextBatch], reps: int, seconds: float) -> dict[str, list[float]]:
    """Each side `reps` times, in turn, the order rotated every repetition (after one warm-up of every side)."""
    for next_batch in sides.values():
        rate(next_batch, 0.0, warm=8)
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(reps):
        for name in record.rotated(list(sides), r):
            rates[name].append(rate(sides[name], seconds))
    return rates


def report(title: str, rates: dict[str, list[float]], configs: dict[str, list[str]]) -> None:
    print(f"\n== {title} ==")
    for name, values in rates.items():
        print(
            f"  {name:<58} median {statistics.median(values):>9,.0f} examples/s   "
            f"(runs: {', '.join(f'{v:,.0f}' for v in values)})"
        )
    for name in rates:
        print(record.config_line(name, configs[name]))
    (_, ra), (_, rb) = rates.items()
    print(f"  ours / t5: {record.ratio_spread(ra, rb)} ({title.split(':')[0]})")


# ---- ours ---------------------------------------------------------------------------------------------------------
def ours_objective(objective, chunks_all: np.ndarray, tokens, batch: int) -> NextBatch:
    from t5explore.seeds import STREAM_OBJECTIVE, numpy_rng

    state = {"k": 0}
    span = len(chunks_all) - batch

    def next_batch() -> int:
        k = state["k"]
        first = (k * batch) % span
        objective(chunks_all[first : first + batch], numpy_rng(0, STREAM_OBJECTIVE, k), tokens)
        state["k"] = k + 1
        return batch

    return next_batch


def ours_stream(store, objective, inputs_length: int, batch: int) -> NextBatch:
    from t5explore.data.pretrain_stream import PretrainStream

    stream = PretrainStream(store, objective, inputs_length, batch, seed=0, prefetch=2)
    return lambda: len(next(stream)["encoder_input_tokens"])


def ours_all_objectives(flat: np.ndarray, tokens, wide, args) -> None:
    from t5explore.objectives import named

    # Raw tokens per example: what the pretraining stream reads per row (a mixture: its parts' own lengths,
    # weighted by rate, data/chunk_pools.py); the timing itself encodes pre-cut chunks of the plan's width.
    print(f"{'objective':<20} {'examples/s':>12} {'raw tokens/example':>19} {'raw tokens/s':>14}")
    for name, make in named.NAMED_OBJECTIVES.items():
        obj = make([named.span_corruption(), named.prefix_lm()]) if name == "mixture" else make()
        if getattr(obj, "needs_boundaries", False):  # BART's sentence permutation/rotation: stream only
            print(f"{name:<20} {'n/a: needs sentence boundaries (see the pre-training stream)':>47}")
            continue
        plan = obj.plan(args.inputs_length)
        chunks_all = flat[: len(flat) // plan.raw_length * plan.raw_length].reshape(-1, plan.raw_length)
        ex = rate(ours_objective(obj, chunks_all, wide if name == "ul2" else tokens, args.batch), args.seconds)
        raw = obj.mean_raw_length(plan) if hasattr(obj, "mean_raw_length") else plan.raw_length
        print(f"{name:<20} {ex:>12,.0f} {raw:>19,.1f} {ex * raw:>14,.0f}")


def ours_adapter(objective, docs_dataset, tokens, inputs_length: int, batch: int) -> NextBatch:
    from t5explore.objectives.seqio_adapter import objective_preprocessor

    ds = objective_preprocessor(
        docs_dataset, objective=objective, tokens=tokens, seed=0, batch_size=batch, inputs_length=inputs_length
    )
    it = iter(ds.batch(batch).prefetch(2))
    return lambda: len(next(it)["inputs"])


def documents_alone(docs_dataset, batch: int) -> NextBatch:
    """The graph-mode document source by itself (`batch` documents per call): the bound on any pipeline
    that takes one tf.data element per document, like the seqio adapter and t5's span_corruption."""
    it = iter(docs_dataset.prefetch(2))

    def next_batch() -> int:
        for _ in range(batch):
            next(it)
        return batch

    return next_batch


# ---- the t5 reference -----------------------------------------------------------------------------------------
class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """t5.data.preprocessors imports `babel` for its translation task; span corruption never uses it."""

    roots = frozenset({"babel"})

    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in self.roots:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _Stub(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


class _Stub(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Stub(f"{self.__name__}.{name}")


def import_t5_preprocessors():
    """`t5.data.preprocessors` from .t5ref/, without running t5's package __init__ files (they import its
    metrics and their dependencies); None if it is not installed or does not import."""
    if not (T5REF / "t5" / "data" / "preprocessors.py").is_file():
        return None
    import gin
    import seqio  # noqa: F401  (import TF/seqio before the stub so they never see it)

    sys.meta_path.insert(0, _StubFinder())
    for name, path in (("t5", T5REF / "t5"), ("t5.data", T5REF / "t5" / "data")):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(path)]
            sys.modules[name] = package
    gin.enter_interactive_mode()  # t5 re-registers a few configurables seqio also defines
    try:
        import t5.data.preprocessors as t5p
    except Exception as e:  # noqa: BLE001
        print(f"could not import the t5 reference from {T5REF}: {e!r}")
        return None
    return t5p


def graph_documents(docs: list[np.ndarray]):
    """tf.data dataset of {'targets': document}, the rows of one ragged tensor (graph mode), repeated."""
    import tensorflow as tf

    ragged = tf.RaggedTensor.from_row_lengths(np.concatenate(docs), [len(d) for d in docs])
    return tf.data.Dataset.from_tensor_slices({"targets": ragged}).repeat()


def _t5_features(vocab_size: int):
    import seqio

    vocab = seqio.PassThroughVocabulary(vocab_size)
    return {"inputs": seqio.Feature(vocab, add_eos=True), "targets": seqio.Feature(vocab, add_eos=True)}


def _batched(ds, batch: int, inputs_length: int, targets_length: int) -> NextBatch:
    """Padded batches, prefetched with AUTOTUNE (tf.data's best; ours reads ahead a fixed 2)."""
    import tensorflow as tf

    ds = ds.padded_batch(
        batch, padded_shapes={"inputs": [inputs_length], "targets": [targets_length]}, drop_remainder=True
    )
    it = iter(ds.prefetch(tf.data.AUTOTUNE))
    return lambda: len(next(it)["inputs"])


def t5_denoise(t5p, chunks_all: np.ndarray, vocab_size: int, plan, batch: int) -> NextBatch:
    import seqio
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices({"targets": chunks_all}).repeat()
    with seqio.utils.map_seed_manager(0):
        ds = t5p.denoise(
            ds,
            _t5_features(vocab_size),
            noise_density=0.15,
            noise_mask_fn=functools.partial(t5p.random_spans_noise_mask, mean_noise_span_length=3.0),
            inputs_fn=t5p.noise_span_to_unique_sentinel,
            targets_fn=t5p.nonnoise_span_to_unique_sentinel,
        )
    return _batched(ds, batch, plan.inputs_length, plan.targets_length)


def t5_stream(t5p, docs: list[np.ndarray], vocab_size: int, plan, batch: int) -> NextBatch:
    import seqio

    with seqio.utils.map_seed_manager(0):
        ds = t5p.span_corruption(
            graph_documents(docs),
            {"inputs": plan.inputs_length, "targets": plan.targets_length},
            _t5_features(vocab_size),
        )
    return _batched(ds, batch, plan.inputs_length, plan.targets_length)


# ---- main -----------------------------------------------------------------------------------------------------
def like_for_like(t5p, docs, flat, tokens, vocab_size: int, args) -> None:
    from t5explore.data.token_store import write_token_store
    from t5explore.objectives import named

    objective = named.span_corruption()
    plan = objective.plan(args.inputs_length)
    chunks_all = flat[: len(flat) // plan.raw_length * plan.raw_length].reshape(-1, plan.raw_length)
    shared = [SPAN_CORRUPTION, f"batch = {args.batch}", f"inputs_length = {args.inputs_length}"]
    if t5p is not None:
        ours_label, t5_label = "ours: numpy objective", "t5: denoise() in tf.data graph mode"
        sides = {
            ours_label: ours_objective(objective, chunks_all, tokens, args.batch),
            t5_label: t5_denoise(t5p, chunks_all, vocab_size, plan, args.batch),
        }
        configs = {
            ours_label: [*shared, "source = pre-cut chunks", "one numpy call per batch"],
            t5_label: [*shared, "source = pre-cut chunks", T5_MAP, T5_PREFETCH],
        }
        report(
            f"the objective alone: span corruption on pre-cut chunks, batch {args.batch}",
            interleaved(sides, args.reps, args.seconds),
            configs,
        )
    with tempfile.TemporaryDirectory(prefix="objectives_bench.") as tmp:
        store = write_token_store(tmp, docs, tokens)
        ours = ours_stream(store, named.span_corruption(), args.inputs_length, args.batch)
        if t5p is None:
            print(f"\nfull stream, ours only: {rate(ours, args.seconds, warm=8):,.0f} examples/s")
            return
        ours_label, t5_label = "ours: PretrainStream", "t5: span_corruption() in tf.data graph mode"
        sides = {ours_label: ours, t5_label: t5_stream(t5p, docs, vocab_size, plan, args.batch)}
        configs = {
            ours_label: [*shared, "source = token store", "prefetch = 2 (PretrainStream's thread)"],
            t5_label: [*shared, T5_SOURCE, T5_MAP, T5_PREFETCH],
        }
        report(
            f"the full stream: token store / documents to batches of {args.batch}",
            interleaved(sides, args.reps, args.seconds),
            configs,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--inputs_length", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--max_chars", type=int, default=6_000_000)
    parser.add_argument("--data_dir", default=os.environ.get("T5EXPLORE_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--out", help="output file (default benchmarks/results/objectives.txt; --smoke: none)")
    parser.add_argument("--smoke", action="store_true", help=f"seconds: {' '.join(SMOKE)} (numbers mean nothing)")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.smoke:
        args = parser.parse_args([*argv, *SMOKE])
    with record.Recorder("objectives", argv, record.default_out("objectives", args.smoke, args.out)):
        run(args)


def run(args) -> None:
    from t5explore.objectives import named
    from t5explore.objectives.base import TokenSpace

    docs, vocab_size = load_documents(Path(args.data_dir), args.max_chars)
    flat = np.concatenate(docs)
    modes = (("[NLU]", 3), ("[S2S]", 4), ("[NLG]", 5))
    tokens = TokenSpace(vocab_size=vocab_size, mode_token_ids=modes, first_regular_id=6)
    # UL2's X denoiser (μ 3, r 0.5) needs ~128 sentinels at 512 inputs: benchmark it with 200.
    wide = TokenSpace(vocab_size=vocab_size + 100, num_sentinels=200, mode_token_ids=modes, first_regular_id=6)
    print(
        f"{len(flat):,} tokens in {len(docs):,} documents of Gutenberg text; inputs_length={args.inputs_length}, "
        f"batch={args.batch}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n"
    )
    ours_all_objectives(flat, tokens, wide, args)
    t5p = import_t5_preprocessors()
    if t5p is None:
        print(
            f"\nthe reference `t5` is not installed: sections 2-3 show ours only. To compare, run:\n  {T5REF_INSTALL}"
        )
    like_for_like(t5p, docs, flat, tokens, vocab_size, args)
    adapter = ours_adapter(named.span_corruption(), graph_documents(docs), tokens, args.inputs_length, args.batch)
    per_doc = len(flat) / len(docs) / named.span_corruption().plan(args.inputs_length).raw_length
    print(
        f"\nseqio adapter (span corruption over the graph-mode documents, batched): "
        f"{rate(adapter, args.seconds, warm=8):,.0f} examples/s; the document source alone: "
        f"{rate(documents_alone(graph_documents(docs), args.batch), args.seconds, warm=8) * per_doc:,.0f} "
        f"examples' worth of documents/s"
    )


if __name__ == "__main__":
    main()
