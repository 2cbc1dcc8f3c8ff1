"""Throughput of the objectives (numpy, batched) against T5's own span corruption (tf.data), same tokens.

    python benchmarks/objectives.py [--batch 128] [--inputs_length 512] [--seconds 3]

Tokens: whitespace words of the Gutenberg books in ../shared/data (ids by first occurrence). Ours: cut
`batch` raw chunks from the flat token array and run the objective. Reference: the `t5` package's
`t5.data.preprocessors.span_corruption` (chunking, concatenation, splitting and denoising, as T5 runs it)
over a tf.data dataset of the same documents. The reference is installed only for this script:

    pip install --no-deps --target .t5ref t5==0.9.4 babel sacrebleu rouge-score portalocker
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import os
import sys
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
T5REF = REPO / ".t5ref"
INSTALL = f"pip install --no-deps --target {T5REF} t5==0.9.4 babel sacrebleu rouge-score portalocker"


def load_documents(data_dir: Path, max_chars: int) -> tuple[list[np.ndarray], int]:
    text_parts, size = [], 0
    for path in sorted((data_dir / "pretrain" / "gutenberg").glob("*.txt")):
        text_parts.append(path.read_text(encoding="utf-8"))
        size += len(text_parts[-1])
        if size >= max_chars:
            break
    ids: dict[str, int] = {}
    docs = [np.array([ids.setdefault(w, 6 + len(ids)) for w in para.split()], np.int32)
            for para in "\n\n".join(text_parts).split("\n\n") if para.split()]
    return docs, 6 + len(ids) + 100


def bench_ours(objective, flat: np.ndarray, tokens, inputs_length: int, batch: int, seconds: float):
    from t5explore.seeds import STREAM_OBJECTIVE, numpy_rng

    plan = objective.plan(inputs_length)
    n_chunks = len(flat) // plan.raw_length
    chunks_all = flat[: n_chunks * plan.raw_length].reshape(n_chunks, plan.raw_length)
    done, k, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds or k < 3:
        first = (k * batch) % (n_chunks - batch)
        objective(chunks_all[first: first + batch], numpy_rng(0, STREAM_OBJECTIVE, k), tokens)
        done, k = done + batch, k + 1
    rate = done / (time.perf_counter() - start)
    return rate, rate * plan.raw_length


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """t5 imports sklearn/nltk for its metrics at import time; span corruption never uses them."""

    roots = {"sklearn", "nltk"}

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

    def __call__(self, *args, **kwargs):
        return _Stub(f"{self.__name__}()")


def import_t5_reference():
    if not (T5REF / "t5").is_dir():
        return None
    import tensorflow as tf  # noqa: F401  (import TF/keras before the stubs so they see no sklearn)
    import seqio  # noqa: F401

    sys.path.append(str(T5REF))
    sys.meta_path.insert(0, _StubFinder())
    import gin

    gin.enter_interactive_mode()  # t5 re-registers a few configurables seqio also defines
    try:
        import t5.data.preprocessors as t5_preprocessors
    except Exception as e:  # noqa: BLE001
        print(f"could not import the t5 reference from {T5REF}: {e!r}")
        return None
    return t5_preprocessors


def bench_reference(t5_preprocessors, docs, vocab_size: int, inputs_length: int, targets_length: int,
                    seconds: float):
    import seqio
    import tensorflow as tf

    vocab = seqio.PassThroughVocabulary(vocab_size)
    features = {"inputs": seqio.Feature(vocab, add_eos=True), "targets": seqio.Feature(vocab, add_eos=True)}
    ds = tf.data.Dataset.from_generator(lambda: ({"targets": d} for d in docs),
                                        output_signature={"targets": tf.TensorSpec([None], tf.int32)}).repeat()
    with seqio.utils.map_seed_manager(0):
        ds = t5_preprocessors.span_corruption(ds, {"inputs": inputs_length, "targets": targets_length}, features)
    it = ds.as_numpy_iterator()
    for _ in range(64):
        next(it)  # warm-up: graph tracing
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(it)
        done += 1
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--inputs_length", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--data_dir", default=os.environ.get("T5EXPLORE_SHARED_DATA", REPO.parent / "shared" / "data"))
    args = parser.parse_args()

    from t5explore.objectives import named
    from t5explore.objectives.base import TokenSpace

    docs, vocab_size = load_documents(Path(args.data_dir), 6_000_000)
    flat = np.concatenate(docs)
    modes = (("[NLU]", 3), ("[S2S]", 4), ("[NLG]", 5))
    tokens = TokenSpace(vocab_size=vocab_size, mode_token_ids=modes, first_regular_id=6)
    # UL2's X denoiser (μ 3, r 0.5) needs ~128 sentinels at 512 inputs: benchmark it with 200.
    wide = TokenSpace(vocab_size=vocab_size + 100, num_sentinels=200, mode_token_ids=modes, first_regular_id=6)
    print(f"{len(flat):,} tokens of Gutenberg text; inputs_length={args.inputs_length}, batch={args.batch}, "
          f"{os.cpu_count()} CPUs\n")
    print(f"{'objective':<20} {'examples/s':>12} {'raw tokens/s':>14}")
    results = {}
    for name, make in named.NAMED_OBJECTIVES.items():
        obj = make([named.span_corruption(), named.prefix_lm()]) if name == "mixture" else make()
        ex, tok = bench_ours(obj, flat, wide if name == "ul2" else tokens, args.inputs_length, args.batch,
                             args.seconds)
        results[name] = ex
        print(f"{name:<20} {ex:>12,.0f} {tok:>14,.0f}")

    t5_preprocessors = import_t5_reference()
    if t5_preprocessors is None:
        print(f"\nreference `t5` not installed; to compare, run:\n  {INSTALL}")
        return
    plan = named.span_corruption().plan(args.inputs_length)
    ref = bench_reference(t5_preprocessors, docs, vocab_size, args.inputs_length, plan.targets_length,
                          args.seconds)
    print(f"{'t5 span_corruption':<20} {ref:>12,.0f} {ref * plan.raw_length:>14,.0f}   (reference, tf.data)")
    print(f"\nspan_corruption ours/reference: {results['span_corruption'] / ref:.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
