"""T5.1.1-base bf16 pretraining MFU on one GPU: the default step against the efficiency options, interleaved.

    python benchmarks/gpu_mfu.py                 # on a GPU: base, batch 128 x 512 -> 114, ~5 minutes
    python benchmarks/gpu_mfu.py --tiny          # anywhere (CPU): the tiny model, seconds; checks it runs
    python benchmarks/gpu_mfu.py --smoke         # --tiny in float32 (fast to compile on a CPU), no results file

Output: benchmarks/results/gpu_mfu.txt (date, commit, device, load; each case's operative config), written by
train_throughput.main (benchmarks/record.py).

Cases (benchmarks/train_throughput.py measures them in one process, interleaved, medians of --rounds):
  default                    what runs today (unscanned, no remat, einsum attention, bf16 logits)
  fused attention            T5Config.attention_impl = 'dot_product' (cuDNN's kernel for bf16 on a GPU)
  scan + remat(dots)         T5Config.scan_layers = True, remat_policy = 'dots'
  scan + remat + fused       both
  ... + float32 logits       T5Config.float32_logits = True (t5x's choice; costs a little, for stability)
MFU counts model FLOPs only (remat's recomputation is not credited), over the device's bf16 dense peak
(t5explore/train/hardware.py; H100/H200 989 TFLOP/s). The batch is synthetic: data loading costs nothing.
"""

from __future__ import annotations

import argparse

import record  # benchmarks/ is the script's directory
import train_throughput

FUSED = "T5Config.attention_impl = 'dot_product'"
SCAN = "T5Config.scan_layers = True; T5Config.remat_policy = 'dots'"
CASES = (
    f"fused attention={FUSED}",
    f"scan + remat(dots)={SCAN}",
    f"scan + remat + fused={SCAN}; {FUSED}",
    f"scan + remat + fused + f32 logits={SCAN}; {FUSED}; T5Config.float32_logits = True",
)
FULL = [
    "--model",
    "gin/models/base.gin",
    "--batch",
    "128",
    "--inputs",
    "512",
    "--targets",
    "114",
    "--steps",
    "10",
    "--rounds",
    "3",
    "--vocab",
    "32100",
]
TINY = [
    "--model",
    "gin/models/tiny.gin",
    "--batch",
    "8",
    "--inputs",
    "32",
    "--targets",
    "8",
    "--steps",
    "2",
    "--rounds",
    "2",
    "--vocab",
    "1024",
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="the tiny model at test size (runs on a CPU in seconds)")
    ap.add_argument("--smoke", action="store_true", help="--tiny in float32, writing no results file unless --out")
    ap.add_argument("--out", help="output file (default benchmarks/results/gpu_mfu.txt; --tiny/--smoke: none)")
    ap.add_argument("--batch", help="override the batch size (e.g. 64 if 128 does not fit)")
    ap.add_argument("--steps", help="override the timed steps per case per round")
    args = ap.parse_args(argv)
    args.tiny = args.tiny or args.smoke
    forwarded = list(TINY if args.tiny else FULL)
    for flag in ("batch", "steps"):
        if getattr(args, flag):
            forwarded[forwarded.index(f"--{flag}") + 1] = getattr(args, flag)
    if args.tiny and not args.smoke:  # tiny.gin is float32: measure the options in bf16, as on a GPU (a smoke
        # run stays float32: XLA:CPU compiles bf16 programs slowly, minutes each on shared cores)
        forwarded += ["--binding", "T5Config.dtype = 'bfloat16'"]
    forwarded += ["--baseline", "none"] + [a for c in CASES for a in ("--case", c)]
    forwarded += ["--name", "gpu_mfu", "--out", record.default_out("gpu_mfu", args.tiny, args.out) or "-"]
    return train_throughput.main(forwarded)


if __name__ == "__main__":
    raise SystemExit(main())
