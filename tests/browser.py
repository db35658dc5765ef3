"""A real headless browser (Chromium from Debian's packages, `make browser`) opening the
HTML pages gbmseg writes: the DOM after load, which images decoded, and a screenshot."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from tests.servers import unavailable

PROBE = (
    "<script>window.addEventListener('load',()=>{const d=document.createElement('pre');"
    "d.id='gbmseg-probe';d.textContent=JSON.stringify([...document.images].map("
    "i=>[i.alt,i.naturalWidth]));document.body.appendChild(d);});</script>"
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    unavailable("no headless Chromium: `make browser` installs Debian's chromium")
    raise AssertionError  # unreachable: unavailable() fails or skips


def _run(*args: str) -> str:
    res = subprocess.run(
        [chromium(), *FLAGS, *args], capture_output=True, text=True, timeout=120, check=False
    )
    if res.returncode != 0:
        unavailable(f"chromium could not start (exit {res.returncode}): {res.stderr[-300:]}")
    return res.stdout


def loaded_images(page: Path, tmp: Path) -> tuple[str, list[tuple[str, int]]]:
    """The page's DOM after load and each ``<img>``'s (alt, naturalWidth): 0 = not loaded.
    The page is opened from a copy beside it with a probe script added at its end."""
    probe = tmp / f"{page.stem}.probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = _run("--dump-dom", "--virtual-time-budget=10000", probe.resolve().as_uri())
    found = re.search(r'<pre id="gbmseg-probe">(.*?)</pre>', dom, re.S)
    assert found, "the page never finished loading in the browser"
    return dom, [tuple(x) for x in json.loads(found.group(1).replace("&quot;", '"'))]


def screenshot(page: Path, png: Path, size: str = "1400,2400") -> Path:
    _run(f"--screenshot={png}", f"--window-size={size}", page.resolve().as_uri())
    assert png.is_file() and png.stat().st_size > 0
    return png
