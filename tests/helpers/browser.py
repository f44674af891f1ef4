"""Headless Chromium for the tests that look at the MLflow UI as a person would: Debian's
``chromium`` and ``chromium-driver`` (installed here with apt-get when they are missing and this
is root on a Debian-like machine; ``python -m tests.helpers.browser`` does only that), driven by
selenium (the ``test`` extra). Where they cannot be had the test is skipped with one line saying why.

Every wait is bounded: the install, the driver's start and page loads.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager

PACKAGES = ("chromium", "chromium-driver")
INSTALL_TIMEOUT_S = 900
PAGE_LOAD_TIMEOUT_S = 60


def _found() -> tuple[str, str] | None:
    chrome, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (chrome, driver) if chrome and driver else None


def install() -> tuple[tuple[str, str] | None, str]:
    """``((chromium, chromedriver), "")`` once both are on the PATH (apt-get installs them when
    they are not: idempotent), else ``(None, why not)``."""
    if found := _found():
        return found, ""
    if shutil.which("apt-get") is None:
        return None, f"no apt-get here to install {' '.join(PACKAGES)} (install Chromium and its driver)"
    if os.geteuid() != 0:
        return (
            None,
            f"{' '.join(PACKAGES)} are not installed and this is not root (sudo apt-get install {' '.join(PACKAGES)})",
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
            if r.returncode != 0:
                last = (r.stderr.strip().splitlines() or r.stdout.strip().splitlines() or ["?"])[-1]
                return None, f"`{' '.join(cmd)}` failed: {last[:300]}"
    except subprocess.TimeoutExpired as e:
        return None, f"`{' '.join(e.cmd)}` did not end within {INSTALL_TIMEOUT_S} s"
    found = _found()
    return (
        found,
        "" if found else f"apt-get installed {' '.join(PACKAGES)} but chromium or chromedriver is not on the PATH",
    )


def require_chromium() -> tuple[str, str]:
    """The paths of chromium and chromedriver, installing them if needed; skips the test if they cannot be had."""
    import pytest

    pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
    found, why = install()
    if found is None:
        pytest.skip(f"no headless Chromium: {why}")
    return found


@contextmanager
def chrome(paths: tuple[str, str], width: int = 1400, height: int = 900):
    """A headless Chromium window of ``width`` x ``height`` driven by its chromedriver (no download:
    selenium is given both binaries); always quit at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chrome_bin, driver_bin = paths
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome_bin
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars",
                f"--window-size={width},{height}", "--lang=en-US"):  # fmt: skip
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=Service(driver_bin))
    try:
        driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
        yield driver
    finally:
        driver.quit()


if __name__ == "__main__":
    paths, reason = install()
    print(f"chromium: {paths[0]}, chromedriver: {paths[1]}" if paths else f"no headless Chromium: {reason}")
    sys.exit(0 if paths else 1)
