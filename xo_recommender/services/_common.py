"""Small helpers shared by the service modules."""

from __future__ import annotations

from typing import Any


def _pk(value: Any) -> Any:
    return getattr(value, "pk", value)
