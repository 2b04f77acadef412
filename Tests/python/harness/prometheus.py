"""Prometheus on loopback (Debian's package; Scripts/setup installs it) with a generated
configuration, its HTTP API (instant queries, alerts), and plain HTTP helpers for scraping
cssd's --metrics endpoint."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from .net import free_port, wait_until
from .paths import REPO_ROOT
from .process import die_with_parent


# The alerting and recording rules cssd ships.
SHIPPED_RULES = REPO_ROOT / "Deploy" / "prometheus" / "cssd-rules.yml"


def tool(name: str) -> str:
    """Path of a Prometheus tool (prometheus, promtool); fails the test when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: Scripts/setup installs Debian's prometheus package")
    return path


def http_get(url: str, headers: dict | None = None, timeout: float = 5.0):
    """(status, headers, body) of one GET (urllib: an HTTPError for 4xx/5xx)."""
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, dict(response.headers), response.read()


def raw_http(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """`request` sent as is to 127.0.0.1:`port`; the answer's bytes (to EOF, or one keep-alive answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data and b"Connection: close" not in data and b"connection: close" not in data:
                # keep-alive answer complete once Content-Length bytes arrived
                head, _, body = data.partition(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length: (\d+)", head)
                if m and len(body) >= int(m.group(1)):
                    break
        return data


@contextlib.contextmanager
def run_prometheus(short_tmp, config: dict):
    """A Prometheus on a free loopback port with `config` (its data and log in short_tmp),
    ready to answer; yields its base URL, stops it afterwards."""
    port = free_port()
    path = Path(short_tmp) / "prometheus.yml"
    path.write_text(json.dumps(config))
    log = open(Path(short_tmp) / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [tool("prometheus"), f"--config.file={path}", f"--storage.tsdb.path={Path(short_tmp) / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=die_with_parent)
    log.close()
    base = f"http://127.0.0.1:{port}"

    def ready():
        try:
            return http_get(base + "/-/ready", timeout=1)[0] == 200
        except (urllib.error.URLError, ConnectionError, OSError):
            assert proc.poll() is None, (Path(short_tmp) / "prometheus.log").read_text()
            return False

    try:
        wait_until(ready, 30, "Prometheus to be ready", interval=0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def query(base: str, expr: str) -> list:
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    status, _, body = http_get(url)
    answer = json.loads(body)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def query_value(base: str, expr: str):
    result = query(base, expr)
    return float(result[0]["value"][1]) if len(result) == 1 else None


def alert_firing(base: str, alertname: str, **labels) -> bool:
    _, _, body = http_get(base + "/api/v1/alerts")
    for alert in json.loads(body)["data"]["alerts"]:
        if alert["labels"].get("alertname") == alertname and alert["state"] == "firing" \
                and all(alert["labels"].get(k) == v for k, v in labels.items()):
            return True
    return False


def scrape_values(port: int) -> dict:
    """name{labels} -> value, from one text-format scrape."""
    _, _, body = http_get(f"http://127.0.0.1:{port}/metrics")
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return values
