"""The API's JSON parser: a bounded read, and nesting too deep answered 400, not 500.

DRF's ``JSONParser`` reads the whole stream whatever its size and lets the standard
library's ``RecursionError`` (``[[[…]]]`` a couple of thousand deep, a few KB) escape
as a 500.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

from xo_recommender.api.errors import BodyTooDeep, BodyTooLarge, drain
from xo_recommender.conf import settings as rec_settings


class BoundedJSONParser(JSONParser):
    """JSON of at most ``MAX_BODY_BYTES`` (else 413) and parseable depth (else 400)."""

    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: dict[str, Any] | None = None) -> Any:
        limit = int(rec_settings.MAX_BODY_BYTES)
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and str(declared).isdigit() and int(declared) > limit:
            drain(stream)
            raise BodyTooLarge(f"The request body is larger than {limit} bytes.")
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            drain(stream)
            raise BodyTooLarge(f"The request body is larger than {limit} bytes.")
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            text = raw.decode(encoding)
            constant = json.strict_constant if self.strict else None
            return json.loads(text, parse_constant=constant)
        except RecursionError:
            raise BodyTooDeep() from None
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"The body is not valid {encoding}.") from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc

