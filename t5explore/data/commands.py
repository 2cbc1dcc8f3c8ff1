"""`t5explore build-store`: tokenise a run's pretraining corpus into the token-store cache ahead of time, on
this machine or shard by shard on many (see t5explore/cli.py for dispatch, token_shards.py for the layout)."""

from __future__ import annotations

import argparse
import dataclasses
import json

EPILOG = """examples:
  t5explore build-store --gin_file=gin/data/c4.gin                      # every shard here, then the manifest
  t5explore build-store --gin_file=gin/data/c4.gin --plan               # vocabulary, entry, shard count
  t5explore build-store --gin_file=gin/data/c4.gin --shard=$SLURM_ARRAY_TASK_ID/64    # one task of 64
  t5explore build-store --gin_file=gin/data/c4.gin --finalize           # after every task: the manifest

Use the run's gin files (the corpus, the vocabulary and Experiment.cache_dir decide the store). Shard i/N
builds the shards whose index is i mod N, with token_store.num_workers processes; tasks may run at once
on machines sharing the cache directory, and a killed one is simply run again (finished shards are kept).
"""


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "build-store",
        help="tokenise the pretraining corpus into the token-store cache (resumable, shardable)",
        description="Tokenise Pretrain.corpus with the run's vocabulary into the cache entry its runs will open: "
        "in parallel here, or one part of the shards per task of a job array, then --finalize.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--shard", metavar="I/N", help="build only the shards whose index is I mod N (no manifest)")
    p.add_argument("--finalize", action="store_true", help="write the manifest once every shard is built")
    p.add_argument("--plan", action="store_true", help="print the entry and its shards' state; build nothing")
    p.add_argument("--num_workers", type=int, help="processes on this machine (default: token_store.num_workers)")
    p.set_defaults(func=run_build_store)


def parse_part(text: str | None) -> tuple[int, int]:
    from t5explore.config import ConfigError

    if text is None:
        return 0, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard={text!r}: expected I/N, e.g. --shard=3/64") from None
    if not 0 <= i < n:
        raise ConfigError(f"--shard={text!r}: I must be in [0, N)")
    return i, n


def run_build_store(args, gin_files, gin_bindings) -> int:
    from t5explore.config import ConfigError, parse_gin
    from t5explore.data import token_store as ts
    from t5explore.data.cache import build_lock, resolve_cache_dir
    from t5explore.data.vocab import vocabulary
    from t5explore.run_config import Experiment, Pretrain

    part = parse_part(args.shard)
    if args.finalize and args.shard:
        raise ConfigError("--finalize and --shard are separate steps: run every --shard task, then --finalize once")
    parse_gin(gin_files, gin_bindings)
    corpus = Pretrain().corpus
    if corpus is None:
        raise ConfigError("gin binding Pretrain.corpus is required; include e.g. gin/data/c4.gin")
    cache_dir = resolve_cache_dir(Experiment().cache_dir)
    vocab = vocabulary(corpus=corpus, cache_dir=str(cache_dir))
    settings = ts.BuildSettings()
    if args.num_workers is not None:
        settings = dataclasses.replace(settings, num_workers=args.num_workers)
    entry = ts.store_entry(corpus, vocab, cache_dir)
    out = {"entry": str(entry), "complete": ts.is_complete(entry)}
    if args.plan:
        plan, jobs = ts.shard_jobs(corpus, vocab, entry, settings)
        out.update(shards=len(plan), missing=0 if out["complete"] else len(jobs))
    elif args.shard:
        plan, jobs = ts.shard_jobs(corpus, vocab, entry, settings, part, progress=True)
        ts.shards_lib.build_shards(jobs, settings.workers_for(len(jobs)), vocab, corpus.name, progress=True)
        out.update(shards=len(plan), built=len(jobs), part=args.shard)
    elif args.finalize:
        with build_lock(entry, "token store"):
            plan, _ = ts.shard_jobs(corpus, vocab, entry, settings)
            if not ts.is_complete(entry):
                dtype = ts.shards_lib.token_dtype(vocab.token_space().vocab_size)
                ts.shards_lib.finalize_store(entry, corpus, plan, dtype, ts.store_meta(corpus, vocab))
        out.update(shards=len(plan), complete=True)
    else:
        store = ts.get_token_store(corpus, vocab, cache_dir, settings=settings)
        out.update(complete=True, tokens=store.num_tokens, documents=store.num_documents)
    print(json.dumps(out))
    return 0
