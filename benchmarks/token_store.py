"""Token-store build throughput vs raw SentencePiece encoding, on 1 and 2 processes, and peak memory vs
corpus size (the shared Gutenberg books replicated 1x, 4x, 16x as symlinks in a temp dir).

    python benchmarks/token_store.py                      # --sizes 1,4,16 --processes 1,2 --vocab_size 8000
    python benchmarks/token_store.py --sizes 1,2,4 --cache /tmp/cache   # shorter

Raw = `Vocab.encode_batch(docs, num_threads=1)` on documents already in memory, in 1 MiB-of-text batches (as
the builder calls it), one process per contiguous part of the documents. Build = `get_token_store` into a
fresh cache with `num_workers` processes and one sentencepiece thread each: reading and splitting the files,
encoding, writing uint16 shards, offsets and the manifest. Per-process rates are tokens / the seconds each
process spent in its part (raw) or its shards (build); wall rates include process start-up. Peak RSS is
measured in a fresh process that builds each corpus size with one worker (sampled during the build, and the
process's high-water mark). Goals: build >= 0.9x raw per
process, about linear in processes, peak RSS flat in corpus size.

Raw and build run interleaved, --reps repetitions each, the order rotated every repetition (raw, build;
build, raw; ...), so a busy machine slows both alike; the build/raw ratio is reported as the median of the
per-repetition ratios with their range. The headline is per CPU second (tokens / CPU seconds of the encoding
processes), which on shared cores is less disturbed than wall time; scaling over processes needs an idle
machine and is only meaningful there. Output: benchmarks/results/token_store.txt (benchmarks/record.py).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import record  # benchmarks/ is the script's directory

REPO = Path(__file__).resolve().parent.parent
GUTENBERG = REPO.parent / "shared" / "data" / "pretrain" / "gutenberg"
BATCH_CHARS = 1 << 20


BOOKS: list[Path] = []  # the books measured (--books: the first N of GUTENBERG's, sorted)
SMOKE = ["--sizes", "1", "--processes", "1", "--reps", "1", "--books", "2", "--vocab_size", "500"]


def replicate(times: int, root: Path) -> Path:
    """A directory of `times` symlinked copies of every measured book (distinct paths, same text)."""
    out = root / f"x{times}"
    out.mkdir(parents=True, exist_ok=True)
    for r in range(times):
        for book in BOOKS:
            link = out / f"copy{r:02d}_{book.name}"
            if not link.exists():
                link.symlink_to(book)
    return out


def load_vocab(cache: str, size: int, books_dir: Path):
    from t5explore.data.corpus import text_files
    from t5explore.data.vocab import get_vocabulary

    return get_vocabulary(text_files(pattern="*.txt", directory=str(books_dir)), size, cache)


_WORKER_VOCAB = None


def _init_worker(sp_path: str) -> None:
    global _WORKER_VOCAB
    from t5explore.data.vocab import Vocab

    _WORKER_VOCAB = Vocab(sp_path)


def _raw_encode(docs: list[str]) -> tuple[int, float, float]:
    start, cpu, tokens, batch, chars = time.perf_counter(), time.process_time(), 0, [], 0
    for doc in [*docs, None]:
        if doc is not None:
            batch.append(doc)
            chars += len(doc)
        if batch and (doc is None or chars >= BATCH_CHARS):
            tokens += sum(map(len, _WORKER_VOCAB.encode_batch(batch, 1)))
            batch, chars = [], 0
    return tokens, time.perf_counter() - start, time.process_time() - cpu


def raw_throughput(sp_path: str, docs: list[str], processes: int) -> dict:
    step = -(-len(docs) // processes)
    parts = [docs[i : i + step] for i in range(0, len(docs), step)]
    with multiprocessing.get_context("spawn").Pool(processes, _init_worker, (sp_path,)) as pool:
        pool.map(_raw_encode, [d[:200] for d in parts])  # warm: processes started, model loaded
        start = time.perf_counter()
        results = pool.map(_raw_encode, parts)
        wall = time.perf_counter() - start
    tokens = sum(n for n, _, _ in results)
    return {
        "tokens": tokens,
        "wall_s": round(wall, 2),
        "tokens_per_s": round(tokens / wall),
        "per_process_tokens_per_s": round(sum(n / s for n, s, _ in results) / len(results)),
        "tokens_per_cpu_s": round(tokens / sum(c for _, _, c in results)),
    }


def build_throughput(corpus_dir: Path, vocab, processes: int, root: Path) -> dict:
    from t5explore.data.corpus import text_files
    from t5explore.data.token_store import BuildSettings, get_token_store

    corpus = text_files(pattern="*.txt", directory=str(corpus_dir))
    corpus.fingerprint()  # not timed (remembered after the first run of a corpus)
    settings = BuildSettings(num_workers=processes, encode_threads=1)
    start = time.perf_counter()
    store = get_token_store(corpus, vocab, tempfile.mkdtemp(dir=root), progress=False, settings=settings)
    wall = time.perf_counter() - start
    shards = [
        json.loads((store.directory / "shards" / s["name"] / "shard.json").read_text()) for s in store.meta["shards"]
    ]
    return {
        "tokens": store.num_tokens,
        "shards": len(shards),
        "wall_s": round(wall, 2),
        "tokens_per_s": round(store.num_tokens / wall),
        "per_process_tokens_per_s": round(store.num_tokens / sum(s["seconds"] for s in shards)),
        "tokens_per_cpu_s": round(store.num_tokens / sum(s["cpu_seconds"] for s in shards)),
        "disk_bytes": sum(f.stat().st_size for f in store.directory.rglob("*") if f.is_file()),
    }


def _rss_mib(field: str = "VmRSS") -> float:
    """This process's resident memory (VmRSS) or its high-water mark since exec (VmHWM; ru_maxrss would
    count the parent's memory copied at fork)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def rss_child(corpus_dir: str, cache: str, size: int, out_cache: str, vocab_dir: str) -> None:
    """Run in a fresh process: build one corpus size with one worker; print the RSS before the build, its
    peak during the build (sampled every 10 ms) and the process's high-water mark, as JSON."""
    import threading

    from t5explore.data.corpus import text_files
    from t5explore.data.token_store import BuildSettings, get_token_store

    vocab = load_vocab(cache, size, Path(vocab_dir))
    corpus = text_files(pattern="*.txt", directory=corpus_dir)
    corpus.fingerprint()
    before, peak, done = _rss_mib(), [0.0], threading.Event()

    def sample():
        while not done.wait(0.01):
            peak[0] = max(peak[0], _rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    store = get_token_store(
        corpus, vocab, out_cache, progress=False, settings=BuildSettings(num_workers=1, encode_threads=1)
    )
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    print(
        json.dumps(
            {
                "tokens": store.num_tokens,
                "documents": store.num_documents,
                "build_s": round(seconds, 2),
                "rss_before_build_mib": round(before),
                "peak_rss_during_build_mib": round(peak[0]),
                "high_water_mib": round(_rss_mib("VmHWM")),
            }
        )
    )


def peak_rss(times: int, root: Path, cache: str, size: int) -> dict:
    corpus_dir = replicate(times, root)
    text_bytes = sum(p.stat().st_size for p in corpus_dir.iterdir())
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--_rss_child",
            str(corpus_dir),
            "--cache",
            cache,
            "--vocab_size",
            str(size),
            "--_out",
            tempfile.mkdtemp(dir=root),
            "--_vocab_dir",
            str(replicate(1, root)),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return {"copies": times, "text_mib": round(text_bytes / 2**20), **json.loads(out.stdout.splitlines()[-1])}


def interleaved_throughput(sp_path: str, docs: list[str], vocab, n: int, root: Path, reps: int) -> dict:
    """Raw and build with `n` processes, `reps` times each, the order rotated every repetition."""
    raws, builds = [], []
    for r in range(reps):
        for side in record.rotated(["raw", "build"], r):
            if side == "raw":
                raws.append(raw_throughput(sp_path, docs, n))
            else:
                builds.append(build_throughput(replicate(1, root), vocab, n, root))
    return {"processes": n, "raw": raws, "build": builds}


def report_throughput(row: dict) -> None:
    n, raws, builds = row["processes"], row["raw"], row["build"]
    for key, what in (("tokens_per_cpu_s", "per CPU second"), ("per_process_tokens_per_s", "per process (wall)")):
        raw, build = [x[key] for x in raws], [x[key] for x in builds]
        print(
            f"{n} process(es), {what}: build {record.spread(build)} vs raw {record.spread(raw)} tokens/s; "
            f"build / raw {record.ratio_spread(build, raw)}",
            flush=True,
        )
    print(
        record.config_line(
            f"raw x{n}", [f"processes = {n}", "Vocab.encode_batch num_threads = 1", "documents in memory"]
        )
    )
    print(record.config_line(f"build x{n}", [f"BuildSettings.num_workers = {n}", "BuildSettings.encode_threads = 1"]))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1,4,16", help="corpus copies for the memory figures")
    p.add_argument("--processes", default="1,2", help="process counts for the throughput figures")
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions of raw and build")
    p.add_argument("--books", type=int, default=0, help="only the first N books (0: all)")
    p.add_argument("--vocab_size", type=int, default=8000, help="pieces (gin/data/gutenberg.gin: 8000)")
    p.add_argument("--cache", default=None, help="vocabulary cache (default $T5EXPLORE_CACHE or ~/.cache)")
    p.add_argument("--out", help="output file (default benchmarks/results/token_store.txt; --smoke: none)")
    p.add_argument("--smoke", action="store_true", help=f"seconds: {' '.join(SMOKE)} (numbers mean nothing)")
    p.add_argument("--_rss_child", help=argparse.SUPPRESS)
    p.add_argument("--_out", help=argparse.SUPPRESS)
    p.add_argument("--_vocab_dir", help=argparse.SUPPRESS)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(argv)
    if args.smoke:
        args = p.parse_args([*argv, *SMOKE])
    cache = args.cache or str(Path(os.environ.get("T5EXPLORE_CACHE") or Path.home() / ".cache" / "t5explore"))
    books = sorted(GUTENBERG.glob("*.txt"))
    BOOKS[:] = books[: args.books] if args.books else books
    if args._rss_child:
        return rss_child(args._rss_child, cache, args.vocab_size, args._out, args._vocab_dir)
    with record.Recorder("token_store", argv, record.default_out("token_store", args.smoke, args.out)):
        measure(args, cache)


def measure(args, cache: str) -> None:
    from t5explore.data.corpus import text_files

    with tempfile.TemporaryDirectory(prefix="token_store_bench.") as tmp:
        root = Path(tmp)
        vocab = load_vocab(cache, args.vocab_size, replicate(1, root))
        docs = list(text_files(pattern="*.txt", directory=str(replicate(1, root))).documents())
        print(f"{len(BOOKS)} books, {len(docs):,} documents; vocabulary {args.vocab_size} pieces; {args.reps} reps")
        for n in (int(x) for x in args.processes.split(",")):
            report_throughput(interleaved_throughput(str(vocab.sp_path), docs, vocab, n, root, args.reps))
        for times in (int(x) for x in args.sizes.split(",")):
            row = peak_rss(times, root, cache, args.vocab_size)
            print(
                f"{times:>2}x ({row['text_mib']} MiB of text, {row['tokens']:,} tokens): RSS "
                f"{row['rss_before_build_mib']} MiB before the build, peak {row['peak_rss_during_build_mib']} MiB "
                f"during it (high-water mark {row['high_water_mib']} MiB), {row['build_s']} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
