"""A private RabbitMQ node for tests and benchmarks: its own name, loopback ports, data, log
and epmd, in a temporary directory; stopped (and its epmd with it) afterwards.

Debian's rabbitmq-server 3.10 (Scripts/setup installs it). The node runs as the current user
from /usr/lib/rabbitmq/bin directly (Debian's /usr/sbin wrapper would switch to the rabbitmq
user and reset HOME), so its directories belong to the user it runs as.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

BIN = "/usr/lib/rabbitmq/bin"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
