"""The named objectives of T5 §3.3 (Tables 4-7), T5's final span corruption, UL2, BART's Table 1 noising
functions and user mixtures.

Each is a gin configurable with a gin file gin/objectives/NAME.gin binding `Pretrain.objective = @NAME()`.
Tables 6 and 7 are plain parameters: `iid_replace_spans.noise_density`, and
`span_corruption.mean_noise_span_length` with `span_corruption.noise_density`.
"""

from __future__ import annotations

from collections.abc import Sequence

import gin

from t5explore.objectives.bart import BartDenoiser
from t5explore.objectives.denoise import Denoiser
from t5explore.objectives.encodings import Encoding, encoding
from t5explore.objectives.masks import NoiseMask, noise_mask
from t5explore.objectives.mixture import Mixture


def _denoiser(
    name: str,
    mask: NoiseMask,
    inputs: str | Encoding,
    targets: str | Encoding,
    *,
    mode_token: str | None = None,
    targets_length: int | None = None,
) -> Denoiser:
    """A Denoiser from a mask and registered encodings (a name, or an Encoding built with parameters)."""
    if targets_length is not None and int(targets_length) < 2:
        raise ValueError(f"{name}.targets_length={targets_length!r} must be an integer >= 2")
    inputs, targets = (encoding(e) if isinstance(e, str) else e for e in (inputs, targets))
    return Denoiser(name, mask, inputs, targets, mode_token=mode_token, targets_length=targets_length)


@gin.configurable
def span_corruption(
    noise_density: float = 0.15,
    mean_noise_span_length: float = 3.0,
    random_roll: bool = False,
    targets_length: int | None = None,
) -> Denoiser:
    """T5's final objective (and Table 7): random spans, each noise span -> a unique sentinel in the
    inputs, targets = sentinel, span, sentinel, span ..."""
    name = "span_corruption"
    mask = noise_mask(
        "random_spans",
        noise_density=noise_density,
        mean_noise_span_length=mean_noise_span_length,
        random_roll=random_roll,
        owner=name,
    )
    return _denoiser(name, mask, "sentinel_per_noise_span", "sentinel_per_nonnoise_span", targets_length=targets_length)


@gin.configurable
def iid_replace_spans(noise_density: float = 0.15, targets_length: int | None = None) -> Denoiser:
    """Table 5 "replace corrupted spans" (the Table 4-6 baseline): i.i.d. noise, each run of noise tokens
    -> a unique sentinel in the inputs, targets = the noise runs each after its sentinel."""
    name = "iid_replace_spans"
    return _denoiser(
        name,
        noise_mask("iid", noise_density=noise_density, owner=name),
        "sentinel_per_noise_span",
        "sentinel_per_nonnoise_span",
        targets_length=targets_length,
    )


@gin.configurable
def drop_tokens(noise_density: float = 0.15, targets_length: int | None = None) -> Denoiser:
    """Table 5 "drop corrupted tokens": noise tokens removed from the inputs; targets = only them."""
    name = "drop_tokens"
    return _denoiser(
        name,
        noise_mask("iid", noise_density=noise_density, owner=name),
        "drop_noise",
        "noise_only",
        targets_length=targets_length,
    )


@gin.configurable
def mass_style(noise_density: float = 0.15) -> Denoiser:
    """Table 5 "MASS-style": every noise token -> the mask token (<extra_id_0>); targets = original text."""
    name = "mass_style"
    return _denoiser(name, noise_mask("iid", noise_density=noise_density, owner=name), "mask_token", "original")


@gin.configurable
def bert_style(noise_density: float = 0.15, mask_prob: float = 0.9, random_prob: float = 0.1) -> Denoiser:
    """Table 4 "BERT-style": a noise token becomes the mask token with `mask_prob`, a random regular token
    with `random_prob`, and stays itself otherwise (T5: 0.9/0.1/0; BERT: 0.8/0.1/0.1). Targets = original."""
    name = "bert_style"
    for param, value in (("mask_prob", mask_prob), ("random_prob", random_prob)):
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name}.{param}={value!r} must be in [0, 1]")
    if float(mask_prob) + float(random_prob) > 1.0 + 1e-9:
        raise ValueError(f"{name}.mask_prob + {name}.random_prob = {mask_prob} + {random_prob} must not exceed 1")
    enc = encoding("bert_replace", mask_prob=float(mask_prob), random_prob=float(random_prob))
    return _denoiser(name, noise_mask("iid", noise_density=noise_density, owner=name), enc, "original")


@gin.configurable
def deshuffling() -> Denoiser:
    """Table 4 "deshuffling": the inputs are the chunk's tokens in random order; targets = original."""
    name = "deshuffling"
    return _denoiser(name, noise_mask("all_tokens", owner=name), "permute_noise", "original")


@gin.configurable
def prefix_lm(noise_density: float = 0.5) -> Denoiser:
    """Table 4 "prefix language modelling": a random split point; inputs = prefix, targets = suffix."""
    name = "prefix_lm"
    return _denoiser(name, noise_mask("prefix", noise_density=noise_density, owner=name), "drop_noise", "noise_only")


@gin.configurable
def lm() -> Denoiser:
    """Full language modelling: empty inputs (EOS only), targets = the whole chunk. `inputs_length` is
    the targets budget: raw length = inputs_length - 1, targets length = inputs_length; the planned inputs
    are 1 token wide (the EOS), so the encoder is not padded to `inputs_length`."""
    name = "lm"
    return _denoiser(name, noise_mask("all_tokens", owner=name), "empty", "original")


# UL2 (Tay et al. 2022): R = regular span corruption, X = extreme, S = sequential (prefix LM).
UL2_DENOISERS = (
    ("R", "[NLU]", 3.0, 0.15),
    ("R", "[NLU]", 8.0, 0.15),
    ("S", "[S2S]", None, None),
    ("X", "[NLG]", 3.0, 0.5),
    ("X", "[NLG]", 8.0, 0.5),
    ("X", "[NLG]", 64.0, 0.15),
    ("X", "[NLG]", 64.0, 0.5),
)
UL2_S_TARGET_SHARE = 0.25  # UL2 Table 1: "S-Denoiser (μ = L/4, r = 0.25, 1)" (see `ul2`)


@gin.configurable
def ul2(
    rates: Sequence[float] | None = None,
    prefix_lm_noise_density: float = UL2_S_TARGET_SHARE,
    use_mode_tokens: bool = True,
) -> Mixture:
    """UL2's mixture of denoisers, one per row. `rates` (default uniform) follow UL2_DENOISERS' order:
    R μ3, R μ8, S, X μ3 r.5, X μ8 r.5, X μ64 r.15, X μ64 r.5. Mode tokens [NLU]/[S2S]/[NLG] lead the inputs.

    `prefix_lm_noise_density` is the S-denoiser's mean target share: the prefix is context, the suffix
    (the noise) is the target, its length uniform in [1, ~2 r L] (T5's random_prefix_noise_mask), so on
    average the last r of the chunk is predicted. The default 0.25 follows UL2 (Tay et al. 2022,
    arXiv:2205.05131, §3.1.2): its Table 1 of the seven denoisers lists, quoted, "S-Denoiser
    (μ = L/4, r = 0.25, 1)", and the text says, quoted, "For S-Denoisers, we use a uniform distribution, fix
    the number of corrupted spans to 1 and have an additional constraint that the corrupted span should end at
    the end of the original input text". (NVIDIA NeMo's UL2 dataset also defaults to 0.25, as
    `prefix_lm_pivot_mean`, but there it is the mean split point, i.e. the context share.) 0.5 gives T5's
    prefix LM, split point uniform in [1, L-1].

    Rows are contiguous text, each read at its own denoiser's raw length (511 to 1,004 tokens at 512
    inputs) from that denoiser's pool of chunks (data/chunk_pools.py), so no raw token read goes unused."""
    name = "ul2"
    parts = []
    for kind, mode, mu, rate in UL2_DENOISERS:
        if kind == "S":
            part_name = f"{name}/S"
            mask = noise_mask("prefix", noise_density=prefix_lm_noise_density, owner=f"{name}.prefix_lm")
            inputs, targets = "drop_noise", "noise_only"
        else:
            part_name = f"{name}/{kind}_mu{mu:g}_r{rate:g}"
            mask = noise_mask("random_spans", noise_density=rate, mean_noise_span_length=mu, owner=part_name)
            inputs, targets = "sentinel_per_noise_span", "sentinel_per_nonnoise_span"
        parts.append(_denoiser(part_name, mask, inputs, targets, mode_token=mode if use_mode_tokens else None))
    if rates is not None and len(rates) != len(parts):
        raise ValueError(
            f"{name}.rates needs {len(parts)} entries (R μ3, R μ8, S, X μ3, X μ8, X μ64 r.15, "
            f"X μ64 r.5), got {len(rates)}"
        )
    return Mixture(name, tuple(parts), None if rates is None else tuple(rates))


@gin.configurable
def mixture(objectives: Sequence = (), rates: Sequence[float] | None = None) -> Mixture:
    """Any list of objectives (e.g. `[@span_corruption(), @prefix_lm()]`, scoped for repeats) with rates
    (default equal); each row gets one objective."""
    return Mixture("mixture", tuple(objectives), None if rates is None else tuple(rates))


# BART's noising functions (Lewis et al. 2020, Table 1; objectives/bart.py): the document is the target.
BART_NOISE_DENSITY = 0.3  # BART's large-model setting (30 % of tokens masked), used by every masking row here
BART_POISSON_LAMBDA = 3.0


def _bart_masking(name: str, noise_density: float, inputs: str) -> BartDenoiser:
    mask = noise_mask("iid", noise_density=noise_density, owner=name)
    return BartDenoiser(name, mask, encoding(inputs))


def _bart_infilling(name: str, noise_density: float, poisson_lambda: float, permute: bool) -> BartDenoiser:
    mask = noise_mask("poisson_spans", noise_density=noise_density, poisson_lambda=poisson_lambda, owner=name)
    return BartDenoiser(name, mask, encoding("single_mask_per_span"), permute=permute)


@gin.configurable
def bart_token_masking(noise_density: float = BART_NOISE_DENSITY) -> BartDenoiser:
    """BART "Token Masking": i.i.d. tokens -> the mask token; targets = the document."""
    return _bart_masking("bart_token_masking", noise_density, "mask_token")


@gin.configurable
def bart_token_deletion(noise_density: float = BART_NOISE_DENSITY) -> BartDenoiser:
    """BART "Token Deletion": i.i.d. tokens deleted from the inputs; targets = the document."""
    return _bart_masking("bart_token_deletion", noise_density, "drop_noise")


@gin.configurable
def bart_text_infilling(
    noise_density: float = BART_NOISE_DENSITY, poisson_lambda: float = BART_POISSON_LAMBDA
) -> BartDenoiser:
    """BART "Text Infilling": Poisson(λ) spans of 30 % of the tokens, each -> one mask token, zero-length
    spans inserting one; targets = the document."""
    return _bart_infilling("bart_text_infilling", noise_density, poisson_lambda, permute=False)


@gin.configurable
def bart_sentence_permutation() -> BartDenoiser:
    """BART "Sentence Shuffling": each document's sentences in random order; targets = the document."""
    return BartDenoiser("bart_sentence_permutation", permute=True)


@gin.configurable
def bart_document_rotation() -> BartDenoiser:
    """BART "Document Rotation": each document starts at a uniformly chosen token; targets = the document."""
    return BartDenoiser("bart_document_rotation", rotate=True)


@gin.configurable
def bart_text_infilling_permutation(
    noise_density: float = BART_NOISE_DENSITY, poisson_lambda: float = BART_POISSON_LAMBDA
) -> BartDenoiser:
    """BART "Text Infilling + Sentence Shuffling" (its final objective): permute, then infill."""
    return _bart_infilling("bart_text_infilling_permutation", noise_density, poisson_lambda, permute=True)


NAMED_OBJECTIVES = {
    "prefix_lm": prefix_lm,
    "bert_style": bert_style,
    "deshuffling": deshuffling,
    "mass_style": mass_style,
    "iid_replace_spans": iid_replace_spans,
    "drop_tokens": drop_tokens,
    "lm": lm,
    "span_corruption": span_corruption,
    "ul2": ul2,
    "mixture": mixture,
    "bart_token_masking": bart_token_masking,
    "bart_token_deletion": bart_token_deletion,
    "bart_text_infilling": bart_text_infilling,
    "bart_sentence_permutation": bart_sentence_permutation,
    "bart_document_rotation": bart_document_rotation,
    "bart_text_infilling_permutation": bart_text_infilling_permutation,
}
