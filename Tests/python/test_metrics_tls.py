"""The metrics endpoint over TLS (cssd --metrics with --tls-creds, issue 12's last piece).

Certificates come from openssl (pki.py, as test_security.py). A real Prometheus (Debian's
package) scrapes cssd over HTTPS with `tls_config` and a client certificate; `promtool check
metrics` reads a scrape fetched over TLS; clients without a certificate, of another CA,
expired, revoked, with a DN the policy denies, or speaking plain HTTP are refused and counted
while QMP keeps answering; a silent client is cut at the handshake timeout; SIGHUP and the
policy file reload the endpoint's credentials with QMP's; `--metrics-tls` keeps it plain or
refuses a contradiction.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from harness.cssd import cssd_binary, cssd_server, write_policy
from harness.net import free_port, wait_until
from harness.pki import PKI
from harness.prometheus import http_get, query_value, run_prometheus, tool
from harness.qmp import Client


ALLOW_MGMT = {"policy": "deny", "rules": [{"match": "*,CN=mgmt", "policy": "allow", "format": "glob"}]}


class TLSMetrics:
    """cssd with a QMP unix socket, --tls-creds (a copy of the PKI's server directory, so that
    a test may replace it), --tls-authz (mgmt only unless told) and --metrics on a free port."""

    def __init__(self, workdir: str, pki: PKI, *extra: str, policy: dict | None = ALLOW_MGMT):
        if cssd_binary() is None:
            pytest.skip("cssd binary not found: build it (swift build) or set CSSD_BIN")
        self.pki = pki
        self.creds = os.path.join(workdir, "creds")
        shutil.copytree(pki.server, self.creds)
        self.authz = os.path.join(workdir, "authz.json")
        args = ["--metrics", "tcp:127.0.0.1:0", "--tls-creds", self.creds, *extra]
        if policy is not None:
            write_policy(self.authz, policy)
            args += ["--tls-authz", self.authz]
        self.server = cssd_server(workdir, extra_args=args)

    def __enter__(self):
        self.server.start()
        match = wait_until(lambda: re.search(r"address=tcp:127\.0\.0\.1:(\d+)\b.*metrics listening", self.log()),
                           10, "the metrics address in cssd's log")
        self.port = int(match.group(1))
        self.line = next(line for line in self.log().splitlines() if "metrics listening" in line)
        return self

    def __exit__(self, *exc):
        self.server.stop()

    def log(self) -> str:
        return self.server.log_tail(400000)

    def url(self, path: str = "/metrics") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def get(self, client: str | None = "mgmt", headers: dict | None = None):
        """One HTTPS GET with `client`'s certificate (None: none), the server checked against the CA."""
        request = urllib.request.Request(self.url(), headers=headers or {})
        context = self.pki.context(client)
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, dict(response.headers), response.read()

    def served(self) -> bool:
        """Whether mgmt is served now (the endpoint may still be closing other connections)."""
        try:
            return self.get()[0] == 200
        except (urllib.error.URLError, OSError):
            return False

    def values(self) -> dict:
        _, _, body = self.get()
        values = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                values[key] = float(value)
        return values

    def refusals(self) -> dict:
        prefix = 'cssd_metrics_tls_refusals_total{reason="'
        return {k[len(prefix):-2]: v for k, v in self.values().items() if k.startswith(prefix)}

    def wait_line(self, *parts: str, timeout: float = 10.0) -> str:
        return self.server.wait_line(*parts, timeout=timeout)

    def refused(self, client: str | None) -> None:
        """`client` gets no HTTP answer: the handshake, the request or the read fails, or EOF."""
        context = self.pki.context(client)
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            try:
                tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
            except (ssl.SSLError, ConnectionError, OSError):
                return
            # TLS 1.3: the client's handshake completes before the server has checked its
            # certificate; the refusal arrives as an alert or EOF on the first read.
            try:
                tls.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answer = tls.recv(65536)
            except (ssl.SSLError, ConnectionError, OSError):
                return
            assert answer == b"", f"client {client} was answered: {answer[:100]!r}"
        finally:
            raw.close()


def _qmp_answers(server) -> None:
    client = Client(server.sock)
    try:
        assert "qemu" in client.call("query-version")
    finally:
        client.close()


@pytest.fixture
def prometheus_over_tls(short_tmp, pki):
    """cssd with TLS metrics, and a Prometheus with two https jobs: `cssd` with mgmt's
    certificate (allowed) and `cssd-intruder` with a certificate the policy denies."""
    with TLSMetrics(short_tmp, pki) as cssd:
        def job(name: str, client: str) -> dict:
            d = pki.clients[client]
            return {
                "job_name": name, "scheme": "https",
                "tls_config": {"ca_file": os.path.join(pki.server, "ca-cert.pem"),
                               "cert_file": os.path.join(d, "client-cert.pem"),
                               "key_file": os.path.join(d, "client-key.pem")},
                "static_configs": [{"targets": [f"127.0.0.1:{cssd.port}"]}],
            }
        with run_prometheus(short_tmp, {
            "global": {"scrape_interval": "500ms", "evaluation_interval": "500ms"},
            "scrape_configs": [job("cssd", "mgmt"), job("cssd-intruder", "intruder")],
        }) as base:
            yield cssd, base


def _target(base: str, job: str) -> dict:
    _, _, body = http_get(base + "/api/v1/targets")
    return next(t for t in json.loads(body)["data"]["activeTargets"] if t["labels"]["job"] == job)


def test_prometheus_scrapes_over_https(prometheus_over_tls):
    cssd, base = prometheus_over_tls
    assert "tls=true" in cssd.line and f"authz={cssd.authz}" in cssd.line
    wait_until(lambda: query_value(base, 'up{job="cssd"}') == 1.0, 30, "the https target to be up")
    wait_until(lambda: query_value(base, 'cssd_chpid_vary_state{job="cssd",chpid="0.40",state="online"}') == 1.0, 20,
               "a cssd series scraped over https")
    # A change made over QMP reaches Prometheus through the TLS endpoint.
    client = Client(cssd.server.sock)
    try:
        assert client.call("vary-path", chpid="0.40", state="offline")["changed"] > 0
    finally:
        client.close()
    wait_until(lambda: query_value(base, 'cssd_chpid_vary_state{job="cssd",chpid="0.40",state="offline"}') == 1.0, 20,
               "0.40 offline in Prometheus")
    target = _target(base, "cssd")
    assert target["scrapeUrl"].startswith("https://") and target["health"] == "up", target
    # The job whose certificate the policy denies is down, and its refusals are counted.
    wait_until(lambda: _target(base, "cssd-intruder")["health"] == "down", 20, "the intruder's target to be down")
    assert query_value(base, 'up{job="cssd-intruder"}') == 0.0
    wait_until(lambda: (query_value(base, 'cssd_metrics_tls_refusals_total{job="cssd",reason="unauthorized"}')
                        or 0) > 0, 20, "the intruder's refusals counted")
    assert query_value(base, 'cssd_metrics_tls_refusals_total{job="cssd",reason="not-tls"}') == 0.0
    cssd.wait_line("metrics: TLS client not authorized", "dn=C=GB,O=Example,CN=intruder")
    _qmp_answers(cssd.server)


def test_promtool_accepts_a_scrape_fetched_over_tls(short_tmp, pki):
    with TLSMetrics(short_tmp, pki) as cssd:
        status, headers, body = cssd.get()
        assert status == 200
        assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        check = subprocess.run([tool("promtool"), "check", "metrics"], input=body, capture_output=True)
        assert check.returncode == 0, (check.stdout + check.stderr).decode()
        text = body.decode()
        assert 'cssd_chpid_info{chpid="0.40",' in text
        # Every reason is there from the start, at 0.
        for reason in ("no-certificate", "not-tls", "protocol-version", "bad-certificate", "revoked",
                       "unauthorized", "timeout", "abandoned", "other"):
            assert f'cssd_metrics_tls_refusals_total{{reason="{reason}"}} 0' in text
        # OpenMetrics over TLS too, and curl (another TLS stack) with the client layout's files.
        status, headers, body = cssd.get(headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        assert headers["Content-Type"].startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")
        if shutil.which("curl"):
            d = pki.clients["mgmt"]
            run = subprocess.run(
                ["curl", "-sS", "--fail", "--cacert", os.path.join(pki.server, "ca-cert.pem"),
                 "--cert", os.path.join(d, "client-cert.pem"), "--key", os.path.join(d, "client-key.pem"),
                 cssd.url()], capture_output=True, timeout=20)
            assert run.returncode == 0, run.stderr.decode()
            check = subprocess.run([tool("promtool"), "check", "metrics"], input=run.stdout, capture_output=True)
            assert check.returncode == 0, (check.stdout + check.stderr).decode()


def test_refused_clients_are_counted_and_qmp_keeps_answering(short_tmp, pki):
    with TLSMetrics(short_tmp, pki) as cssd:
        # A QMP connection open throughout, answered between every refusal.
        client = Client(cssd.server.sock)
        try:
            cases = [
                (None, "no-certificate", "metrics: TLS handshake failed", "presented no certificate"),
                ("intruder", "unauthorized", "metrics: TLS client not authorized", "the policy denies"),
                ("stranger", "bad-certificate", "metrics: TLS handshake failed", "not issued by this CA"),
                ("expired", "bad-certificate", "metrics: TLS handshake failed", "expired at"),
                ("revoked", "revoked", "metrics: TLS client refused", "is revoked"),
            ]
            for who, reason, message, why in cases:
                before = cssd.refusals()
                started = time.monotonic()
                cssd.refused(who)
                assert "qemu" in client.call("query-version")
                assert time.monotonic() - started < 30  # a hang guard: the machine may be loaded
                wait_until(lambda: cssd.refusals()[reason] == before[reason] + 1, 5, f"{who}'s refusal as {reason}")
                cssd.wait_line(message, why)

            # Plain HTTP to the TLS port: no HTTP answer, counted as not-tls; QMP unaffected.
            before = cssd.refusals()
            with socket.create_connection(("127.0.0.1", cssd.port), timeout=10) as plain:
                plain.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = b""
                try:
                    while chunk := plain.recv(65536):
                        answer += chunk
                except ConnectionResetError:
                    pass
            assert b"HTTP/" not in answer and b"cssd_" not in answer, answer[:200]
            assert "qemu" in client.call("query-version")
            wait_until(lambda: cssd.refusals()["not-tls"] == before["not-tls"] + 1, 5, "the plaintext refusal")
            cssd.wait_line("metrics: TLS handshake failed", "not a TLS client")
            # And an http:// scraper learns nothing either.
            with pytest.raises((urllib.error.URLError, http.client.HTTPException, OSError)):
                urllib.request.urlopen(f"http://127.0.0.1:{cssd.port}/metrics", timeout=10).read()

            # The allowed client is served after all that.
            assert cssd.get()[0] == 200
        finally:
            client.close()
        assert cssd.server.alive()


def test_handshake_timeout_and_bound(short_tmp, pki):
    """A silent client is cut at --tls-handshake-timeout; silent clients fill at most the
    endpoint's 16 connections and take none of QMP's handshake slots (--max-tls-handshakes 1
    here): a QMP TLS client is served meanwhile; scrapes resume when they go."""
    qmp_port = free_port()
    with TLSMetrics(short_tmp, pki, "--tls-handshake-timeout", "3000", "--max-tls-handshakes", "1",
                    "--qmp", f"tcp:127.0.0.1:{qmp_port}") as cssd:
        cssd.wait_line("listening", f"address=tcp:127.0.0.1:{qmp_port} ", "tls=true")
        silent = socket.create_connection(("127.0.0.1", cssd.port), timeout=10)
        started = time.monotonic()
        assert silent.recv(1) == b""
        # Not before --tls-handshake-timeout; the socket's own timeout (10 s) bounds it above.
        assert 2.9 < time.monotonic() - started
        silent.close()
        cssd.wait_line("metrics: TLS handshake timed out", "no completed handshake within 3000 ms")
        assert cssd.refusals()["timeout"] == 1
        # 16 silent connections hold the endpoint; a 17th closes the oldest of them (the one
        # that made progress least recently) instead of being refused; QMP answers, over TLS
        # too, although its one handshake slot would be taken if metrics shared it.
        held = [socket.create_connection(("127.0.0.1", cssd.port), timeout=10) for _ in range(16)]
        try:
            time.sleep(0.2)
            held.append(socket.create_connection(("127.0.0.1", cssd.port), timeout=10))
            try:
                assert held[0].recv(1) == b""  # closed by cssd (a timeout would raise, not read EOF)
            except ConnectionResetError:
                pass
            _qmp_answers(cssd.server)
            with socket.create_connection(("127.0.0.1", qmp_port), timeout=10) as raw:
                with pki.context("mgmt").wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    assert b'"QMP"' in tls.makefile("rb").readline()
        finally:
            for s in held:
                s.close()
        wait_until(lambda: cssd.served(), 5, "a scrape once the silent clients are gone")


def test_qmp_tls_refusals_are_counted_by_listener(short_tmp, pki):
    """QMP's TLS listeners refuse with the endpoint's gate and count their refusals in
    cssd_qmp_tls_refusals_total{listener,reason}, every reason at 0 from the start."""
    qmp_port = free_port()
    listener = f"tcp:127.0.0.1:{qmp_port}"
    with TLSMetrics(short_tmp, pki, "--qmp", listener) as cssd:
        cssd.wait_line("listening", f"address={listener} ", "tls=true")
        prefix = f'cssd_qmp_tls_refusals_total{{listener="{listener}",reason="'

        def counts() -> dict:
            return {k[len(prefix):-2]: v for k, v in cssd.values().items() if k.startswith(prefix)}

        assert counts() == {reason: 0.0 for reason in cssd.refusals()}
        assert len(counts()) == 9
        # The intruder completes its handshake (TLS 1.3), then gets EOF or an alert, no greeting.
        with socket.create_connection(("127.0.0.1", qmp_port), timeout=10) as raw:
            try:
                with pki.context("intruder").wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    assert b"QMP" not in tls.recv(4096)
            except (ssl.SSLError, ConnectionError):
                pass
        wait_until(lambda: counts()["unauthorized"] == 1, 5, "the intruder counted as unauthorized")
        cssd.wait_line("TLS client not authorized", f"listener={listener}", "the policy denies")
        # Plain QMP to the TLS port.
        with socket.create_connection(("127.0.0.1", qmp_port), timeout=10) as plain:
            plain.sendall(b'{"execute": "qmp_capabilities"}\r\n')
            try:
                while chunk := plain.recv(4096):
                    assert b"QMP" not in chunk
            except ConnectionResetError:
                pass
        wait_until(lambda: counts()["not-tls"] == 1, 5, "the plaintext client counted as not-tls")
        # mgmt is served and counts nowhere; the metrics endpoint's own family saw none of it.
        with socket.create_connection(("127.0.0.1", qmp_port), timeout=10) as raw:
            with pki.context("mgmt").wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                assert b'"QMP"' in tls.makefile("rb").readline()
        assert sum(counts().values()) == 2
        assert sum(cssd.refusals().values()) == 0
        check = subprocess.run([tool("promtool"), "check", "metrics"], input=cssd.get()[2], capture_output=True)
        assert check.returncode == 0, (check.stdout + check.stderr).decode()


def test_sighup_and_policy_changes_reload_the_endpoint(short_tmp, pki):
    with TLSMetrics(short_tmp, pki, "--log-level", "info") as cssd:
        def served_certificate() -> bytes:
            context = pki.context("mgmt")
            with socket.create_connection(("127.0.0.1", cssd.port), timeout=10) as raw:
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    return tls.getpeercert(binary_form=True)
        first = served_certificate()
        # A new server certificate from the same CA, then SIGHUP: later connections get it.
        key, cert = pki.ca.issue("server-renewed", "/O=Example/CN=localhost", ext="server_ext")
        shutil.copy(cert, os.path.join(cssd.creds, "server-cert.pem"))
        shutil.copy(key, os.path.join(cssd.creds, "server-key.pem"))
        assert served_certificate() == first  # nothing reloaded yet
        cssd.server.proc.send_signal(signal.SIGHUP)
        cssd.wait_line("TLS credentials reloaded")
        renewed = served_certificate()
        assert renewed != first
        with open(cert) as f:
            assert ssl.DER_cert_to_PEM_cert(renewed).strip() == f.read().strip()
        assert cssd.get()[0] == 200

        # The policy file changes: mgmt is refused on metrics too, then allowed again.
        write_policy(cssd.authz, {"policy": "deny", "rules": []})
        cssd.wait_line("authorization policy reloaded", 'reason="file changed"', "rules=0")
        cssd.refused("mgmt")
        write_policy(cssd.authz, ALLOW_MGMT)
        cssd.wait_line("authorization policy reloaded", 'reason="file changed"', "rules=1")
        assert cssd.get()[0] == 200
        assert cssd.server.alive()


def test_without_authz_any_certificate_of_the_ca_is_served(short_tmp, pki):
    """As QMP without --tls-authz: a valid certificate of the CA suffices; still required."""
    with TLSMetrics(short_tmp, pki, policy=None) as cssd:
        assert "authz=none" in cssd.line
        assert cssd.get("intruder")[0] == 200
        cssd.refused(None)
        cssd.refused("stranger")


def test_metrics_tls_off_keeps_metrics_plain(short_tmp, pki):
    with TLSMetrics(short_tmp, pki, "--metrics-tls", "off") as cssd:
        assert "tls=false" in cssd.line
        cssd.wait_line("metrics served over plain HTTP although --tls-creds is given")
        status, _, body = http_get(f"http://127.0.0.1:{cssd.port}/metrics")
        assert status == 200 and b"cssd_build_info" in body
        assert b"cssd_metrics_tls_refusals_total" not in body


@pytest.mark.parametrize("args, message", [
    (["--metrics", "tcp:127.0.0.1:0", "--metrics-tls", "on"],
     "--metrics-tls on serves metrics with the --tls-creds certificates: it needs --tls-creds DIR"),
    (["--metrics-tls", "off"], "--metrics-tls off configures the metrics endpoint: it needs --metrics tcp:HOST:PORT"),
    (["--metrics", "tcp:127.0.0.1:0", "--metrics-tls", "yes"], "--metrics-tls"),
])
def test_contradictory_metrics_tls_refuses_to_start(short_tmp, args, message):
    binary = cssd_binary()
    if binary is None:
        pytest.skip("cssd binary not found: build it (swift build) or set CSSD_BIN")
    sock = os.path.join(short_tmp, "c.sock")
    run = subprocess.run([binary, "--qmp", f"unix:{sock}", *args], capture_output=True, timeout=30)
    assert run.returncode == 64, run.stderr.decode()
    assert message in run.stderr.decode()
    assert not os.path.exists(sock)


def test_metrics_tls_on_is_the_default_with_tls_creds(short_tmp, pki):
    with TLSMetrics(short_tmp, pki, "--metrics-tls", "on") as cssd:
        assert "tls=true" in cssd.line
        assert cssd.get()[0] == 200
