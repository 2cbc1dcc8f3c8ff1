"""BART's noising functions (objectives/bart.py) on real text, checked against the BART paper and fairseq's
DenoisingDataset statistically: masked share, Poisson(3) span lengths, mask tokens and insertions per example,
sentences kept whole by permutation, rotations that are exact cyclic shifts at uniformly drawn tokens.

The text: Project Gutenberg paragraphs (the corpus' documents, gin/data/gutenberg.gin), word-level tokens
(whitespace words, ids by first occurrence), through a token store and the pre-training stream, so the rows,
their document starts and their sentences are the ones training sees."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import stats

from t5explore.data.corpus import split_paragraphs
from t5explore.data.pretrain_stream import PretrainStream
from t5explore.data.sentences import SentenceSplitter, document_starts
from t5explore.data.token_store import write_token_store
from t5explore.objectives import named
from t5explore.objectives.bart import Boundaries, PoissonSpansMask, poisson_pmf, poisson_span_lengths
from t5explore.objectives.base import TokenSpace
from t5explore.seeds import STREAM_OBJECTIVE, numpy_rng

INPUTS_LENGTH, BATCH = 128, 64
SENTENCE_END = re.compile(r"[.!?][\"')\]”’]*$")


@pytest.fixture(scope="module")
def text(shared_data):
    """(documents as id arrays, the words of each id, the token space): ~3,000 paragraphs of 3 books."""
    paths = sorted((shared_data / "pretrain" / "gutenberg").glob("*.txt"))[:3]
    paragraphs = [p for path in paths for p in split_paragraphs(path.read_text(encoding="utf-8")) if len(p) > 40]
    ids: dict[str, int] = {}
    docs = [np.array([ids.setdefault(w, 6 + len(ids)) for w in p.split()], np.int32) for p in paragraphs[:3000]]
    words = ["", "", "", "", "", "", *ids]
    return docs, words, TokenSpace(vocab_size=len(words) + 100, first_regular_id=6)


@pytest.fixture(scope="module")
def store(text, tmp_path_factory):
    docs, _, tokens = text
    return write_token_store(tmp_path_factory.mktemp("bart_store"), docs, tokens, eval_fraction=0.05)


@pytest.fixture(scope="module")
def splitter(text):
    return SentenceSplitter.from_pieces([f"▁{w}" if w else "" for w in text[1]])


def rows(store, splitter, objective, batches=4, seed=0):
    """[(chunks, boundaries, inputs, targets)] of the first batches of the stream (boundaries as it builds them)."""
    stream = PretrainStream(store, objective, INPUTS_LENGTH, BATCH, seed, prefetch=0, sentences=splitter)
    out = []
    for k in range(batches):
        chunks = stream.chunks(k)
        docs = document_starts(store.doc_offsets, stream.row_starts(k)[1], chunks.shape[1])
        batch = stream.batch(k)
        out.append((chunks, Boundaries(splitter.starts(chunks, docs), docs), batch))
    return out


def strip(row, eos=1):
    return row[: np.flatnonzero(row == eos)[0]]


def units(row_starts: np.ndarray) -> list[tuple[int, int]]:
    """[(start, stop)] of the units starting at the True positions (position 0 always starts one)."""
    cuts = sorted({0, *np.flatnonzero(row_starts).tolist()})
    return list(zip(cuts, [*cuts[1:], row_starts.size]))


def test_the_splitter_finds_the_texts_sentences_and_the_store_its_documents(text, store, splitter):
    docs, words, _ = text
    for doc in docs[:300]:
        starts = splitter.starts(doc[None, :], np.eye(1, doc.size, dtype=bool))[0]
        ends = [i for i in range(doc.size - 1) if SENTENCE_END.search(words[doc[i]])]
        assert np.flatnonzero(starts[1:]).tolist() == ends  # a sentence starts after each word ending one
    offsets = np.asarray(store.doc_offsets)
    starts = document_starts(offsets, np.array([offsets[5] - 3, 0]), 40)
    assert starts[0].tolist() == [i in (0, 3) or (offsets[5] - 3 + i) in offsets for i in range(40)]


def test_sentence_permutation_keeps_every_sentence_whole_within_its_document(store, splitter):
    moved = multi = 0
    for chunks, bounds, batch in rows(store, splitter, named.bart_sentence_permutation()):
        for row in range(BATCH):
            inputs = strip(batch["encoder_input_tokens"][row])
            assert np.array_equal(strip(batch["decoder_target_tokens"][row]), chunks[row])  # target = document
            for a, b in units(bounds.document_start[row]):
                sentences = units(bounds.sentence_start[row, a:b])
                original = [tuple(chunks[row, a + s : a + e]) for s, e in sentences]
                # the document's span of the inputs is its sentences, each whole, in some order
                span, got, i = inputs[a:b].tolist(), [], 0
                remaining = list(original)
                while i < len(span):
                    match = next(s for s in remaining if tuple(span[i : i + len(s)]) == s)
                    remaining.remove(match)
                    got.append(match)
                    i += len(match)
                assert sorted(got) == sorted(original)
                if len(set(original)) > 1:
                    multi += 1
                    moved += got != original
    assert multi > 100 and moved / multi > 0.4  # most documents of 2+ sentences come out reordered


def test_document_rotation_is_a_cyclic_shift_at_a_uniform_token(store, splitter):
    fractions = []
    for chunks, bounds, batch in rows(store, splitter, named.bart_document_rotation(), batches=6):
        for row in range(BATCH):
            inputs = strip(batch["encoder_input_tokens"][row])
            assert inputs.size == chunks.shape[1]  # nothing added or lost
            for a, b in units(bounds.document_start[row]):
                doc, rotated = chunks[row, a:b].tolist(), inputs[a:b].tolist()
                shifts = [o for o in range(b - a) if doc[o:] + doc[:o] == rotated]
                assert shifts, "each document is a rotation of itself, starting at one of its tokens"
                if b - a >= 10 and len(shifts) == 1:
                    fractions.append(shifts[0] / (b - a))
    counts = np.histogram(fractions, bins=5, range=(0, 1))[0]
    assert len(fractions) > 200 and stats.chisquare(counts).pvalue > 1e-3  # start token uniform


@pytest.mark.parametrize("make", [named.bart_token_masking, named.bart_token_deletion])
def test_token_masking_and_deletion_noise_thirty_percent_of_tokens(store, splitter, make, text):
    objective, tokens = make(), text[2]
    mask_id = tokens.sentinel(0)
    noised = total = 0
    for chunks, _, batch in rows(store, splitter, objective):
        for row in range(BATCH):
            inputs = strip(batch["encoder_input_tokens"][row])
            if objective.name == "bart_token_masking":
                assert inputs.size == chunks.shape[1]
                assert np.array_equal(inputs[inputs != mask_id], chunks[row][inputs != mask_id])
                noised += int((inputs == mask_id).sum())
            else:  # the kept tokens, in order: a subsequence of the document
                it = iter(chunks[row].tolist())
                assert all(any(t == u for u in it) for t in inputs.tolist())
                noised += chunks.shape[1] - inputs.size
            total += chunks.shape[1]
    assert abs(noised / total - 0.3) < 4 * math.sqrt(0.3 * 0.7 / total)


def reference_infilling(chunk, noise, insert, mask_id, width):
    """The inputs text infilling should give, one position at a time (replace_length = 1, insertions)."""
    out = []
    for i, token in enumerate(chunk.tolist()):
        if insert[i]:
            out.append(mask_id)
        if not noise[i]:
            out.append(token)
        elif i == 0 or not noise[i - 1]:
            out.append(mask_id)
    if insert[len(chunk)]:
        out.append(mask_id)
    return out[: width - 1] if len(out) <= width - 1 else None  # None: the objective must drop insertions


def test_text_infilling_encodes_each_span_as_one_mask_and_each_insertion_as_one(store, splitter, text):
    objective, tokens = named.bart_text_infilling(), text[2]
    stream = PretrainStream(store, objective, INPUTS_LENGTH, BATCH, 0, prefetch=0, sentences=splitter)
    for k in range(3):
        chunks, inputs = stream.chunks(k), stream.batch(k)["encoder_input_tokens"]
        noise, insert = objective.mask.sample_with_insertions(numpy_rng(0, STREAM_OBJECTIVE, k, 0), *chunks.shape)
        for row in range(BATCH):
            want = reference_infilling(chunks[row], noise[row], insert[row], tokens.sentinel(0), INPUTS_LENGTH)
            assert want is not None and strip(inputs[row]).tolist() == want


def spans_of(noise: np.ndarray) -> list[list[int]]:
    """Per row, the lengths of its noise runs in order."""
    out = []
    for row in noise:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
        out.append((edges[1::2] - edges[0::2]).tolist())
    return out


def fairseq_spans(rng: np.random.Generator, budget: int, lam: float, rows: int) -> list[np.ndarray]:
    """fairseq's span lengths per row (add_whole_word_mask, mask_length='span-poisson'), re-implemented with
    numpy's own Poisson sampler instead of the Categorical: zero-length spans are its insertions."""
    out = []
    for _ in range(rows):
        lengths = rng.poisson(lam, budget)
        while lengths.sum() < budget:
            lengths = np.concatenate([lengths, rng.poisson(lam, budget)])
        cum = np.cumsum(lengths)
        i = int(np.argmax(cum >= budget))
        kept = lengths[: i + 1].copy()
        kept[i] = budget - (cum[i - 1] if i else 0)
        out.append(kept)
    return out


def same_distribution(a: np.ndarray, b: np.ndarray, top: int = 9) -> float:
    """Chi-square p of a 2 x bins contingency table of two samples of small integers (top pools the tail)."""
    table = np.array([np.bincount(np.minimum(x, top), minlength=top + 1) for x in (a, b)])
    table = table[:, table.sum(0) > 0]
    return stats.chi2_contingency(table).pvalue


def test_text_infilling_masks_thirty_percent_in_poisson_3_spans_like_fairseq():
    rows, length = 3000, INPUTS_LENGTH - 1
    mask = PoissonSpansMask(0.3, 3.0)
    noise, insert = mask.sample_with_insertions(np.random.default_rng(7), rows, length)
    budget = math.ceil(0.3 * length)
    assert np.all(noise.sum(1) == budget)  # exactly 30 % (fairseq's overlapping spans give less: see bart.py)
    lengths = spans_of(noise)  # the masked runs in position order = the order they were drawn in
    ref = fairseq_spans(np.random.default_rng(8), budget, 3.0, rows)
    # Span lengths: each row's spans but the last (the one trimmed to the budget) against fairseq's.
    inner = np.array([x for row in lengths for x in row[:-1]])
    ref_inner = np.array([x for row in ref for x in row[:-1] if x > 0])
    assert same_distribution(inner, ref_inner) > 1e-3
    last, ref_last = np.array([row[-1] for row in lengths]), np.array([row[-1] for row in ref])
    assert same_distribution(last, ref_last) > 1e-3
    # Mask tokens per example (spans + insertions) and insertions match fairseq's.
    spans, inserts = np.array([len(row) for row in lengths]), insert.sum(1)
    ref_spans, ref_inserts = np.array([(r > 0).sum() for r in ref]), np.array([(r == 0).sum() for r in ref])
    for ours, theirs in ((spans, ref_spans), (inserts, ref_inserts), (spans + inserts, ref_spans + ref_inserts)):
        assert abs(ours.mean() - theirs.mean()) < 4 * math.sqrt(ours.var() / rows + theirs.var() / rows)
        assert same_distribution(ours, theirs, top=30) > 1e-3
    assert 0.3 < inserts.mean() < 1.2  # about one zero-length span in twenty: ~0.65 per row at this budget


def test_span_lengths_are_poisson_3_draws():
    """Far from the budget's end the draws are Poisson(λ = 3) themselves, zeros (insertions) included."""
    draws = poisson_span_lengths(np.random.default_rng(3), 60_000, poisson_pmf(3.0))[:-1]
    p = stats.poisson.pmf(np.arange(0, 9), 3.0)
    observed = np.append(np.bincount(draws, minlength=9)[:9], (draws >= 9).sum())
    assert stats.chisquare(observed, np.append(p, 1 - p.sum()) * draws.size).pvalue > 1e-3
    assert draws.mean() == pytest.approx(3.0, abs=0.03) and draws.var() == pytest.approx(3.0, abs=0.1)


def test_span_lengths_are_drawn_as_fairseq_draws_them():
    pmf = poisson_pmf(3.0)
    assert (
        pmf.size == 18 and pmf[-1] < 1e-7 < pmf[-2]
    )  # k = 0..17, as fairseq builds it and pmf.sum() == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    for budget in (1, 5, 39, 154):
        lengths = poisson_span_lengths(rng, budget, pmf)
        assert lengths.sum() == budget and lengths[-1] >= 1 and np.all(lengths >= 0)


def test_infilling_with_permutation_permutes_then_infills(store, splitter, text):
    objective, tokens = named.bart_text_infilling_permutation(), text[2]
    mask_id = tokens.sentinel(0)
    for chunks, _bounds, batch in rows(store, splitter, objective, batches=2):
        for row in range(BATCH):
            inputs = strip(batch["encoder_input_tokens"][row])
            masks = int((inputs == mask_id).sum())
            kept = inputs.size - masks
            assert kept == chunks.shape[1] - math.ceil(0.3 * chunks.shape[1])
            assert 5 <= masks <= 30  # ~12 spans + insertions


def test_a_sentence_objective_without_boundaries_or_vocabulary_is_one_clear_error(store, text):
    objective = named.bart_sentence_permutation()
    plan = objective.plan(16)
    with pytest.raises(ValueError, match="needs each row's Boundaries"):
        objective(np.full((2, plan.raw_length), 7), np.random.default_rng(0), text[2])
    with pytest.raises(ValueError, match="records no vocabulary to split sentences with"):
        PretrainStream(store, objective, 16, 4, 0, prefetch=0)


def test_a_mixture_of_sentence_objectives_is_refused_when_built():
    with pytest.raises(ValueError, match=r"mixture\.objectives: \['bart_sentence_permutation'\] act on sentences"):
        named.mixture([named.span_corruption(), named.bart_sentence_permutation()])
    named.mixture([named.span_corruption(), named.bart_text_infilling()])  # no sentences needed: fine
