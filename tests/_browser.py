"""Headless Chromium (Debian's ``chromium``) for the tests that must look at a page."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(url: str, wait_ms: int = 10_000, timeout_s: int = 120) -> str:
    """The page's DOM after scripts ran for ``wait_ms`` of virtual time (``--dump-dom``)."""
    if CHROMIUM is None:
        raise AssertionError("Debian's chromium is not installed (apt-get install chromium; .ci/run does)")
    with tempfile.TemporaryDirectory(prefix="dplc-chromium-") as profile:
        out = subprocess.run(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={profile}", f"--virtual-time-budget={wait_ms}", "--dump-dom", url],
            capture_output=True, text=True, timeout=timeout_s,
        )  # fmt: skip
    if out.returncode != 0:
        raise AssertionError(f"chromium failed on {url}: {out.stderr[-2000:]}")
    return out.stdout
