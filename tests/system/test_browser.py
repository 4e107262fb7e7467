"""End to end: the real server on 127.0.0.1, driven by a real headless Chromium.

Skips cleanly without Chromium, chromedriver or selenium (.ci/run installs
them). Set POETRY_RNN_SCREENSHOT=path.png to keep a screenshot of the page,
and POETRY_RNN_BROWSER_MODEL=checkpoints/default to serve that model instead
of the tests' tiny one (the README's screenshot).
"""

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from conftest import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs chromium and chromedriver")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tiny_model_dir):
    pytest.importorskip("fastapi")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=REPO)
    model_dir = os.environ.get("POETRY_RNN_BROWSER_MODEL", tiny_model_dir)
    process = subprocess.Popen([sys.executable, "-m", "poetry_rnn.serve", "--model_dir", model_dir, "--port", str(port)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    import httpx

    while True:
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            pytest.fail(f"server did not start: {process.stdout.read()}")
        time.sleep(0.3)
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=900,900", "--lang=zh-CN"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_the_page_writes_a_qijue_that_starts_with_the_typed_character(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(server)
    browser.find_element(By.ID, "begin").send_keys("春")
    browser.find_element(By.ID, "keywords").send_keys("江 月")  # the shipped model is keywords-conditioned
    Select(browser.find_element(By.ID, "form")).select_by_value("qijue")
    browser.find_element(By.ID, "write").click()
    WebDriverWait(browser, 60).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".poem .line")))
    lines = [line.text for line in browser.find_elements(By.CSS_SELECTOR, ".poem .line")]
    assert len(lines) == 4, lines
    assert all(len(line) == 8 and line[-1] in "，。" for line in lines), lines
    assert lines[0][0] == "春"
    assert len(browser.find_elements(By.CSS_SELECTOR, "mark.rhyme")) == 2  # lines 2 and 4 rhyme
    assert browser.find_element(By.ID, "error").text == ""
    if os.environ.get("POETRY_RNN_SCREENSHOT"):
        browser.save_screenshot(os.environ["POETRY_RNN_SCREENSHOT"])


def test_the_page_writes_a_ci_to_the_chosen_tune_and_marks_its_rhymes(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(server)
    WebDriverWait(browser, 30).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#cipai option[value='浣溪沙']")))
    Select(browser.find_element(By.ID, "cipai")).select_by_value("浣溪沙")
    assert not browser.find_element(By.ID, "form").is_enabled()
    browser.find_element(By.ID, "write").click()
    WebDriverWait(browser, 60).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".poem .line")))
    lines = [line.text for line in browser.find_elements(By.CSS_SELECTOR, ".poem .line")]
    assert [len(line) for line in lines] == [8] * 6 and "".join(line[-1] for line in lines) == "。。。，。。", lines
    assert len(browser.find_elements(By.CSS_SELECTOR, "mark.rhyme")) == 5  # every line but the fourth rhymes
    assert browser.find_element(By.CSS_SELECTOR, ".poem .title").text == "《浣溪沙》"
    assert browser.find_element(By.ID, "error").text == ""
