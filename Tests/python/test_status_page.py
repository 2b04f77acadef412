"""The status page of the metrics endpoint (`/`, `/status`, `/status.json`): in a real headless
Chromium (Debian's package) driven over the DevTools protocol, the page loads, shows every
chpid, reflects a vary made through QMP without a reload (its script polls /status.json), and
a screenshot is kept (.build/test-artifacts/status-page.png, or $CSSD_TEST_ARTIFACTS). Without
a browser: the data, the HTML escaping, and page pollers that fill the endpoint's connection
limit never keep a scrape out."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from harness.cssd import start_with_metrics
from harness.paths import REPO_ROOT
from harness.qmp import Client


def get(port: int, path: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as reply:
        return reply.status, reply.headers["Content-Type"], reply.read().decode()


def test_landing_page_and_status_data(short_tmp):
    srv = start_with_metrics(short_tmp)
    try:
        port = srv.extra["metrics_port"]
        status, kind, body = get(port, "/")
        assert status == 200 and kind.startswith("text/html") and 'href="status"' in body and 'href="metrics"' in body
        status, kind, body = get(port, "/status.json")
        data = json.loads(body)
        assert kind == "application/json"
        chpids = {p["chpid"]: p for p in data["chpids"]}
        assert chpids["0.40"]["vary"] == "online" and chpids["0.40"]["subchannels"] == 42
        # The embedded topology's devices with fewer than two paths, as the metrics count them.
        assert data["totals"]["single-path"] == len([d for d in data["devices"] if d["paths"] == 1])
        c = Client(srv.sock)
        c.call("vary-path", chpid="0.41", state="offline")
        data = json.loads(get(port, "/status.json")[2])
        assert {p["chpid"]: p["vary"] for p in data["chpids"]}["0.41"] == "offline"
        assert data["changes"][0]["chpid"] == "0.41" and data["changes"][0]["change"] == "offline"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["changes"][0]["time"])
        html = get(port, "/status")[2]
        assert "<td>0.41</td><td>1a</td><td>offline</td>" in html
        head = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        head.request("HEAD", "/status")
        reply = head.getresponse()
        assert reply.status == 200 and reply.read() == b""
        head.request("POST", "/status")
        assert head.getresponse().status == 405
    finally:
        srv.stop()


def test_page_pollers_never_keep_a_scrape_out(short_tmp):
    """The endpoint holds 16 connections; 24 page pollers on keep-alive connections, each
    polling /status.json, and a scraper still gets every answer (the connection whose last
    progress is oldest gives way)."""
    srv = start_with_metrics(short_tmp)
    pollers = []
    try:
        port = srv.extra["metrics_port"]
        for _ in range(24):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", "/status.json")
            connection.getresponse().read()
            pollers.append(connection)
        for _ in range(5):
            for connection in pollers[-8:]:
                try:
                    connection.request("GET", "/status.json")
                    connection.getresponse().read()
                except (OSError, http.client.HTTPException):
                    connection.close()  # evicted: a browser connects again
                    connection.connect()
            status, _, body = get(port, "/metrics")
            assert status == 200 and "cssd_chpid_vary_state" in body
    finally:
        for connection in pollers:
            connection.close()
        srv.stop()


class DevTools:
    """A page of a headless Chromium over the DevTools protocol (websocket-client)."""

    def __init__(self, url: str):
        import websocket
        self.ws = websocket.create_connection(url, timeout=30)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def close(self):
        self.ws.close()


def wait_for(what, predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if predicate(value):
            return value
        assert time.monotonic() < deadline, f"still {value!r}"
        time.sleep(0.2)


def test_the_page_in_chromium_reflects_a_vary_live(short_tmp):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (Debian: chromium; Scripts/setup installs it)")
    pytest.importorskip("websocket", reason="websocket-client (pip) drives Chromium over DevTools")
    srv = start_with_metrics(short_tmp)
    profile = os.path.join(short_tmp, "chromium")
    chromium = subprocess.Popen(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", f"--user-data-dir={profile}",
         "--window-size=1200,1400", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    page = None
    try:
        port = srv.extra["metrics_port"]
        # Chromium says where DevTools listens on stderr.
        deadline = time.monotonic() + 60
        devtools_port = None
        while devtools_port is None:
            line = chromium.stderr.readline()
            assert line or chromium.poll() is None, "chromium ended"
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                devtools_port = int(m.group(1))
            assert time.monotonic() < deadline, "chromium did not start DevTools"
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=30).read())
        target = next(t for t in targets if t["type"] == "page")
        page = DevTools(target["webSocketDebuggerUrl"])
        page.call("Page.enable")
        page.call("Page.navigate", url=f"http://127.0.0.1:{port}/status")

        def row(chpid):
            return page.evaluate(
                "Array.from(document.querySelectorAll('#chpids tr')).map(r => Array.from(r.cells).map(c => c.textContent))"
                f".find(r => r[0] === '{chpid}') || null")

        assert wait_for(lambda: row("0.41"), lambda r: r is not None)[2] == "online"
        assert page.evaluate("document.querySelectorAll('#chpids tr').length") == 17
        # The script has refreshed at least once (its status line says when).
        wait_for(lambda: page.evaluate("document.getElementById('state').textContent"), lambda t: "updated" in t)
        Client(srv.sock).call("vary-path", chpid="0.41", state="offline")
        assert wait_for(lambda: row("0.41"), lambda r: r and r[2] == "offline")[2] == "offline"
        assert wait_for(lambda: page.evaluate("document.querySelector('#changes tr td:nth-child(3)')?.textContent"),
                        lambda t: t == "0.41") == "0.41"
        assert page.evaluate("document.querySelector('#chpids tr:nth-child(2)').className") == "bad"
        shot = page.call("Page.captureScreenshot", format="png")
        artifacts = os.environ.get("CSSD_TEST_ARTIFACTS") or str(REPO_ROOT / ".build" / "test-artifacts")
        os.makedirs(artifacts, exist_ok=True)
        path = os.path.join(artifacts, "status-page.png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        assert os.path.getsize(path) > 10_000
    finally:
        if page is not None:
            page.close()
        os.killpg(chromium.pid, 9)
        chromium.wait(timeout=30)
        srv.stop()
