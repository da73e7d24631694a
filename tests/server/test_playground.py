"""The playground page in headless Chromium: ask, watch the answer stream, see citations."""

from __future__ import annotations

import shutil

import httpx
import pytest

from ragmem.server.app import create_app
from tests.server.conftest import DOCS, live_server, settings

webdriver = pytest.importorskip("selenium.webdriver")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Debian's chromium and chromium-driver (installed by .ci/run)",
)


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_ask_streams_an_answer_with_citations_and_chunks(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with live_server(create_app(settings(tmp_path / "store"))) as url:
        httpx.post(f"{url}/collections", json={"name": "docs"}, timeout=60)
        httpx.post(f"{url}/collections/docs/documents", json={"documents": DOCS}, timeout=60)
        httpx.post(
            f"{url}/memories",
            json={"text": "Ana prefers short answers", "user_id": "ana"},
            timeout=60,
        )
        browser.get(url + "/")
        wait = WebDriverWait(browser, 30)
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#collection option"))
        browser.find_element(By.ID, "question").send_keys("What is the capital of Portugal?")
        browser.find_element(By.ID, "ask").click()
        wait.until(lambda b: b.find_element(By.ID, "status").text == "done")
        answer = browser.find_element(By.ID, "answer").text
        assert "Lisbon is the capital of Portugal." in answer
        citations = browser.find_elements(By.CSS_SELECTOR, "#citations li")
        assert citations[0].text.startswith("[1] lisbon [0:34]")
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#chunks li"))
        chunk = browser.find_elements(By.CSS_SELECTOR, "#chunks li")[0].text
        assert "score" in chunk
        assert "retrievers" in chunk  # the explain of the hit
        browser.find_element(By.ID, "user").send_keys("ana")
        browser.find_element(By.ID, "browse").click()
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#memories li"))
        assert "Ana prefers short answers" in browser.find_element(By.ID, "memories").text
        shot = tmp_path / "playground.png"
        assert browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
