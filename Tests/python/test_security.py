"""TLS with client certificates, authorization, plain-TCP refusal, socket groups, peer
credentials, the audit log, query-connections and connection limits (cssd --tls-creds ...)."""

from __future__ import annotations

import asyncio
import grp
import json
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import time

import pytest

from harness.cssd import cssctl_binary, cssd_server, write_policy
from harness.net import free_port, wait_connectable


# QEMU's DN string for /C=GB/O=Example/CN=mgmt (gnutls_x509_crt_get_dn: the encoded order).
DN = "C=GB,O=Example,CN=mgmt"


MGMT_ONLY = {"policy": "deny", "rules": [{"match": "*,CN=mgmt", "policy": "allow", "format": "glob"}]}


class TLSServer:
    def __init__(self, workdir, pki, extra=(), policy=MGMT_ONLY):
        self.port = free_port()
        self.authz = os.path.join(workdir, "authz.json")
        args = ["--qmp", f"tcp:127.0.0.1:{self.port}", "--tls-creds", pki.server, "--log-level", "info"]
        if policy is not None:
            write_policy(self.authz, policy)
            args += ["--tls-authz", self.authz]
        self.srv = cssd_server(workdir, extra_args=[*args, *extra])
        self.pki = pki

    def __enter__(self):
        self.srv.start()
        # The unix socket the fixture waits for is bound first; wait for the tcp one too.
        self.wait_line("listening", f"address=tcp:127.0.0.1:{self.port} ")
        return self

    def __exit__(self, *exc):
        self.srv.stop()

    def log(self) -> str:
        return self.srv.log_tail(200000)

    def wait_log(self, pattern: str, timeout: float = 10.0) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.log()
            if re.search(pattern, text):
                return text
            time.sleep(0.05)
        raise AssertionError(f"no log line matching {pattern!r}:\n{self.log()[-3000:]}")

    def wait_line(self, *parts: str, timeout: float = 10.0) -> str:
        return self.srv.wait_line(*parts, timeout=timeout, n=200000)

    def raw(self, client: str | None):
        """A TLS socket (handshake done) and its reader."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        t = self.pki.context(client).wrap_socket(s, server_hostname="127.0.0.1")
        return t, t.makefile("rb")

    def negotiated(self, client: str):
        t, f = self.raw(client)
        assert "QMP" in json.loads(f.readline())
        t.sendall(b'{"execute":"qmp_capabilities"}')
        assert json.loads(f.readline()) == {"return": {}}
        return t, f


def refused(server: TLSServer, client: str | None) -> None:
    """The client gets no greeting: the handshake or the first read fails, or EOF."""
    try:
        t, f = server.raw(client)
    except (ssl.SSLError, ConnectionError, OSError):
        return
    try:
        line = f.readline()
    except (ssl.SSLError, ConnectionError, OSError):
        return
    assert line == b"", f"client {client} was served: {line!r}"


def query(t, f, command: str, arguments: dict | None = None):
    request = {"execute": command}
    if arguments is not None:
        request["arguments"] = arguments
    t.sendall(json.dumps(request).encode())
    while True:
        reply = json.loads(f.readline())
        if "event" not in reply:
            return reply


def test_qemu_qmp_client_over_tls(binary, short_tmp, pki):
    """qemu.qmp's QMPClient with an ssl.SSLContext: served, and identified by its DN."""
    from qemu.qmp import QMPClient

    with TLSServer(short_tmp, pki) as server:
        async def run():
            qmp = QMPClient("tls-test")
            await qmp.connect(("127.0.0.1", server.port), ssl=pki.context("mgmt"))
            try:
                version = await qmp.execute("query-version")
                connections = await qmp.execute("query-connections")
            finally:
                # qemu.qmp 0.0.6's disconnect over asyncio TLS waits for a stream close that
                # never comes, against cssd and against socat's TLS alike (a client-side
                # matter): bound it.
                try:
                    await asyncio.wait_for(qmp.disconnect(), 2)
                except asyncio.TimeoutError:
                    pass
            return version, connections

        version, connections = asyncio.run(run())
        assert version["package"].startswith("cssd")
        me = [c for c in connections if c["current"]]
        assert len(me) == 1
        assert me[0]["transport"] == "tls"
        assert me[0]["identity"] == DN
        assert me[0]["listener"] == f"tcp:127.0.0.1:{server.port}"
        assert me[0]["bytes-in"] > 0 and me[0]["bytes-out"] > 0
        assert f"dn={DN}" in server.log() or DN in server.log()


@pytest.mark.parametrize("client,reason", [
    (None, "presented no certificate"),
    ("stranger", "not issued by this CA"),
    ("expired", "expired"),
    ("revoked", "revoked"),
    ("intruder", "the policy denies 'C=GB,O=Example,CN=intruder'"),
])
def test_bad_clients_refused_with_reason_others_served(binary, short_tmp, pki, client, reason):
    with TLSServer(short_tmp, pki) as server:
        good, reader = server.negotiated("mgmt")
        refused(server, client)
        server.wait_log(re.escape(reason))
        # The established client is not disturbed, and new good ones are served.
        assert "return" in query(good, reader, "query-version")
        other, other_reader = server.negotiated("mgmt")
        assert "return" in query(other, other_reader, "query-version")
        assert server.srv.alive()


def test_plaintext_clients_on_tls_port(binary, short_tmp, pki):
    """A plaintext request fails the handshake; a silent plaintext client (waiting for a greeting)
    is closed at the handshake timeout; TLS clients are served meanwhile."""
    with TLSServer(short_tmp, pki, extra=["--tls-handshake-timeout", "700"]) as server:
        good, reader = server.negotiated("mgmt")
        talker = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        talker.sendall(b'{"execute": "qmp_capabilities"}\r\n')
        data = talker.recv(4096)
        assert b"QMP" not in data
        server.wait_log("not a TLS client")
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        assert "return" in query(good, reader, "query-version")
        started = time.time()
        while silent.recv(4096):
            pass  # a TLS alert at most, then EOF
        assert time.time() - started < 5
        server.wait_log("TLS handshake timed out")
        assert "return" in query(good, reader, "query-version")


def test_authz_reload_on_change_and_sighup(binary, short_tmp, pki):
    with TLSServer(short_tmp, pki) as server:
        refused(server, "intruder")
        # The file changes: picked up within a couple of seconds.
        write_policy(server.authz, {"policy": "allow"})
        server.wait_line("authorization policy reloaded", 'reason="file changed"')
        t, f = server.negotiated("intruder")
        t.close()
        # A bad file keeps the previous policy and says why.
        with open(server.authz, "w") as f2:
            f2.write('{"policy": "allow", "rules": [{"match": "x"}]}')
        server.wait_line("not reloaded, keeping the previous one", "lacks 'policy'")
        t, f = server.negotiated("intruder")
        t.close()
        # SIGHUP with the bad file: still alive, still the old policy.
        server.srv.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert server.srv.alive()
        t, f = server.negotiated("intruder")
        t.close()
        # SIGHUP after a fix: the new policy.
        with open(server.authz, "w") as f2:
            json.dump(MGMT_ONLY, f2)
        server.srv.proc.send_signal(signal.SIGHUP)
        server.wait_line("authorization policy reloaded", "reason=reload ")
        deadline = time.time() + 5
        while True:
            try:
                refused(server, "intruder")
                break
            except AssertionError:
                assert time.time() < deadline
                time.sleep(0.2)
        t, f = server.negotiated("mgmt")
        assert "return" in query(t, f, "query-version")
        assert "TLS credentials reloaded" in server.log()


def test_authz_formats(binary, short_tmp, pki):
    """exact and glob rules, first match decides, default policy last."""
    policy = {"policy": "allow", "rules": [
        {"match": "C=GB,O=Example,CN=intruder", "policy": "deny", "format": "exact"},
        {"match": "C=??,O=Exam?le,CN=mgmt", "policy": "allow", "format": "glob"},
        {"match": "*CN=mgmt*", "policy": "deny", "format": "glob"},
    ]}
    with TLSServer(short_tmp, pki, policy=policy) as server:
        refused(server, "intruder")
        t, f = server.negotiated("mgmt")
        t.close()


@pytest.mark.parametrize("content,message", [
    ("{not json", "authz.json:1"),
    ('{"policy": "maybe"}', "'policy' must be \"allow\" or \"deny\""),
    ('{"policy": "deny", "rules": [{"match": "CN=a", "policy": "allow", "format": "regex"}]}',
     "rules[0].format must be"),
    ('{"policy": "deny", "extra": 1}', "unexpected member 'extra'"),
])
def test_bad_authz_file_refuses_start(binary, short_tmp, pki, content, message):
    path = os.path.join(short_tmp, "authz.json")
    with open(path, "w") as f:
        f.write(content)
    r = subprocess.run([binary, "--qmp", f"tcp:127.0.0.1:{free_port()}", "--tls-creds", pki.server,
                        "--tls-authz", path], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert message in r.stderr, r.stderr


def test_bad_credentials_refuse_start(binary, short_tmp, pki):
    empty = os.path.join(short_tmp, "creds")
    os.makedirs(empty)
    r = subprocess.run([binary, "--qmp", f"tcp:127.0.0.1:{free_port()}", "--tls-creds", empty],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"cannot read {empty}/ca-cert.pem" in r.stderr, r.stderr


@pytest.mark.parametrize("option", ["--qmp", "--qmp-readonly"])
def test_plain_tcp_on_non_loopback_refused(binary, short_tmp, pki, option):
    r = subprocess.run([binary, option, "tcp:0.0.0.0:0"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"refusing {option} tcp:0.0.0.0:0 without TLS" in r.stderr, r.stderr
    assert "--tls-creds" in r.stderr
    # With TLS it is allowed; loopback without TLS too.
    srv = cssd_server(short_tmp, extra_args=[option, "tcp:0.0.0.0:0", "--tls-creds", pki.server]).start()
    srv.stop()
    srv = cssd_server(short_tmp, extra_args=[option, "tcp:127.0.0.1:0"]).start()
    srv.stop()


def test_socket_modes_and_group(binary, short_tmp):
    srv = cssd_server(short_tmp).start()
    try:
        st = os.stat(srv.sock)
        assert stat.S_IMODE(st.st_mode) == 0o600
    finally:
        srv.stop()
    groups = [g for g in grp.getgrall() if g.gr_gid != os.getegid()]
    if os.geteuid() == 0 and groups:
        group = groups[0]
    else:
        group = grp.getgrgid(os.getegid())
    srv = cssd_server(short_tmp, extra_args=["--socket-group", group.gr_name]).start()
    try:
        st = os.stat(srv.sock)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert st.st_gid == group.gr_gid
    finally:
        srv.stop()
    r = subprocess.run([binary, "--socket-group", "no-such-group-here"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "no group 'no-such-group-here'" in r.stderr


def test_peer_credentials_and_query_connections(binary, short_tmp):
    ro = os.path.join(short_tmp, "ro.sock")
    srv = cssd_server(short_tmp, extra_args=["--qmp-readonly", f"unix:{ro}"]).start()
    try:
        deadline = time.time() + 10
        while f"address=unix:{ro} " not in srv.log_tail():  # bound after the first socket
            assert time.time() < deadline, srv.log_tail()
            time.sleep(0.02)
        s = socket.socket(socket.AF_UNIX)
        s.connect(srv.sock)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b'{"execute":"qmp_capabilities"}')
        f.readline()
        s.sendall(b'{"execute":"subscribe-path-events"}')
        sub = json.loads(f.readline())["return"]["subscription"]
        r = socket.socket(socket.AF_UNIX)
        r.connect(ro)
        rf = r.makefile("rb")
        rf.readline()
        r.sendall(b'{"execute":"qmp_capabilities"}')
        rf.readline()
        r.sendall(b'{"execute":"query-connections"}')
        reply = json.loads(rf.readline())["return"]
        assert len(reply) == 2
        first, second = reply
        assert first["listener"] == f"unix:{srv.sock}" and not first["read-only"]
        assert first["uid"] == os.getuid() and first["gid"] == os.getgid() and first["pid"] == os.getpid()
        assert first["identity"] == f"uid={os.getuid()} gid={os.getgid()} pid={os.getpid()}"
        assert first["subscriptions"] == [sub] and not first["current"]
        assert first["bytes-in"] == len(b'{"execute":"qmp_capabilities"}{"execute":"subscribe-path-events"}')
        assert second["listener"] == f"unix:{ro}" and second["read-only"] and second["current"]
        assert second["transport"] == "unix"
    finally:
        srv.stop()


def test_audit_log(binary, short_tmp, pki):
    with TLSServer(short_tmp, pki, extra=["--qmp", f"unix:{os.path.join(short_tmp, 'u.sock')}"]) as server:
        server.wait_line("listening", f"address=unix:{os.path.join(short_tmp, 'u.sock')} ")
        t, f = server.negotiated("mgmt")
        assert "return" in query(t, f, "vary-path", {"chpid": "0.40", "state": "offline"})
        assert "error" in query(t, f, "vary-path", {"chpid": "0.77", "state": "offline"})
        assert "return" in query(t, f, "query-chpids")
        s = socket.socket(socket.AF_UNIX)
        s.connect(os.path.join(short_tmp, "u.sock"))
        uf = s.makefile("rb")
        uf.readline()
        s.sendall(b'{"execute":"qmp_capabilities"}{"execute":"vary-path","arguments":{"chpid":"0.40","state":"online"}}')
        uf.readline()
        assert "return" in json.loads(uf.readline())
        # Values with spaces or quotes are written in quotes, with \" inside (one value each).
        server.wait_line("notice", "command=vary-path", '\\"online\\"')
        log = server.log()
        lines = [l for l in log.splitlines() if "command" in l and "notice" in l]
        assert any(f"who={DN}" in l and "command=vary-path" in l and '\\"offline\\"' in l and "outcome=ok" in l
                   and f"listener=tcp:127.0.0.1:{server.port}" in l for l in lines), lines
        assert any("DeviceNotFound" in l and "0.77" in l for l in lines), lines
        assert any(f'who="uid={os.getuid()} gid={os.getgid()} pid={os.getpid()}"' in l and '\\"online\\"' in l
                   for l in lines), lines
        # Read-only commands and negotiation are not audited.
        assert not any("query-chpids" in l or "qmp_capabilities" in l for l in lines)


def test_max_clients(binary, short_tmp):
    srv = cssd_server(short_tmp, extra_args=["--max-clients", "2"]).start()
    try:
        held = []
        for _ in range(2):
            s = socket.socket(socket.AF_UNIX)
            s.connect(srv.sock)
            assert b"QMP" in s.makefile("rb").readline()
            held.append(s)
        extra = socket.socket(socket.AF_UNIX)
        extra.settimeout(10)
        extra.connect(srv.sock)
        assert extra.recv(4096) == b""
        deadline = time.time() + 5
        while "too many clients" not in srv.log_tail():
            assert time.time() < deadline, srv.log_tail()
            time.sleep(0.05)
        held.pop().close()
        time.sleep(0.2)
        again = socket.socket(socket.AF_UNIX)
        again.connect(srv.sock)
        assert b"QMP" in again.makefile("rb").readline()
    finally:
        srv.stop()


def test_handshake_bound(binary, short_tmp, pki):
    with TLSServer(short_tmp, pki, extra=["--max-tls-handshakes", "1", "--tls-handshake-timeout", "3000"]) as server:
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        time.sleep(0.2)
        second = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        assert second.recv(4096) == b""
        server.wait_log("too many TLS handshakes in progress")
        silent.close()
        time.sleep(0.3)
        t, f = server.negotiated("mgmt")
        assert "return" in query(t, f, "query-version")


def test_cssctl_events_over_tls(binary, short_tmp, pki):
    """cssctl events takes --tls-creds like the other subcommands."""
    with TLSServer(short_tmp, pki) as server:
        p = subprocess.Popen([cssctl_binary(), "events", "--socket", f"tcp:127.0.0.1:{server.port}",
                              "--tls-creds", pki.clients["mgmt"], "--count", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.stderr.readline().startswith("subscribed: ")
        t, f = server.negotiated("mgmt")
        assert "return" in query(t, f, "vary-path", {"chpid": "0.41", "state": "offline"})
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert json.loads(out)["data"]["chpid"] == "0.41"


def test_cssctl_over_tls(binary, short_tmp, pki):
    cssctl = cssctl_binary()
    with TLSServer(short_tmp, pki) as server:
        address = f"tcp:127.0.0.1:{server.port}"
        r = subprocess.run([cssctl, "--socket", address, "--tls-creds", pki.clients["mgmt"], "query-connections"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert DN in r.stdout
        r = subprocess.run([cssctl, "--socket", address, "--tls-creds", pki.clients["intruder"], "query-version"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2
        assert "closed the connection" in r.stderr, r.stderr
        r = subprocess.run([cssctl, "--socket", address, "--tls-creds", short_tmp, "query-version"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and "ca-cert.pem" in r.stderr, r.stderr


def test_cssctl_bench_tls_beside_plain(binary, short_tmp, pki):
    """One run: connect (handshakes), sequential and pipelined rows for TLS and plain TCP."""
    cssctl = cssctl_binary()
    plain_port = free_port()
    plain_dir = os.path.join(short_tmp, "plain")
    os.makedirs(plain_dir)
    plain = cssd_server(plain_dir, extra_args=["--qmp", f"tcp:127.0.0.1:{plain_port}"]).start()
    try:
        wait_connectable(("127.0.0.1", plain_port))
        with TLSServer(short_tmp, pki) as server:
            r = subprocess.run(
                [cssctl, "bench", "--tls-creds", pki.clients["mgmt"], "--tls-socket", f"tcp:127.0.0.1:{server.port}",
                 "--socket", f"tcp:127.0.0.1:{plain_port}", "--label", "tls", "--label", "plain",
                 "--connections", "20", "--count", "200", "--warmup", "10", "--pipelined-count", "5000", "--json"],
                capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stderr
            result = json.loads(r.stdout)
            rows = {(row["label"], row["mode"]): row for row in result["results"]}
            for label in ("tls", "plain"):
                for mode in ("connect", "sequential", "pipelined"):
                    row = rows[(label, mode)]
                    assert row["errors"] == 0 and row["ops_per_second"] > 0, row
            assert {(x["mode"], x["label"], x["relative_to"]) for x in result["ratios"]} == {
                ("connect", "tls", "plain"), ("sequential", "tls", "plain"), ("pipelined", "tls", "plain")}
            assert len(re.findall("TLS client authorized", server.log())) >= 21  # 20 timed connections and the measured one
    finally:
        plain.stop()
