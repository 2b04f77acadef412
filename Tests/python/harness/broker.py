"""A private RabbitMQ node for tests and benchmarks: its own name, loopback ports, data, log
and epmd, in a temporary directory; stopped (and its epmd with it) afterwards.

Debian's rabbitmq-server 3.10 (Scripts/setup installs it). The node runs as the current user
from /usr/lib/rabbitmq/bin directly (Debian's /usr/sbin wrapper would switch to the rabbitmq
user and reset HOME), so its directories belong to the user it runs as.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from .cssd import cssd_binary, cssd_server
from .net import free_port

BIN = "/usr/lib/rabbitmq/bin"


def available():
    return os.path.exists(os.path.join(BIN, "rabbitmq-server"))


class Broker:
    """One node; `start()` waits until it accepts AMQP connections, `stop()` until it is gone.
    Restartable with the same ports and data (a broker outage in the middle of a stream)."""

    def __init__(self, tls=None):
        """tls: (cacert, cert, key) PEM paths: also listen with TLS on `tls_port`."""
        self.dir = tempfile.mkdtemp(prefix="cssd-rabbit-")
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.name = "cssd%d_%d@localhost" % (os.getpid(), self.port)
        for sub in ("mnesia", "log", "home"):
            os.makedirs(os.path.join(self.dir, sub))
        plugins = os.path.join(self.dir, "enabled_plugins")
        with open(plugins, "w") as f:
            f.write("[].\n")
        config = os.path.join(self.dir, "rabbitmq.conf")
        with open(config, "w") as f:
            # Loopback only; guest may connect from loopback (the default).
            f.write("listeners.tcp.1 = 127.0.0.1:%d\n" % self.port)
            f.write("loopback_users.guest = true\n")
            if tls:
                f.write("listeners.ssl.1 = 127.0.0.1:%d\n" % self.tls_port)
                f.write("ssl_options.cacertfile = %s\nssl_options.certfile = %s\nssl_options.keyfile = %s\n" % tls)
                f.write("ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n")
        self.env = dict(
            os.environ,
            HOME=os.path.join(self.dir, "home"),
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_MNESIA_BASE=os.path.join(self.dir, "mnesia"),
            RABBITMQ_LOG_BASE=os.path.join(self.dir, "log"),
            RABBITMQ_PID_FILE=os.path.join(self.dir, "rabbit.pid"),
            RABBITMQ_ENABLED_PLUGINS_FILE=plugins,
            RABBITMQ_CONFIG_FILE=config,
            RABBITMQ_ALLOW_INPUT="",
        )
        self.process = None
        self.url = "amqp://127.0.0.1:%d/%%2F" % self.port

    def ctl(self, *args, check=True):
        return subprocess.run(
            [os.path.join(BIN, "rabbitmqctl"), "-n", self.name, *args],
            env=self.env, capture_output=True, text=True, timeout=60, check=check)

    def start(self, timeout=60):
        self.process = subprocess.Popen(
            [os.path.join(BIN, "rabbitmq-server")], env=self.env, cwd=self.dir,
            stdout=open(os.path.join(self.dir, "server.out"), "ab"), stderr=subprocess.STDOUT,
            start_new_session=True)
        self.ctl("wait", os.path.join(self.dir, "rabbit.pid"), "--timeout", str(timeout))
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("rabbitmq did not listen on %d; see %s" % (self.port, self.dir))

    def stop(self):
        if self.process is None:
            return
        self.ctl("stop", check=False)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait()
        self.process = None

    def close(self):
        self.stop()
        subprocess.run(["epmd", "-kill"], env=self.env, capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def transport_url(self, user="guest", password="guest", vhost="/"):
        return "rabbit://%s:%s@127.0.0.1:%d/%s" % (user, password, self.port, vhost.replace("/", "%2F"))


# --------------------------------------------------------------------------
# Notifications: what the --notify tests share
# --------------------------------------------------------------------------

class Collector:
    """An oslo.messaging notification endpoint that keeps what it gets."""

    def __init__(self):
        self.received = []
        self.cv = threading.Condition()

    def _got(self, priority, ctxt, publisher_id, event_type, payload, metadata):
        with self.cv:
            self.received.append(dict(priority=priority, publisher_id=publisher_id, event_type=event_type,
                                      payload=payload, metadata=metadata))
            self.cv.notify_all()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self._got("INFO", ctxt, publisher_id, event_type, payload, metadata)

    def warn(self, ctxt, publisher_id, event_type, payload, metadata):
        self._got("WARN", ctxt, publisher_id, event_type, payload, metadata)

    def wait_for(self, predicate, timeout=30):
        deadline = time.time() + timeout
        with self.cv:
            while not predicate(self.received):
                left = deadline - time.time()
                assert left > 0, f"timed out; got {len(self.received)}: {self.received[-3:]}"
                self.cv.wait(left)
            return list(self.received)


class Listener:
    """oslo_messaging.get_notification_listener on topic 'notifications', threading executor."""

    def __init__(self, broker, tmp, vhost="/", durable=False):
        import oslo_messaging
        from oslo_config import cfg

        path = os.path.join(tmp, "oslo.conf")
        with open(path, "w") as f:
            f.write("[oslo_messaging_rabbit]\namqp_durable_queues = %s\n" % ("true" if durable else "false"))
        self.conf = cfg.ConfigOpts()
        self.conf(["--config-file", path], project="cssd-test")
        self.transport = oslo_messaging.get_notification_transport(self.conf, url=broker.transport_url(vhost=vhost))
        self.collector = Collector()
        self.listener = oslo_messaging.get_notification_listener(
            self.transport, [oslo_messaging.Target(topic="notifications")], [self.collector], executor="threading")

    def __enter__(self):
        self.listener.start()
        return self

    def __exit__(self, *exc):
        self.listener.stop()
        self.listener.wait()
        self.transport.cleanup()


def credentials(tmp, user="guest", password="guest"):
    path = os.path.join(tmp, f"broker-{user}-{password}.cred")
    with open(path, "w") as f:
        f.write(f"# test broker\nusername={user}\npassword={password}\n")
    os.chmod(path, 0o600)
    return path


def start_notify_cssd(tmp, url, cred, *extra):
    """A started cssd notifying `url` with the credentials file `cred`."""
    if cssd_binary() is None:
        pytest.skip("cssd binary not found")
    server = cssd_server(tmp, extra_args=["--notify", url, "--notify-credentials", cred, *extra])
    return server.start()


def wait_notify(client, predicate, timeout=30):
    deadline = time.time() + timeout
    while True:
        status = client.call("query-notify")
        if predicate(status):
            return status
        assert time.time() < deadline, f"query-notify never matched: {status}"
        time.sleep(0.1)


def fresh_vhost(broker):
    """A vhost of the test's own: nothing left over from another test waits in its queues."""
    name = "outbox-" + uuid.uuid4().hex[:8]
    broker.ctl("add_vhost", name)
    broker.ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return name, f"amqp://127.0.0.1:{broker.port}/{name}"


def drain(broker, vhost):
    """Every notification waiting in the vhost's oslo queues, per queue in the broker's (FIFO)
    order, as (routing key, message) with the oslo envelope opened."""
    import amqp

    connection = amqp.Connection(host=f"127.0.0.1:{broker.port}", userid="guest", password="guest",
                                 virtual_host=vhost)
    connection.connect()
    out = {}
    try:
        channel = connection.channel()
        for queue in ("notifications.info", "notifications.warn"):
            got = []
            while True:
                message = channel.basic_get(queue, no_ack=True)
                if message is None:
                    break
                envelope = json.loads(message.body)
                assert envelope["oslo.version"] == "2.0"
                got.append(json.loads(envelope["oslo.message"]))
            out[queue] = got
    finally:
        connection.close()
    return out


def start_notifying(workdir, url, *extra):
    """A started cssd notifying `url` with guest's credentials (written in workdir)."""
    if cssd_binary() is None:
        pytest.skip("cssd binary not found")
    server = cssd_server(workdir, extra_args=[
        "--notify", url, "--notify-credentials", credentials(workdir), *extra])
    return server.start()


def vary_alternately(client, count, first=0):
    """`count` changes of chpid 0.40: offline (WARN) and online (INFO) in turn."""
    for i in range(first, first + count):
        client.call("vary-path", chpid="0.40", state="offline" if i % 2 == 0 else "online")
