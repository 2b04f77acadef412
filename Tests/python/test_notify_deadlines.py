"""--notify against a broker that stops answering: a TCP proxy on loopback, between cssd and a
real RabbitMQ (a private node), forwards until told to go silent — then it reads nothing and
forwards nothing either way, as a hung broker whose kernel still accepts connections. Three
moments: (a) right after login (the broker's connection.open-ok passes, channel.open gets no
answer), (b) mid-stream while publishing, (c) a peer that accepts and never speaks (not even
the AMQP handshake); and silence on an idle connection, found by heartbeats.

Checked: query-notify shows the error, naming the step, within twice the deadline
(`--notify-timeout`); SIGTERM ends cssd within 5 s whatever the broker does (with the default
deadline of 10 s: the stop must not wait for it); once the proxy forwards again the
notifications resume and none acknowledged over QMP is lost (read from the queues)."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from harness.broker import available, credentials, drain, fresh_vhost, start_notifying, vary_alternately, wait_notify
from harness.cssd import cssd_binary
from harness.qmp import Client

pytestmark = pytest.mark.skipif(not available(), reason="rabbitmq-server not installed (Scripts/setup)")

# The deadline the detection tests give cssd (--notify-timeout), seconds.
DEADLINE = 3
# What a stop may take, whatever the broker does (docs/notifications.md, API/notify.md).
STOP_BOUND = 5.0

# AMQP 0-9-1 frame: type (1 = method), channel, size, payload, 0xCE; connection.open-ok is
# class 10, method 41.
OPEN_OK = (1, 0, 10, 41)


class SilenceProxy:
    """Forwards 127.0.0.1:`port` to the broker until told to go silent.

    Modes, for connections from now on: `forward`; `after-open` (forward until the broker's
    connection.open-ok has passed, then that connection goes silent); `silent` (accepted, then
    never read nor answered; the broker is not even connected). `silence()` also silences the
    connections there are; `resume()` makes every connection forward again (what a silent one
    held goes on, as from a broker that resumes)."""

    def __init__(self, target_port, mode="forward"):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.cv = threading.Condition()
        self.mode = mode
        self.silent_since = None   # time.monotonic() when a connection first went silent
        self.accepted = 0
        self.sockets = []
        self.connections = []      # [silent] per connection, shared with its threads
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, vhost):
        return f"amqp://127.0.0.1:{self.port}/{vhost}"

    def _went_silent(self, state):
        # Under self.cv.
        state[0] = True
        if self.silent_since is None:
            self.silent_since = time.monotonic()
        self.cv.notify_all()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.cv:
                if self.closed:
                    client.close()
                    return
                state = [False]
                if self.mode == "silent":
                    self._went_silent(state)
                self.accepted += 1
                self.sockets.append(client)
                self.connections.append(state)
                self.cv.notify_all()
            threading.Thread(target=self._serve, args=(client, state, self.mode == "after-open"), daemon=True).start()

    def _hold(self, state):
        """Waits while the connection is silent; False once the proxy is closed."""
        with self.cv:
            while state[0] and not self.closed:
                self.cv.wait()
            return not self.closed

    def _serve(self, client, state, after_open):
        if not self._hold(state):
            return
        try:
            upstream = socket.create_connection(self.target, timeout=10)
            upstream.settimeout(None)
        except OSError:
            client.close()
            return
        with self.cv:
            self.sockets.append(upstream)
        threading.Thread(target=self._pipe, args=(client, upstream, state, None), daemon=True).start()
        self._pipe(upstream, client, state, after_open)

    def _pipe(self, source, sink, state, after_open):
        frames = b""
        while True:
            if not self._hold(state):
                return
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                try:
                    sink.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if after_open:
                # Forward whole frames up to connection.open-ok; hold the rest.
                frames += data
                while len(frames) >= 7:
                    kind, channel, size = struct.unpack(">BHI", frames[:7])
                    if len(frames) < 8 + size:
                        break
                    frame, frames = frames[:8 + size], frames[8 + size:]
                    if not self._send(sink, frame):
                        return
                    if size >= 4 and (kind, channel) + struct.unpack(">HH", frame[7:11]) == OPEN_OK:
                        after_open = False
                        with self.cv:
                            self._went_silent(state)
                        break
                if after_open:
                    continue
                data, frames = frames, b""
                if not data:
                    continue
            if not self._hold(state):  # silenced while this chunk was on its way
                return
            if not self._send(sink, data):
                return

    @staticmethod
    def _send(sink, data):
        try:
            sink.sendall(data)
            return True
        except OSError:
            return False

    def wait_silent(self, timeout=30):
        with self.cv:
            assert self.cv.wait_for(lambda: self.silent_since is not None, timeout), "the proxy never went silent"
            return self.silent_since

    def wait_accepted(self, count=1, timeout=30):
        with self.cv:
            assert self.cv.wait_for(lambda: self.accepted >= count, timeout), "cssd never connected to the proxy"

    def silence(self):
        with self.cv:
            self.mode = "silent"
            for state in self.connections:
                self._went_silent(state)
            return self.silent_since

    def resume(self):
        with self.cv:
            self.mode = "forward"
            for state in self.connections:
                state[0] = False
            self.cv.notify_all()

    def close(self):
        with self.cv:
            self.closed = True
            self.cv.notify_all()
            sockets = list(self.sockets)
        self.listener.close()
        for s in sockets:
            try:
                s.close()
            except OSError:
                pass


@pytest.fixture
def proxy(broker):
    made = []

    def make(mode="forward"):
        made.append(SilenceProxy(broker.port, mode))
        return made[-1]
    try:
        yield make
    finally:
        for p in made:
            p.close()


def first_error(client, since, timeout=60):
    """query-notify polled until it shows an error: (the status, seconds since `since`)."""
    status = wait_notify(client, lambda s: "last-error" in s, timeout=timeout)
    return status, time.monotonic() - since


def delivered(broker, vhost, epoch):
    """The notifications of `epoch` waiting in the vhost's queues: {message_id: sequence}."""
    queues = drain(broker, vhost)
    return {m["message_id"]: m["payload"]["sequence"] for got in queues.values() for m in got
            if m["payload"]["epoch"] == epoch}


def resume_and_check_nothing_lost(broker, proxy, client, vhost, total):
    """The proxy forwards again: cssd reconnects and the notification of every one of `total`
    acknowledged changes reaches the queues (a redelivery, same message_id, counts once)."""
    proxy.resume()
    status = wait_notify(client, lambda s: s["state"] == "connected" and s["outbox-depth"] == 0, timeout=60)
    assert status["connections"] >= 1 and status["dropped"] == 0
    assert status["confirmed"] == total
    got = delivered(broker, vhost, status["epoch"])
    assert set(got.values()) == set(range(1, total + 1))
    assert len(got) == total


def stop_seconds(server, limit=20):
    """SIGTERM; how long cssd took to exit (None: still running after `limit` s, then killed)."""
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(timeout=limit)
    except Exception:
        server.stop()
        return None
    return time.monotonic() - started


def test_silent_after_login_is_shown_then_recovers(broker, proxy, short_tmp):
    """(a) The broker answers up to connection.open-ok, then never again: channel.open times
    out, query-notify says so within twice the deadline; changes wait; once it answers again
    they all arrive."""
    vhost, _ = fresh_vhost(broker)
    silent = proxy("after-open")
    server = start_notifying(short_tmp, silent.url(vhost), "--notify-timeout", str(DEADLINE))
    try:
        client = Client(server.sock)
        since = silent.wait_silent()
        status, took = first_error(client, since)
        print(f"\nsilent after login: error shown after {took:.2f} s (deadline {DEADLINE} s): {status['last-error']}")
        assert status["state"] == "disconnected", status
        assert "channel.open: no answer from the broker within 3 s" in status["last-error"], status
        assert took <= 2 * DEADLINE, f"error shown {took:.2f} s after the broker went silent"
        vary_alternately(client, 5)
        assert client.call("query-notify")["outbox-depth"] == 5
        resume_and_check_nothing_lost(broker, silent, client, vhost, 5)
    finally:
        server.stop()
    assert "channel.open: no answer from the broker" in server.log_tail(100000)


def test_silent_mid_stream_is_shown_then_nothing_lost(broker, proxy, short_tmp):
    """(b) The broker goes silent while cssd publishes a stream: the confirm (or the write)
    overruns its deadline, shown within twice it; the stream goes on into the outbox; once the
    broker answers again every acknowledged change arrives."""
    vhost, _ = fresh_vhost(broker)
    relay = proxy("forward")
    total = 80
    server = start_notifying(short_tmp, relay.url(vhost), "--notify-timeout", str(DEADLINE))
    try:
        client = Client(server.sock)
        wait_notify(client, lambda s: s["state"] == "connected")
        vary_alternately(client, 20)
        wait_notify(client, lambda s: s["confirmed"] >= 5)
        since = relay.silence()
        writer = threading.Thread(target=vary_alternately, args=(Client(server.sock), total - 20, 20))
        writer.start()
        status, took = first_error(client, since)
        writer.join()
        print(f"\nsilent mid-stream: error shown after {took:.2f} s (deadline {DEADLINE} s): {status['last-error']}")
        assert status["state"] == "disconnected", status
        assert "basic.publish: " in status["last-error"] and "within 3 s" in status["last-error"], status
        assert took <= 2 * DEADLINE, f"error shown {took:.2f} s after the broker went silent"
        resume_and_check_nothing_lost(broker, relay, client, vhost, total)
    finally:
        server.stop()


def test_peer_that_never_speaks_is_shown_then_recovers(broker, proxy, short_tmp):
    """(c) A TCP peer that accepts and never sends a byte: the login handshake times out,
    shown within twice the deadline; once a broker answers behind it, changes arrive."""
    vhost, _ = fresh_vhost(broker)
    mute = proxy("silent")
    server = start_notifying(short_tmp, mute.url(vhost), "--notify-timeout", str(DEADLINE))
    try:
        client = Client(server.sock)
        since = mute.wait_silent()
        status, took = first_error(client, since)
        print(f"\nnever speaks: error shown after {took:.2f} s (deadline {DEADLINE} s): {status['last-error']}")
        assert status["state"] == "disconnected", status
        assert f"login as 'guest' to vhost '{vhost}': no answer from the broker within 3 s" in status["last-error"]
        assert took <= 2 * DEADLINE, f"error shown {took:.2f} s after connecting"
        vary_alternately(client, 3)
        resume_and_check_nothing_lost(broker, mute, client, vhost, 3)
    finally:
        server.stop()


def test_tls_peer_that_never_speaks_is_shown(broker, proxy, short_tmp):
    """amqps:// to a peer that accepts and never answers the TLS ClientHello: the connect
    step (TCP connect and TLS handshake, one rabbitmq-c call) overruns its deadline, shown
    within twice it."""
    mute = proxy("silent")
    server = start_notifying(short_tmp, f"amqps://127.0.0.1:{mute.port}/%2F", "--notify-timeout", str(DEADLINE))
    try:
        client = Client(server.sock)
        since = mute.wait_silent()
        status, took = first_error(client, since)
        print(f"\nTLS never speaks: error shown after {took:.2f} s (deadline {DEADLINE} s): {status['last-error']}")
        assert status["state"] == "disconnected", status
        assert "TLS handshake not done within 3 s" in status["last-error"], status
        assert took <= 2 * DEADLINE, f"error shown {took:.2f} s after connecting"
    finally:
        server.stop()


def test_silent_while_idle_is_found_by_heartbeats(broker, proxy, short_tmp):
    """An idle connection whose broker goes silent: with --notify-heartbeat 2 nothing arrives
    for 4 s (twice the heartbeat) and the connection is given up, shown in query-notify
    without any change to publish; then it recovers."""
    vhost, _ = fresh_vhost(broker)
    relay = proxy("forward")
    heartbeat = 2
    server = start_notifying(short_tmp, relay.url(vhost), "--notify-heartbeat", str(heartbeat))
    try:
        client = Client(server.sock)
        wait_notify(client, lambda s: s["state"] == "connected")
        since = relay.silence()
        status, took = first_error(client, since)
        print(f"\nidle: error shown after {took:.2f} s (heartbeat {heartbeat} s): {status['last-error']}")
        assert status["state"] == "disconnected", status
        assert "idle connection: nothing from the broker for 4 s" in status["last-error"], status
        assert took <= 2 * 2 * heartbeat, f"error shown {took:.2f} s after the broker went silent"
        vary_alternately(client, 2)
        resume_and_check_nothing_lost(broker, relay, client, vhost, 2)
    finally:
        server.stop()


@pytest.mark.parametrize("moment", ["after-login", "mid-stream", "never-speaks", "tls-never-speaks"])
def test_sigterm_ends_cssd_within_5s_whatever_the_broker_does(broker, proxy, short_tmp, moment):
    """SIGTERM while the broker is silent, with the default deadline (10 s): cssd exits within
    5 s. Before the fix the stop joined the publishing thread, stuck in channel.open (or in
    channel.close after a lost confirm) for ever. In a TLS handshake (inside rabbitmq-c's
    socket open, before cssd knows the socket) the thread is left behind after 3 s."""
    vhost, _ = fresh_vhost(broker)
    relay = proxy({"after-login": "after-open", "mid-stream": "forward"}.get(moment, "silent"))
    url = f"amqps://127.0.0.1:{relay.port}/%2F" if moment == "tls-never-speaks" else relay.url(vhost)
    server = start_notifying(short_tmp, url)
    try:
        client = Client(server.sock)
        if moment == "mid-stream":
            wait_notify(client, lambda s: s["state"] == "connected")
            vary_alternately(client, 10)
            wait_notify(client, lambda s: s["confirmed"] == 10)
            relay.silence()
            vary_alternately(client, 10, 10)  # published into the silence: the publisher waits for confirms
            wait_notify(client, lambda s: s["published"] > s["confirmed"])
        else:
            relay.wait_silent()
        # The publisher is in its broker call (or about to be): waiting longer proves nothing.
        time.sleep(0.5)
        took = stop_seconds(server)
    finally:
        server.stop()
    print(f"\n{moment}: SIGTERM to exit {took if took is None else round(took, 2)} s")
    assert took is not None, f"cssd still running 20 s after SIGTERM ({moment}): {server.log_tail(3000)}"
    assert took <= STOP_BOUND, f"cssd took {took:.2f} s to stop ({moment})"
    assert server.proc.returncode == 0, server.log_tail(3000)


@pytest.mark.parametrize("args, message", [
    (["--notify-timeout", "0"], "--notify-timeout must be 1..3600"),
    (["--notify-heartbeat=-1"], "--notify-heartbeat must be 0..65535"),
    (["--notify-heartbeat", "65536"], "--notify-heartbeat must be 0..65535"),
])
def test_bad_deadline_options_are_refused(short_tmp, args, message):
    if cssd_binary() is None:
        pytest.skip("cssd binary not found")
    argv = [cssd_binary(), "--qmp", f"unix:{short_tmp}/r.sock", "--notify", "amqp://127.0.0.1:1/%2F",
            "--notify-credentials", credentials(short_tmp), *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and message in result.stderr, result
    assert not os.path.exists(f"{short_tmp}/r.sock")


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["after-login", "mid-stream", "never-speaks", "idle"])
def test_detection_with_the_defaults(broker, proxy, short_tmp, moment):
    """The figures for the defaults (--notify-timeout 10, --notify-heartbeat 60): how long
    after the broker goes silent query-notify shows the error (a step's deadline: 10 s; idle:
    twice the heartbeat after the last byte, RabbitMQ sending one every 30 s: 90-120 s)."""
    vhost, _ = fresh_vhost(broker)
    relay = proxy({"after-login": "after-open", "never-speaks": "silent"}.get(moment, "forward"))
    server = start_notifying(short_tmp, relay.url(vhost))
    try:
        client = Client(server.sock)
        if moment in ("mid-stream", "idle"):
            wait_notify(client, lambda s: s["state"] == "connected")
            since = relay.silence()
            if moment == "mid-stream":
                vary_alternately(client, 10)
        else:
            since = relay.wait_silent()
        status, took = first_error(client, since, timeout=300)
        print(f"\ndefaults, {moment}: error shown after {took:.2f} s: {status['last-error']}")
        bound = 2 * 2 * 60 if moment == "idle" else 2 * 10
        assert took <= bound, status
        took = stop_seconds(server)
        print(f"defaults, {moment}: SIGTERM to exit {took if took is None else round(took, 2)} s")
        assert took is not None and took <= STOP_BOUND
    finally:
        server.stop()
