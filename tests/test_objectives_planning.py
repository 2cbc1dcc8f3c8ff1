"""Length planning, exactness under i.i.d. overflow, and validation errors of the objectives."""

from __future__ import annotations

import numpy as np
import pytest

from t5explore.objectives import named
from t5explore.objectives.base import LengthPlan, TokenSpace
from t5explore.objectives.masks import IidMask, LengthCoeffs, span_starts

TOKENS = TokenSpace(vocab_size=1000, mode_token_ids=(("[NLU]", 3), ("[S2S]", 4), ("[NLG]", 5)), first_regular_id=6)


def t5_random_spans_helper(
    inputs_length,
    noise_density,
    mean_noise_span_length,
    extra_tokens_per_span_inputs=1,
    extra_tokens_per_span_targets=1,
):
    """T5's published algorithm (t5.data.preprocessors.random_spans_helper), re-implemented verbatim."""

    def lengths(tokens_length):
        num_noise_tokens = round(tokens_length * noise_density)
        num_nonnoise_tokens = tokens_length - num_noise_tokens
        num_noise_spans = round(num_noise_tokens / mean_noise_span_length)
        return (
            num_nonnoise_tokens + num_noise_spans * extra_tokens_per_span_inputs + 1,
            num_noise_tokens + num_noise_spans * extra_tokens_per_span_targets + 1,
        )

    tokens_length = inputs_length - 1
    while lengths(tokens_length + 1)[0] <= inputs_length:
        tokens_length += 1
    inputs_length, targets_length = lengths(tokens_length)
    if noise_density == 0.5 and targets_length > inputs_length:
        tokens_length -= 1
        targets_length -= 1
    return tokens_length, targets_length


SETTINGS = [(0.15, 2), (0.15, 3), (0.15, 5), (0.15, 10), (0.10, 3), (0.25, 3), (0.50, 3)]


@pytest.mark.parametrize("inputs_length", [512, 64])
@pytest.mark.parametrize("rate,mu", SETTINGS)
def test_span_corruption_plan_equals_t5_helper_and_fills_exactly(inputs_length, rate, mu):
    obj = named.span_corruption(noise_density=rate, mean_noise_span_length=mu)
    plan = obj.plan(inputs_length)
    assert (plan.raw_length, plan.targets_length) == t5_random_spans_helper(inputs_length, rate, mu)
    rng = np.random.default_rng(0)
    chunks = rng.integers(6, 800, (16, plan.raw_length))
    out = obj(chunks, rng, TokenSpace(vocab_size=1000, num_sentinels=200))  # r=0.5 at 512 needs 128
    assert out["inputs"].shape == (16, inputs_length) and out["targets"].shape == (16, plan.targets_length)
    in_len, tg_len = (out["inputs"] != 0).sum(1), (out["targets"] != 0).sum(1)
    assert in_len.max() <= inputs_length and tg_len.max() == plan.targets_length  # targets never cut
    assert np.all(out["inputs"][np.arange(16), in_len - 1] == TOKENS.eos_id)


def test_configured_targets_length_too_small_is_an_error_and_larger_pads():
    need = named.span_corruption().plan(512).targets_length
    with pytest.raises(ValueError, match=r"span_corruption\.targets_length=113 is too small.*needs 114"):
        named.span_corruption(targets_length=need - 1).plan(512)
    obj = named.span_corruption(targets_length=128)
    plan = obj.plan(512)
    out = obj(np.full((2, plan.raw_length), 7), np.random.default_rng(1), TOKENS)
    assert out["targets"].shape == (2, 128) and np.all(out["targets"][:, need:] == 0)
    planned = named.span_corruption().plan(512)
    with pytest.raises(ValueError, match="at least as large as the 114"):
        planned.with_targets_length(need - 1)
    assert planned.with_targets_length(200).targets_length == 200


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: named.span_corruption(noise_density=0.0), r"span_corruption\.noise_density=0\.0 must be in \(0, 1\)"),
        (lambda: named.span_corruption(noise_density=1.0), r"span_corruption\.noise_density"),
        (lambda: named.iid_replace_spans(noise_density=1.5), r"iid_replace_spans\.noise_density"),
        (lambda: named.drop_tokens(noise_density=-0.1), r"drop_tokens\.noise_density"),
        (lambda: named.span_corruption(mean_noise_span_length=0.5), r"span_corruption\.mean_noise_span_length=0\.5"),
        (lambda: named.span_corruption().plan(2), r"inputs_length=2 .*too short for one noise span"),
        (lambda: named.span_corruption(noise_density=0.5, mean_noise_span_length=1).plan(2), r"too short"),
        (lambda: named.span_corruption(noise_density=0.9, mean_noise_span_length=1).plan(100), r"too short"),
        (lambda: named.bert_style(mask_prob=0.8, random_prob=0.3), r"bert_style\.mask_prob \+ bert_style\.random_prob"),
        (lambda: named.prefix_lm(noise_density=0.7), r"prefix_lm\.noise_density"),
        (lambda: named.ul2(rates=(1, 2)), r"ul2\.rates needs 7 entries"),
        (lambda: named.mixture([named.lm()], rates=[-1]), r"mixture\.rates"),
        (lambda: named.mixture([]), r"mixture\.objectives"),
    ],
)
def test_bad_settings_raise_one_clear_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_too_few_sentinels_is_an_error_naming_num_sentinels():
    obj = named.span_corruption()
    plan = obj.plan(512)  # round(round(568 * 0.15) / 3) = 28 noise spans
    few = TokenSpace(vocab_size=1000, num_sentinels=27, first_regular_id=6)
    with pytest.raises(ValueError, match=r"28 noise spans.*tokens\.num_sentinels=27"):
        obj(np.full((2, plan.raw_length), 7), np.random.default_rng(0), few)
    obj(np.full((2, plan.raw_length), 7), np.random.default_rng(0), TokenSpace(1000, num_sentinels=28))


def test_calling_without_a_plan_for_that_width_is_an_error():
    with pytest.raises(ValueError, match=r"call objective\.plan"):
        named.span_corruption()(np.zeros((2, 17), np.int32), np.random.default_rng(0), TOKENS)


@pytest.mark.parametrize("coeffs", [LengthCoeffs(1, -1, 1, 0), LengthCoeffs(0, 1, 0, 1), LengthCoeffs(0, 0, 1, 0)])
@pytest.mark.parametrize("rate", [0.15, 0.5])
def test_iid_length_moments_match_simulation(coeffs, rate):
    mask, length = IidMask(rate), 200
    noise = mask.sample(np.random.default_rng(3), 20000, length)
    noise_start, nonnoise_start = span_starts(noise)
    lengths = (
        coeffs.length * length
        + coeffs.noise * noise.sum(1)
        + coeffs.noise_spans * noise_start.sum(1)
        + coeffs.nonnoise_spans * nonnoise_start.sum(1)
    )
    mean, var = mask.moments(length, coeffs)
    assert abs(lengths.mean() - mean) < 4 * np.sqrt(var / lengths.size)
    assert lengths.var() == pytest.approx(var, rel=0.05)


def _reconstruct(inputs, targets, tokens):
    """Undo replace-spans: each input sentinel is replaced by the next noise run of the targets."""
    sentinel = lambda t: t >= tokens.vocab_size - tokens.num_sentinels  # noqa: E731
    inp = inputs[: np.flatnonzero(inputs == tokens.eos_id)[0]]
    tgt = targets[: np.flatnonzero(targets == tokens.eos_id)[0]]
    runs, cur = [], []
    for t in tgt:
        if sentinel(t):
            runs.append(cur)
            cur = []
        else:
            cur.append(int(t))
    runs = [r for r in [*runs, cur] if r]
    out, k = [], 0
    for t in inp:
        if sentinel(t):
            out += runs[k]
            k += 1
        else:
            out.append(int(t))
    assert k == len(runs)
    return out


def test_iid_overflow_is_trimmed_to_an_exact_prefix_never_cut_after_encoding():
    obj = named.iid_replace_spans(noise_density=0.5)
    plan = obj.plan(64)
    tight = LengthPlan(plan.raw_length + 30, plan.inputs_length, plan.targets_length - 8)  # forces overflow
    rng = np.random.default_rng(5)
    chunks = rng.integers(6, 800, (200, tight.raw_length))
    out = obj(chunks, rng, TOKENS, plan=tight)
    kept = []
    for row in range(200):
        rebuilt = _reconstruct(out["inputs"][row], out["targets"][row], TOKENS)
        assert rebuilt == chunks[row, : len(rebuilt)].tolist()  # an exact encoding of a prefix
        kept.append(len(rebuilt))
    assert min(kept) < tight.raw_length  # overflow happened and was trimmed, with EOS intact


def test_iid_plan_rarely_needs_trimming():
    obj = named.iid_replace_spans(noise_density=0.15)
    plan = obj.plan(128)
    rng = np.random.default_rng(9)
    chunks = rng.integers(6, 800, (4000, plan.raw_length))
    out = obj(chunks, rng, TOKENS)
    noise_tokens = (out["targets"] != 0).sum(1) - 1 - (out["targets"] >= 900).sum(1)
    nonnoise_in_inputs = ((out["inputs"] != 0) & (out["inputs"] < 900)).sum(1) - 1
    trimmed = (noise_tokens + nonnoise_in_inputs) < plan.raw_length
    assert trimmed.mean() < 0.01


def test_mixture_plan_is_the_max_of_its_parts():
    parts = [named.span_corruption(), named.prefix_lm(), named.drop_tokens()]
    plans = [p.plan(128) for p in parts]
    plan = named.mixture(parts).plan(128)
    assert plan == LengthPlan(max(p.raw_length for p in plans), 128, max(p.targets_length for p in plans))


def test_lm_plan_uses_inputs_length_as_the_targets_budget():
    assert named.lm().plan(64) == LengthPlan(63, 1, 64)  # inputs: EOS alone, not padded to 64
    assert named.deshuffling().plan(64) == LengthPlan(63, 64, 64)
    assert named.prefix_lm().plan(64) == LengthPlan(64, 64, 64)


def test_ul2_parts_plans_and_their_mean_raw_length():
    """UL2's parts need 511 to 1,004 raw tokens at 512 inputs; the stream reads each row its own part's
    length (test_pretrain_stream), 70.3% of the widest on average, which is what a direct call on chunks of
    the widest length encodes of them."""
    obj = named.ul2()
    plan = obj.plan(512)
    assert plan == LengthPlan(1004, 512, 512)
    parts = obj.part_plans(plan)
    assert [p.raw_length for p in parts] == [567, 587, 511, 765, 907, 599, 1004]
    assert parts[2].targets_length == 257  # S: at most the last ~half, 25% on average (was 511 at share 0.5)
    assert obj.mean_raw_length(plan) == pytest.approx(sum(p.raw_length for p in parts) / 7)
    assert obj.mean_raw_length(plan) / plan.raw_length == pytest.approx(0.7029, abs=1e-4)
    only_widest = named.ul2(rates=(0, 0, 0, 0, 0, 0, 1))
    assert only_widest.mean_raw_length(only_widest.plan(512)) == 1004


# Section 3 of issue 23: the mask counts in T5's TF float32 arithmetic, the planner in random_spans_helper's.
ROUNDING_DENSITIES = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.5, 0.75)
ROUNDING_MUS = (1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 64.0)


def float32_oracle(length, density, mu):
    """t5's random_spans_noise_mask counts with numpy float32 (np.rint rounds half to even, like tf.round)."""
    noise = int(np.rint(np.float32(length) * np.float32(density)))
    noise = min(max(noise, 1), length - 1)
    return noise, max(1, int(np.rint(np.float32(noise) / np.float32(mu))))


def test_mask_counts_match_t5s_float32_arithmetic_at_every_length():
    from t5explore.objectives.masks import t5_noise_counts, t5_planner_counts

    differ = 0
    for density in ROUNDING_DENSITIES:
        for mu in ROUNDING_MUS:
            for length in range(2, 2049):
                want = float32_oracle(length, density, mu)
                assert t5_noise_counts(length, density, mu) == want, (length, density, mu)
                differ += t5_planner_counts(length, density, mu) != want
    assert differ > 0  # the float64 planner really differs somewhere (e.g. L = 190, r = 0.15)
    assert t5_noise_counts(190, 0.15, 3.0)[0] == 29 and t5_planner_counts(190, 0.15, 3.0)[0] == 28


@pytest.mark.parametrize("length,density", [(190, 0.15), (2045, 0.1), (512, 0.15), (568, 0.15)])
def test_sampled_masks_hold_exactly_the_float32_count(length, density):
    from t5explore.objectives.masks import RandomSpansMask

    noise = RandomSpansMask(density, 3.0).sample(np.random.default_rng(0), 8, length)
    want_noise, want_spans = float32_oracle(length, density, 3.0)
    assert np.all(noise.sum(1) == want_noise)
    assert np.all(span_starts(noise)[0].sum(1) == want_spans)


def test_plans_still_fit_every_row_where_the_two_roundings_differ():
    """At raw lengths where the float32 and float64 counts differ the plan bounds both, so no row overflows;
    the standard lengths keep random_spans_helper's plan (test above)."""
    for inputs_length in range(60, 260):
        obj = named.span_corruption(noise_density=0.15, mean_noise_span_length=3.0)
        plan = obj.plan(inputs_length)
        rng = np.random.default_rng(inputs_length)
        out = obj(rng.integers(6, 800, (4, plan.raw_length)), rng, TOKENS)  # pack asserts a row fits
        assert out["inputs"].shape == (4, inputs_length)
