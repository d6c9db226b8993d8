"""The console's first run, in Debian's headless chromium (selenium), against a `panoptes serve` with
no API key anywhere (loopback, the default): the console opens straight in, without asking for a key,
under a banner saying the API is open; the Admin section creates the first key, which closes the API
and becomes the console's key; after a reload the console is still signed in with it, and signing
out leaves the sign-in form alone. Run by tests/console.rs.

usage: first_run_test.py BASE_URL ARTIFACTS_DIR
"""
import json
import os
import sys
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

base, artifacts = sys.argv[1:]
os.makedirs(artifacts, exist_ok=True)

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900", "--disable-gpu"]:
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 60)


def shot(name):
    driver.save_screenshot(os.path.join(artifacts, f"first-run-{name}.png"))


def shown(element_id):
    wait.until(lambda d: d.find_element(By.ID, element_id).is_displayed())


def gone(element_id):
    wait.until(lambda d: not d.find_element(By.ID, element_id).is_displayed())


def access():
    with urllib.request.urlopen(base + "/api/v1/access") as r:
        return json.load(r)


try:
    assert access() == {"open": True}, access()

    # Straight in: the live wall under the open-API banner, no sign-in form, no key asked for.
    driver.get(base + "/")
    shown("nav")
    shown("open-banner")
    banner = driver.find_element(By.ID, "open-banner").text
    assert "open" in banner and "key" in banner, banner
    assert not driver.find_element(By.ID, "signin").is_displayed(), "the sign-in form shows on an open API"
    assert not driver.find_element(By.ID, "signout").is_displayed(), "sign-out shows on an open API"
    wait.until(lambda d: d.find_element(By.ID, "wall"))
    shot("open")

    # Every section works without a key; the Admin section is there (an open API lets anyone in).
    for section in ["cameras", "people", "appearances", "admin"]:
        driver.find_element(By.CSS_SELECTOR, f'nav a[href="#/{section}"]').click()
        wait.until(lambda d: d.find_element(By.ID, "view").text.strip() != "")
        errors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#view p.error") if e.text.strip()]
        assert not errors, f"{section}: {errors}"

    # The first key, from the Admin section the banner points to: it closes the API and the console
    # carries on with it.
    driver.find_element(By.CSS_SELECTOR, "#open-banner a").click()
    form = wait.until(EC.presence_of_element_located((By.ID, "new-key")))
    form.find_element(By.NAME, "name").send_keys("site admin")
    form.find_element(By.CSS_SELECTOR, "#key-role option[value=admin]").click()
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    secret = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#new-key .secret"))).text
    assert secret.startswith("pnp_"), secret
    gone("open-banner")
    assert access() == {"open": False}, access()
    wait.until(lambda d: "site admin" in d.find_element(By.CSS_SELECTOR, "#view table").text)
    shown("signout")
    shot("first-key")

    driver.find_element(By.CSS_SELECTOR, 'nav a[href="#/people"]').click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#view section table"))

    # A reload keeps the tab signed in with that key.
    driver.refresh()
    shown("nav")
    assert not driver.find_element(By.ID, "open-banner").is_displayed()
    assert not driver.find_element(By.ID, "signin").is_displayed()

    # Signing out: the sign-in form alone.
    driver.find_element(By.ID, "signout").click()
    shown("signin")
    for hidden in ["nav", "alerts", "open-banner"]:
        assert not driver.find_element(By.ID, hidden).is_displayed(), f"#{hidden} shows after sign-out"
    shot("signed-out")
    print("first run: every step passed")
finally:
    driver.quit()
