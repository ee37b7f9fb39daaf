"""A report page in a real browser (Debian's chromium, headless, through Selenium) at 1400 px.

Checks that the page opens with the verdict table, that nothing is wider than the window (wide
tables scroll inside their own box), that every embedded image decoded, that every line chart's
points run left to right, that no table header is a raw JSON key, and that the console holds no
errors. Prints one line per check and exits 1 on the first failure.
Usage: report_browser.py PAGE.html [SCREENSHOT.png]"""
import pathlib
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def main():
    page = pathlib.Path(sys.argv[1]).resolve().as_uri()
    screenshot = sys.argv[2] if len(sys.argv) > 2 else None
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000", "--hide-scrollbars"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(page)
        first = driver.find_element(By.CSS_SELECTOR, "section h2").text
        if "findings" not in first:
            fail(f"the first section is '{first}', not the verdict table")
        verdicts = driver.find_elements(By.CSS_SELECTOR, "table.verdicts tr")
        if len(verdicts) != 8:
            fail(f"the verdict table has {len(verdicts)} rows, not a header and seven findings")
        table = driver.find_element(By.CSS_SELECTOR, "table.verdicts")
        inner, box = driver.execute_script("return [arguments[0].scrollWidth, arguments[0].parentElement.clientWidth]", table)
        if inner > box:
            fail(f"the verdict table is {inner} px wide in a {box} px box: it should fit without scrolling")
        print("ok: the page opens with the verdict table of the seven findings, which fits the page")
        width = driver.execute_script("return document.documentElement.scrollWidth")
        viewport = driver.execute_script("return window.innerWidth")
        if width > viewport:
            fail(f"the page is {width} px wide in a {viewport} px window")
        print(f"ok: nothing is wider than the window ({width} ≤ {viewport} px)")
        images = driver.find_elements(By.TAG_NAME, "img")
        if not images:
            fail("the page has no image")
        broken = [i.get_attribute("alt") for i in images if driver.execute_script("return arguments[0].naturalWidth", i) == 0]
        if broken:
            fail(f"images that did not decode: {broken}")
        print(f"ok: every image decoded ({len(images)})")
        lines = driver.find_elements(By.CSS_SELECTOR, "svg polyline")
        if not lines:
            fail("the page has no chart line")
        for line in lines:
            xs = [float(p.split(",")[0]) for p in line.get_attribute("points").split()]
            if xs != sorted(xs):
                fail(f"a chart line runs back and forth: x = {xs}")
        print(f"ok: every chart line runs left to right ({len(driver.find_elements(By.CSS_SELECTOR, 'svg polyline'))} lines)")
        raw = [h.text for h in driver.find_elements(By.TAG_NAME, "th") if "_" in h.text]
        if raw:
            fail(f"table headers that are JSON keys: {raw}")
        print("ok: table headers are words, not JSON keys")
        if screenshot:
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1400, min(height, 1800))
            driver.save_screenshot(screenshot)
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        if errors:
            fail(f"the console has errors: {errors}")
        print("ok: the console has no errors")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
