"""A few pretraining steps of gin/runs/tiny_cpu.gin on a chosen mesh, printed as one JSON line; run in a fresh
interpreter by test_mesh.py and test_multiprocess.py (XLA_FLAGS and jax.distributed must come before jax
starts, so these cannot run in the pytest process).

    python tests/mesh_worker.py --cache DIR --mesh 2,4 --rules tensor_parallel [--devices 1] [--steps 3]
    python tests/mesh_worker.py --cache DIR --case 1,1/default/1/global --case 8,1/fsdp/0/global  # one process
    python tests/mesh_worker.py ... --coordinator localhost:PORT --num_processes 2 --process_id 0 --run_dir D
    python tests/mesh_worker.py ... --data per_process        # each process corrupts only its own rows
    python tests/mesh_worker.py ... --data two_hosts          # one process fed both hosts' rows (reference)

Without --run_dir it steps the Trainer on the first --steps batches; with it, it runs `pretrain()` (metrics,
held-out loss and orbax checkpoints into a directory every process shares) and reports its metrics rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
MODEL_BINDINGS = ["T5Config.d_model = 64", "T5Config.num_heads = 4", "T5Config.d_ff = 128"]  # divide by 8 and 4


def run_worker(args: list[str], env_extra: dict, timeout: int = 600) -> dict:
    """Run this script in a fresh interpreter (the tests' entry point) and return its RESULT line."""
    import subprocess

    env = {**os.environ, "JAX_PLATFORMS": "cpu", "T5EXPLORE_COMPILE_CACHE": "off", **env_extra}
    proc = subprocess.run(
        [sys.executable, __file__, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--mesh", default="-1,1")
    ap.add_argument("--rules", default="default", help="default, or a gin/mesh/*.gin file's stem")
    ap.add_argument("--devices", type=int, default=0, help="use only the first N devices (0: all)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--data", default="global", choices=("global", "per_process", "two_hosts"))
    ap.add_argument("--coordinator")
    ap.add_argument("--num_processes", type=int, default=1)
    ap.add_argument("--process_id", type=int, default=0)
    ap.add_argument("--run_dir")
    ap.add_argument("--binding", action="append", default=[])
    ap.add_argument(
        "--case",
        action="append",
        default=[],
        help="MESH/RULES/DEVICES/DATA, e.g. 2,4/tensor_parallel/0/global (repeatable; overrides those four flags)",
    )
    return ap.parse_args(argv)


def setup(args):
    """Parse the tiny config and build (model, Pretrain, store, partitioner) exactly as execute does."""
    import gin

    from t5explore.config import parse_gin
    from t5explore.data.token_store import get_token_store
    from t5explore.data.vocab import vocabulary
    from t5explore.run_config import Pretrain
    from t5explore.train.partitioning import Partitioner
    from t5explore.train.run import build_model

    files = ["gin/runs/tiny_cpu.gin"] + ([f"gin/mesh/{args.rules}.gin"] if args.rules != "default" else [])
    mesh = tuple(int(x) for x in args.mesh.split(","))
    parse_gin(files, [f"Experiment.cache_dir = '{args.cache}'", *MODEL_BINDINGS, *args.binding])
    pre = Pretrain()
    vocab = vocabulary(corpus=pre.corpus, cache_dir=args.cache)
    model, _ = build_model(vocab)
    store = get_token_store(pre.corpus, vocab, args.cache, progress=False)
    import jax

    devices = jax.devices()[: args.devices] if args.devices else None
    with gin.unlock_config():
        gin.bind_parameter("Partitioner.mesh_shape", mesh)
    return model, pre, store, Partitioner(devices=devices)


def make_stream(args, pre, store, partitioner):
    from t5explore.data.pretrain_stream import PretrainStream

    if args.data == "per_process":
        return PretrainStream.for_process(
            store, pre.objective, pre.inputs_length, pre.batch_size, 0, partitioner=partitioner, prefetch=0
        )
    if args.data == "two_hosts":
        hosts = [
            PretrainStream(
                store, pre.objective, pre.inputs_length, pre.batch_size, 0, host_index=h, host_count=2, prefetch=0
            )
            for h in range(2)
        ]
        return TwoHosts(hosts)
    return PretrainStream(store, pre.objective, pre.inputs_length, pre.batch_size, 0, prefetch=0)


class TwoHosts:
    """One process fed what two per-process streams feed together: host 0's rows, then host 1's."""

    def __init__(self, hosts):
        self.hosts, self.k = hosts, 0

    def __iter__(self):
        return self

    def __next__(self):
        import numpy as np

        parts = [h.batch(self.k) for h in self.hosts]
        self.k += 1
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    def state(self):
        return {"next_batch": self.k}

    def restore(self, state):
        self.k = state["next_batch"]


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.coordinator:
        from t5explore.distributed import Distributed, initialize

        initialize(Distributed(args.coordinator, args.num_processes, args.process_id))
    if args.case:
        out = {}
        for case in args.case:
            args.mesh, args.rules, devices, args.data = case.split("/")
            args.devices = int(devices)
            out[case] = train(args)
        print("RESULT " + json.dumps(out), flush=True)
        return 0
    print("RESULT " + json.dumps(train(args)), flush=True)
    return 0


def train(args) -> dict:
    import jax

    from t5explore.train.trainer import Trainer, init_params

    model, pre, store, partitioner = setup(args)
    params, shardings = init_params(model, partitioner, 0)
    trainer = Trainer(model, partitioner, params, shardings, pre.get_optimizer(), pre.steps, 0)
    stream = make_stream(args, pre, store, partitioner)
    wi = params["encoder"]["layer_0"]["mlp"]["wi_0"]  # [embed, mlp]
    out = {
        "process": jax.process_index(),
        "processes": jax.process_count(),
        "devices": partitioner.mesh.size,
        "mesh": dict(partitioner.mesh.shape),
        "wi_0_spec": [str(a) for a in wi.sharding.spec],
        "wi_0_shard": list(wi.addressable_shards[0].data.shape),
        "opt_state_share": device_share(trainer.state.opt_state),
    }
    if args.run_dir:
        out["rows"] = run_pretrain(args, trainer, pre, store, stream)
    else:
        batches = iter(stream)
        out["losses"] = [float(jax.device_get(trainer.train_step(next(batches))["loss"])) for _ in range(args.steps)]
    return out


def device_share(tree) -> float:
    """Bytes one device holds of a tree over the tree's bytes (1.0: everything replicated)."""
    import jax

    leaves = jax.tree.leaves(tree)
    return sum(x.addressable_shards[0].data.nbytes for x in leaves) / sum(x.nbytes for x in leaves)


def run_pretrain(args, trainer, pre, store, stream) -> list[dict]:
    """pretrain() with its metrics in run_dir (process 0) or a private directory (the others)."""
    import jax

    from t5explore.train.pretrain import pretrain
    from t5explore.train.run import held_out_batches
    from t5explore.train.writers import MetricsWriter

    run_dir = Path(args.run_dir)
    metrics_dir = run_dir if jax.process_index() == 0 else run_dir / f"process_{jax.process_index()}"
    writer = MetricsWriter(metrics_dir, tensorboard=False)
    try:
        with open(os.devnull, "w") as quiet:
            pretrain(
                trainer,
                pre,
                stream,
                held_out_batches(store, pre, 0),
                writer,
                run_dir / "checkpoints",
                progress_stream=quiet,
            )
        return [{k: r[k] for k in ("phase", "step", "loss")} for r in writer.rows()]
    finally:
        writer.close()


if __name__ == "__main__":
    raise SystemExit(main())
