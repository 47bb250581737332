"""The scheduler's dashboard in a real headless browser (Debian's chromium, driven by selenium through chromedriver)
over a live cluster: a scheduler process with an operator token, two server processes, devices training in the
background. The page asks for the token, lists the servers /state lists, shows the iteration advancing with its plots,
and its buttons disable, enable and start a new instance, which the REST API then reports. Screenshots go to the
test's tmp_path and, when MINDFED_ARTIFACTS is set, there too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from tests.e2e.cluster_procs import ServerProcs, job_yaml, stop_processes
from tests.e2e.live_devices import TrainingDevices

from mindfed.cache.embedded import EmbeddedRedis, free_port
from mindfed.scheduler.operator_auth import TOKEN_ENV

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(240),
    pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                       reason="needs Debian's chromium and chromedriver: apt-get install chromium chromium-driver"),
]
TOKEN = "dashboard-operator-token-42"
DEVICES = 3
WAIT_S = 60.0


class Rest:
    """The scheduler's REST plane, as an operator's script calls it (every call bounded)."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.headers = base, {"Authorization": f"Bearer {token}"}

    def ok(self, path: str) -> dict[str, Any]:
        resp = requests.post(self.base + path, headers=self.headers, timeout=10)
        assert resp.status_code == 200, (path, resp.status_code, resp.text)
        return dict(resp.json())


def until(predicate: Callable[[], object], what: str, timeout_s: float = WAIT_S) -> Any:
    """Poll `predicate` until it returns something true (and return that), or fail naming `what`; a predicate that
    raises (the cluster is not there yet, the element not drawn yet) counts as false."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = predicate()
        except (AssertionError, requests.RequestException, WebDriverException, ValueError, KeyError):
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.2)


class Page:
    """The dashboard in one headless chromium; `shot(name)` writes a PNG to every artifact folder."""

    def __init__(self, driver: WebDriver, folders: list[Path]) -> None:
        self.driver, self.folders = driver, folders
        self.shots: list[Path] = []

    def text(self, css: str) -> str:
        return str(self.driver.find_element(By.CSS_SELECTOR, css).text)

    def count(self, css: str) -> int:
        return len(self.driver.find_elements(By.CSS_SELECTOR, css))

    def click(self, css: str) -> None:
        element = WebDriverWait(self.driver, 10).until(expected_conditions.element_to_be_clickable(
            (By.CSS_SELECTOR, css)))
        element.click()

    def accept_confirmation(self) -> None:
        WebDriverWait(self.driver, 10).until(expected_conditions.alert_is_present()).accept()

    def iteration(self) -> int:
        return int(self.text("#iteration"))

    def shot(self, name: str) -> None:
        for folder in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"dashboard-{name}.png"
            assert self.driver.save_screenshot(str(path)), path
            self.shots.append(path)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1500", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # the driver named explicitly: selenium never looks for (or downloads) one
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def start_scheduler(yaml: Path, redis: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mindfed", "scheduler", "--yaml_config", str(yaml),
             "--scheduler_manage_address", f"127.0.0.1:{port}", "--cache_address", redis],
            env={**os.environ, TOKEN_ENV: TOKEN}, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def script_errors(driver: WebDriver) -> list[str]:
    """The console's errors other than HTTP statuses (the 401 before signing in is one): script errors and
    Content-Security-Policy refusals."""
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "Failed to load resource" not in entry["message"]]


def test_the_dashboard_shows_a_live_cluster_and_its_buttons_act_on_it(tmp_path: Path, browser: WebDriver) -> None:
    # Prepare: Redis, two servers, a scheduler wanting a token, devices training
    fl_name = "dashboard"
    folders = [tmp_path / "screenshots"]
    if os.environ.get("MINDFED_ARTIFACTS"):
        folders.append(Path(os.environ["MINDFED_ARTIFACTS"]))
    page = Page(browser, folders)
    ports, manage_port = [free_port(), free_port()], free_port()
    base = f"http://127.0.0.1:{manage_port}"
    rest = Rest(base, TOKEN)
    with EmbeddedRedis() as redis:
        yaml = job_yaml(tmp_path, fl_name, fl_iteration_num=1000, start_fl_job_threshold=2, update_model_ratio=1.0,
                        start_fl_job_time_window=20000, update_model_time_window=20000,
                        global_iteration_time_window=40000)
        servers = ServerProcs(yaml, redis.address, tmp_path)
        scheduler = start_scheduler(yaml, redis.address, manage_port, tmp_path / "scheduler.log")
        devices = TrainingDevices(fl_name, ports, DEVICES)
        try:
            for port in ports:
                servers.start(port)
            until(lambda: len(rest.ok("/state").get("nodes", [])) == 2, "two servers in /state")
            devices.start()

            # Execute / Assert: the page asks for the token, then lists the servers /state lists
            browser.get(base + "/")
            until(lambda: browser.find_element(By.ID, "login").is_displayed(), "the sign-in form")
            assert browser.current_url == base + "/dashboard/"
            browser.find_element(By.ID, "token").send_keys(TOKEN)
            page.click("#sign-in")
            server_ids = {n["node_id"] for n in rest.ok("/state")["nodes"]}
            until(lambda: {e.get_attribute("data-node-id") for e in browser.find_elements(
                By.CSS_SELECTOR, "#nodes tr[data-role=SERVER]")} == server_ids, "the servers of /state on the page")
            assert page.count("#nodes tr[data-role=SCHEDULER]") == 1
            assert not browser.find_element(By.ID, "login").is_displayed()
            page.shot("1-servers")

            # the iteration advances, and the finished ones are plotted
            first = until(page.iteration, "an iteration number")
            until(lambda: page.iteration() >= first + 2, "the iteration advancing by two")
            until(lambda: page.count("#chart-accuracy circle.point") >= 2, "two points in the accuracy plot")
            assert page.count("#chart-participants rect.bar-rect") >= 2
            assert page.count("#history tbody tr") >= 2
            page.shot("2-training")

            # Disable, then Enable, through the page's buttons: the REST API reports each
            page.click("#disable")
            page.accept_confirmation()
            until(lambda: rest.ok("/state")["cluster_state"] == "CLUSTER_DISABLE", "/state: disabled")
            until(lambda: page.text("#cluster-state") == "CLUSTER_DISABLE", "the page: disabled")
            assert "disabling FL-Server successful" in page.text("#action-message")
            page.shot("3-disabled")
            page.click("#enable")
            until(lambda: rest.ok("/state")["cluster_state"] == "CLUSTER_READY", "/state: enabled again")
            resumed = page.iteration()
            until(lambda: page.iteration() > resumed, "training resuming after Enable")
            until(lambda: page.count("#history tbody tr.fail") >= 1, "the iteration the disable failed, listed")
            assert page.count("#chart-accuracy rect.fail-mark") >= 1  # drawn on the axis: it has no accuracy

            # New instance with a changed threshold, from the form
            old_instance = page.text("#instance")
            page.click("#new-instance-panel summary")
            field = until(lambda: browser.find_element(By.ID, "hp-start_fl_job_threshold"), "the hyper-parameters")
            until(lambda: field.get_attribute("value") == "2", "the current threshold in the form")
            field.clear()
            field.send_keys("3")
            page.click("#new-instance")
            page.accept_confirmation()
            until(lambda: rest.ok("/queryInstance")["result"]["start_fl_job_threshold"] == 3,
                  "/queryInstance: the new threshold")
            until(lambda: page.text("#instance") not in ("", old_instance), "the page: the new instance")
            until(lambda: page.text("#rounds [data-round=startFLJob] .count").endswith("/ 3"),
                  "the page: the new threshold")
            until(lambda: page.iteration() >= 3, "the new instance training")
            until(lambda: page.count("#chart-accuracy line.instance-edge") >= 1, "the plot marking the new instance")
            page.shot("4-new-instance")
            errors = script_errors(browser)
        except BaseException:
            print(servers.logs())
            print((tmp_path / "scheduler.log").read_text(errors="replace")[-3000:])
            raise
        finally:
            devices.stop()
            stop_processes([scheduler])
            servers.stop_all()

    assert errors == []
    assert devices.uploads >= 8  # two per iteration, over five iterations at least
    for shot in page.shots:
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(page.shots) == 4 * len(folders)
