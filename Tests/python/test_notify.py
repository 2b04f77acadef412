"""--notify: path events as oslo.messaging notifications on a real RabbitMQ (a private node on
loopback, one per module), received by oslo.messaging's own notification listener unchanged;
a broker stopped and started in the middle of a stream (nothing lost, or a gap notification
naming what is); refused credentials, a vhost that does not exist and an unreachable broker
while QMP keeps serving."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from harness.broker import Listener, available, credentials, start_notify_cssd, wait_notify
from harness.cssd import metrics_port
from harness.net import free_port
from harness.prometheus import http_get, scrape_values, tool
from harness.qmp import Client

oslo_messaging = pytest.importorskip("oslo_messaging")

pytestmark = pytest.mark.skipif(not available(), reason="rabbitmq-server not installed (Scripts/setup)")


@pytest.fixture(scope="module")
def broker(broker):
    """The module's node (conftest.py), with the vhost `durable` for the durable-queue tests."""
    broker.ctl("add_vhost", "durable")
    broker.ctl("set_permissions", "-p", "durable", "guest", ".*", ".*", ".*")
    return broker


def test_listener_receives_path_events_unchanged(broker, short_tmp):
    with Listener(broker, short_tmp) as listener:
        server = start_notify_cssd(short_tmp, broker.url, credentials(short_tmp))
        try:
            client = Client(server.sock)
            wait_notify(client, lambda s: s["state"] == "connected")
            client.call("vary-path", chpid="0.40", state="offline")
            client.call("vary-path", chpid="0.40", state="online")
            client.call("inject-path-fault", chpid="0.41", fault="permanent-error")
            client.call("configure-chpid", chpid="0.4d", state="configured")
            got = listener.collector.wait_for(lambda r: len(r) >= 4)
            status = wait_notify(client, lambda s: s["confirmed"] == 4)
        finally:
            server.stop()
    # WARN and INFO travel in two queues, consumed by oslo's listener concurrently: the order of
    # arrival across them is not the order of publication (within one queue it is).
    got.sort(key=lambda g: g["payload"]["sequence"])
    assert [(g["event_type"], g["priority"]) for g in got] == [
        ("cssd.path.offline", "WARN"), ("cssd.path.online", "INFO"),
        ("cssd.path.permanent-error", "WARN"), ("cssd.path.configured", "INFO")]
    host = socket.gethostname()
    assert {g["publisher_id"] for g in got} == {f"cssd.{host}"}
    assert [g["payload"]["sequence"] for g in got] == [1, 2, 3, 4]
    assert {g["payload"]["epoch"] for g in got} == {status["epoch"]}
    first = got[0]["payload"]
    assert first["chpid"] == "0.40" and first["change"] == "offline" and first["vary"] == "offline"
    assert first["subchannels"] == 42 and first["cause"] == "command"
    assert got[2]["payload"]["crw"] > 0
    # oslo's metadata: message_id and the timestamp as str(datetime), UTC.
    assert len(got[0]["metadata"]["message_id"]) == 36
    assert len(got[0]["metadata"]["timestamp"]) == 26
    assert status["published"] == 4 and status["failed"] == 0 and status["dropped"] == 0
    assert status["outbox-depth"] == 0 and status["broker"] == f"amqp://127.0.0.1:{broker.port}/%2F"


def test_metrics_show_the_notifier(broker, short_tmp):
    """--notify with --metrics: the cssd_notify_* families follow the outbox's counters (read
    at scrape time): published and confirmed after a few changes, the broker connected, the
    outbox empty again; the scrape passes promtool."""
    import subprocess
    with Listener(broker, short_tmp) as listener:  # consumes them: the queues outlive cssd
        server = start_notify_cssd(short_tmp, broker.url, credentials(short_tmp), "--metrics", "tcp:127.0.0.1:0")
        try:
            port = metrics_port(server)
            client = Client(server.sock)
            wait_notify(client, lambda s: s["state"] == "connected")
            before = scrape_values(port)
            assert before["cssd_notify_broker_connected"] == 1
            assert before["cssd_notify_published_total"] == before["cssd_notify_confirmed_total"] == 0
            assert before["cssd_notify_outbox_max_notifications"] == 100000
            vary_stream(client, 3)
            status = wait_notify(client, lambda s: s["confirmed"] == 3)
            assert len(listener.collector.wait_for(lambda r: len(r) >= 3)) == 3
            after = scrape_values(port)
            assert after["cssd_notify_published_total"] == status["published"] == 3
            assert after["cssd_notify_confirmed_total"] == 3
            assert after["cssd_notify_failed_total"] == after["cssd_notify_dropped_total"] == 0
            assert after["cssd_notify_gaps_total"] == 0
            assert after["cssd_notify_outbox_notifications"] == after["cssd_notify_outbox_bytes"] == 0
            assert after["cssd_notify_broker_connections_total"] == 1
            check = subprocess.run([tool("promtool"), "check", "metrics"],
                                   input=http_get(f"http://127.0.0.1:{port}/metrics")[2], capture_output=True)
            assert check.returncode == 0, (check.stdout + check.stderr).decode()
        finally:
            server.stop()


def test_filter_granularity_chpids_changes(broker, short_tmp):
    with Listener(broker, short_tmp) as listener:
        server = start_notify_cssd(
            short_tmp, broker.url, credentials(short_tmp), "--notify-granularity", "subchannel",
            "--notify-chpids", "0.41", "--notify-changes", "offline")
        try:
            client = Client(server.sock)
            wait_notify(client, lambda s: s["state"] == "connected")
            client.call("vary-path", chpid="0.40", state="offline")   # other chpid
            client.call("vary-path", chpid="0.41", state="offline")   # 42 subchannels
            client.call("vary-path", chpid="0.41", state="online")    # other change
            got = listener.collector.wait_for(lambda r: len(r) >= 42)
            wait_notify(client, lambda s: s["confirmed"] == 42)
            time.sleep(0.5)
            got = listener.collector.received
        finally:
            server.stop()
    assert len(got) == 42
    assert {g["event_type"] for g in got} == {"cssd.subchannel.offline"}
    assert {g["payload"]["sequence"] for g in got} == {2}
    assert all(g["payload"]["chpid"] == "0.41" and g["payload"]["lpm"] & 0x40 == 0 for g in got)


def test_refused_credentials_unknown_vhost_unreachable_qmp_serves(broker, short_tmp):
    unused = free_port()
    cases = [
        (broker.url, credentials(short_tmp, password="wrong-secret-123"), "ACCESS_REFUSED"),
        (f"amqp://127.0.0.1:{broker.port}/nowhere", credentials(short_tmp), "NOT_ALLOWED"),
        (f"amqp://127.0.0.1:{unused}/%2F", credentials(short_tmp), "cannot reach 127.0.0.1"),
    ]
    for url, cred, expected in cases:
        server = start_notify_cssd(short_tmp, url, cred)
        try:
            client = Client(server.sock)
            status = wait_notify(client, lambda s: "last-error" in s)
            assert status["state"] == "disconnected"
            assert expected in status["last-error"], status
            # QMP keeps serving, and changes wait in the outbox.
            assert client.call("vary-path", chpid="0.40", state="offline")["changed"] == 42
            assert client.call("query-notify")["outbox-depth"] == 1
            assert len(client.call("query-chpids")) > 0
        finally:
            server.stop()
        log = server.log_tail(100000)
        assert expected in log
        assert "wrong-secret-123" not in log


def vary_stream(client, count, pause=0.01):
    for i in range(count):
        client.call("vary-path", chpid="0.40", state="offline" if i % 2 == 0 else "online")
        time.sleep(pause)


def test_broker_restart_mid_stream_loses_nothing(broker, short_tmp):
    url = f"amqp://127.0.0.1:{broker.port}/durable"
    total = 150
    with Listener(broker, short_tmp, vhost="durable", durable=True) as listener:
        server = start_notify_cssd(short_tmp, url, credentials(short_tmp), "--notify-durable")
        try:
            client = Client(server.sock)
            epoch = wait_notify(client, lambda s: s["state"] == "connected")["epoch"]
            writer = threading.Thread(target=vary_stream, args=(client, total, 0.02))
            writer.start()
            time.sleep(1)
            broker.stop()
            time.sleep(1.5)
            broker.start()
            writer.join()
            status = wait_notify(client, lambda s: s["outbox-depth"] == 0 and s["state"] == "connected", timeout=60)
            got = listener.collector.wait_for(
                lambda r: {g["payload"].get("sequence") for g in r if g["payload"]["epoch"] == epoch}
                >= set(range(1, total + 1)), timeout=60)
            got = [g for g in got if g["payload"]["epoch"] == epoch]
        finally:
            server.stop()
    sequences = [g["payload"]["sequence"] for g in got if g["event_type"] != "cssd.notify.gap"]
    assert set(sequences) == set(range(1, total + 1))
    # A redelivery carries the same sequence and message_id: a consumer drops it by either.
    by_id = {}
    for g in got:
        by_id.setdefault(g["metadata"]["message_id"], set()).add(g["payload"]["sequence"])
    assert all(len(s) == 1 for s in by_id.values())
    assert status["connections"] >= 2 and status["dropped"] == 0
    assert not [g for g in got if g["event_type"] == "cssd.notify.gap"]


def test_overflow_during_outage_is_reported_as_a_gap(broker, short_tmp):
    url = f"amqp://127.0.0.1:{broker.port}/durable"
    with Listener(broker, short_tmp, vhost="durable", durable=True) as listener:
        server = start_notify_cssd(short_tmp, url, credentials(short_tmp), "--notify-durable",
                                   "--notify-outbox-events", "5")
        try:
            client = Client(server.sock)
            epoch = wait_notify(client, lambda s: s["state"] == "connected")["epoch"]
            broker.stop()
            wait_notify(client, lambda s: s["state"] == "disconnected")
            vary_stream(client, 20, pause=0)
            status = client.call("query-notify")
            assert status["outbox-depth"] == 5 and status["dropped"] == 15
            assert status["pending-gap"] == [{"first": 6, "last": 20}]
            broker.start()
            # Earlier tests' leftovers may wait in the durable queues: this server's epoch only.
            mine = lambda r: [g for g in r if g["payload"]["epoch"] == epoch]  # noqa: E731
            got = listener.collector.wait_for(
                lambda r: len([g for g in mine(r) if g["event_type"] == "cssd.notify.gap"]) == 1
                and len({g["payload"].get("sequence") for g in mine(r)} - {None}) >= 5, timeout=60)
            got = mine(got)
            status = wait_notify(client, lambda s: s["gaps"] == 1 and s["outbox-depth"] == 0)
        finally:
            server.stop()
    gap = [g for g in got if g["event_type"] == "cssd.notify.gap"][0]
    assert gap["priority"] == "WARN"
    assert gap["payload"]["missed"] == [{"first": 6, "last": 20}] and gap["payload"]["dropped"] == 15
    assert {g["payload"]["sequence"] for g in got if g["event_type"] != "cssd.notify.gap"} == {1, 2, 3, 4, 5}
    assert status["pending-gap"] == []
