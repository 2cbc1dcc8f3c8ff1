"""Token-store build throughput against raw SentencePiece encoding of the same documents, on 1 and 2
processes, and peak memory against corpus size (the shared Gutenberg books replicated 1x, 4x, 16x as symlinks).

    python benchmarks/token_store.py                      # --sizes 1,4,16 --processes 1,2 --reps 5
    python benchmarks/token_store.py --sizes 1 --reps 7   # the throughput alone, more rounds
    python benchmarks/token_store.py --sizes 1 --copies 4  # 4x the text: worker start-up weighs less

Three cases per process count, interleaved, the order rotated every round (A B C, B C A, C A B, ...):
- raw arrays: `Vocab.encode_batch_arrays(batch, num_threads=1)` (sentencepiece's int32 buffer output, what the
  build calls); raw ids: `Vocab.encode_batch(batch, 1)` (lists of Python ints). Both on documents already in
  memory, in the build's batches (ENCODE_BATCH_CHARS of text), batched before the clock starts, one warm
  process per contiguous part of the documents. The faster of the two by median is "raw", so the build is
  compared with SentencePiece at its best.
- build: `get_token_store` into a fresh cache with `num_workers` processes and one sentencepiece thread each:
  reading and splitting the files, encoding, writing uint16 shards, offsets and the manifest.

Per CPU second (the headline; on shared cores less disturbed than wall time): tokens / CPU seconds of the
encoding processes (raw: each worker's process time over its encode calls; build: each shard's process time,
every thread, from reading its first file to its last write). "Whole build" adds what the shards do not
count: planning, the manifest, and for 2 processes spawning them and loading the vocabulary there (this
process's CPU plus its reaped children's, RUSAGE_CHILDREN). Per wall second: per process, and end to end
(the build's includes spawning its workers; raw's workers are warm). Scaling: each case's end-to-end tokens/s
against 1 process. The build/raw ratio is the ratio of the medians with the range of the same-round ratios.
Scaling is meaningful on an idle machine only (a loaded one gives the second process no core of its own).
Goals: build >= 0.9x raw per CPU second, about linear in processes, peak RSS flat in corpus size.
Output: benchmarks/results/token_store.txt (benchmarks/record.py).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import record  # benchmarks/ is the script's directory

REPO = Path(__file__).resolve().parent.parent
GUTENBERG = REPO.parent / "shared" / "data" / "pretrain" / "gutenberg"
RAW_METHODS = {"raw arrays": "encode_batch_arrays", "raw ids": "encode_batch"}
CASES = [*RAW_METHODS, "build"]

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


_WORKER: dict = {}  # in each raw worker: its vocabulary and the documents


def _init_worker(sp_path: str, books_dir: str) -> None:
    from t5explore.data.corpus import text_files
    from t5explore.data.vocab import Vocab

    _WORKER["vocab"] = Vocab(sp_path)
    _WORKER["docs"] = list(text_files(pattern="*.txt", directory=books_dir).documents())


def batches_of(docs: list[str]) -> list[list[str]]:
    """The documents in batches of at least ENCODE_BATCH_CHARS characters, as the build batches them."""
    from t5explore.data.token_shards import ENCODE_BATCH_CHARS

    out: list[list[str]] = [[]]
    chars = 0
    for doc in docs:
        out[-1].append(doc)
        chars += len(doc)
        if chars >= ENCODE_BATCH_CHARS:
            out.append([])
            chars = 0
    return [b for b in out if b]


def _raw_encode(task: tuple[int, int, str]) -> tuple[int, float, float, str]:
    """Encode part i of n of the documents with one Vocab method; (tokens, wall s, CPU s, the method run)."""
    i, n, case = task
    docs = _WORKER["docs"]
    step = -(-len(docs) // n)
    batches = batches_of(docs[i * step : (i + 1) * step])  # before the clock: the raw side only encodes
    encode = getattr(_WORKER["vocab"], RAW_METHODS[case])
    start, cpu, tokens = time.perf_counter(), time.process_time(), 0
    for batch in batches:
        tokens += sum(map(len, encode(batch, 1)))
    return tokens, time.perf_counter() - start, time.process_time() - cpu, encode.__name__


def raw_throughput(pool, n: int, case: str) -> dict:
    start = time.perf_counter()
    results = pool.map(_raw_encode, [(i, n, case) for i in range(n)])
    wall = time.perf_counter() - start
    assert {r[3] for r in results} == {RAW_METHODS[case]}, results  # the method timed is the one named
    tokens = sum(r[0] for r in results)
    return {
        "tokens": tokens,
        "tokens_per_s": tokens / wall,
        "per_process_tokens_per_s": sum(r[0] / r[1] for r in results) / len(results),
        "tokens_per_cpu_s": tokens / sum(r[2] for r in results),
    }


def _cpu_with_children() -> float:
    """This process's CPU seconds plus those of its children that have been waited for."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def build_throughput(corpus_dir: Path, vocab, processes: int, root: Path) -> dict:
    from t5explore.data.corpus import text_files
    from t5explore.data.token_store import BuildSettings, get_token_store

    corpus = text_files(pattern="*.txt", directory=str(corpus_dir))
    corpus.fingerprint()  # not timed (remembered after the first run of a corpus)
    settings = BuildSettings(num_workers=processes, encode_threads=1)
    start, cpu = time.perf_counter(), _cpu_with_children()
    store = get_token_store(corpus, vocab, tempfile.mkdtemp(dir=root), progress=False, settings=settings)
    wall, whole_cpu = time.perf_counter() - start, _cpu_with_children() - cpu
    assert store.meta["workers"] == processes, store.meta  # the binding timed is in effect
    shards = [
        json.loads((store.directory / "shards" / s["name"] / "shard.json").read_text()) for s in store.meta["shards"]
    ]
    return {
        "tokens": store.num_tokens,
        "tokens_per_s": store.num_tokens / wall,
        "per_process_tokens_per_s": store.num_tokens / sum(s["seconds"] for s in shards),
        "tokens_per_cpu_s": store.num_tokens / sum(s["cpu_seconds"] for s in shards),
        "whole_tokens_per_cpu_s": store.num_tokens / whole_cpu,
    }


def interleaved_throughput(sp_path: str, vocab, n: int, root: Path, reps: int, copies: int) -> dict:
    """Every case with `n` processes, `reps` rounds, the order rotated every round; raw workers stay warm."""
    rows: dict[str, list[dict]] = {case: [] for case in CASES}
    books = replicate(copies, root)
    with multiprocessing.get_context("spawn").Pool(n, _init_worker, (sp_path, str(books))) as pool:
        pool.map(_raw_encode, [(i, n * 50, "raw arrays") for i in range(n)])  # warm: started, model loaded
        for r in range(reps):
            for case in record.rotated(CASES, r):
                row = build_throughput(books, vocab, n, root) if case == "build" else raw_throughput(pool, n, case)
                rows[case].append(row)
    tokens = {case: {row["tokens"] for row in case_rows} for case, case_rows in rows.items()}
    assert len(set().union(*tokens.values())) == 1, tokens  # every case encoded the same documents
    return {"processes": n, **rows}


def best_raw(row: dict, key: str) -> str:
    """The raw case with the higher median of `key`: the baseline at its best."""
    return max(RAW_METHODS, key=lambda case: statistics.median(x[key] for x in row[case]))


def report_throughput(row: dict) -> None:
    n = row["processes"]
    for key, what in (
        ("tokens_per_cpu_s", "per CPU second"),
        ("per_process_tokens_per_s", "per process (wall)"),
        ("tokens_per_s", "end to end (wall)"),
    ):
        raw = best_raw(row, key)
        values = {case: [x[key] for x in row[case]] for case in CASES}
        print(
            f"{n} process(es), {what}: build {record.spread(values['build'])}; "
            + "; ".join(f"{case} {record.spread(values[case])}" for case in RAW_METHODS)
            + f" tokens/s; build / raw (best: {raw}) {record.ratio_spread(values['build'], values[raw])}",
            flush=True,
        )
    whole = [x["whole_tokens_per_cpu_s"] for x in row["build"]]
    raw = best_raw(row, "tokens_per_cpu_s")
    print(
        f"{n} process(es), whole build per CPU second (planning, manifest, worker start-up too): "
        f"{record.spread(whole)} tokens/s; / {raw} "
        f"{record.ratio_spread(whole, [x['tokens_per_cpu_s'] for x in row[raw]])}",
        flush=True,
    )
    for case, method in RAW_METHODS.items():
        bindings = [f"processes = {n}", f"Vocab.{method} num_threads = 1", "documents in memory, pre-batched"]
        print(record.config_line(f"{case} x{n}", bindings))
    print(record.config_line(f"build x{n}", [f"BuildSettings.num_workers = {n}", "BuildSettings.encode_threads = 1"]))


def report_scaling(rows: list[dict]) -> None:
    """End-to-end tokens/s of every case against its own figure at the first process count."""
    if len(rows) < 2:
        return
    base = rows[0]
    for row in rows[1:]:
        parts = []
        for case in CASES:
            now = [x["tokens_per_s"] for x in row[case]]
            then = [x["tokens_per_s"] for x in base[case]]
            parts.append(f"{case} {statistics.median(now) / statistics.median(then):.2f}x")
        print(
            f"scaling {base['processes']} -> {row['processes']} processes, end-to-end tokens/s: "
            + ", ".join(parts)
            + " (meaningful on an idle machine only)",
            flush=True,
        )


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
    settings = BuildSettings(num_workers=1, encode_threads=1)
    store = get_token_store(corpus, vocab, out_cache, progress=False, settings=settings)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    row = {
        "tokens": store.num_tokens,
        "documents": store.num_documents,
        "build_s": round(seconds, 2),
        "rss_before_build_mib": round(before),
        "peak_rss_during_build_mib": round(peak[0]),
        "high_water_mib": round(_rss_mib("VmHWM")),
    }
    print(json.dumps(row))


def peak_rss(times: int, root: Path, cache: str, size: int) -> dict:
    corpus_dir = replicate(times, root)
    text_bytes = sum(p.stat().st_size for p in corpus_dir.iterdir())
    child = [sys.executable, __file__, "--_rss_child", str(corpus_dir), "--cache", cache]
    child += ["--vocab_size", str(size), "--_out", tempfile.mkdtemp(dir=root), "--_vocab_dir", str(replicate(1, root))]
    out = subprocess.run(child, capture_output=True, text=True, check=True)
    return {"copies": times, "text_mib": round(text_bytes / 2**20), **json.loads(out.stdout.splitlines()[-1])}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1,4,16", help="corpus copies for the memory figures")
    p.add_argument("--processes", default="1,2", help="process counts for the throughput figures")
    p.add_argument("--reps", type=int, default=5, help="interleaved rounds of the three cases")
    p.add_argument("--books", type=int, default=0, help="only the first N books (0: all)")
    p.add_argument("--copies", type=int, default=1, help="copies of the books for the throughput figures")
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
        corpus = text_files(pattern="*.txt", directory=str(replicate(args.copies, root)))
        docs = sum(1 for _ in corpus.documents())
        print(
            f"{len(BOOKS)} books x{args.copies}, {docs:,} documents; vocabulary {args.vocab_size} pieces; "
            f"{args.reps} rounds"
        )
        rows = []
        for n in (int(x) for x in args.processes.split(",")):
            rows.append(interleaved_throughput(str(vocab.sp_path), vocab, n, root, args.reps, args.copies))
            report_throughput(rows[-1])
        report_scaling(rows)
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
