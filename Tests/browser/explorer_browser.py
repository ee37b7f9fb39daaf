"""The explorer in a real browser (Debian's chromium, headless, through chromedriver and Selenium).

Loads the page, picks an image from the strip, drags a logit slider and checks that the
reconstruction changed; uploads a PNG and checks that it becomes the original; checks that the
browser console holds no errors. Prints one line per check and exits 1 on the first failure.
Usage: explorer_browser.py URL UPLOAD.png [SCREENSHOT.png]"""
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def main():
    url, upload = sys.argv[1], sys.argv[2]
    screenshot = sys.argv[3] if len(sys.argv) > 3 else None
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    wait = WebDriverWait(driver, 60)
    try:
        driver.get(url)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#strip figure")) == 24)
        print("ok: the strip shows a page of 24 test images")
        reconstruction = lambda: driver.find_element(By.ID, "reconstruction0").get_attribute("src") or ""
        wait.until(lambda d: reconstruction().startswith("blob:"))
        driver.find_elements(By.CSS_SELECTOR, "#strip figure")[5].click()
        wait.until(lambda d: "t5" in d.find_element(By.ID, "originalLabel").text)
        wait.until(lambda d: "t5" in d.current_url)
        time.sleep(1)
        first = reconstruction()
        print("ok: picking an image inverts it")
        slider = driver.find_elements(By.CSS_SELECTOR, "input.logit")[2]
        ActionChains(driver).click_and_hold(slider).move_by_offset(60, 0).release().perform()
        wait.until(lambda d: reconstruction() != first)
        wait.until(lambda d: "delta=" in d.current_url)
        latency = driver.find_element(By.ID, "latency").text
        print(f"ok: dragging a logit slider changes the reconstruction and the permalink ({latency})")
        permalink = driver.current_url
        dragged = slider.get_attribute("value")
        driver.get("about:blank")
        driver.get(permalink)
        wait.until(lambda d: "t5" in d.find_element(By.ID, "originalLabel").text)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "input.logit")) > 2)
        reopened = driver.find_elements(By.CSS_SELECTOR, "input.logit")[2].get_attribute("value")
        if abs(float(reopened) - float(dragged)) > 0.02:
            print(f"FAIL: the permalink reopened the slider at {reopened}, not {dragged}")
            sys.exit(1)
        print("ok: the permalink reopens the same view")
        driver.find_element(By.ID, "upload").send_keys(upload)
        wait.until(lambda d: "/api/image/u" in (d.find_element(By.ID, "original").get_attribute("src") or ""))
        print("ok: an uploaded PNG becomes the original")
        wait.until(lambda d: not d.find_element(By.ID, "status").text)
        if screenshot:
            driver.find_elements(By.CSS_SELECTOR, "#strip figure")[5].click()
            time.sleep(2)
            driver.save_screenshot(screenshot)
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        if errors:
            print("FAIL: the console has errors:", errors)
            sys.exit(1)
        print("ok: the console has no errors")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
