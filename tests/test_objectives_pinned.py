"""Every named objective's batches are pinned by a hash: a refactor of masks, encodings or planning that
changes a single token of any batch fails here.

Each digest is pinned at a numerics version (t5explore/numerics.py; issue 21): a batch that changes must bump
it. The expected digests were computed with the code at a34a319 (before masks and encodings became registered
classes). UL2's default changed on purpose afterwards (S-denoiser target share 0.5 -> 0.25, UL2's own), so
"ul2@N" is pinned to the new code and "ul2+s0.5@N" (the old share) to a34a319's "ul2@N". Chunks are random
ids drawn independently of the objective, so only the objective's own code is pinned.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from t5explore.numerics import NUMERICS_VERSION
from t5explore.objectives import named
from t5explore.objectives.bart import Boundaries
from t5explore.objectives.base import TokenSpace
from t5explore.seeds import STREAM_OBJECTIVE, numpy_rng

MODES = (("[NLU]", 3), ("[S2S]", 4), ("[NLG]", 5))
# 200 sentinels: span corruption at r 0.5 and UL2's X-denoisers need up to 128 at inputs_length 512.
TOKENS = TokenSpace(vocab_size=1200, num_sentinels=200, mode_token_ids=MODES, first_regular_id=6)
BATCH, BATCHES = 16, 3

# case id -> (named objective, factory, inputs_length); the id is "NAME[+variant]@inputs_length".
CASES = {
    "span_corruption@128": ("span_corruption", lambda: named.span_corruption(), 128),
    "span_corruption@512": ("span_corruption", lambda: named.span_corruption(), 512),
    "span_corruption+roll@128": ("span_corruption", lambda: named.span_corruption(random_roll=True), 128),
    "span_corruption+r0.5_mu10@128": ("span_corruption", lambda: named.span_corruption(0.5, 10.0), 128),
    "iid_replace_spans@128": ("iid_replace_spans", lambda: named.iid_replace_spans(), 128),
    "iid_replace_spans@512": ("iid_replace_spans", lambda: named.iid_replace_spans(), 512),
    "iid_replace_spans+r0.5@64": ("iid_replace_spans", lambda: named.iid_replace_spans(noise_density=0.5), 64),
    "drop_tokens@128": ("drop_tokens", lambda: named.drop_tokens(), 128),
    "mass_style@128": ("mass_style", lambda: named.mass_style(), 128),
    "bert_style@128": ("bert_style", lambda: named.bert_style(), 128),
    "bert_style+0.8_0.1@128": ("bert_style", lambda: named.bert_style(mask_prob=0.8, random_prob=0.1), 128),
    "deshuffling@128": ("deshuffling", lambda: named.deshuffling(), 128),
    "prefix_lm@128": ("prefix_lm", lambda: named.prefix_lm(), 128),
    "lm@128": ("lm", lambda: named.lm(), 128),
    "mixture@128": (
        "mixture",
        lambda: named.mixture([named.span_corruption(), named.prefix_lm()], rates=[0.75, 0.25]),
        128,
    ),
    "ul2@128": ("ul2", lambda: named.ul2(), 128),
    "ul2@512": ("ul2", lambda: named.ul2(), 512),
    "ul2+s0.5@128": ("ul2", lambda: named.ul2(prefix_lm_noise_density=0.5), 128),
    "ul2+s0.5@512": ("ul2", lambda: named.ul2(prefix_lm_noise_density=0.5), 512),
    **{f"{name}@128": (name, getattr(named, name), 128) for name in named.NAMED_OBJECTIVES if name.startswith("bart_")},
}

# NUMERICS_VERSION (t5explore/numerics.py) -> case -> digest: changed batches need a bump and a pin under it.
PINNED: dict[int, dict[str, str]] = {
    2: {
        "bert_style+0.8_0.1@128": "1aa40a06ab1d3871178c44977b2df5accba12e2924e9810d5e3d50d09b0f3acc",
        "bert_style@128": "29332b95742da5feba973348c39cbbae4930bb42d8763e8447c7c37f9cb48297",
        "deshuffling@128": "4ad0a44ef0dea405293b45e3493391deaa696654ebb119b78d7b5cbbd3d9a391",
        "drop_tokens@128": "f11fb6eac0e5db8075f4f571759f3c16f00290aacf4584999c71f47baadd4a77",
        "iid_replace_spans+r0.5@64": "7fa44de980f0b2d4e34681a99fd957654bd2bb7cabc085b741179dbd5af4ebe8",
        "iid_replace_spans@128": "a15d9d7d6a11f09abd9c4c243a0d61b2f277b6fd30a7ec1feb6e94a3a4446da6",
        "iid_replace_spans@512": "faf85923e6efba339e81e32339a52dc5e960eb4aa43d0e2b219885a215ac8f4d",
        "lm@128": "92deeee86915069f5af453f27b9f70a382452f9364c0ce2287f7b5b83d6d17e9",  # 1-token inputs (issue 10)
        "mass_style@128": "209d43f793289491e6f4b451b2f412df03c6388d439d671f2e04bf7c71580c34",
        "mixture@128": "d20e82ed823fa95434c3609070b5e6222a3f740940d6d20904c66e2242884bbf",
        "prefix_lm@128": "8a8f46f6f2fa0fc2dcdb1b710152d15c6c20846dc607513b3f2e9671d65b9e32",
        "span_corruption+r0.5_mu10@128": "94f321880840ad74f23cc008d24f4d2392b9ba820022a8f7de10c13d0291938f",
        "span_corruption+roll@128": "c184def98ff63c69b989ab7446ac67696868400cd54732467b55ffee825510e8",
        "span_corruption@128": "4decd95f2559aaff7e7aa37078deb8f26c6cf36efff1e60a974092d5cefe0c08",
        "span_corruption@512": "d5b064bfbca95f0cf36c60dd5e03324de927097015d3a88eea989dd75a07b47f",
        "ul2+s0.5@128": "cea2e87957fe9eadc39724d415792cb3151c5d869d0aadecf15db62ed400fa4b",
        "ul2+s0.5@512": "0c07c7586ee1eedd8f661dd97c5ad6339e82ba8d747d3d605b583f70909dcea0",
        "ul2@128": "4394557b06bff56f797dce45d89abf7d0c35fe18545287b399bc515399470b26",
        "ul2@512": "5094bd5a704fe7f069cc729be17cf6e7e4d2bff890c74a20b193eaf73602e740",
        # BART's noising functions (issue 23), pinned when they were added.
        "bart_token_masking@128": "ba5d0a98181b2ccc7a2d6c7b91712ecae3523b425a465fb5afcf70d560eb75c8",
        "bart_token_deletion@128": "75b6a484beab4ce70e9674666a51554edd63b35f55522e179a68f5a185c553a2",
        "bart_text_infilling@128": "ccb330af51103c94bb22d52acb63edebb83172e38011bab1960b90038c31cbda",
        "bart_sentence_permutation@128": "eb497b12c3b9cb091caabd5a83f1363d7dda788c17dd2339ce48705362c644df",
        "bart_document_rotation@128": "5438c42ff5c23a5e87495c356c4364177b2fbd58ab2261fe14c2e7ea33bdad55",
        "bart_text_infilling_permutation@128": "903796f436624e75e43953913ae3aa21cb4d8a0de73337be8b1b6abf2d18f5b7",
    },
}


def batches_digest(objective, inputs_length: int) -> str:
    """sha256 of BATCHES batches (shapes and int32 bytes of inputs and targets), batch k drawn with the
    stream's Generator numpy_rng(0, STREAM_OBJECTIVE, k) from random chunks of the planned raw length."""
    plan = objective.plan(inputs_length)
    digest = hashlib.sha256(repr((plan.raw_length, plan.inputs_length, plan.targets_length)).encode())
    for k in range(BATCHES):
        chunks = np.random.default_rng(1000 + k).integers(6, 1000, (BATCH, plan.raw_length)).astype(np.int32)
        extra = {}
        if getattr(objective, "needs_boundaries", False):  # synthetic units: ids divisible by 11 / 37 start them
            extra["boundaries"] = Boundaries(chunks % 11 == 0, chunks % 37 == 0)
        out = objective(chunks, numpy_rng(0, STREAM_OBJECTIVE, k), TOKENS, **extra)
        for key in ("inputs", "targets"):
            array = np.ascontiguousarray(out[key], dtype="<i4")
            digest.update(repr(array.shape).encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def test_every_named_objective_is_pinned():
    """A new named objective needs a pinned case here."""
    assert {name for name, _, _ in CASES.values()} == set(named.NAMED_OBJECTIVES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_batches_are_bit_identical_to_the_pinned_digest(case):
    """Pinned at a numerics version: a digest that changes while NUMERICS_VERSION does not fails, and so does a
    bump without a pin under the new version."""
    _, make, inputs_length = CASES[case]
    got = batches_digest(make(), inputs_length)
    assert NUMERICS_VERSION in PINNED, (
        f"NUMERICS_VERSION is {NUMERICS_VERSION} but the batches are pinned only at {sorted(PINNED)}: "
        f"pin every case under PINNED[{NUMERICS_VERSION}] ({case}: {got!r})"
    )
    assert got == PINNED[NUMERICS_VERSION][case], (
        f"{case}'s batches changed while NUMERICS_VERSION stayed {NUMERICS_VERSION}; if that is intended, bump "
        "t5explore/numerics.py and pin the new digests under the new version"
    )
