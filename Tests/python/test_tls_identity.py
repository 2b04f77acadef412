"""Who is let in over TLS, with QEMU 7.2 as the oracle: the DN string that authz rules match
(QEMU's gnutls_x509_crt_get_dn, byte for byte), names with control characters and NUL, and
revocation of every certificate of the chain a client presents (an intermediate CA revoked by
the root's CRL). Each case runs against a real qemu-system-s390x with the same credentials
directory and the same rules, and cssd must decide as QEMU does."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time

import pytest

from harness.cssd import cssd_server, write_policy
from harness.net import free_port, wait_port
from harness.pki import CA, PKI
from harness.qemu import QEMU_ARGS, qemu_binary


@pytest.fixture(scope="module")
def pki(pki):
    """conftest.py's certificates, and clients with names QEMU and cssd must treat alike."""
    pytest.importorskip("cryptography")
    p = pki
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    def name(*pairs):
        return x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(oid, value)]) for oid, value in pairs])

    # A CN with a newline and a fake log line after it, and one with a NUL (GnuTLS writes it as hex).
    key, cert = p.ca.issue_raw("forger", name((NameOID.ORGANIZATION_NAME, "Example"),
                                              (NameOID.COMMON_NAME, "evil\nforged level=critical")))
    p.add_client("forger", key, cert)
    key, cert = p.ca.issue_raw("nul", name((NameOID.ORGANIZATION_NAME, "Example"),
                                           (NameOID.COMMON_NAME, "mgmt\x00,O=Other")))
    p.add_client("nul", key, cert)
    # Names that glob rules treat differently in GLib (QEMU) and fnmatch: an escaped comma, a
    # bracket, a letter of two UTF-8 bytes; and white space other than the ASCII space.
    for client, cn in (("smith", "Smith, John"), ("ops", "[ops] eve"), ("juergen", "J\u00fcrgen"),
                       ("spacer", "intruder\u2003reason=maintenance\u2003peer=10.9.9.9\u202e")):
        key, cert = p.ca.issue_raw(client, name((NameOID.ORGANIZATION_NAME, "Example"), (NameOID.COMMON_NAME, cn)))
        p.add_client(client, key, cert)
    # No subject at all: GnuTLS has no DN to give, and QEMU refuses the client.
    key, cert = p.ca.issue_raw("nameless", x509.Name([]))
    p.add_client("nameless", key, cert)
    # An intermediate CA that the root revokes, one it does not, and one whose key usage does
    # not allow signing certificates; each issues a client that presents its intermediate after
    # its own certificate. ca-cert.pem holds the root only. The good intermediate also revokes
    # one of its own clients in a CRL of its own (in ca-crl.pem beside the root's).
    crls = []
    for label, kind in (("revoked-sub", "revoked"), ("good-sub", "good"), ("nokcs-sub", "no-keycertsign")):
        sub = CA(p.root, label, f"/O=Example/CN={label} CA", parent=p.ca,
                 key_usage="digitalSignature,cRLSign" if kind == "no-keycertsign" else None)
        key, cert = sub.issue(f"{label}-client", f"/C=GB/O=Example/CN=via-{label}")
        p.add_client(f"via-{label}", key, cert, chain=(sub.cert,))
        if kind == "revoked":
            p.ca.revoke(sub.cert)
        if kind == "good":
            key, cert = sub.issue("revoked-by-sub", "/C=GB/O=Example/CN=revoked-by-sub")
            p.add_client("revoked-by-sub", key, cert, chain=(sub.cert,))
            sub.revoke(cert)
            crls.append(os.path.join(sub.dir, "crl.pem"))
            sub.crl(crls[-1])
    root_crl = os.path.join(p.root, "root-crl.pem")
    p.ca.crl(root_crl)
    with open(os.path.join(p.server, "ca-crl.pem"), "w") as out:
        for path in (root_crl, *crls):
            with open(path) as f:
                out.write(f.read())
    return p


def _qemu_binary():
    binary = qemu_binary()
    if binary is None:
        pytest.skip("qemu-system-s390x not installed (Scripts/setup)")
    return binary


def _served(pki: PKI, port: int, client: str) -> bool:
    """Whether the client gets a QMP greeting (else the handshake fails or the server closes)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
    except OSError:
        return False
    try:
        t = pki.context(client).wrap_socket(s, server_hostname="127.0.0.1")
        line = t.makefile("rb").readline()
        return line.startswith(b'{"QMP"')
    except (ssl.SSLError, ConnectionError, OSError):
        return False
    finally:
        s.close()


class QEMU:
    """qemu-system-s390x with its QMP monitor on a TLS chardev: tls-creds-x509 (verify-peer=on)
    on the same directory cssd uses, and an authz-list object with the rules (Debian's QEMU
    has no authz-list-file; authz-list takes the same rules)."""

    def __init__(self, workdir: str, pki: PKI, policy: dict):
        self.port = free_port()
        self.log = os.path.join(workdir, f"qemu-{self.port}.log")
        authz = json.dumps({"qom-type": "authz-list", "id": "authz0", **policy})
        self.argv = [_qemu_binary(), *QEMU_ARGS,
                     "-object", f"tls-creds-x509,id=tls0,dir={pki.server},endpoint=server,verify-peer=on",
                     "-object", authz,
                     "-chardev", f"socket,id=mon0,host=127.0.0.1,port={self.port},server=on,wait=off,"
                                 "tls-creds=tls0,tls-authz=authz0",
                     "-mon", "chardev=mon0,mode=control"]

    def __enter__(self):
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, self.log)
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait(timeout=30)


class CSSD:
    def __init__(self, workdir: str, pki: PKI, policy: dict):
        self.port = free_port()
        authz = os.path.join(workdir, f"authz-{self.port}.json")
        with open(authz, "w") as f:
            json.dump(policy, f)
        self.server = cssd_server(workdir, sock=os.path.join(workdir, f"c{self.port}.sock"), extra_args=[
            "--qmp", f"tcp:127.0.0.1:{self.port}", "--tls-creds", pki.server, "--tls-authz", authz])

    def __enter__(self):
        self.server.start()
        wait_port(self.port, self.server.proc, self.server.log_path)
        return self

    def __exit__(self, *exc):
        self.server.stop()

    def log(self) -> str:
        return self.server.log_tail(1 << 20)


def _until_refused(pki: PKI, port: int, client: str, why: str, timeout: float = 30) -> None:
    """Waits until `client` is no longer served; fails with `why` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while _served(pki, port, client):
        assert time.monotonic() < deadline, why
        time.sleep(0.2)


def _rule(match: str, policy: str = "allow", fmt: str = "exact") -> dict:
    return {"match": match, "policy": policy, "format": fmt}


# Rules written as an operator coming from QEMU would write them, and the old (reversed) order.
POLICIES = {
    "qemu-order-exact": {"policy": "deny", "rules": [_rule("C=GB,O=Example,CN=mgmt")]},
    "reversed-order-exact": {"policy": "deny", "rules": [_rule("CN=mgmt,O=Example,C=GB")]},
    "glob-on-cn": {"policy": "deny", "rules": [_rule("*,CN=mgmt", fmt="glob")]},
    "deny-intruder-else-allow": {"policy": "allow", "rules": [_rule("C=GB,O=Example,CN=intruder", "deny")]},
    "glob-prefix": {"policy": "deny", "rules": [_rule("O=Example,CN=mgmt*", fmt="glob"), _rule("O=Example,CN=evil*", fmt="glob")]},
    "exact-control": {"policy": "deny", "rules": [_rule("O=Example,CN=evil\nforged level=critical")]},
    # Glob rules as GLib reads them (QEMU's g_pattern_match_simple): \ and [ are plain characters,
    # ? is one UTF-8 character.
    "glob-deny-list": {"policy": "allow", "rules": [
        _rule("O=Example,CN=Smith\\, John", "deny", "glob"), _rule("*,CN=[ops]*", "deny", "glob"),
        _rule("O=Example,CN=J?rgen", "deny", "glob")]},
    "glob-escaped-comma": {"policy": "deny", "rules": [_rule("*CN=Smith\\,*", fmt="glob")]},
    "no-rules-allow": {"policy": "allow", "rules": []},
}
CLIENTS = ["mgmt", "intruder", "forger", "nul", "smith", "ops", "juergen", "nameless"]


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_authz_decides_as_qemu(short_tmp, pki, policy):
    """The same rules and clients against QEMU 7.2 and cssd: the same decision for each."""
    with QEMU(short_tmp, pki, POLICIES[policy]) as qemu:
        expected = {client: _served(pki, qemu.port, client) for client in CLIENTS}
    with CSSD(short_tmp, pki, POLICIES[policy]) as cssd:
        got = {client: _served(pki, cssd.port, client) for client in CLIENTS}
    assert got == expected, f"cssd {got} but QEMU {expected}"
    # The case the issue names: QEMU's order lets mgmt in, the reversed one does not.
    if policy == "qemu-order-exact":
        assert expected["mgmt"] and not expected["intruder"]
    if policy == "reversed-order-exact":
        assert not expected["mgmt"]


def test_revoked_intermediate_refused_as_qemu_refuses(short_tmp, pki):
    """A client whose issuer (an intermediate CA it presents) is on the root's CRL is refused by
    QEMU and by cssd, on QMP and on the metrics endpoint; one through a good intermediate is
    served by both."""
    allow_all = {"policy": "allow", "rules": []}
    clients = ["via-revoked-sub", "via-good-sub", "revoked", "mgmt", "via-nokcs-sub", "revoked-by-sub"]
    with QEMU(short_tmp, pki, allow_all) as qemu:
        expected = {client: _served(pki, qemu.port, client) for client in clients}
    assert expected == {"via-revoked-sub": False, "via-good-sub": True, "revoked": False, "mgmt": True,
                        "via-nokcs-sub": False, "revoked-by-sub": False}
    with CSSD(short_tmp, pki, allow_all) as cssd:
        got = {client: _served(pki, cssd.port, client) for client in clients}
        log = cssd.log()
    assert got == expected
    assert "revoked-sub CA" in log and "revoked" in log


def test_metrics_endpoint_refuses_a_revoked_intermediate(short_tmp, pki):
    port = free_port()
    server = cssd_server(short_tmp, extra_args=[
        "--metrics", f"tcp:127.0.0.1:{port}", "--tls-creds", pki.server])
    with server:
        wait_port(port, server.proc, server.log_path)

        def scrape(client: str) -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
                    t = pki.context(client).wrap_socket(s, server_hostname="127.0.0.1")
                    t.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    return t.makefile("rb").readline().startswith(b"HTTP/1.1 200")
            except (ssl.SSLError, ConnectionError, OSError):
                return False

        assert scrape("via-good-sub")
        assert not scrape("via-revoked-sub")


def test_control_characters_never_forge_a_log_line(short_tmp, pki):
    """A DN with a newline is matched as QEMU matches it, and written to the log escaped: no
    line of the log starts with what followed the newline."""
    with CSSD(short_tmp, pki, POLICIES["exact-control"]) as cssd:
        assert _served(pki, cssd.port, "forger")
        assert not _served(pki, cssd.port, "intruder")
        deadline = time.monotonic() + 30
        while "CN=evil" not in cssd.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = cssd.log()
    lines = log.splitlines()
    assert not any(line.startswith("forged") for line in lines), log[-3000:]
    assert any("CN=evil\\nforged level=critical" in line for line in lines), log[-3000:]


def test_unicode_white_space_cannot_pose_as_a_separator(short_tmp, pki):
    """A DN with EM SPACEs and a bidi override (an intruder's) is written quoted, with those
    characters escaped: the line holds one dn value, no forged key."""
    with CSSD(short_tmp, pki, POLICIES["qemu-order-exact"]) as cssd:
        assert not _served(pki, cssd.port, "spacer")
        deadline = time.monotonic() + 30
        while "maintenance" not in cssd.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = [line for line in cssd.log().splitlines() if "maintenance" in line]
    assert lines
    for line in lines:
        assert "\u2003" not in line and "\u202e" not in line, line
        assert 'dn="O=Example,CN=intruder\\u{2003}reason=maintenance\\u{2003}peer=10.9.9.9\\u{202e}"' in line, line


def _make_tree(workdir: str) -> str:
    fixtures = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "sysfs")
    tree = os.path.join(workdir, "sys")
    subprocess.run([sys.executable, os.path.join(fixtures, "make_sysfs.py"), os.path.join(fixtures, "lpar.json"),
                    tree], check=True, timeout=60)
    return tree


def test_revocation_does_not_wait_for_a_blocked_sysfs_write(short_tmp, pki):
    """A sysfs write the kernel does not complete (a FIFO nobody reads) holds its own
    connection only: a policy file that now denies a client, and a SIGHUP after the CRL revoked
    another, take effect while the write still blocks (they used to queue behind it)."""
    tree = _make_tree(short_tmp)
    key, cert = pki.ca.issue("victim", "/C=GB/O=Example/CN=victim")
    pki.add_client("victim", key, cert)
    crl = os.path.join(short_tmp, "creds")
    import shutil
    shutil.copytree(pki.server, crl)
    port = free_port()
    authz = os.path.join(short_tmp, "authz.json")
    allow_all = {"policy": "allow", "rules": []}
    write_policy(authz, allow_all)
    server = cssd_server(short_tmp, extra_args=[
        "--backend", f"linux-sysfs:{tree}", "--poll-interval", "0", "--no-inotify",
        "--qmp", f"tcp:127.0.0.1:{port}", "--tls-creds", crl, "--tls-authz", authz])
    configure = os.path.join(tree, "devices", "css0", "chp0.41", "configure")
    os.remove(configure)
    os.mkfifo(configure)  # opening it for writing blocks until someone reads: a kernel that hangs
    with server:
        wait_port(port, server.proc, server.log_path)
        assert _served(pki, port, "mgmt") and _served(pki, port, "victim")
        writer = socket.socket(socket.AF_UNIX)
        writer.connect(server.sock)
        reader = writer.makefile("rb")
        reader.readline()
        writer.sendall(b'{"execute":"qmp_capabilities"}'
                       b'{"execute":"configure-chpid","arguments":{"chpid":"0.41","state":"standby"},"id":"w"}')
        assert json.loads(reader.readline()) == {"return": {}}
        writer.settimeout(0.5)
        with pytest.raises(socket.timeout):
            writer.recv(1)  # the write blocks

        # The policy file now denies mgmt: refused within the refresh (1 s), write still blocked.
        write_policy(authz, {"policy": "allow", "rules": [_rule("C=GB,O=Example,CN=mgmt", "deny")]})
        _until_refused(pki, port, "mgmt", "the policy change waited for the blocked write", timeout=15)

        # The CRL now revokes victim; SIGHUP reloads the credentials while the write blocks.
        pki.ca.revoke(cert)
        pki.ca.crl(os.path.join(crl, "ca-crl.pem"))
        server.proc.send_signal(signal.SIGHUP)
        _until_refused(pki, port, "victim", "the SIGHUP reload waited for the blocked write", timeout=15)
        with pytest.raises(socket.timeout):
            writer.recv(1)  # still blocked: both took effect meanwhile

        # The "kernel" takes the write: its reply comes.
        with open(configure) as fifo:
            assert fifo.read() == "0"
        writer.settimeout(30)
        reply = json.loads(reader.readline())
        assert reply["id"] == "w" and "return" in reply, reply
        writer.close()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_layered_chain_cannot_tie_up_the_verifier(short_tmp, pki):
    """Anyone can present a chain of self-made certificates built so that every certificate of a
    layer signs every certificate of the next (3 x 11 here: 3^11 paths to search). cssd refuses
    it at once (at most 16 certificates, a bounded search) instead of burning a core for minutes;
    a good client is served meanwhile."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    layers, width = 11, 3
    now = datetime.datetime.now(datetime.timezone.utc)
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(layers + 2)]

    def certificate(subject, issuer, key_index, serial, ca, san=None):
        builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
                   .public_key(keys[key_index].public_key()).serial_number(serial)
                   .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
        return builder.sign(keys[key_index + 1], hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    directory = os.path.join(short_tmp, "layered")
    os.makedirs(directory)
    with open(os.path.join(directory, "client-cert.pem"), "wb") as f:
        f.write(certificate("attacker", "N1", 0, 1, False))
        for layer in range(1, layers + 1):
            for copy in range(width):
                f.write(certificate(f"N{layer}", f"N{layer + 1}", layer, layer * 100 + copy, True,
                                    san=f"n{layer}-{copy}.example"))
    with open(os.path.join(directory, "client-key.pem"), "wb") as f:
        f.write(keys[0].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    pki.clients["layered"] = directory
    with CSSD(short_tmp, pki, {"policy": "allow", "rules": []}) as cssd:
        pid = cssd.server.proc.pid
        before = _cpu_seconds(pid)
        results = {}
        import threading
        attackers = [threading.Thread(target=lambda i=i: results.__setitem__(i, _served(pki, cssd.port, "layered")))
                     for i in range(2)]
        for attacker in attackers:
            attacker.start()
        assert _served(pki, cssd.port, "mgmt")
        for attacker in attackers:
            attacker.join(60)
        assert results == {0: False, 1: False}
        time.sleep(1)
        # The search used to take tens of seconds of CPU per connection; now the refusal is
        # immediate. A generous bound: the machine may be loaded.
        assert _cpu_seconds(pid) - before < 5.0


def test_a_policy_change_applies_to_connections_accepted_before_it(short_tmp, pki):
    """The policy and the CRL that decide are those current when the handshake completes, as in
    QEMU: a connection accepted before the policy changed, whose handshake completes after, is
    refused."""
    port = free_port()
    authz = os.path.join(short_tmp, "authz-change.json")
    write_policy(authz, {"policy": "allow", "rules": []})
    server = cssd_server(short_tmp, extra_args=[
        "--qmp", f"tcp:127.0.0.1:{port}", "--tls-creds", pki.server, "--tls-authz", authz])
    with server:
        wait_port(port, server.proc, server.log_path)
        early = socket.create_connection(("127.0.0.1", port), timeout=20)  # no handshake yet
        write_policy(authz, {"policy": "allow", "rules": [_rule("C=GB,O=Example,CN=mgmt", "deny")]})
        deadline = time.monotonic() + 30
        while "authorization policy reloaded" not in server.log_tail(1 << 20):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        try:
            tls = pki.context("mgmt").wrap_socket(early, server_hostname="127.0.0.1")
            assert tls.makefile("rb").readline() == b""
        except (ssl.SSLError, ConnectionError, OSError):
            pass
        finally:
            early.close()


def test_a_policy_file_that_is_a_fifo_cannot_hold_the_reloads(short_tmp, pki):
    """A FIFO put in the policy file's place is refused (not a regular file), not opened and
    waited on: a later SIGHUP still reloads the CRL and revokes."""
    key, cert = pki.ca.issue("fifo-victim", "/C=GB/O=Example/CN=fifo-victim")
    pki.add_client("fifo-victim", key, cert)
    creds = os.path.join(short_tmp, "creds-fifo")
    import shutil
    shutil.copytree(pki.server, creds)
    port = free_port()
    authz = os.path.join(short_tmp, "authz-fifo.json")
    write_policy(authz, {"policy": "allow", "rules": []})
    server = cssd_server(short_tmp, extra_args=[
        "--qmp", f"tcp:127.0.0.1:{port}", "--tls-creds", creds, "--tls-authz", authz])
    with server:
        wait_port(port, server.proc, server.log_path)
        assert _served(pki, port, "fifo-victim")
        os.remove(authz)
        os.mkfifo(authz)
        deadline = time.monotonic() + 30
        while "not a regular file" not in server.log_tail(1 << 20):
            assert time.monotonic() < deadline, server.log_tail(3000)
            time.sleep(0.05)
        pki.ca.revoke(cert)
        pki.ca.crl(os.path.join(creds, "ca-crl.pem"))
        server.proc.send_signal(signal.SIGHUP)
        _until_refused(pki, port, "fifo-victim", "the SIGHUP reload never took effect", timeout=30)
