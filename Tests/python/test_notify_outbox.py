"""--notify with --state-dir: the outbox kept in the state dir (DIR/notify-outbox.sqlite), on a
real RabbitMQ (a private node on loopback). With the broker down, changes wait in the outbox;
cssd is killed (SIGKILL) or stopped (SIGTERM) and started again, still without a broker; once
the broker is back every change arrives, with its epoch and sequence, in order; an overflow
across the restart is still reported as a gap naming the missed numbers; a corrupt or foreign
outbox file is refused and left alone."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from harness.broker import available, credentials, drain, fresh_vhost, start_notifying, vary_alternately, wait_notify
from harness.cssd import cssd_binary, cssd_server, metrics_port, refused
from harness.net import free_port
from harness.prometheus import scrape_values
from harness.qmp import Client


amqp = pytest.importorskip("amqp")

pytestmark = pytest.mark.skipif(not available(), reason="rabbitmq-server not installed (Scripts/setup)")


def outage_restart_then_deliver(broker, short_tmp, stop):
    """Broker down; 40 changes wait in the outbox; cssd stopped by `stop`, started again
    (still no broker); the broker comes back: all 40 arrive, in order, numbered as before."""
    total = 40
    vhost, url = fresh_vhost(broker)
    state = os.path.join(short_tmp, "state")
    broker.stop()
    try:
        server = start_notifying(short_tmp, url, "--state-dir", state)
        client = Client(server.sock)
        before = wait_notify(client, lambda s: s["state"] == "disconnected")
        assert before["persistent"] is True and before["restored"] == 0
        vary_alternately(client, total)  # every reply received: each change is durable in state.sqlite
        assert client.call("query-notify")["outbox-depth"] == total
        stop(server)
        server = start_notifying(short_tmp, url, "--state-dir", state, "--metrics", "tcp:127.0.0.1:0")
        client = Client(server.sock)
        status = client.call("query-notify")
        assert status["epoch"] == before["epoch"]
        assert status["outbox-depth"] == total and status["restored"] + status["rebuilt"] == total, status
        scraped = scrape_values(metrics_port(server))
        assert scraped["cssd_notify_restored_total"] == status["restored"]
        assert scraped["cssd_notify_rebuilt_total"] == status["rebuilt"]
        assert status["state"] != "connected" and status["pending-gap"] == []
        log = server.log_tail(20000)
        assert "notify: outbox restored from the state dir" in log
        restarted = status
    finally:
        broker.start()
    try:
        status = wait_notify(client, lambda s: s["confirmed"] == total and s["outbox-depth"] == 0, timeout=60)
        assert status["dropped"] == 0 and status["gaps"] == 0
        # A change after the restart is numbered after the restored ones and comes after them.
        vary_alternately(client, 1, first=total)
        wait_notify(client, lambda s: s["confirmed"] == total + 1)
    finally:
        server.stop()
    got = drain(broker, vhost)
    warn = [m["payload"]["sequence"] for m in got["notifications.warn"]]
    info = [m["payload"]["sequence"] for m in got["notifications.info"]]
    # Each queue in publication order; together every change once, 1...total+1.
    assert warn == list(range(1, total + 2, 2)) and info == list(range(2, total + 1, 2))
    messages = got["notifications.warn"] + got["notifications.info"]
    assert {m["payload"]["epoch"] for m in messages} == {before["epoch"]}
    assert {m["event_type"] for m in messages} == {"cssd.path.offline", "cssd.path.online"}
    assert len({m["message_id"] for m in messages}) == total + 1
    # Confirmed means deleted: a restart finds an empty outbox.
    server = start_notifying(short_tmp, url, "--state-dir", state)
    try:
        status = Client(server.sock).call("query-notify")
        assert status["restored"] == 0 and status["rebuilt"] == 0 and status["outbox-depth"] == 0, status
    finally:
        server.stop()
    return restarted


def sigkill(server):
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()


def test_sigkill_with_the_broker_down_loses_nothing(broker, short_tmp):
    outage_restart_then_deliver(broker, short_tmp, sigkill)


def test_sigterm_with_the_broker_down_loses_nothing(broker, short_tmp):
    def sigterm(server):
        assert server.stop() == 0
    restarted = outage_restart_then_deliver(broker, short_tmp, sigterm)
    # A graceful stop writes everything first: all reloaded, none rebuilt.
    assert restarted["restored"] == 40 and restarted["rebuilt"] == 0


def test_overflow_across_a_restart_is_reported_as_a_gap(broker, short_tmp):
    vhost, url = fresh_vhost(broker)
    state = os.path.join(short_tmp, "state")
    bound = ("--notify-outbox-events", "5")
    broker.stop()
    try:
        server = start_notifying(short_tmp, url, "--state-dir", state, *bound)
        client = Client(server.sock)
        epoch = wait_notify(client, lambda s: s["state"] == "disconnected")["epoch"]
        vary_alternately(client, 12)
        status = client.call("query-notify")
        assert status["outbox-depth"] == 5 and status["pending-gap"] == [{"first": 6, "last": 12}]
        sigkill(server)
        server = start_notifying(short_tmp, url, "--state-dir", state, *bound)
        client = Client(server.sock)
        status = client.call("query-notify")
        assert status["outbox-depth"] == 5 and status["pending-gap"] == [{"first": 6, "last": 12}], status
        # Still down: the next change does not fit either, and joins the same gap.
        vary_alternately(client, 1, first=12)
        assert client.call("query-notify")["pending-gap"] == [{"first": 6, "last": 13}]
    finally:
        broker.start()
    try:
        status = wait_notify(client, lambda s: s["gaps"] == 1 and s["outbox-depth"] == 0, timeout=60)
        assert status["pending-gap"] == [] and status["confirmed"] == 5
    finally:
        server.stop()
    got = drain(broker, vhost)
    gaps = [m for m in got["notifications.warn"] if m["event_type"] == "cssd.notify.gap"]
    assert len(gaps) == 1
    assert gaps[0]["payload"]["missed"] == [{"first": 6, "last": 13}]
    assert gaps[0]["payload"]["reason"] == "outbox-overflow" and gaps[0]["payload"]["epoch"] == epoch
    sequences = sorted(m["payload"]["sequence"] for q in got.values() for m in q
                       if m["event_type"] != "cssd.notify.gap")
    assert sequences == [1, 2, 3, 4, 5]


def test_corrupt_or_foreign_outbox_is_refused_and_left_alone(short_tmp):
    if cssd_binary() is None:
        pytest.skip("cssd binary not found")
    url = f"amqp://127.0.0.1:{free_port()}/%2F"  # never reached: refused before
    notify = ["--notify", url, "--notify-credentials", credentials(short_tmp)]
    state = os.path.join(short_tmp, "state")
    server = cssd_server(short_tmp, extra_args=["--state-dir", state, *notify]).start()
    server.stop()
    outbox = os.path.join(state, "notify-outbox.sqlite")
    assert os.path.exists(outbox)
    other = os.path.join(short_tmp, "other")
    shutil.copytree(state, other)

    # Corrupt: refused, named, untouched.
    with open(outbox, "wb") as f:
        f.write(b"not an SQLite database, someone's file\n" * 200)
    with open(outbox, "rb") as f:
        before = f.read()
    message = refused(short_tmp, "--state-dir", state, *notify)
    assert "refusing to start" in message and "not a cssd notification outbox" in message, message
    assert outbox in message
    with open(outbox, "rb") as f:
        assert f.read() == before

    # Another state dir's outbox (another epoch): refused, untouched.
    os.remove(os.path.join(other, "state.sqlite"))
    for name in os.listdir(other):
        if name.startswith("state.sqlite"):
            os.remove(os.path.join(other, name))
    foreign = os.path.join(other, "notify-outbox.sqlite")
    with open(foreign, "rb") as f:
        before = f.read()
    message = refused(short_tmp, "--state-dir", other, *notify)
    assert "another history" in message, message
    with open(foreign, "rb") as f:
        assert f.read() == before


def forget_newest(state, keep_through):
    """What a crash between the state store's commit and the outbox writer's next transaction
    leaves: the outbox file without the rows of the changes after `keep_through`, its position
    at `keep_through` (cssd is not running; SQLite itself edits the file)."""
    import sqlite3
    db = sqlite3.connect(os.path.join(state, "notify-outbox.sqlite"))
    try:
        forgotten = db.execute("DELETE FROM notifications WHERE sequence > ?", (keep_through,)).rowcount
        db.execute("UPDATE meta SET value = ? WHERE key = 'through'", (str(keep_through),))
        db.commit()
    finally:
        db.close()
    return forgotten


def test_changes_the_outbox_had_not_written_are_rebuilt_or_reported(broker, short_tmp):
    """The crash window: durable changes whose notifications had not reached the outbox file
    are made again from the restored journal; with no journal to make them from
    (--event-journal 0), a gap notification with reason 'restart' names them."""
    vhost, url = fresh_vhost(broker)
    state = os.path.join(short_tmp, "state")
    broker.stop()
    try:
        server = start_notifying(short_tmp, url, "--state-dir", state)
        client = Client(server.sock)
        epoch = wait_notify(client, lambda s: s["state"] == "disconnected")["epoch"]
        vary_alternately(client, 20)
        wait_notify(client, lambda s: s["outbox-depth"] == 20)
        time.sleep(0.5)  # the writer's transaction (a few ms), so that the file has all 20
        sigkill(server)
        assert forget_newest(state, 15) == 5
        server = start_notifying(short_tmp, url, "--state-dir", state)
        client = Client(server.sock)
        status = client.call("query-notify")
        assert (status["restored"], status["rebuilt"], status["outbox-depth"]) == (15, 5, 20), status
        assert status["pending-gap"] == []
        vary_alternately(client, 5, first=20)  # 21...25
        wait_notify(client, lambda s: s["outbox-depth"] == 25)
        time.sleep(0.5)
        sigkill(server)
        assert forget_newest(state, 20) == 5
        # No journal: 21...25 cannot be made again.
        server = start_notifying(short_tmp, url, "--state-dir", state, "--event-journal", "0")
        client = Client(server.sock)
        status = client.call("query-notify")
        assert (status["restored"], status["rebuilt"], status["outbox-depth"]) == (20, 0, 20), status
        assert status["pending-gap"] == [{"first": 21, "last": 25}]
        assert "lost in a crash" in server.log_tail(20000)
    finally:
        broker.start()
    try:
        wait_notify(client, lambda s: s["gaps"] == 1 and s["outbox-depth"] == 0, timeout=60)
    finally:
        server.stop()
    got = drain(broker, vhost)
    gaps = [m for m in got["notifications.warn"] if m["event_type"] == "cssd.notify.gap"]
    assert len(gaps) == 1 and gaps[0]["payload"]["epoch"] == epoch
    assert gaps[0]["payload"]["missed"] == [{"first": 21, "last": 25}]
    assert gaps[0]["payload"]["reason"] == "restart" and gaps[0]["payload"]["dropped"] == 0
    warn = [m["payload"]["sequence"] for m in got["notifications.warn"] if m["event_type"] != "cssd.notify.gap"]
    info = [m["payload"]["sequence"] for m in got["notifications.info"]]
    assert warn == list(range(1, 21, 2)) and info == list(range(2, 21, 2))
    # The gap report goes first, before the restored notifications.
    assert got["notifications.warn"][0]["event_type"] == "cssd.notify.gap"


def test_an_outbox_an_interrupted_first_start_left_empty_is_created_over(short_tmp):
    """A notify-outbox.sqlite with no table (0 bytes: an older cssd killed, or out of disk, at
    its first start with --notify) holds nothing: it is created over, not refused. A new one
    appears whole or not at all (built aside, then renamed)."""
    if cssd_binary() is None:
        pytest.skip("cssd binary not found")
    url = f"amqp://127.0.0.1:{free_port()}/%2F"  # never reached: nothing to publish
    notify = ["--notify", url, "--notify-credentials", credentials(short_tmp)]
    state = os.path.join(short_tmp, "state")
    server = cssd_server(short_tmp, extra_args=["--state-dir", state]).start()
    assert server.stop() == 0
    outbox = os.path.join(state, "notify-outbox.sqlite")
    open(outbox, "wb").close()
    server = cssd_server(short_tmp, extra_args=["--state-dir", state, *notify]).start()
    try:
        status = Client(server.sock).call("query-notify")
        assert status["persistent"] is True and status["outbox-depth"] == 0, status
    finally:
        assert server.stop() == 0
    assert os.path.getsize(outbox) > 0 and not os.path.exists(outbox + ".new")
