"""TensorBoard seen by a real headless browser: the HParams table (and other tabs) of a sweep.

    python tests/browser.py multirun/example docs/images/hparams.png

Starts ``tensorboard`` on 127.0.0.1 and Debian's ``chromium`` through ``chromedriver``
(``apt-get install chromium chromium-driver``), spoken to over the W3C WebDriver protocol with
the standard library, opens the HParams tab, waits until its table lists the runs, prints the
texts it shows and saves a screenshot (the README's). ``tests/test_sweep.py`` and
``tests/test_tensorboard_tabs.py`` drive it the same way, also over the Scalars and the default
(Time Series) tab, whose charts ``chart_titles`` lists in the order shown.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--window-size=1500,900",
]
Page = tuple[list[str], bytes]  # the texts a tab shows, its screenshot (PNG)
TIME_SERIES_START = "Pin cards for a quick view and comparison"  # its empty Pinned section
# every text node of the page, also inside shadow roots (TensorBoard's Polymer elements)
PAGE_TEXT = """
const texts = [];
const walk = (node) => {
  if (node.shadowRoot) walk(node.shadowRoot);
  for (const child of node.childNodes) {
    if (child.nodeType === 3) { const t = child.textContent.trim(); if (t) texts.push(t); }
    else walk(child);
  }
};
walk(document.body);
return texts;
"""


def browser_available() -> bool:
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, body: dict | None = None, method: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    with urllib.request.urlopen(
        urllib.request.Request(url, data, headers, method=method), timeout=60
    ) as r:
        return json.loads(r.read())


def wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            request(url)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@contextlib.contextmanager
def tensorboard(logdir: Path) -> Iterator[str]:
    """A TensorBoard server on 127.0.0.1 over ``logdir``; yields its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--reload_interval", "0"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/data/runs", 60)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.kill()
        server.wait(timeout=10)


@contextlib.contextmanager
def browser() -> Iterator[str]:
    """A headless chromium session through chromedriver; yields the session's URL."""
    port = free_port()
    driver = subprocess.Popen(
        ["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/status", 30)
        options = {"args": BROWSER_ARGS}
        capabilities = {"alwaysMatch": {"goog:chromeOptions": options}}
        session = request(f"{base}/session", {"capabilities": capabilities})["value"]["sessionId"]
        try:
            yield f"{base}/session/{session}"
        finally:
            request(f"{base}/session/{session}", method="DELETE")
    finally:
        driver.kill()
        driver.wait(timeout=10)


Ready = Callable[[list[str]], bool]


def tab_pages(logdir: Path, tabs: dict[str, Ready], seconds: float = 60) -> dict[str, Page]:
    """Each TensorBoard tab (``hparams``, ``scalars``, …) once ``tabs[tab](texts)`` says it is
    drawn: its texts and a PNG, from one server and one browser."""
    pages = {}
    with tensorboard(logdir) as server, browser() as session:
        for tab, ready in tabs.items():
            request(f"{session}/url", {"url": f"{server}/#{tab}"})
            deadline, texts = time.monotonic() + seconds, []
            while time.monotonic() < deadline and not ready(texts):
                time.sleep(1)
                script = {"script": PAGE_TEXT, "args": []}
                texts = request(f"{session}/execute/sync", script)["value"]
            time.sleep(1)  # let the page finish drawing
            pages[tab] = texts, base64.b64decode(request(f"{session}/screenshot")["value"])
    return pages


def chart_titles(texts: list[str]) -> list[str]:
    """The titles of the charts and cards a Scalars or Time Series tab shows, top to bottom.

    The Scalars tab writes a chart's tag, then ``tag:`` and the tag again; the Time Series tab
    (TensorBoard's default) writes a card's tag as its group and the rest (``loss``,
    ``/train``), below its Pinned section.
    """
    titles = [t for t, after in itertools.pairwise(texts) if after == "tag:"]
    if TIME_SERIES_START in texts:
        cards = texts[texts.index(TIME_SERIES_START) :]
        titles += [a + b for a, b in itertools.pairwise(cards) if b.startswith("/") and b != "/"]
    return titles


def card_groups(texts: list[str]) -> list[str]:
    """The Time Series tab's group headings, top to bottom (each followed by ``3 cards``)."""
    return [t for t, after in itertools.pairwise(texts) if re.fullmatch(r"\d+ cards?", after)]


def hparams_page(logdir: Path, runs: list[str], seconds: float = 60) -> Page:
    """The HParams tab once its table names every run in ``runs``: its texts and a PNG."""
    return tab_pages(logdir, {"hparams": lambda texts: set(runs) <= set(texts)}, seconds)["hparams"]


def main() -> None:
    logdir, out = Path(sys.argv[1]), Path(sys.argv[2])
    runs = sorted(p.parent.name for p in logdir.glob("*/.hydra"))
    texts, png = hparams_page(logdir, runs)
    out.write_bytes(png)
    shown = [t for t in texts if "{" not in t]  # the page's words, not its style sheets
    print(f"{len(runs)} runs; texts shown: {' | '.join(shown[:60])}")


if __name__ == "__main__":
    main()
