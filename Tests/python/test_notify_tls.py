"""--notify over TLS (amqps:// with --notify-ca): a private RabbitMQ node with a TLS listener
and a certificate from a CA made here with openssl; cssd verifies the chain and the host name.
A CA that did not sign the broker's certificate is refused with a clear error while QMP serves."""

from __future__ import annotations

import os
import subprocess

import pytest

from harness.broker import Broker, Listener, available, credentials, start_notify_cssd, wait_notify
from harness.qmp import Client


pytestmark = pytest.mark.skipif(not available(), reason="rabbitmq-server not installed (Scripts/setup)")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=d)
    return os.path.join(d, f"{name}.pem")


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    ca = make_ca(d, "ca")
    make_ca(d, "other")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName = DNS:localhost, IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=d)
    os.chmod(os.path.join(d, "server.key"), 0o644)
    node = Broker(tls=(ca, os.path.join(d, "server.pem"), os.path.join(d, "server.key")))
    try:
        node.start()
        node.pki = d
        yield node
    finally:
        node.close()


def test_amqps_with_the_right_ca_delivers(tls_broker, short_tmp):
    url = f"amqps://localhost:{tls_broker.tls_port}/%2F"
    with Listener(tls_broker, short_tmp) as listener:
        server = start_notify_cssd(short_tmp, url, credentials(short_tmp), "--notify-ca",
                                   os.path.join(tls_broker.pki, "ca.pem"))
        try:
            client = Client(server.sock)
            wait_notify(client, lambda s: s["state"] == "connected")
            client.call("vary-path", chpid="0.42", state="offline")
            got = listener.collector.wait_for(lambda r: len(r) >= 1)
        finally:
            server.stop()
    assert got[0]["event_type"] == "cssd.path.offline" and got[0]["payload"]["chpid"] == "0.42"


def test_amqps_with_another_ca_is_refused_qmp_serves(tls_broker, short_tmp):
    url = f"amqps://localhost:{tls_broker.tls_port}/%2F"
    server = start_notify_cssd(short_tmp, url, credentials(short_tmp), "--notify-ca",
                               os.path.join(tls_broker.pki, "other.pem"))
    try:
        client = Client(server.sock)
        status = wait_notify(client, lambda s: "last-error" in s)
        assert status["state"] == "disconnected"
        assert "TLS with localhost" in status["last-error"], status
        assert "verif" in status["last-error"], status
        assert client.call("vary-path", chpid="0.42", state="offline")["changed"] > 0
    finally:
        server.stop()
