#!/usr/bin/env python3
"""The demo page of the compose stack in a real headless Chromium, driven
through chromedriver with Selenium: create an account (which logs in), see
GET /api/me, log out; log in through the form, see /api/me again, log out,
and a reload stays logged out.

    python3 scripts/compose_browser.py http://localhost:3000

Needs Debian's chromium and chromium-driver (CHROMIUM and CHROMEDRIVER name
other binaries) and `pip install selenium`. Writes a screenshot of the
logged-in page to artifacts/compose-logged-in.png, and on failure what the
page showed to artifacts/compose-browser-failure.png.
"""

import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

PASSWORD = "correct horse battery staple"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

# What the page shows, read from its DOM (as stack-tests/tests/e2e/browser.rs).
STATE = """
    const shown = (id) => !document.getElementById(id).hidden;
    const field = (name) => {
        const dd = document.querySelector(`#me [data-field="${name}"]`);
        return dd ? dd.textContent : null;
    };
    return {
        loggedIn: shown('app-view'),
        loginShown: shown('login-view'),
        message: shown('message') ? document.getElementById('message').textContent : '',
        email: field('email'),
        log: [...document.querySelectorAll('#log li')].map((li) => li.dataset.entry),
    };
"""


def wait(driver, what, ready, limit=20):
    started = time.monotonic()
    while True:
        state = driver.execute_script(STATE)
        if ready(state):
            return state
        if time.monotonic() - started > limit:
            raise AssertionError(f"waiting for {what}; the page shows {state}")
        time.sleep(0.1)


def fill_in(driver, email):
    for field, text in (("email", email), ("password", PASSWORD)):
        element = driver.find_element(By.ID, field)
        element.clear()
        element.send_keys(text)


def scenario(driver, url):
    email = f"browser-{uuid.uuid4().hex}@example.com"
    driver.get(url)
    wait(driver, "the login form", lambda s: s["loginShown"])

    fill_in(driver, email)
    driver.find_element(By.ID, "register-button").click()
    state = wait(driver, "/api/me after creating the account", lambda s: s["loggedIn"] and s["email"] == email)
    assert "GET /api/me 200" in state["log"], state
    print(f"ok: account created and logged in, /api/me shows {email}")
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "compose-logged-in.png"))

    driver.find_element(By.ID, "logout-button").click()
    state = wait(driver, "logged out", lambda s: s["loginShown"])
    assert state["message"] == "You have logged out.", state
    print("ok: logged out")

    fill_in(driver, email)
    driver.find_element(By.ID, "login-button").click()
    state = wait(driver, "/api/me after logging in", lambda s: s["loggedIn"] and s["email"] == email)
    print("ok: logged in through the form, /api/me shown")

    driver.refresh()
    wait(driver, "the session restored by the refresh cookie after a reload", lambda s: s["loggedIn"] and s["email"] == email)
    print("ok: a reload keeps the session (HttpOnly refresh cookie)")

    driver.find_element(By.ID, "logout-button").click()
    wait(driver, "logged out again", lambda s: s["loginShown"])
    driver.refresh()
    state = wait(driver, "still logged out after a reload", lambda s: s["loginShown"] and not s["loggedIn"])
    assert state["message"] == "Log in, or create an account.", state
    print("ok: logged out, and a reload stays logged out")


def main():
    url = sys.argv[1] if len(sys.argv) > 1 else "http://localhost:3000"
    profile = tempfile.mkdtemp(prefix="compose-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-dev-shm-usage",
        "--no-first-run",
        # The network is closed: no calls home.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,860",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        scenario(driver, url)
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "compose-browser-failure.png"))
        print(f"screenshot: {ARTIFACTS / 'compose-browser-failure.png'}", file=sys.stderr)
        raise
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
