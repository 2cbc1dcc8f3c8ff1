"""The vocabulary: a SentencePiece unigram model trained on the pretraining corpus, plus T5 sentinels.

Trained once per (corpus content, size, options) and cached under that hash. Training is deterministic: the
sentences are read in corpus order, capped, subsampled with a seeded numpy generator (not sentencepiece's own
shuffling) and fed with a fixed thread count, so the same corpus gives the same model bytes.

Ids follow T5: pad 0, eos 1, unk 2, no bos; UL2 mode tokens `[NLU]` `[S2S]` `[NLG]` are 3, 4, 5; byte fallback
pieces follow; `<extra_id_k>` = `vocab_size - 1 - k` is added on top exactly as `seqio.SentencePieceVocabulary`
does, so `Vocab.encode/decode` (plain sentencepiece, no TensorFlow) agree with `Vocab.seqio_vocabulary`.

The sentinel count (`vocabulary.num_sentinels`, T5's 100 by default) is added at load time, so it is not part
of the training cache key: changing it never retrains. UL2 at inputs_length 512 needs more than 100 (its X
denoiser μ 3, r 0.5 emits ~128 spans per row). Token stores key on it through `Vocab.fingerprint()`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import gin
import numpy as np
import sentencepiece as spm

from t5explore.data.cache import build_lock, building_entry, content_key, resolve_cache_dir
from t5explore.errors import InputError
from t5explore.io_utils import atomic_write_json
from t5explore.objectives.base import TokenSpace
from t5explore.seeds import STREAM_VOCAB, numpy_rng
from t5explore.special_ids import EOS_ID, PAD_ID, UNK_ID

NUM_SENTINELS = 100  # T5's default; `vocabulary.num_sentinels` changes it per run
MODE_TOKENS = ("[NLU]", "[S2S]", "[NLG]")
VOCAB_SEED = 0  # the vocabulary is not a per-run choice: one seed for every run sharing a corpus
MAX_READ_SENTENCES = 4_000_000  # lines read from the corpus at most (C4 would otherwise be read whole)
INPUT_SENTENCE_SIZE = 1_000_000  # lines sampled from those for training
TRAINER_OPTIONS: dict[str, Any] = dict(  # Any: sentencepiece's train() types each option
    model_type="unigram",
    pad_id=PAD_ID,
    eos_id=EOS_ID,
    unk_id=UNK_ID,
    bos_id=-1,
    user_defined_symbols=",".join(MODE_TOKENS),
    byte_fallback=True,
    character_coverage=0.9995,
    max_sentence_length=32768,
    input_sentence_size=0,
    shuffle_input_sentence=False,  # we sample ourselves, seeded
    num_threads=4,  # fixed: the EM step's reduction order depends on it
)


_HAS_NUMPY_OUTPUT = hasattr(spm.SentencePieceProcessor, "EncodeAsNumpy")  # sentencepiece >= 0.2.1


class VocabError(InputError):
    """The vocabulary cannot be built or loaded; the message names the corpus, file or setting."""


def _piece_types():
    from sentencepiece import sentencepiece_model_pb2 as pb

    return pb


class Vocab:
    """A trained sentencepiece model + `extra_ids` sentinels; encode/decode without TensorFlow.

    `foreign`: a model this harness did not train (`vocabulary.sp_model_file`, e.g. a public T5's spiece.model):
    it needs only T5's pad/eos/unk ids; UL2's mode tokens are whatever pieces it has of them (an objective that
    needs a missing one says so)."""

    def __init__(self, sp_path: str | os.PathLike, extra_ids: int = NUM_SENTINELS, foreign: bool = False):
        self.sp_path = Path(sp_path)
        self.extra_ids = check_num_sentinels(extra_ids)
        self.foreign = foreign
        pb = _piece_types()
        model_bytes = self.sp_path.read_bytes()
        self._model_sha256 = hashlib.sha256(model_bytes).hexdigest()
        model = pb.ModelProto.FromString(model_bytes)
        self.sp_vocab_size = len(model.pieces)
        # Same additions as seqio's _load_model (reverse order: <extra_id_0> is the highest id).
        for i in reversed(range(extra_ids)):
            model.pieces.add(piece=f"▁<extra_id_{i}>", score=0.0, type=pb.ModelProto.SentencePiece.USER_DEFINED)
        self._sp = spm.SentencePieceProcessor(model_proto=model.SerializeToString())
        regular = [i for i, p in enumerate(model.pieces) if p.type == pb.ModelProto.SentencePiece.NORMAL]
        self._first_regular_id = regular[0] if regular else self.sp_vocab_size
        self._check_ids()
        present = ((t, self._sp.piece_to_id(t)) for t in MODE_TOKENS)
        self._mode_token_ids = tuple((t, i) for t, i in present if i != UNK_ID)

    def _check_ids(self) -> None:
        expected = {
            "pad": (self._sp.pad_id(), PAD_ID),
            "eos": (self._sp.eos_id(), EOS_ID),
            "unk": (self._sp.unk_id(), UNK_ID),
        }
        if not self.foreign:
            expected.update({t: (self._sp.piece_to_id(t), 3 + i) for i, t in enumerate(MODE_TOKENS)})
        bad = {k: v for k, v in expected.items() if v[0] != v[1]}
        if bad and self.foreign:
            raise VocabError(
                f"vocabulary.sp_model_file = {str(self.sp_path)!r}: its special ids are not T5's (pad 0, eos 1, "
                f"unk 2; the harness's token ids assume them); (id, expected id) differ: {bad}"
            )
        if bad:
            raise VocabError(f"{self.sp_path}: not a t5explore vocabulary; (id, expected id) differ: {bad}")

    @property
    def vocab_size(self) -> int:
        return self.sp_vocab_size + self.extra_ids

    def fingerprint(self) -> str:
        """Hash of the sentencepiece model bytes and the sentinel count (token stores are keyed on it)."""
        return f"{self._model_sha256[:32]}+{self.extra_ids}"

    def encode(self, text: str) -> list[int]:
        return self._sp.encode(text)

    def encode_batch(self, texts: Sequence[str], num_threads: int = -1) -> list[list[int]]:
        """Encode many texts at once in sentencepiece's thread pool (-1 = all cores)."""
        return self._sp.encode(list(texts), num_threads=num_threads)

    def encode_batch_arrays(self, texts: Sequence[str], num_threads: int = -1) -> list[np.ndarray]:
        """`encode_batch` as int32 arrays, the same ids: sentencepiece's buffer output makes no Python int per
        token, which is most of what a corpus-sized encode costs beyond sentencepiece itself (the token store)."""
        if _HAS_NUMPY_OUTPUT:
            return self._sp.encode(list(texts), out_type="numpy", num_threads=num_threads)
        return [np.asarray(ids, np.int32) for ids in self.encode_batch(texts, num_threads)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids` up to the first EOS, ignoring padding; out-of-range ids become UNK (as in seqio)."""
        out = []
        for i in (int(x) for x in ids):
            if i == EOS_ID:
                break
            if i != PAD_ID:
                out.append(i if 0 <= i < self.vocab_size else UNK_ID)
        return self._sp.decode(out)

    def token_space(self) -> TokenSpace:
        return TokenSpace(
            vocab_size=self.vocab_size,
            num_sentinels=self.extra_ids,
            pad_id=PAD_ID,
            eos_id=EOS_ID,
            unk_id=UNK_ID,
            mode_token_ids=self._mode_token_ids,
            first_regular_id=self._first_regular_id,
        )

    @functools.cached_property
    def seqio_vocabulary(self):
        import seqio  # imports TensorFlow: only when asked

        return seqio.SentencePieceVocabulary(str(self.sp_path), extra_ids=self.extra_ids)

    def __repr__(self) -> str:
        return f"Vocab({self.sp_path}, vocab_size={self.vocab_size}, num_sentinels={self.extra_ids})"


def check_num_sentinels(num_sentinels) -> int:
    """A sentinel count must be a plain non-negative int (gin would happily pass 1.5, '200' or True)."""
    if isinstance(num_sentinels, bool) or not isinstance(num_sentinels, (int, np.integer)) or num_sentinels < 0:
        raise VocabError(f"vocabulary.num_sentinels={num_sentinels!r} must be a non-negative integer")
    return int(num_sentinels)


def training_sentences(
    documents: Iterable[str],
    seed: int = VOCAB_SEED,
    max_read: int = MAX_READ_SENTENCES,
    sample: int = INPUT_SENTENCE_SIZE,
) -> list[str]:
    """Non-empty lines of the first `max_read` lines, subsampled to `sample` with a seeded generator."""
    lines: list[str] = []
    for doc in documents:
        for line in doc.split("\n"):
            line = line.strip()
            if line:
                lines.append(line)
        if len(lines) >= max_read:
            del lines[max_read:]
            break
    if len(lines) > sample:
        keep = np.sort(numpy_rng(seed, STREAM_VOCAB).choice(len(lines), size=sample, replace=False))
        lines = [lines[i] for i in keep]
    return lines


def train_sentencepiece(sentences: list[str], sp_vocab_size: int, model_prefix: str) -> None:
    """Train the unigram model into `model_prefix`.model (sentencepiece logs silenced)."""
    if not sentences:
        raise VocabError("the corpus has no text to train a vocabulary on")
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_prefix=model_prefix,
            vocab_size=sp_vocab_size,
            minloglevel=2,
            **TRAINER_OPTIONS,
        )
    except RuntimeError as e:
        raise VocabError(f"sentencepiece training failed (vocabulary.sp_vocab_size={sp_vocab_size}): {e}") from e
    # The trainer records its (temporary) output path in the model; blank it so equal training = equal bytes.
    path = Path(model_prefix + ".model")
    model = _piece_types().ModelProto.FromString(path.read_bytes())
    model.trainer_spec.model_prefix = ""
    path.write_bytes(model.SerializeToString(deterministic=True))


def vocab_cache_key(corpus, sp_vocab_size: int) -> str:
    """Key of the trained sentencepiece model. NUM_SENTINELS is the constant (kept so old caches stay valid),
    never the configured count: sentinels are added at load time, so a new count must not retrain."""
    return content_key(
        "vocab-v1",
        corpus.fingerprint(),
        int(sp_vocab_size),
        NUM_SENTINELS,
        TRAINER_OPTIONS,
        VOCAB_SEED,
        MAX_READ_SENTENCES,
        INPUT_SENTENCE_SIZE,
        spm.__version__,
    )


def get_vocabulary(
    corpus, sp_vocab_size: int, cache_dir: str | os.PathLike | None = None, num_sentinels: int = NUM_SENTINELS
) -> Vocab:
    """The vocabulary of `corpus` with `num_sentinels` sentinels on top: the sentencepiece model is loaded from
    the cache, or trained (once) and published atomically."""
    num_sentinels = check_num_sentinels(num_sentinels)
    if sp_vocab_size < 3 + len(MODE_TOKENS) + 256 + 1:
        raise VocabError(f"vocabulary.sp_vocab_size={sp_vocab_size} is too small: byte fallback alone needs 262 ids")
    entry = resolve_cache_dir(cache_dir) / "vocab" / f"sp{sp_vocab_size}-{vocab_cache_key(corpus, sp_vocab_size)}"
    model_path = entry / "spm.model"
    if not model_path.is_file():
        with build_lock(entry, "vocabulary"):  # concurrent workers train it once; the others wait, then load it
            if not model_path.is_file():
                _build_vocabulary(entry, corpus, sp_vocab_size)
    return Vocab(model_path, extra_ids=num_sentinels)


def _build_vocabulary(entry: Path, corpus, sp_vocab_size: int) -> None:
    """Train the sentencepiece model into the cache entry `entry`, saying when it starts and how long it took."""
    start = time.perf_counter()
    print(f"training the vocabulary ({sp_vocab_size} pieces) on {corpus.name} -> {entry}", file=sys.stderr, flush=True)
    _sweep_leftovers(entry)
    sentences = training_sentences(corpus.documents())
    with building_entry(entry) as tmp:
        train_sentencepiece(sentences, sp_vocab_size, str(tmp / "spm"))
        seconds = round(time.perf_counter() - start, 2)
        atomic_write_json(
            tmp / "meta.json",
            {
                "corpus": corpus.name,
                "corpus_fingerprint": corpus.fingerprint(),
                "sp_vocab_size": sp_vocab_size,
                "sentences": len(sentences),
                "train_seconds": seconds,
                "options": TRAINER_OPTIONS,
                "sentencepiece": spm.__version__,
                "python": sys.version.split()[0],
            },
        )
    print(f"trained the vocabulary in {seconds:.1f} s ({len(sentences):,} sentences)", file=sys.stderr, flush=True)


def _sweep_leftovers(entry: Path) -> None:
    """Remove the temp dirs of killed builds of `entry` (`.<entry>.<random>.tmp`, left by a SIGKILL that skipped
    building_entry's cleanup). Called under the entry's build lock, so none of them is being filled."""
    for leftover in entry.parent.glob(f".{entry.name}.*.tmp"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)


def load_sp_model_file(path: str | os.PathLike, num_sentinels: int = NUM_SENTINELS) -> Vocab:
    """A SentencePiece model the harness did not train (a downloaded T5 checkpoint's spiece.model) with
    `num_sentinels` sentinels on top; errors name the `vocabulary.sp_model_file` binding."""
    where = f"vocabulary.sp_model_file = {str(path)!r}"
    if not Path(path).is_file():
        raise VocabError(f"{where}: no such file")
    try:
        return Vocab(path, extra_ids=num_sentinels, foreign=True)
    except VocabError:
        raise
    except Exception as e:  # noqa: BLE001 - protobuf/sentencepiece parse errors have many types
        raise VocabError(f"{where}: not a SentencePiece model ({type(e).__name__}: {e})") from None


@gin.configurable("vocabulary", module=None)
def vocabulary(
    corpus=gin.REQUIRED,
    sp_vocab_size: int = 32000,
    cache_dir: str | None = None,
    num_sentinels: int = NUM_SENTINELS,
    sp_model_file: str | None = None,
) -> Vocab:
    """Gin entry point: `vocabulary.sp_vocab_size = 2000` for tiny runs; 32000 (+100 sentinels) like T5;
    `vocabulary.num_sentinels = 200` where an objective needs more spans per row (UL2 at inputs 512);
    `vocabulary.sp_model_file = 'DIR/spiece.model'` uses that model instead of training one on the corpus
    (a downloaded T5 checkpoint's, for `Pretrain.init_from_hf = 'DIR'`): then sp_vocab_size is not used."""
    if sp_model_file:
        return load_sp_model_file(sp_model_file, num_sentinels)
    return get_vocabulary(corpus, sp_vocab_size, cache_dir, num_sentinels)
