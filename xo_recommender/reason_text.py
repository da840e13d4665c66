"""Reasons in the request's language, naming the host site.

The engine words every reason in English and tags it with a code and its fields
(``engine.reasons.Reason``); here each code has a translatable message, so a host
translates them like any other string of its own (``makemessages`` finds them) and
``SITE_NAME`` names the site in "Popular on …".
"""

from __future__ import annotations

from django.utils.translation import gettext, gettext_noop, pgettext

from xo_recommender.conf import settings as rec_settings

MESSAGES: dict[str, str] = {
    "because": gettext_noop("Because you {verb} {name}"),
    "similar_taste": gettext_noop("Liked by people with similar taste"),
    "similar_to": gettext_noop("Similar to {name} you {verb}"),
    "interest": gettext_noop("Matches your interest in {term}"),
    "category": gettext_noop("You often go to {category} places"),
    "trending_near": gettext_noop("Trending near you"),
    "trending": gettext_noop("Trending on {site}"),
    "popular_near": gettext_noop("Popular near you"),
    "popular": gettext_noop("Popular on {site}"),
    "rated": gettext_noop("Highly rated"),
    "distance": gettext_noop("{km} km away"),
    "usual_area": gettext_noop("Near places you often go"),
    "trending_usual": gettext_noop("Trending near places you often go"),
    "popular_usual": gettext_noop("Popular near places you often go"),
    "shares": gettext_noop("Also {terms}"),
    "chosen_together": gettext_noop("Often chosen together"),
    "fallback": gettext_noop("Recommended for you"),
}

#: The past tenses a reason uses ("Because you saved …"), translated in context.
VERBS = ("viewed", "liked", "saved", "bought", "shared")


def site_name() -> str:
    return rec_settings.SITE_NAME or gettext("this site")


def render(reason: str, _translated: dict | None = None) -> str:
    """One reason as text for the current language (plain strings pass through).

    ``_translated`` memoises the translated templates and verbs of one request (same
    language throughout): a page has a few dozen reasons but a handful of codes.
    """
    code = getattr(reason, "code", None)
    if code not in MESSAGES:
        return str(reason)
    memo = {} if _translated is None else _translated
    params = dict(getattr(reason, "params", {}))
    if "site" in params:
        params["site"] = memo.get("\x00site") or memo.setdefault("\x00site", site_name())
    verb = params.get("verb")
    if verb in VERBS:
        key = "\x00verb " + verb
        params["verb"] = memo.get(key) or memo.setdefault(key, pgettext("reason verb", verb))
    template = memo.get(code) or memo.setdefault(code, gettext(MESSAGES[code]))
    return template.format(**params)


def render_all(reasons, _translated: dict | None = None) -> list[str]:
    return [render(r, _translated) for r in reasons]


def renderer():
    """``render_all`` for one request: each template and verb translated once."""
    memo: dict = {}
    return lambda reasons: render_all(reasons, memo)
