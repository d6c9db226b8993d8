"""The operators' console in Debian's headless chromium (selenium), against a running `panoptes serve`
with the demo camera showing Obama: before sign-in only the sign-in form shows; sign in; the live tile shows the demo camera; a webcam capture
(Chromium's fake camera) and a non-photo refused in words; enroll Obama through the form; an alert appears in the live panel; open the appearance and its snapshot; add then
delete a camera; a bad photo shows its reason; search by a photo, then by an appearance's own face,
and a non-photo refused; the review queue confirms a recognition from the keyboard and undoes it; an
alert rule is made (its name then comes with the live alerts), disabled and deleted; Obama's timeline
shows the demo camera and takes his groups; the unknown faces page opens; a viewer key sees no write
buttons (no Confirm in the review queue, no rule form). Screenshots go to
the artifacts folder. Run by tests/console.rs.

usage: console_test.py BASE_URL ADMIN_KEY VIEWER_KEY PHOTOS_DIR ARTIFACTS_DIR
"""
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

base, admin_key, viewer_key, photos, artifacts = sys.argv[1:]
os.makedirs(artifacts, exist_ok=True)

options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
            "--disable-gpu", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]:
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 60)
step = [0]


def shot(name):
    step[0] += 1
    driver.save_screenshot(os.path.join(artifacts, f"{step[0]:02d}-{name}.png"))


def find(css):
    return wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))


def text_in(css, text):
    try:
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
    except TimeoutException:
        shot("failed")
        el = driver.find_elements(By.CSS_SELECTOR, css)
        raise AssertionError(f"{css} never showed {text!r}; it shows {el[0].text if el else 'nothing'!r}")


def sign_in(key):
    driver.get(base + "/#/wall")
    # The form shows once the page knows the API needs a key.
    wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, "#key"))).send_keys(key)
    find("#signin button[type=submit]").click()
    find("#nav:not([hidden])")


def go(section):
    driver.find_element(By.CSS_SELECTOR, f'nav a[href="#/{section}"]').click()


def press(keys):
    """Types keys as an operator would, into the page (not into a field)."""
    ActionChains(driver).send_keys(keys).perform()


try:
    # The first page weighs little and comes with no outside resources.
    driver.get(base + "/")
    weight = driver.execute_script(
        "return performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))"
        ".reduce((s, e) => s + (e.transferSize || e.encodedBodySize || 0), 0)")
    assert weight < 200 * 1024, f"first page {weight} bytes"

    # Before sign-in, with keys configured: the sign-in form and nothing else (no navigation, no
    # alerts, no view, no open-API banner).
    wait.until(lambda d: d.find_element(By.ID, "signin").is_displayed())
    for hidden in ["nav", "alerts", "open-banner", "signout"]:
        assert not driver.find_element(By.ID, hidden).is_displayed(), f"#{hidden} shows before sign-in"
    assert not driver.find_elements(By.CSS_SELECTOR, "nav a") or not any(
        a.is_displayed() for a in driver.find_elements(By.CSS_SELECTOR, "nav a")), "a navigation link shows before sign-in"
    assert driver.find_element(By.ID, "view").text == "", "a view shows before sign-in"
    driver.get(base + "/#/people")
    time.sleep(1)
    assert driver.find_element(By.ID, "signin").is_displayed() and driver.find_element(By.ID, "view").text == "", \
        "a section's address opened it without a key"
    shot("sign-in")

    # A wrong key is refused in words.
    find("#key").send_keys("not-a-key-of-this-engine")
    find("#signin button[type=submit]").click()
    text_in("#signin-error", "not valid")
    find("#key").clear()

    # Sign in as admin: the live tile of the demo camera, with its picture.
    sign_in(admin_key)
    text_in('#wall [data-camera="demo"]', "streaming")
    wait.until(lambda d: d.execute_script(
        "const i = document.querySelector('#wall [data-camera=\"demo\"] img'); return i && i.naturalWidth > 0"))
    shot("live-wall")

    # A bad photo shows its reason.
    go("people")
    find("#enroll input[name=name]").send_keys("Nobody")
    find("#enroll input[type=file]").send_keys(os.path.join(photos, "not-a-photo.jpg"))
    find("#enroll button[type=submit]").click()
    text_in("#enroll .form-error", "not a JPEG, PNG or WebP")
    shot("bad-photo")

    # A webcam capture (Chromium's fake camera: a test pattern, no face) is refused in words.
    go("people")
    find("#enroll input[name=name]").send_keys("Webcam visitor")
    driver.find_element(By.XPATH, "//form[@id='enroll']//button[text()='Use webcam']").click()
    wait.until(lambda d: d.execute_script("const v = document.querySelector('#enroll video'); return v && v.videoWidth > 0"))
    driver.find_element(By.XPATH, "//form[@id='enroll']//button[text()='Take photo']").click()
    text_in("#enroll", "Photo taken.")
    find("#enroll button[type=submit]").click()
    text_in("#enroll .form-error", "No face was found")
    shot("webcam-refused")

    # Enroll Obama through the form.
    go("people")
    find("#enroll input[name=name]").send_keys("Barack Obama")
    find("#enroll input[type=file]").send_keys(os.path.join(photos, "obama.jpg"))
    find("#enroll button[type=submit]").click()
    text_in("#enroll .form-ok", "Enrolled Barack Obama")
    find('tr[data-person="Barack Obama"]')
    shot("enrolled")

    # An alert for him arrives in the live panel.
    text_in("#alert-list", "Barack Obama")
    shot("alert")

    # Open the appearance and its snapshots. The alert may come before its row is written (within
    # about 200 ms, longer on a busy machine) and the page lists what is stored when it opens: the
    # operator shows it again (the filter's Show button) until the row is there.
    go("appearances")
    find("#filters button[type=submit]")
    WebDriverWait(driver, 60, poll_frequency=2).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#appearances tr.appearance a")
        or d.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click())
    link = find("#appearances tr.appearance a")
    wait.until(lambda d: "Barack Obama" in d.find_element(By.CSS_SELECTOR, "#appearances").text)
    link = driver.find_element(By.XPATH, "//table[@id='appearances']//a[text()='Barack Obama']")
    link.click()
    wait.until(lambda d: d.execute_script(
        "const f = document.getElementById('face-snapshot'), g = document.getElementById('frame-snapshot');"
        "return f && g && f.naturalWidth > 0 && g.naturalWidth > 0"))
    shot("appearance")

    # The camera's page: its picture and recent appearances.
    go("wall")
    find('#wall [data-camera="demo"] a').click()
    text_in("#view", "Recent appearances")
    text_in("#view table", "Barack Obama")
    shot("camera-page")

    # Admin: a key is created (shown once), listed, revoked.
    go("admin")
    form = find("#new-key")
    form.find_element(By.NAME, "name").send_keys("lobby screen")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    secret = find("#new-key .secret").text
    assert secret.startswith("pnp_"), secret
    text_in("#view table", "lobby screen")
    text_in("#stats", "{")
    shot("admin")
    driver.find_element(By.CSS_SELECTOR, 'button[aria-label="Revoke key lobby screen"]').click()
    driver.switch_to.alert.accept()
    wait.until(lambda d: "lobby screen" not in d.find_element(By.CSS_SELECTOR, "#view table").text)

    # Add a camera (a bad URL first: the reason sits next to the field), then delete it.
    go("cameras")
    form = find("form.camera-form")
    form.find_element(By.NAME, "name").send_keys("Side door")
    form.find_element(By.NAME, "url").send_keys("ftp://192.0.2.1/stream")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    text_in('form.camera-form [data-error-for="url"]', "rtsp")
    shot("camera-url-refused")
    url = form.find_element(By.NAME, "url")
    url.clear()
    url.send_keys("rtsp://192.0.2.1/stream")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    find('tr[data-camera="Side door"]')
    shot("camera-added")
    driver.find_element(By.CSS_SELECTOR, 'tr[data-camera="Side door"] button.danger').click()
    driver.switch_to.alert.accept()
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, 'tr[data-camera="Side door"]'))

    # Identify: the photo comes back with a box and the match.
    go("identify")
    find("#identify-photo").send_keys(os.path.join(photos, "obama2.jpg"))
    text_in("#identify-result", "Barack Obama")
    shot("identify")

    # Search by face: a photo finds the demo camera's appearances of Obama, best first; one opens its
    # appearance, whose own face searches again.
    go("search")
    find("#search-photo").send_keys(os.path.join(photos, "obama2.jpg"))
    text_in("#search-result", "Barack Obama")
    shot("search")
    find("#search-result .tile a").click()
    find("#find-elsewhere").click()
    text_in("#search-from", "appearance")
    text_in("#search-result", "Barack Obama")
    # A photo with no face is refused in words.
    go("search")
    find("#search-photo").send_keys(os.path.join(photos, "not-a-photo.jpg"))
    text_in("#search-result", "not a JPEG, PNG or WebP")

    # On a phone's screen the sections stack and stay usable.
    driver.set_window_size(390, 844)
    go("wall")
    text_in('#wall [data-camera="demo"]', "streaming")
    wide = driver.execute_script("return document.documentElement.scrollWidth")
    assert wide <= 400, f"the page is {wide} px wide on a 390 px screen"
    shot("phone")
    driver.set_window_size(1280, 900)

    # The review queue: Obama's recognised appearances, newest first, the first one selected. "c"
    # confirms the selected one (the selection moves on) and "u" undoes it. An appearance still going
    # on may be judged again meanwhile, or its face be unfit to enrol: then the next one ("j").
    go("review")
    find("#review-list .review-card.selected")
    text_in("#review-keys", "confirm")
    confirmed = None
    for attempt in range(4):
        detection = find("#review-list .review-card.selected").get_attribute("data-detection")
        card = f'#review-list .review-card[data-detection="{detection}"]'
        press("c")
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, card).get_attribute("data-review") == "confirmed"
                   or d.find_element(By.CSS_SELECTOR, card + " .card-error").text)
        if driver.find_element(By.CSS_SELECTOR, card).get_attribute("data-review") == "confirmed":
            confirmed = card
            break
        print("review queue: appearance", detection, "refused:", driver.find_element(By.CSS_SELECTOR, card + " .card-error").text)
        press("j")
    assert confirmed, "no appearance in the review queue could be confirmed"
    text_in(confirmed + " .outcome", "Confirmed as Barack Obama")
    # The selection moved on to the next card (unless it was the last).
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, confirmed).get_attribute("aria-current") is None
               or d.find_elements(By.CSS_SELECTOR, "#review-list .review-card")[-1].get_attribute("data-detection") == detection)
    shot("review-queue")
    press("u")
    text_in(confirmed + " .outcome", "Undone")
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, confirmed).get_attribute("data-review") == "")
    assert driver.find_element(By.CSS_SELECTOR, confirmed + " button.confirm").is_displayed(), "no Confirm after the undo"

    # The rules editor: a rule for Obama on the demo camera, all day every day (no day ticked); his
    # live alerts then name it. Edited to disabled, then deleted.
    go("rules")
    text_in("#rules-timezone", "site's time")
    form = find("#rule-form")
    form.find_element(By.NAME, "name").send_keys("Obama at the demo camera")
    Select(find("#rule-who")).select_by_value("known")
    Select(find("#rule-persons")).select_by_visible_text("Barack Obama")
    Select(find("#rule-cameras")).select_by_visible_text("demo")
    find("#add-window").click()
    row = find("#rule-windows .window-row")
    driver.execute_script("arguments[0].value = '00:00'; arguments[1].value = '23:59';",
                          row.find_element(By.CSS_SELECTOR, ".win-start"), row.find_element(By.CSS_SELECTOR, ".win-end"))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    rule = 'tr[data-rule="Obama at the demo camera"]'
    text_in(rule, "enabled")
    text_in(rule, "Barack Obama")
    text_in(rule, "demo")
    text_in(rule, "every day 00:00–23:59")
    text_in("#alert-list", "Obama at the demo camera")
    find(f'{rule} button[aria-label="Edit rule Obama at the demo camera"]').click()
    text_in("#rule-form h2", "Edit rule Obama at the demo camera")
    chosen = [o.text for o in Select(find("#rule-persons")).all_selected_options]
    assert chosen == ["Barack Obama"], f"the rule's persons in its form: {chosen}"
    enabled = find("#rule-form input[name=enabled]")
    assert enabled.is_selected(), "the rule shows disabled in its form"
    enabled.click()
    find("#rule-form button[type=submit]").click()
    text_in(rule + " .rule-state", "disabled")
    driver.execute_script("document.querySelector('#rules-table').scrollIntoView()")
    shot("rules")
    find(f'{rule} button[aria-label="Delete rule Obama at the demo camera"]').click()
    driver.switch_to.alert.accept()
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, rule))

    # A person's timeline, from the People table: Obama's appearances by day, on the demo camera;
    # his groups are set there.
    go("people")
    find('tr[data-person="Barack Obama"] a[href^="#/person/"]').click()
    text_in("#person h2", "Barack Obama")
    find('#timeline .timeline-entry[data-camera="demo"]')
    text_in('#timeline-cameras tr[data-camera="demo"]', "demo")
    groups = find("#person-groups input[name=groups]")
    groups.clear()
    groups.send_keys("staff, vip")
    find("#person-groups button[type=submit]").click()
    text_in("#person-groups .form-ok", "saved")
    text_in("#person-groups-shown", "staff, vip")
    shot("timeline")

    # Unknown faces: identities to name, or, when the engine has grouped none, a word saying so.
    go("unknowns")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#unknowns-list .unknown-card, #unknowns-empty"))
    shot("unknowns")
    cards = driver.find_elements(By.CSS_SELECTOR, "#unknowns-list .unknown-card")
    if cards:
        assert "appearance" in cards[0].text, cards[0].text
        cards[0].find_element(By.CSS_SELECTOR, ".meta strong a").click()
        text_in("#unknown h2", "Unknown face #")
        find("#unknown-appearances")
    else:
        text_in("#unknowns-empty", "No unknown faces")

    # Sign out; a viewer key sees everything and no write control.
    find("#signout").click()
    sign_in(viewer_key)
    text_in('#wall [data-camera="demo"]', "demo")
    for section in ["cameras", "people"]:
        go(section)
        find("#view section table")
        time.sleep(1)
        writes = driver.find_elements(By.CSS_SELECTOR, "#view .write, #view form.camera-form, #view #enroll")
        assert not writes, f"a viewer sees {len(writes)} write controls on {section}"
        assert "null" not in driver.find_element(By.ID, "view").text.split(), f"'null' shown on {section}"
    # The review queue without Confirm or Reject (nor their keys), the rules without their form.
    go("review")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#review-list .review-card, #review-empty"))
    press("c")
    time.sleep(1)
    confirms = driver.find_elements(By.XPATH, "//div[@id='view']//button[normalize-space()='Confirm' or normalize-space()='Reject']")
    assert not confirms, f"a viewer sees {len(confirms)} Confirm or Reject buttons in the review queue"
    assert not driver.find_elements(By.CSS_SELECTOR, '#review-list .review-card[data-review="confirmed"]'), "a viewer's key confirmed"
    go("rules")
    find("#rules-table tbody tr")
    time.sleep(1)
    saves = driver.find_elements(By.XPATH, "//div[@id='view']//button[normalize-space()='Save']")
    assert not saves and not driver.find_elements(By.ID, "rule-form"), "a viewer sees the rule form"
    admin_links = [a for a in driver.find_elements(By.CSS_SELECTOR, "nav a.admin-only") if a.is_displayed()]
    assert not admin_links, "a viewer sees the Admin section"
    shot("viewer")
    print("console: every step passed")
finally:
    driver.quit()
