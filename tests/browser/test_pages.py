"""What a newcomer sees, in a real browser: the demo page with cards and the map, a
"save" that changes the list, the Swagger UI, and the admin's quality chart."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.factories import BusinessFactory, CategoryFactory, UserFactory
from xo_recommender import record_interaction
from xo_recommender.models import ModelVersion
from xo_recommender.services import rebuild

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def town(db):
    coffee = CategoryFactory(name="Coffee", slug="coffee")
    cafes = [BusinessFactory(name=f"Cafe {i}", categories=[coffee],
                             latitude=33.70 + i / 50, longitude=-84.45 + i / 60)
             for i in range(14)]
    for n in range(4):
        person = UserFactory(username=f"crowd{n}")
        for place in cafes:
            record_interaction(person, place, "like")
    demo = UserFactory(username="demo_user_000000", first_name="Ada", last_name="Demo")
    demo.set_password("demo")
    demo.save()
    record_interaction(demo, cafes[0], "like")
    rebuild()
    return demo


def wait(browser, seconds=15):
    return WebDriverWait(browser, seconds)


def sign_in(browser, live_server, username, password, page="/accounts/login/"):
    browser.get(live_server.url + page)
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "[type=submit]").click()


def card_ids(browser):
    return [c.get_attribute("data-business")
            for c in browser.find_elements(By.CSS_SELECTOR, "article.card")]


def test_demo_page_has_cards_and_map_and_save_changes_the_list(browser, live_server, town,
                                                               screenshots):
    browser.delete_all_cookies()
    sign_in(browser, live_server, "demo_user_000000", "demo")
    wait(browser).until(ec.presence_of_element_located((By.ID, "signed-in")))
    cards = card_ids(browser)
    assert len(cards) == 9
    # Leaflet drew one marker per card plus home, and lines between them.
    wait(browser).until(lambda b: b.find_element(By.ID, "map").get_attribute("data-markers"))
    assert browser.find_element(By.ID, "map").get_attribute("data-markers") == "10"
    drawn = browser.find_elements(By.CSS_SELECTOR, "#map path.leaflet-interactive")
    assert len(drawn) >= 10 + 9  # markers and lines
    browser.save_screenshot(str(screenshots / "demo.png"))

    first = browser.find_element(By.CSS_SELECTOR, "article.card")
    first.find_element(By.CSS_SELECTOR, "button[data-action=save]").click()
    wait(browser).until(ec.staleness_of(first))
    after = card_ids(browser)
    assert cards[0] not in after and len(after) == 9
    assert "Saved Cafe" in browser.find_element(By.CSS_SELECTOR, "[role=status]").text
    assert browser.find_elements(By.CSS_SELECTOR, ".badge.new")
    assert not browser.find_elements(By.ID, "user-problem")
    browser.save_screenshot(str(screenshots / "demo-after-save.png"))


def test_swagger_ui_renders_the_operations(browser, live_server, screenshots):
    browser.get(live_server.url + "/api/recommend/docs/")
    wait(browser, 30).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".opblock")) >= 10)
    paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert "/api/recommend/health/" in paths and "/api/recommend/{user_id}/" in paths
    browser.save_screenshot(str(screenshots / "swagger.png"))


def test_admin_quality_chart_renders(browser, live_server, screenshots, db):
    def figures(ndcg):
        return {"ndcg@10": ndcg, "precision@10": ndcg / 3, "recall@10": ndcg * 0.8,
                "coverage": 0.5}

    for i in range(3):
        ModelVersion.objects.create(status="ready", metrics={"holdout": {
            "k": 10, "users": 800, "cold_users": 90,
            "model": {"history": figures(0.35 + i / 40), "cold": figures(0.15)},
            "baselines": {"popular": {"history": figures(0.25), "cold": figures(0.12)}}},
            "serving": "model", "guardrail": "model ahead"})
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True)
    boss.set_password("boss")
    boss.save()
    browser.delete_all_cookies()
    sign_in(browser, live_server, "boss", "boss", page="/admin/login/?next=/admin/")
    wait(browser).until(ec.presence_of_element_located((By.ID, "user-tools")))
    browser.get(live_server.url + "/admin/xo_recommender/modelversion/")
    chart = wait(browser).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "#quality-charts svg")))
    assert chart.size["width"] > 300 and chart.size["height"] > 150
    assert len(browser.find_elements(By.CSS_SELECTOR, "#quality-charts polyline")) >= 2
    browser.save_screenshot(str(screenshots / "admin-quality.png"))


def test_a_business_name_is_shown_as_text_in_the_map_tooltips(browser, live_server, town):
    """Leaflet puts a string tooltip in as HTML: a host's business name carrying markup
    ran script for whoever hovered its pin (stored XSS)."""
    from example_project.xo_black.models import Business

    payload = '"><img src=x onerror="window.__xss = 1">'
    Business.objects.filter(name__startswith="Cafe").update(name=payload)
    browser.delete_all_cookies()
    sign_in(browser, live_server, "demo_user_000000", "demo")
    wait(browser).until(lambda b: b.find_element(By.ID, "map").get_attribute("data-markers"))
    for marker in browser.find_elements(By.CSS_SELECTOR, "#map path.leaflet-interactive"):
        browser.execute_script(
            "arguments[0].dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))", marker)
    tips = browser.find_elements(By.CSS_SELECTOR, ".leaflet-tooltip")
    assert any(payload in tip.text for tip in tips)  # shown, as text
    assert not browser.find_elements(By.CSS_SELECTOR, ".leaflet-tooltip img")
    assert browser.execute_script("return window.__xss") is None
