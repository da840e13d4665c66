"""Reasons are translatable and name the host site, not "XO Black"."""

import pickle

from django.utils import translation

from xo_recommender.engine.reasons import Reason
from xo_recommender.reason_text import render


def test_reasons_name_the_configured_site(settings):
    settings.XO_RECOMMENDER = {**settings.XO_RECOMMENDER, "SITE_NAME": "Corner Finds"}
    assert render(Reason("popular", site="this site")) == "Popular on Corner Finds"
    settings.XO_RECOMMENDER = {k: v for k, v in settings.XO_RECOMMENDER.items()
                               if k != "SITE_NAME"}
    assert render(Reason("popular", site="x")) == "Popular on this site"


def test_reasons_go_through_gettext(monkeypatch):
    from xo_recommender import reason_text

    catalogue = {"Because you {verb} {name}": "Parce que vous avez {verb} {name}",
                 "saved": "enregistré"}
    monkeypatch.setattr(reason_text, "gettext", lambda m: catalogue.get(m, m))
    monkeypatch.setattr(reason_text, "pgettext", lambda ctx, m: catalogue.get(m, m))
    with translation.override("fr"):
        text = render(Reason("because", verb="saved", name="Sweet Auburn Books"))
    assert text == "Parce que vous avez enregistré Sweet Auburn Books"


def test_a_reason_is_its_english_text_and_survives_the_cache():
    reason = Reason("distance", km="2.1")
    assert reason == "2.1 km away"
    again = pickle.loads(pickle.dumps(reason))
    assert again == reason and again.code == "distance" and again.params == {"km": "2.1"}
    assert render("plain text") == "plain text"


def test_a_page_renders_each_template_once_and_the_same_text(monkeypatch):
    from xo_recommender import reason_text

    calls = []
    monkeypatch.setattr(reason_text, "gettext", lambda m: calls.append(m) or f"«{m}»")
    monkeypatch.setattr(reason_text, "pgettext", lambda ctx, m: calls.append(m) or m)
    page = [[Reason("because", verb="saved", name=f"Shop {i}"), Reason("distance", km="1.2"),
             Reason("popular", site="x"), "plain text"] for i in range(10)]
    one_by_one = [reason_text.render_all(reasons) for reasons in page]
    calls.clear()
    render = reason_text.renderer()
    assert [render(reasons) for reasons in page] == one_by_one
    assert one_by_one[3][0] == "«Because you saved Shop 3»"
    # "because", "distance", "popular", the verb, and the site's fallback name: once each
    assert sorted(calls) == sorted(set(calls)) and len(calls) <= 5


def test_every_reason_the_engine_gives_has_a_translatable_message():
    from xo_recommender import reason_text
    from xo_recommender.engine.reasons import TEMPLATES

    assert set(TEMPLATES) == set(reason_text.MESSAGES)
    for code, text in TEMPLATES.items():
        assert reason_text.MESSAGES[code] == text


def test_the_similar_lists_reason_goes_through_gettext(monkeypatch, db):
    """"Often chosen together" was a plain English string that no language changed."""
    from tests.factories import coffee_and_books
    from xo_recommender import reason_text
    from xo_recommender.services import rebuild, similar_businesses

    world = coffee_and_books()
    rebuild()
    monkeypatch.setattr(reason_text, "gettext",
                        lambda m: {"Often chosen together": "Souvent choisis ensemble"}.get(m, m))
    with translation.override("fr"):
        results = similar_businesses(world["cafes"][0].pk, 2)["results"]
    assert results and all(r["reasons"] == ["Souvent choisis ensemble"] for r in results)
