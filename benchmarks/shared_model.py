"""One model per machine: memory of N web workers that load the active model, and the
time a worker takes to switch to a new version.

Workers are forked from a parent that has run ``django.setup()``, as gunicorn's
workers are forked from its master (``--preload``). Each loads the active version
through ``artifacts.active_model()`` and reads every byte of the collaborative matrix
(a long-running worker touches all of it). PSS (``/proc/<pid>/smaps_rollup``: shared
pages divided among the processes sharing them) is read for every worker while all are
alive, before and after loading; a first worker has already downloaded the version to
the machine's file (its time is printed apart). ``first s`` is the slowest worker's
load, ``switch s`` its load of a version whose file is present (a rebuild's switch on
every worker but the downloader). The reference, in the same run, is the same workers
loading the artifact into their own memory (``ARTIFACT_DIR = False``, as every worker
did before the mapped format).

    python benchmarks/shared_model.py --db xo_bench_5000000   # 4 workers vs 1, 5M data
    python benchmarks/shared_model.py --smoke                 # tiny seeded data, for CI

Needs PostgreSQL (``--server``); the database is seeded and rebuilt when it has no
model (see ``scale_recommend.py``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def smaps_rollup(pid: int) -> dict[str, float]:
    """Rss and Pss of ``pid`` in MiB."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                out[key.lower()] = int(rest.split()[0]) / 1024
    return out


def worker(conn) -> None:
    """In a forked child: wait, load the active model, touch it, report, wait, exit."""
    import numpy as np
    from django.db import connections

    from xo_recommender import artifacts

    connections.close_all()  # never share the parent's sockets
    conn.send("base")
    conn.recv()
    t0 = time.perf_counter()
    version, model = artifacts.active_model()
    first = time.perf_counter() - t0
    s = model.collaborative.similarity_
    checksum = float(np.sum(s.data, dtype=np.float64)) + int(s.indices.sum()) + int(
        s.indptr[-1])
    conn.send({"version": version, "first_load_s": first, "checksum": checksum})
    conn.recv()
    # then a version switch on a machine that already has the file: map + build
    artifacts.forget_loaded()
    t0 = time.perf_counter()
    artifacts.active_model()
    conn.send(time.perf_counter() - t0)
    conn.recv()
    connections.close_all()


def measure(n_workers: int) -> dict:
    """Fork ``n_workers`` workers; PSS of all of them before and after they load."""
    ctx = mp.get_context("fork")
    pipes, procs = [], []
    for _ in range(n_workers):
        parent, child = ctx.Pipe()
        p = ctx.Process(target=worker, args=(child,))
        p.start()
        pipes.append(parent)
        procs.append(p)
    for c in pipes:
        assert c.recv() == "base"
    base = [smaps_rollup(p.pid) for p in procs]
    for c in pipes:
        c.send("load")
    results = [c.recv() for c in pipes]
    loaded = [smaps_rollup(p.pid) for p in procs]
    for c in pipes:
        c.send("switch")
    switch = [c.recv() for c in pipes]
    for c in pipes:
        c.send("exit")
    for p in procs:
        p.join()
    return {
        "workers": n_workers,
        "pss_before": sum(b["pss"] for b in base),
        "pss_after": sum(a["pss"] for a in loaded),
        "rss_after": sum(a["rss"] for a in loaded),
        "first_load_s": [r["first_load_s"] for r in results],
        "switch_s": switch,
    }


def ensure_model(server: str, name: str, n: int) -> None:
    """Seed and rebuild ``name`` when it has no model (the scale benchmark's data)."""
    import scale_recommend as sr

    env = sr.database_env(server, name)
    created = sr.ensure_database(server, name)
    sr.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], env)
    if created:
        sr.run([sys.executable, "manage.py", "seed_demo", "--users", str(max(n // 25, 20)),
                "--businesses", str(max(n // 100, 10)), "--interactions", str(n), "--quiet"],
               env)
    probe = sr.run([sys.executable, "-c", _PROBE], env)
    if probe.stdout.strip() != "current":  # none, or written by another artifact format
        sr.run([sys.executable, "manage.py", "rebuild_recommendations", "-v0"], env)


#: Prints "current" when the active model is stored as this code writes it (the same
#: bytes again), so benchmarks that copy or compare it measure this code's format.
_PROBE = """
import hashlib, django
django.setup()
from xo_recommender import artifacts
from xo_recommender.models import ModelVersion
version = ModelVersion.objects.filter(is_active=True).first()
if version is None:
    print("none")
else:
    digest = hashlib.sha256()
    for part in artifacts.load_version(version.pk).to_parts():
        digest.update(part)
    print("current" if digest.hexdigest() == version.artifact_sha256 else "stale")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get(
        "BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--db", help="database (default xo_bench_5000000; smoke: "
                        "xo_bench_20000)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3, help="median of this many")
    parser.add_argument("--smoke", action="store_true", help="tiny data (CI)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    if args.smoke:
        args.db, args.runs = args.db or "xo_bench_20000", 1
        ensure_model(args.server, args.db, 20_000)
    args.db = args.db or "xo_bench_5000000"
    os.environ.update({"DATABASE_URL": f"{args.server.rstrip('/')}/{args.db}",
                       "DJANGO_SETTINGS_MODULE": "example_project.settings"})
    os.environ.pop("REDIS_URL", None)
    import django
    from django.test.utils import override_settings

    django.setup()
    from django.conf import settings

    from xo_recommender import artifacts  # noqa: F401  imported before forking, as --preload
    from xo_recommender.models import ModelVersion

    version = ModelVersion.objects.filter(is_active=True).first()
    if version is None:
        sys.exit(f"{args.db} has no active model: run scale_recommend.py or rebuild first")
    size_mib = version.artifact_bytes / 2**20
    del version
    from django.db import connections

    connections.close_all()
    print(f"{args.db}: artifact {size_mib:.1f} MiB; {args.workers} workers vs 1, "
          f"median of {args.runs}; PSS in MiB, summed over the workers", flush=True)
    print(f"{'loading':<10} {'workers':>7} {'PSS before':>10} {'PSS after':>9} "
          f"{'model PSS':>9} {'×1 worker':>9} {'total ×1':>8} {'first s':>7} {'switch s':>8}")
    download: list[float] = []
    for mode in ("mapped", "in memory"):
        rows = {}
        for n in (1, args.workers):
            runs = []
            for _ in range(args.runs):
                with tempfile.TemporaryDirectory() as tmp:
                    conf = {**getattr(settings, "XO_RECOMMENDER", {}),
                            "ARTIFACT_DIR": tmp if mode == "mapped" else False}
                    with override_settings(XO_RECOMMENDER=conf):
                        if mode == "mapped":  # the machine's one download, then measure
                            download.append(max(measure(1)["first_load_s"]))
                        runs.append(measure(n))
            rows[n] = {
                "before": statistics.median(r["pss_before"] for r in runs),
                "after": statistics.median(r["pss_after"] for r in runs),
                "first": statistics.median(max(r["first_load_s"]) for r in runs),
                "switch": statistics.median(max(r["switch_s"]) for r in runs),
            }
        one = rows[1]
        for n, r in rows.items():
            model = r["after"] - r["before"]
            print(f"{mode:<10} {n:>7} {r['before']:>10.0f} {r['after']:>9.0f} {model:>9.0f} "
                  f"{model / max(one['after'] - one['before'], 1e-9):>9.2f} "
                  f"{r['after'] / one['after']:>8.2f} {r['first']:>7.2f} {r['switch']:>8.2f}",
                  flush=True)
    print(f"mapped: the machine's one download of a version took "
          f"{statistics.median(download):.2f} s (median; loads above find the file)")


if __name__ == "__main__":
    main()
