"""The Prometheus endpoint (cssd --metrics) scraped by a real Prometheus.

A Prometheus from Debian's package (Scripts/setup installs it) runs on loopback with a
generated configuration (0.5 s scrapes, a temporary storage directory, the shipped rules
Deploy/prometheus/cssd-rules.yml); cssd runs with --metrics on port 0. The tests change
paths over QMP and ask Prometheus' HTTP API until the series and the shipped alerts show the
change; `promtool check metrics` checks our own scrapes; bad HTTP requests get their status
while a QMP client is answered meanwhile.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from harness.cssd import cssd_binary, start_with_metrics
from harness.net import wait_until
from harness.paths import REPO_ROOT
from harness.prometheus import alert_firing, http_get, query_value, raw_http, scrape_values, tool
from harness.qmp import Client
from harness.sysfs import build_tree


RULES = REPO_ROOT / "Deploy" / "prometheus" / "cssd-rules.yml"
RULE_TESTS = REPO_ROOT / "Deploy" / "prometheus" / "cssd-rules.test.yml"


def _check_metrics(port: int) -> str:
    """One text-format scrape, which `promtool check metrics` must accept (lint included)."""
    status, headers, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    check = subprocess.run([tool("promtool"), "check", "metrics"], input=body, capture_output=True)
    assert check.returncode == 0, (check.stdout + check.stderr).decode()
    return body.decode()


def test_rules_pass_promtool():
    promtool = tool("promtool")
    for args in (["check", "rules", str(RULES)], ["test", "rules", str(RULE_TESTS)]):
        run = subprocess.run([promtool, *args], capture_output=True, cwd=RULE_TESTS.parent)
        assert run.returncode == 0, (run.stdout + run.stderr).decode()


def test_prometheus_sees_path_changes_and_the_alerts_fire(metrics_cssd, prometheus):
    port = metrics_cssd.extra["metrics_port"]
    base = prometheus
    wait_until(lambda: query_value(base, 'up{job="cssd"}') == 1.0, 30, "the target to be up")
    # Prometheus asked for OpenMetrics: the info family's type is OpenMetrics' own.
    _, _, body = http_get(base + "/api/v1/targets/metadata?" + urllib.parse.urlencode({"metric": "cssd_chpid"}))
    assert [m["type"] for m in json.loads(body)["data"]] == ["info"]
    text = _check_metrics(port)
    assert 'cssd_chpid_info{chpid="0.40",type=' in text
    assert "cssd_build_info{" in text

    assert query_value(base, 'cssd_chpid_vary_state{chpid="0.40",state="online"}') == 1.0
    down_before = query_value(base, 'cssd_css_subchannels_without_operational_path{cssid="0"}')
    assert down_before is not None
    osa = query_value(base, 'cssd_chpid_subchannels{chpid="0.60"}')
    assert osa and osa > 0
    # One scrape with the paths up must be in Prometheus before they go (the chpid rules look back).
    time.sleep(1.5)

    client = Client(metrics_cssd.sock)
    try:
        assert client.call("vary-path", chpid="0.40", state="offline")["changed"] > 0
        # Forced: 0.60 is the only path of the OSA triple, in use (the last-path interlock).
        client.call("configure-chpid", chpid="0.60", state="standby", force=True)
    finally:
        client.close()

    wait_until(lambda: query_value(base, 'cssd_chpid_vary_state{chpid="0.40",state="offline"}') == 1.0, 20,
               "0.40 offline in Prometheus")
    assert query_value(base, 'cssd_chpid_vary_state{chpid="0.40",state="online"}') == 0.0
    wait_until(lambda: query_value(base, 'cssd_chpid_configure_state{chpid="0.60",state="standby"}') == 1.0, 20,
               "0.60 in standby in Prometheus")
    assert query_value(base, 'sum by (chpid) (cssd_chpid_configure_state{chpid="0.60"})') == 1.0
    # The OSA devices on 0.60 have no other path: they are down now.
    wait_until(lambda: query_value(base, 'cssd_css_subchannels_without_operational_path{cssid="0"}')
               == down_before + osa, 20, "the no-operational-path count to grow by the subchannels of 0.60")
    assert query_value(base, 'cssd_qmp_commands_total{command="vary-path",outcome="ok"}') == 1.0
    # The path-change pipeline's metrics sink counted both changes as they were published, and
    # the last-path-lost change that followed the standby (the OSA devices are online).
    wait_until(lambda: query_value(base, 'sum(cssd_path_changes_total{cause="command"})') == 3.0, 20,
               "three path changes")
    assert query_value(base, 'cssd_path_changes_total{change="offline",cause="command"}') == 1.0
    assert query_value(base, 'cssd_path_changes_total{change="last-path-lost",cause="command"}') == 1.0

    # What an on-call person acts on fires at once, whatever Prometheus saw before: the OSA
    # devices in use lost their last path. 0.40 offline costs no device its redundancy (its
    # DASDs keep three paths): nothing to act on, no alert names it.
    wait_until(lambda: alert_firing(base, "CSSDOnlineDevicesWithoutPath", cssid="0"), 30,
               "CSSDOnlineDevicesWithoutPath")
    # A path error is hardware: 0.41 in permanent error fires after its minute (the test's
    # Prometheus evaluates rules every second, promtool checks the minute).
    client = Client(metrics_cssd.sock)
    try:
        client.call("inject-path-fault", chpid="0.41", fault="permanent-error")
    finally:
        client.close()
    wait_until(lambda: query_value(base, 'cssd_chpid_condition_state{chpid="0.41",state="permanent-error"}') == 1.0,
               20, "0.41 in permanent error in Prometheus")

    def alerts():
        _, _, body = http_get(base + "/api/v1/alerts")
        return {(a["labels"]["alertname"], a["labels"].get("chpid", ""), a["labels"].get("state", ""), a["state"])
                for a in json.loads(body)["data"]["alerts"]}

    wait_until(lambda: any(a[:3] == ("CSSDChannelPathError", "0.41", "permanent-error") for a in alerts()), 30,
               "CSSDChannelPathError for 0.41 (pending its minute)")
    assert not [a for a in alerts() if a[1] == "0.40"], alerts()
    _check_metrics(port)

    # Every scrape Prometheus made was accepted by its own parser.
    _, _, body = http_get(base + "/api/v1/targets")
    target, = json.loads(body)["data"]["activeTargets"]
    assert target["health"] == "up" and target["lastError"] == "", target


def test_bad_requests_get_their_status_and_qmp_is_served_meanwhile(metrics_cssd):
    port = metrics_cssd.extra["metrics_port"]
    # A slow client: half a request, then nothing. It must not hold up QMP or other scrapes.
    slow = socket.create_connection(("127.0.0.1", port), timeout=30)
    slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: slow\r\nX-Trickle: ")
    slow_started = time.monotonic()
    client = Client(metrics_cssd.sock)
    try:
        cases = [
            (b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"HTTP/1.1 404 Not Found\r\n"),
            (b"GET /metricsx HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"HTTP/1.1 404 Not Found\r\n"),
            (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
             b"HTTP/1.1 405 Method Not Allowed\r\n"),
            (b"GET /metrics HTTP/1.1\r\nX-Huge: " + b"a" * 100_000 + b"\r\n\r\n",
             b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            (b"GET /metrics HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"b" * 1000) for i in range(40)) + b"\r\n",
             b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
        ]
        for request, status in cases:
            started = time.monotonic()
            answer = raw_http(port, request)
            assert answer.startswith(status), (request[:60], answer[:200])
            # QMP is answered right after each bad request (the bound only guards against a hang:
            # the machine may be loaded).
            assert "qemu" in client.call("query-version")
            assert time.monotonic() - started < 30.0
        status_line = raw_http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").split(b"\r\n")[0]
        assert status_line == b"HTTP/1.1 200 OK"
        assert "qemu" in client.call("query-version")
        # The slow client is answered 408 once its time is up (10 s), and closed.
        slow.settimeout(15)
        answer = b""
        while True:
            chunk = slow.recv(4096)
            if not chunk:
                break
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
        # Not before its time (10 s); the upper bound is the socket's own timeout (15 s).
        assert 9.0 < time.monotonic() - slow_started
        assert "qemu" in client.call("query-version")
    finally:
        client.close()
        slow.close()
    assert metrics_cssd.alive()


def test_openmetrics_when_asked(metrics_cssd):
    port = metrics_cssd.extra["metrics_port"]
    client = Client(metrics_cssd.sock)  # a command, so that the histogram family exists
    try:
        client.call("query-version")
    finally:
        client.close()
    status, headers, body = http_get(
        f"http://127.0.0.1:{port}/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert status == 200
    assert headers["Content-Type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    text = body.decode()
    assert text.endswith("# EOF\n")
    # An OpenMetrics parser other than Prometheus' own accepts it (promtool check metrics
    # reads only the text format); Scripts/setup installs prometheus_client.
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["cssd_chpid"].type == "info"
    assert families["cssd_css_crws_lost"].type == "counter"
    assert families["cssd_chpid_vary_state"].type == "gauge"
    assert families["cssd_qmp_command_duration_seconds"].type == "histogram"
    assert len(families["cssd_chpid"].samples) == len(families["cssd_chpid_subchannels"].samples) > 0
    assert "# TYPE cssd_qmp_connections counter" in text or "cssd_qmp_connections" not in text
    assert "# TYPE cssd_chpid info" in text
    assert "# TYPE cssd_css_crws_lost counter" in text
    assert 'cssd_css_crws_lost_total{cssid="0"} 0' in text
    # HEAD: the headers only.
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", method="HEAD")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200 and response.read() == b""


def test_connections_and_commands_are_counted(metrics_cssd):
    port = metrics_cssd.extra["metrics_port"]
    listener = f'listener="unix:{metrics_cssd.sock}"'
    before = scrape_values(port)
    client = Client(metrics_cssd.sock)
    try:
        client.call("query-version")
        assert client.error("no-such-command")["class"] == "CommandNotFound"
        during = scrape_values(port)
    finally:
        client.file.close()  # the reader holds the descriptor too
        client.close()
    assert during[f"cssd_qmp_connections_total{{{listener}}}"] == before.get(f"cssd_qmp_connections_total{{{listener}}}", 0) + 1
    assert during[f"cssd_qmp_connections_open{{{listener}}}"] == 1
    assert during['cssd_qmp_commands_total{command="query-version",outcome="ok"}'] >= 1
    # A name the schema does not have is client input: counted, not used as a label value.
    assert during['cssd_qmp_commands_total{command="unknown",outcome="CommandNotFound"}'] == 1
    assert not any("no-such-command" in key for key in during)
    assert during['cssd_qmp_command_duration_seconds_count{command="query-version"}'] >= 1
    wait_until(lambda: scrape_values(port)[f"cssd_qmp_connections_open{{{listener}}}"] == 0, 5,
               "the connection to close")


def test_linux_sysfs_chpids_come_and_go(short_tmp):
    """linux-sysfs: the backend is named; a chpid that appears in the tree gets its series, and
    loses them when it goes (no stale series for a path the machine no longer has)."""
    tree = build_tree("lpar.json", short_tmp)
    server = start_with_metrics(short_tmp, "--backend", f"linux-sysfs:{tree}", "--poll-interval", "100", "--no-inotify")
    port = server.extra["metrics_port"]
    css0 = os.path.join(tree, "devices", "css0")
    try:
        assert scrape_values(port)['cssd_backend_info{backend="linux-sysfs"}'] == 1
        check = subprocess.run([tool("promtool"), "check", "metrics"],
                               input=http_get(f"http://127.0.0.1:{port}/metrics")[2], capture_output=True)
        assert check.returncode == 0, (check.stdout + check.stderr).decode()

        # A chpid that appears gets its series; when it goes, they go too.
        def series_of(chpid):
            return sorted(k for k in scrape_values(port) if f'chpid="{chpid}"' in k)
        assert series_of("0.f1") == []
        staging = os.path.join(short_tmp, "chp0.f1")
        shutil.copytree(os.path.join(css0, "chp0.f0"), staging)
        os.rename(staging, os.path.join(css0, "chp0.f1"))
        appeared = wait_until(lambda: series_of("0.f1"), 10, "the new chpid's series")
        # info, 9 state-set series, subchannels, the channel-measurement info (issue 21), and
        # the online devices on a single path, with redundancy lost and without a path (issue 22)
        assert len(appeared) == len(series_of("0.f0")) == 15
        shutil.rmtree(os.path.join(css0, "chp0.f1"))
        wait_until(lambda: series_of("0.f1") == [], 10, "the removed chpid's series to go")
    finally:
        server.stop()


def test_linux_sysfs_reading_health(short_tmp):
    """linux-sysfs: the last good reading advances on every poll tick while nothing changes
    (an idle healthy host does not look stopped); with the css directory renamed away, read
    errors grow and the good-reading time stops; it resumes when the tree is back. The model
    backend has none of these families."""
    tree = build_tree("lpar.json", short_tmp)
    server = start_with_metrics(short_tmp, "--backend", f"linux-sysfs:{tree}", "--poll-interval", "100", "--no-inotify")
    port = server.extra["metrics_port"]
    good = 'cssd_backend_last_good_reading_timestamp_seconds{backend="linux-sysfs"}'
    duration = 'cssd_backend_last_reading_duration_seconds{backend="linux-sysfs"}'
    poll = 'cssd_backend_poll_interval_seconds{backend="linux-sysfs"}'

    def errors(values):
        return sum(v for k, v in values.items() if k.startswith("cssd_backend_read_errors_total{"))
    css0 = os.path.join(tree, "devices", "css0")
    away = os.path.join(tree, "css0.away")
    try:
        first = scrape_values(port)
        assert first[poll] == 0.1
        assert abs(first[good] - time.time()) < 5
        for kind in ("missing", "unreadable", "malformed"):
            assert first[f'cssd_backend_read_errors_total{{backend="linux-sysfs",kind="{kind}"}}'] == 0
        # Idle: nothing changes, yet every tick is a good reading.
        wait_until(lambda: scrape_values(port)[good] > first[good] + 0.5, 5,
                   "the good-reading time to advance while idle")
        idle = scrape_values(port)
        assert errors(idle) == 0
        assert 0 < idle[duration] < 1

        os.rename(css0, away)
        wait_until(lambda: errors(scrape_values(port)) > 0, 5, "read errors to be counted")
        broken = scrape_values(port)
        assert broken['cssd_backend_read_errors_total{backend="linux-sysfs",kind="missing"}'] > 0
        time.sleep(0.5)  # five ticks, each failing
        later = scrape_values(port)
        assert later[good] == broken[good], "a failing tick must not count as a good reading"
        assert errors(later) > errors(broken)
        assert time.time() - later[good] >= 0.5

        os.rename(away, css0)
        wait_until(lambda: scrape_values(port)[good] > later[good], 5, "good readings to resume")
        check = subprocess.run([tool("promtool"), "check", "metrics"],
                               input=http_get(f"http://127.0.0.1:{port}/metrics")[2], capture_output=True)
        assert check.returncode == 0, (check.stdout + check.stderr).decode()
    finally:
        if os.path.isdir(away) and not os.path.exists(css0):
            os.rename(away, css0)
        server.stop()


def test_model_backend_has_no_reading_metrics(metrics_cssd):
    values = scrape_values(metrics_cssd.extra["metrics_port"])
    assert values['cssd_backend_info{backend="model"}'] == 1
    assert not [k for k in values if k.startswith("cssd_backend_") and not k.startswith("cssd_backend_info")]


def test_at_most_16_scrape_connections(metrics_cssd):
    """16 connections at most: a 17th closes the one idle longest (not itself) and is served;
    QMP goes on."""
    port = metrics_cssd.extra["metrics_port"]
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(16)]
    try:
        time.sleep(0.3)
        answer = raw_http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:200]
        oldest = idle.pop(0)
        try:
            assert oldest.recv(1) == b""  # closed by cssd (a timeout would raise, not read EOF)
        except ConnectionResetError:
            pass
        oldest.close()
        client = Client(metrics_cssd.sock)
        try:
            assert "qemu" in client.call("query-version")
        finally:
            client.close()
        # The others are still open: a request on the newest is answered.
        idle[-1].sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert idle[-1].recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        for s in idle:
            s.close()


def test_metrics_address_refusals(short_tmp):
    """A unix address is refused as usage (exit 64); a port in use stops cssd (exit 1) naming
    the address, before any QMP socket is created."""
    binary = cssd_binary()
    if binary is None:
        pytest.skip("cssd binary not found: build it (swift build) or set CSSD_BIN")
    sock = os.path.join(short_tmp, "c.sock")
    run = subprocess.run([binary, "--qmp", f"unix:{sock}", "--metrics", f"unix:{short_tmp}/m.sock"],
                         capture_output=True, timeout=30)
    assert run.returncode == 64
    assert b"--metrics: 'unix:" in run.stderr and b"is not tcp:HOST:PORT" in run.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run([binary, "--qmp", f"unix:{sock}", "--metrics", f"tcp:127.0.0.1:{port}"],
                             capture_output=True, timeout=30)
    assert run.returncode == 1
    assert f"cannot listen for metrics on tcp:127.0.0.1:{port}".encode() in run.stderr
    assert not os.path.exists(sock)


def families(text: str) -> list[str]:
    return [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]


def test_every_family_from_the_start_in_a_stable_order_with_process_metrics(short_tmp):
    """Before any client came: the QMP families (each command's ok counter at 0, the listener's
    connection series), the path changes of every kind and cause at 0, and the process_*
    families every exporter has; families in name order, the same in another process (the
    registry's own order changes with each process's hash seed)."""
    orders = []
    for name in ("a", "b"):
        workdir = os.path.join(short_tmp, name)
        os.makedirs(workdir)
        srv = start_with_metrics(workdir)
        try:
            status, _, body = http_get(f"http://127.0.0.1:{srv.extra['metrics_port']}/metrics")
            text = body.decode()
        finally:
            srv.stop()
        names = families(text)
        assert names == sorted(names)
        orders.append(names)
        for family in ("cssd_qmp_commands_total", "cssd_qmp_command_duration_seconds", "cssd_qmp_connections_total",
                       "cssd_qmp_connections_open", "cssd_path_changes_total", "process_cpu_seconds_total",
                       "process_resident_memory_bytes", "process_virtual_memory_bytes", "process_start_time_seconds",
                       "process_open_fds", "process_max_fds"):
            assert family in names, family
        assert 'cssd_qmp_commands_total{command="vary-path",outcome="ok"} 0' in text
        assert 'cssd_path_changes_total{change="last-path-lost",cause="observed"} 0' in text
        values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line.startswith("process_")}
        assert abs(values["process_start_time_seconds"] - time.time()) < 600
        assert values["process_resident_memory_bytes"] > 1 << 20 and values["process_open_fds"] >= 3
        assert values["process_max_fds"] >= values["process_open_fds"]
    assert orders[0] == orders[1]
