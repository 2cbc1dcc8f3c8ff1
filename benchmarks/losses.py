"""The two cross-entropy implementations of `t5explore.train.steps.token_losses` side by side: how far apart
their values and gradients are, and how fast each is (forward + backward, timed interleaved A, B, A, B...).

    python benchmarks/losses.py                      # [8, 114, 32128] logits: T5 batch rows at 512 inputs
    python benchmarks/losses.py --shape 8,8,1152 --label_smoothing 0.1 --z_loss 1e-4 --repeats 5

'one_hot' (the default) builds [B, T, V] one-hot targets and sums targets x log-probabilities;
'integer_labels' is optax.softmax_cross_entropy_with_integer_labels (a gather), with t5x's label smoothing in
closed form. Logits are random normal x --scale, targets uniform, a quarter of the tokens weighted 0 (padding).
Rounds rotate the order (benchmarks/record.py); output: benchmarks/results/losses.txt.
"""

from __future__ import annotations

import argparse
import sys
import time

import record  # benchmarks/ is the script's directory

IMPLS = ("one_hot", "integer_labels")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="8,114,32128", help="B,T,V")
    ap.add_argument("--scale", type=float, default=3.0, help="logit standard deviation")
    ap.add_argument("--z_loss", type=float, default=1e-4)
    ap.add_argument("--label_smoothing", type=float, default=0.0)
    ap.add_argument("--repeats", type=int, default=7, help="timed rounds (each runs both implementations)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="output file (default benchmarks/results/losses.txt; --smoke: none)")
    ap.add_argument("--smoke", action="store_true", help="a [2, 4, 64] shape, 2 rounds (numbers mean nothing)")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    if args.smoke:
        args = ap.parse_args([*argv, "--shape", "2,4,64", "--repeats", "2"])
    args.argv = argv
    return args


def make_inputs(shape, scale: float, seed: int):
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(seed)
    b, t, v = shape
    logits = jnp.asarray(rng.normal(size=(b, t, v)).astype(np.float32) * scale)
    targets = rng.integers(0, v, (b, t)).astype(np.int32)
    weights = (rng.random((b, t)) > 0.25).astype(np.float32)
    return logits, {"decoder_target_tokens": jnp.asarray(targets), "decoder_loss_weights": jnp.asarray(weights)}


def compiled(impl: str, z_loss: float, label_smoothing: float):
    """jit(value_and_grad) of the mean loss, and jit of the per-token cross entropy."""
    import jax

    from t5explore.train.steps import loss_and_metrics, token_losses

    def loss(logits, batch):
        return loss_and_metrics(logits, batch, z_loss, label_smoothing, impl)[0]

    def per_token(logits, batch):
        return token_losses(logits, batch["decoder_target_tokens"], z_loss, label_smoothing, impl)[0]

    return jax.jit(jax.value_and_grad(loss)), jax.jit(per_token)


def main(argv=None) -> int:
    args = parse_args(argv)
    with record.Recorder("losses", args.argv, record.default_out("losses", args.smoke, args.out)):
        measure(args)
    return 0


def measure(args) -> None:
    import jax
    import jax.numpy as jnp

    shape = tuple(int(x) for x in args.shape.split(","))
    logits, batch = make_inputs(shape, args.scale, args.seed)
    fns = {impl: compiled(impl, args.z_loss, args.label_smoothing) for impl in IMPLS}
    results = {impl: jax.block_until_ready(fns[impl][0](logits, batch)) for impl in IMPLS}  # compile + warm up
    per_token = {impl: fns[impl][1](logits, batch) for impl in IMPLS}
    (la, ga), (lb, gb) = results["one_hot"], results["integer_labels"]
    diff = jnp.abs(per_token["one_hot"] - per_token["integer_labels"])
    print(
        f"logits {shape}, z_loss {args.z_loss}, label_smoothing {args.label_smoothing}, "
        f"{jax.devices()[0].platform}, jax {jax.__version__}"
    )
    print(f"mean loss: one_hot {float(la):.9f}  integer_labels {float(lb):.9f}  bit-identical {bool(la == lb)}")
    print(
        f"per-token cross entropy: max |diff| {float(diff.max()):.3g}, tokens that differ "
        f"{int((diff > 0).sum())}/{diff.size}"
    )
    print(
        f"gradient: max |diff| {float(jnp.abs(ga - gb).max()):.3g} (max |grad| {float(jnp.abs(ga).max()):.3g}), "
        f"bit-identical {bool((ga == gb).all())}"
    )
    times: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    for r in range(args.repeats):
        for impl in record.rotated(IMPLS, r):  # interleaved and rotated: drift on a shared machine hits both alike
            t0 = time.perf_counter()
            jax.block_until_ready(fns[impl][0](logits, batch))
            times[impl].append(time.perf_counter() - t0)
    for impl in IMPLS:
        print(f"forward+backward {impl}: {record.spread([1e3 * t for t in times[impl]], '.2f')} ms")
        print(record.config_line(impl, [f"Loss.cross_entropy = '{impl}'", f"shape = {args.shape}"]))
    print(f"speed integer_labels / one_hot: {record.ratio_spread(times['one_hot'], times['integer_labels'])}")


if __name__ == "__main__":
    raise SystemExit(main())
