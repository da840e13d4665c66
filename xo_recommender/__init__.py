"""xo_recommender: personalised business recommendations for a Django site.

The package root stays importable before Django's app registry is ready (for example
from a host's ``settings.py`` or ``urls.py``): public functions that need models are
resolved lazily on first attribute access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "recommend_for", "record_interaction"]

if TYPE_CHECKING:  # pragma: no cover
    from xo_recommender.services import recommend_for, record_interaction

_LAZY = {
    "recommend_for": "xo_recommender.services",
    "record_interaction": "xo_recommender.services",
}


def __getattr__(name: str) -> Any:
    """Import service functions on first use, so importing the package never loads models."""
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'xo_recommender' has no attribute {name!r}")
