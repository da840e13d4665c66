"""The engine is pure numpy/scipy: importing every module of it loads no Django."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import xo_recommender.engine as engine

ROOT = Path(__file__).resolve().parents[2]


def test_engine_modules_import_without_django():
    modules = [f"xo_recommender.engine.{m.name}" for m in pkgutil.iter_modules(engine.__path__)]
    assert "xo_recommender.engine.model" in modules
    code = (
        "import sys, importlib\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "loaded = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
