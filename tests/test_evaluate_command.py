"""evaluate_recommender: the serving engine on files; bad files are one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

ROOT = Path(__file__).resolve().parent.parent
HEADER = "user_id\titem_id\trating\ttimestamp\n"


def write(path: Path, rows: list[tuple], header: str = HEADER) -> str:
    path.write_text(header + "".join("\t".join(map(str, r)) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def split(tmp_path):
    """Two taste groups of five users; each user's last group item is held out."""
    train, test = [], []
    for u in range(10):
        group = [1, 2, 3, 4] if u < 5 else [11, 12, 13, 14]
        for item in group[:3]:
            train.append((u, item, 5, 0))
        test.append((u, group[3], 5, 0))
    train += [(0, 4, 5, 0), (5, 14, 5, 0)]  # the held-out items are known to the model
    test[0] = (0, 2, 5, 0)  # a train item in test stays a miss: it is excluded
    return write(tmp_path / "train.tsv", train), write(tmp_path / "test.tsv", test)


def test_json_output_has_the_documented_keys_and_finds_the_structure(split, capsys):
    train, test = split
    call_command("evaluate_recommender", train=train, test=test, k=1, format="json",
                 baseline="popular")
    result = json.loads(capsys.readouterr().out)
    assert {"precision", "recall", "ndcg", "map", "coverage", "fit_seconds", "users",
            "k"} <= set(result)
    assert result["users"] == 10 and result["k"] == 1
    # users 1-4 and 6-9 get their group's held-out item first; user 0's test item was
    # seen in train (excluded), user 5's was too: 8 hits of 10
    assert result["precision"] == pytest.approx(0.8)
    assert result["baseline"]["precision"] < result["precision"]


def test_table_output(split, capsys):
    train, test = split
    call_command("evaluate_recommender", train=train, test=test)
    out = capsys.readouterr().out
    assert "ndcg@10" in out and "users evaluated: 10" in out


@pytest.mark.parametrize("problem, content, line", [
    ("missing", None, None),
    ("wrong header", "user\titem\trating\ttimestamp\n1\t2\t5\t0\n", 1),
    ("non-numeric id", HEADER + "1\t2\t5\t0\nabc\t2\t5\t0\n", 3),
    ("id beyond 64 bits", HEADER + f"{2**64}\t2\t5\t0\n", None),
    ("not UTF-8", HEADER.encode() + b"1\t2\t5\t0\n\xff\xfe\t2\t5\t0\n", None),
])
def test_bad_files_are_one_line_errors_naming_file_and_line(tmp_path, problem, content, line):
    bad = tmp_path / "bad.tsv"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    elif content is not None:
        bad.write_text(content)
    good = write(tmp_path / "good.tsv", [(1, 2, 5, 0)])
    with pytest.raises(CommandError) as excinfo:
        call_command("evaluate_recommender", train=str(bad), test=good)
    message = str(excinfo.value)
    assert "\n" not in message and str(bad) in message
    if line is not None:
        assert f"{bad}:{line}" in message


def test_exit_status_through_manage_py(tmp_path):
    missing = tmp_path / "nope.tsv"
    proc = subprocess.run(
        [sys.executable, "manage.py", "evaluate_recommender", "--train", str(missing),
         "--test", str(missing)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert str(missing) in proc.stderr and proc.stderr.strip().count("\n") == 0


@pytest.mark.django_db
def test_the_file_mode_learns_the_ranking_unless_blend_weights_are_set(split, monkeypatch,
                                                                       settings):
    """As a rebuild would: the ranking is learned on the train file's own temporal
    holdout, except when fixed ``BLEND_WEIGHTS`` are configured."""
    from xo_recommender.conf import settings as rec_settings
    from xo_recommender.engine import selfeval

    learned = []
    real = selfeval.learn_ranking

    def counting(*args, **kwargs):  # the real learning, counted
        learned.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(selfeval, "learn_ranking", counting)
    train, test = split
    call_command("evaluate_recommender", train=train, test=test, format="json")
    assert learned == [1]
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER,
                               "BLEND_WEIGHTS": {"collaborative": 1.0}}
    rec_settings.reload()
    call_command("evaluate_recommender", train=train, test=test, format="json")
    assert learned == [1]  # fixed weights: nothing learned


@pytest.mark.django_db
@pytest.mark.parametrize(("later", "expected"), [(True, "time"), (False, "random")])
def test_the_file_mode_learns_on_a_holdout_drawn_as_the_test_split_was(
        tmp_path, monkeypatch, later, expected):
    """Test rows after each user's training rows: the learning holds out each user's
    latest; test rows among them (a random split): a random share."""
    from xo_recommender.engine import selfeval

    train, test = [], []
    for u in range(30):
        for item in range(8):
            train.append((u, item + u % 5, 5, 100 * item))
        test.append((u, 20 + u % 3, 5, 900 if later else 350))
    seen = []
    real = selfeval.learn_ranking

    def recording(*args, **kwargs):
        seen.append(kwargs.get("split_by"))
        return real(*args, **kwargs)

    monkeypatch.setattr(selfeval, "learn_ranking", recording)
    call_command("evaluate_recommender", train=write(tmp_path / "train.tsv", train),
                 test=write(tmp_path / "test.tsv", test), format="json")
    assert seen == [expected]


@pytest.mark.parametrize("flags", [{"train": "x.tsv"}, {"test": "y.tsv", "items": "z.item"},
                                   {"baseline": "popular"}])
def test_live_refuses_the_file_modes_flags(db, flags):
    with pytest.raises(CommandError, match="--live evaluates the database: leave out --"):
        call_command("evaluate_recommender", live=True, **flags)
