"""Which collectives the compiled train step runs on a mesh: counts and shapes of all-gather, reduce-scatter,
all-reduce, ... in the optimised HLO (`jit(...).lower(...).compile().as_text()`), and how many sit inside a
loop body (a scanned stack runs its body once per layer).

    python benchmarks/fsdp_hlo.py                                  # tiny model, 8 CPU devices, gin/mesh/fsdp.gin
    python benchmarks/fsdp_hlo.py --layers 6 --scan --devices 8 --mesh gin/mesh/fsdp.gin
    python benchmarks/fsdp_hlo.py --binding "Partitioner.constrain_activations = False"   # XLA alone

It answers "does FSDP gather parameters layer by layer or the whole model at once?": one all-gather per
weight, each next to its use, is per layer; a few huge gathers at the start would be the whole model. CPU
devices are simulated (XLA_FLAGS=--xla_force_host_platform_device_count, set here before jax starts), so
the HLO is the CPU compiler's; a GPU's schedules the same collectives asynchronously (*-start / *-done).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
from pathlib import Path

COLLECTIVES = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")
_OP = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*(?P<shape>\([^=]*?\)|\S+)\s+(?P<op>[\w\-]+)\(")
_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?(?P<name>[\w.\-]+)\s.*\{\s*$")
_WHILE_BODY = re.compile(r"\bwhile\(.*body=%?(?P<body>[\w.\-]+)")


def collectives(hlo: str) -> list[dict]:
    """Every collective of an HLO module's text: op (async *-start folded in), result shape, computation,
    and whether that computation is a while loop's body."""
    bodies = set(_WHILE_BODY.findall(hlo))
    found, computation = [], None
    for line in hlo.splitlines():
        head = _COMPUTATION.match(line)
        if head and not line.startswith(" "):
            computation = head["name"]
            continue
        m = _OP.match(line)
        if not m:
            continue
        op = m["op"].removesuffix("-start")
        if op in COLLECTIVES:
            found.append(
                {
                    "op": op,
                    "shape": re.sub(r"\{[^}]*\}", "", m["shape"]),
                    "computation": computation,
                    "in_loop": computation in bodies,
                }
            )
    return found


def summarize(ops: list[dict]) -> str:
    lines = []
    for op in COLLECTIVES:
        mine = [o for o in ops if o["op"] == op]
        if not mine:
            continue
        in_loop = sum(o["in_loop"] for o in mine)
        lines.append(f"{op}: {len(mine)} ops ({in_loop} inside a loop body)")
        shapes = collections.Counter((o["shape"], o["in_loop"]) for o in mine)
        for (shape, loop), n in sorted(shapes.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"    {n:>3} x {shape}{'  [loop body]' if loop else ''}")
    return "\n".join(lines) or "no collectives"


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="gin/models/tiny.gin")
    ap.add_argument("--mesh", default="gin/mesh/fsdp.gin", help="a gin/mesh/*.gin file")
    ap.add_argument("--devices", type=int, default=8, help="simulated CPU devices (ignored on a GPU)")
    ap.add_argument("--layers", type=int, default=0, help="override encoder and decoder layers (0: the gin's)")
    ap.add_argument("--scan", action="store_true", help="T5Config.scan_layers = True")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--inputs", type=int, default=32)
    ap.add_argument("--targets", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--dump", help="also write the whole HLO text here")
    ap.add_argument("--binding", action="append", default=[], help="extra gin binding (repeatable)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if "jax" not in sys.modules:
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={args.devices}"
        ).strip()
    from t5explore.config import parse_gin
    from t5explore.train.partitioning import Partitioner

    bindings = [f"T5Config.scan_layers = {args.scan}"]
    if args.layers:
        bindings += [f"T5Config.num_encoder_layers = {args.layers}", f"T5Config.num_decoder_layers = {args.layers}"]
    parse_gin([args.model, args.mesh, "gin/optim/adafactor_rsqrt.gin"], bindings + args.binding)
    trainer, batch = build(args, Partitioner())
    hlo = trainer.compiled_train_step(trainer.partitioner.shard_batch(batch)).as_text()
    if args.dump:
        Path(args.dump).write_text(hlo)
    cfg = trainer.model.cfg
    print(
        f"{cfg.name}: {cfg.num_encoder_layers}+{cfg.num_decoder_layers} layers, scan_layers={cfg.scan_layers}, "
        f"mesh {dict(trainer.partitioner.mesh.shape)} ({args.mesh}), constrain_activations="
        f"{trainer.partitioner.constrain_activations}"
    )
    print(summarize(collectives(hlo)))
    return 0


def build(args, partitioner):
    import dataclasses

    from train_throughput import synthetic_batches  # benchmarks/ is the script's directory

    from t5explore.model.config import T5Config
    from t5explore.model.encoder_decoder import EncoderDecoder
    from t5explore.run_config import Optimizer
    from t5explore.train.trainer import Trainer, init_params

    cfg = dataclasses.replace(T5Config(), vocab_size=args.vocab)
    model = EncoderDecoder(cfg)
    params, shardings = init_params(model, partitioner, 0)
    trainer = Trainer(model, partitioner, params, shardings, Optimizer(), 10, 0)
    return trainer, synthetic_batches(1, args.batch, args.inputs, args.targets, args.vocab, 0)[0]


if __name__ == "__main__":
    raise SystemExit(main())
