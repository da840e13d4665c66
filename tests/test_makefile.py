"""`make test`'s default database is named after the checkout, so runs never collide."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def default_database(cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "MAKEFLAGS"}}
    dry = subprocess.run(["make", "-n", "test"], cwd=cwd, env=env, text=True,
                         capture_output=True, check=True).stdout
    return re.search(r"DATABASE_URL=postgres://\S+/(\S+)", dry).group(1)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_each_checkout_gets_its_own_default_test_database(tmp_path):
    here = default_database(ROOT)
    for name in ("Makefile", "pyproject.toml"):  # a second checkout, elsewhere
        shutil.copy(ROOT / name, tmp_path / name)
    elsewhere = default_database(tmp_path)
    assert here.startswith("xo_recommender_") and elsewhere.startswith("xo_recommender_")
    assert here != elsewhere
    assert default_database(ROOT) == here  # stable for one checkout
