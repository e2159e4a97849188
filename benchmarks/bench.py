"""replybot performance on this machine: a table of figure, target and measured value, and JSON.

    python benchmarks/bench.py [--quick] [--json benchmarks/results.json]

Cold figures run the installed `replybot` command in new processes with caches already built;
the naive path loads sentence-transformers in-process for every call (REPLYBOT_ENCODER); the
numpy row runs the lean encoder with its layers in numpy instead of the compiled forward.c.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = ["能便宜点吗", "什么时候发货", "我165穿什么码", "收到有股味道", "那41码呢", "质量太差了 我要退货", "在吗", "好的谢谢"]


def timed_runs(cmd: list[str], n: int, env: dict | None = None) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t0)
    return times


def replybot_cmd() -> str:
    return shutil.which("replybot") or str(Path(sys.executable).parent / "replybot")


def bench_cold(n: int) -> dict:
    exe = replybot_cmd()
    subprocess.run([exe, "prepare"], check=True, capture_output=True)
    cold = timed_runs([exe, "suggest", "能便宜点吗"], n)
    help_ = timed_runs([exe, "--help"], n)
    env = dict(os.environ, REPLYBOT_ENCODER="sentence-transformers")
    naive = timed_runs([exe, "suggest", "能便宜点吗"], max(2, n // 2), env)
    return {"cold_suggest_s": statistics.median(cold), "help_s": statistics.median(help_), "naive_cold_suggest_s": statistics.median(naive)}


def bench_first_run() -> dict:
    """A fresh install's first run as shipped (the corpus's vectors come with it, see
    config.PREBUILT_VECTORS), and from nothing: every corpus text encoded, as after a wholesale edit."""
    out = {}
    for key, prebuilt in (("first_run_s", None), ("first_run_from_nothing_s", "")):
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, REPLYBOT_CACHE_DIR=tmp)
            if prebuilt is not None:
                env["REPLYBOT_PREBUILT_VECTORS"] = prebuilt
            t0 = time.perf_counter()
            subprocess.run([replybot_cmd(), "prepare"], check=True, capture_output=True, env=env)
            out[key] = time.perf_counter() - t0
    return out


def bench_warm(n: int) -> dict:
    from replybot.suggest import Suggester
    from replybot.render import to_text

    from threadpoolctl import threadpool_limits

    from replybot.cores import QueryThreads

    s = Suggester()
    s.suggest("预热")

    def run(suggester, limit, tag: str) -> list[float]:
        suggester.forget_seen_texts()
        lat = []
        for i in range(n):
            message = MESSAGES[i % len(MESSAGES)] + f" {tag}{i}"  # new text each time: no memoised vector
            t0 = time.perf_counter()
            with limit():
                to_text(suggester.suggest(message))
            lat.append((time.perf_counter() - t0) * 1000)
        return lat

    threads = QueryThreads()  # as the clip helper runs: a second core only while it is idle
    threads.wait_for_first_window()
    lat = run(s, lambda: threads.limit(s.encoder), "")
    one = run(s, lambda: threadpool_limits(limits=1, user_api="blas"), "#")
    out = {
        "warm_p50_ms": float(np.percentile(lat, 50)),
        "warm_p95_ms": float(np.percentile(lat, 95)),
        "warm_threads": threads.threads,
        "warm_one_thread_p50_ms": float(np.percentile(one, 50)),
        "warm_one_thread_p95_ms": float(np.percentile(one, 95)),
    }
    os.environ["REPLYBOT_ENCODER"] = "numpy"  # the lean encoder without its compiled layers
    numpy_layers = Suggester()
    numpy_layers.suggest("预热")
    lat = run(numpy_layers, lambda: threads.limit(numpy_layers.encoder), "~")
    out["numpy_warm_p50_ms"] = float(np.percentile(lat, 50))
    out["native_layers"] = bool(getattr(s.encoder, "native", False))
    os.environ["REPLYBOT_ENCODER"] = "sentence-transformers"
    naive = Suggester()
    naive.suggest("预热")
    lat = []
    for i in range(max(10, n // 5)):
        t0 = time.perf_counter()
        to_text(naive.suggest(MESSAGES[i % len(MESSAGES)]))
        lat.append((time.perf_counter() - t0) * 1000)
    os.environ.pop("REPLYBOT_ENCODER")
    out["naive_warm_p50_ms"] = float(np.percentile(lat, 50))
    return out


def bench_eval() -> dict:
    from replybot.evaluation.runner import evaluate

    files = sorted((ROOT / "eval").glob("*.jsonl"))
    summary, records = evaluate(files, with_baselines=False)
    return {"eval_turns_per_s": summary["turns_per_s"], "eval_turns": len(records)}


def synthetic_drafts(pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Drafts of many shops: random mixtures of three real vectors plus noise, normalized.
    (Noisy copies of the 173 drafts would make 500 near-ties per draft at 100k, where top-10
    recall measures the noise, not the index.)"""
    idx = rng.integers(0, len(pool), (n, 3))
    w = rng.dirichlet([1.0, 1.0, 1.0], n).astype(np.float32)
    v = (pool[idx] * w[..., None]).sum(axis=1) + rng.normal(0, 0.02, (n, pool.shape[1])).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def bench_scale(sizes: list[int]) -> dict:
    """Index build time, memory and search p50 over synthetic drafts; recall@10 against exact search."""
    import faiss

    from replybot.index import build_key_index
    from replybot.suggest import Suggester

    s = Suggester()
    bundle = s.bundle
    draft_vecs = s.encoder.encode([d.entry.text for d in s.corpus.drafts])
    pool = np.vstack([draft_vecs, bundle.example_index.reconstruct_n(0, bundle.example_index.ntotal)]).astype(np.float32)
    rng = np.random.default_rng(0)
    queries = np.vstack([s.encoder.encode(MESSAGES * 2), synthetic_drafts(pool, 84, rng)])
    out = {}
    for n in sizes:
        vecs = synthetic_drafts(pool, n, rng)
        exact = faiss.IndexFlatIP(vecs.shape[1])
        exact.add(vecs)
        _, truth = exact.search(queries, 10)
        t0 = time.perf_counter()
        index = build_key_index(vecs)
        build_s = time.perf_counter() - t0
        lat = []
        for q in queries:
            t1 = time.perf_counter()
            _, got = index.search(q[None, :], 10)
            lat.append((time.perf_counter() - t1) * 1000)
        _, got = index.search(queries, 10)
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got)]))
        out[n] = {"index": type(index).__name__, "build_s": build_s, "search_p50_ms": float(np.percentile(lat, 50)),
                  "recall_at_10": recall, "index_mb": faiss.serialize_index(index).nbytes / 2**20, "vectors_mb": vecs.nbytes / 2**20}
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results.json")
    args = ap.parse_args()
    n = 3 if args.quick else 7
    r: dict = {"machine": {"cpu_count": os.cpu_count(), "cpu": cpu_model(), "platform": platform.platform(), "python": platform.python_version()}}
    r |= bench_first_run()
    r |= bench_cold(n)
    r |= bench_eval()  # before bench_warm, whose naive half loads torch into this process
    r |= bench_warm(50 if args.quick else 300)
    r["scale"] = bench_scale([1_000, 10_000, 100_000])
    rows = [
        ("cold `replybot suggest` (median)", "≤ 1.0 s", f"{r['cold_suggest_s']:.2f} s"),
        ("naive cold (sentence-transformers)", "—", f"{r['naive_cold_suggest_s']:.2f} s ({r['naive_cold_suggest_s'] / r['cold_suggest_s']:.1f}×)"),
        ("`replybot --help`", "≤ 0.3 s", f"{r['help_s']:.2f} s"),
        ("warm suggestion p50", "≤ 10 ms", f"{r['warm_p50_ms']:.1f} ms"),
        ("warm suggestion p95", "≤ 25 ms", f"{r['warm_p95_ms']:.1f} ms"),
        ("  (BLAS threads the helper chose)", "—", str(r["warm_threads"])),
        ("warm p50 / p95 on one thread (busy machine)", "—", f"{r['warm_one_thread_p50_ms']:.1f} / {r['warm_one_thread_p95_ms']:.1f} ms"),
        ("  (encoder layers compiled for this CPU)", "—", "yes" if r["native_layers"] else "no: numpy"),
        ("warm p50 with the layers in numpy", "—", f"{r['numpy_warm_p50_ms']:.1f} ms ({r['numpy_warm_p50_ms'] / r['warm_p50_ms']:.1f}×)"),
        ("naive warm p50 (sentence-transformers)", "—", f"{r['naive_warm_p50_ms']:.1f} ms ({r['naive_warm_p50_ms'] / r['warm_p50_ms']:.1f}×)"),
        ("evaluation throughput", "≥ 300 turns/s", f"{r['eval_turns_per_s']:.0f} turns/s"),
        ("first run (model + index)", "≤ 60 s", f"{r['first_run_s']:.1f} s"),
        ("  the same without the prebuilt corpus vectors", "—", f"{r['first_run_from_nothing_s']:.1f} s"),
    ]
    for size, m in r["scale"].items():
        rows.append((f"search p50 at {size:,} drafts ({m['index']})", "≤ 5 ms at 100k" if size == 100_000 else "—",
                     f"{m['search_p50_ms']:.2f} ms, recall@10 {m['recall_at_10']:.3f}, build {m['build_s']:.2f} s, {m['index_mb']:.0f} MB"))
    width = max(len(a) for a, _, _ in rows)
    print(f"machine: {r['machine']}")
    print(f"{'figure'.ljust(width)}  {'target'.ljust(14)}  measured")
    for a, b, c in rows:
        print(f"{a.ljust(width)}  {b.ljust(14)}  {c}")
    args.json.write_text(json.dumps(r, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
