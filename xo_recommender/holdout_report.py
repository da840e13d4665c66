"""The holdout figures of a model version as a plain-text table, for people.

``ModelVersion.metrics["holdout"]`` (written by every rebuild that learns its ranking)
holds the learned model's figures and each baseline's, for users with a history and
for new users; the rebuild command and ``evaluate_recommender --live`` print them with
this, so what an operator reads is what the version stores.
"""

from __future__ import annotations

from collections.abc import Mapping

from xo_recommender.engine.selfeval import MARGIN

COLUMNS = (("ndcg@10", "NDCG@10"), ("precision@10", "P@10"), ("recall@10", "R@10"),
           ("coverage", "cover"))
SEGMENTS = (("history", "returning users"), ("cold", "new users"))


def _cells(figures: Mapping | None) -> list[str]:
    if not figures:
        return ["-".rjust(7)] * len(COLUMNS)
    return [f"{float(figures.get(key, 0.0)):7.4f}" for key, _ in COLUMNS]


def holdout_table(metrics: Mapping) -> list[str]:
    """Lines of text: one row per ranking, returning and new users side by side."""
    holdout = (metrics or {}).get("holdout")
    if not holdout:
        notes = (metrics or {}).get("notes") or []
        return ["No holdout figures: " + ("; ".join(notes) if notes else
                                          "this version did not learn its ranking.")]
    segments = [(key, label) for key, label in SEGMENTS
                if key in holdout.get("model", {})
                or any(key in b for b in holdout.get("baselines", {}).values())]
    lines = [f"Holdout (k={holdout.get('k', 10)}): {holdout.get('users', 0):,} returning "
             f"users, {holdout.get('cold_users', 0):,} new users measured"]
    head = " " * 20 + "".join(f"{label:^{8 * len(COLUMNS)}}" for _, label in segments)
    cols = " " * 20 + "".join(
        "".join(f"{name:>8}" for _, name in COLUMNS) for _ in segments)
    lines += [head, cols]
    rows = [("learned model", holdout.get("model", {}))]
    rows += sorted(holdout.get("baselines", {}).items())
    for name, by_segment in rows:
        cells = "".join(" " + " ".join(_cells(by_segment.get(key))) for key, _ in segments)
        lines.append(f"{name:<20}{cells}")
    lines.append(f"Serving: {metrics.get('guardrail') or metrics.get('serving', 'model')}")
    tuning = tuning_text(metrics)
    if tuning:
        lines.append(f"Hyperparameters: {tuning}")
    return lines


def tuning_text(metrics: Mapping) -> str:
    """Each hyperparameter's values tried on the holdout, with NDCG@10, the chosen one
    marked: ``half_life_days 90: 0.41, 30: 0.43 (chosen), none: 0.40``."""
    tuning = (metrics or {}).get("tuning") or {}
    chosen = {k: ("none" if v is None else f"{v:g}")
              for k, v in (tuning.get("hyperparameters") or {}).items()}
    parts = []
    for name, values in (tuning.get("tried") or {}).items():
        default = next(iter(values), None)
        pick = chosen.get(name, default)
        # another value outscored it, by less than the margin a change needs
        kept = pick in values and any(v > values[pick] for v in values.values())
        mark = f" (chosen: none beat it by {MARGIN:.0%})" if kept else " (chosen)"
        parts.append(f"{name} " + ", ".join(
            f"{value}: {ndcg:.4f}" + (mark if value == pick else "")
            for value, ndcg in values.items()))
    return "; ".join(parts)
