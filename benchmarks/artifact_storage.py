"""Storing and downloading a model artifact in chunks: time and memory held meanwhile.

On a database with an active model (``--db``; e.g. the scale benchmark's 20M one), each
run in a fresh child process:

* **store** — the active model, loaded from its mapped file, is written again as chunks
  (``artifacts.store_artifact``) into a new version inside a transaction that is then
  rolled back;
* **download** — the active version is read chunk by chunk into an empty file cache
  and mapped (``artifacts.load_version``), as the first process on a new machine does.

Memory is the process's anonymous RSS (``RssAnon``: not the mapped file's page cache)
sampled every 2 ms; the figure is its peak growth during the operation, to set beside
the artifact's size and ``ARTIFACT_CHUNK_BYTES``. Median of ``--runs``.

    python benchmarks/artifact_storage.py --db xo_st_20000000
    python benchmarks/artifact_storage.py --db xo_st_20000000 --chunk-mib 16
    python benchmarks/artifact_storage.py --smoke       # a tiny model (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))


def rss_anon_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return 0.0


class PeakSampler:
    """Peak ``RssAnon`` while the block runs, sampled by a thread."""

    def __enter__(self):
        self.base = self.peak = rss_anon_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, rss_anon_mib())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_anon_mib())

    @property
    def growth(self) -> float:
        return self.peak - self.base


def child(mode: str, chunk_mib: float | None) -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    import django

    django.setup()
    from django.conf import settings
    from django.db import transaction
    from django.test.utils import override_settings

    from xo_recommender import artifacts
    from xo_recommender.models import ModelVersion

    version = ModelVersion.objects.get(is_active=True)
    with tempfile.TemporaryDirectory() as directory, \
            override_settings(XO_RECOMMENDER={
                **getattr(settings, "XO_RECOMMENDER", {}), "ARTIFACT_DIR": directory,
                **({"ARTIFACT_CHUNK_BYTES": int(chunk_mib * 2**20)} if chunk_mib else {})}):
        if mode == "download":
            with PeakSampler() as memory:
                t0 = time.perf_counter()
                model = artifacts.load_version(version.pk)
                seconds = time.perf_counter() - t0
            assert model is not None
        else:
            model = artifacts.load_version(version.pk)  # mapped: file pages, not anonymous
            with PeakSampler() as memory:
                t0 = time.perf_counter()
                try:
                    with transaction.atomic():
                        copy = ModelVersion.objects.create(params={})
                        artifacts.store_artifact(copy, model.to_parts())
                        seconds = time.perf_counter() - t0
                        assert copy.artifact_sha256 == version.artifact_sha256
                        raise _RolledBack
                except _RolledBack:
                    pass
    print(json.dumps({"seconds": seconds, "growth_mib": memory.growth,
                      "size_mib": version.artifact_bytes / 2**20,
                      "chunks": version.artifact_chunks}))


class _RolledBack(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get(
        "BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--db", help="default xo_bench_5000000; smoke: xo_bench_20000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a tiny model (CI)")
    parser.add_argument("--chunk-mib", type=float,
                        help="store with this ARTIFACT_CHUNK_BYTES (MiB) instead of the setting")
    parser.add_argument("--child", choices=("store", "download"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.chunk_mib)
        return
    import scale_recommend as sr

    if args.smoke:
        import shared_model

        args.db, args.runs = args.db or "xo_bench_20000", 1
        shared_model.ensure_model(args.server, args.db, 20_000)
    args.db = args.db or "xo_bench_5000000"
    env = sr.database_env(args.server, args.db)
    sr.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env)
    results: dict[str, list[dict]] = {"store": [], "download": []}
    for _ in range(args.runs):
        for mode in results:
            extra = ["--chunk-mib", str(args.chunk_mib)] if args.chunk_mib else []
            out = sr.run([sys.executable, __file__, "--child", mode, *extra], env).stdout
            results[mode].append(json.loads(out.strip().splitlines()[-1]))
    first = results["store"][0]
    print(f"{args.db}: artifact {first['size_mib']:.1f} MiB in {first['chunks']} chunks; "
          f"stored again in chunks of {args.chunk_mib or 'ARTIFACT_CHUNK_BYTES'} MiB; "
          f"median of {args.runs}")
    print(f"{'operation':<10} {'seconds':>8} {'MiB/s':>7} {'peak RssAnon growth MiB':>24}")
    for mode, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        growth = statistics.median(r["growth_mib"] for r in runs)
        print(f"{mode:<10} {seconds:>8.2f} {first['size_mib'] / seconds:>7.0f} {growth:>24.0f}")


if __name__ == "__main__":
    main()
