"""Path events over real sockets: filters, granularity, order against replies, coalescing and
exact drop counts under a subscriber that stops reading, unsubscribe, subscriptions dying
with their connection, and bad arguments."""

from __future__ import annotations

import json
import threading

import pytest

from harness.qmp import vary


def test_granularity_one_event_per_chpid_or_one_per_subchannel(connect):
    chp, sch, both, control = connect(), connect(), connect(), connect()
    a = chp.call("subscribe-path-events", granularity="chpid")["subscription"]
    b = sch.call("subscribe-path-events", granularity="subchannel")["subscription"]
    c = both.call("subscribe-path-events", granularity="both")["subscription"]
    assert vary(control, "0.40", "offline")["changed"] == 42

    [event] = chp.events(1)
    assert event["event"] == "CHANNEL_PATH_CHANGED"
    journal = control.call("query-path-event-journal")
    assert event["data"] == {"subscription": a, "chpid": "0.40", "change": "offline", "vary": "offline",
                             "configure": "configured", "subchannels": 42,
                             "epoch": journal["epoch"], "sequence": journal["newest"]}
    assert set(event["timestamp"]) == {"seconds", "microseconds"}
    assert chp.nothing_pending()

    events = sch.events(42)
    assert {e["event"] for e in events} == {"SUBCHANNEL_PATHS_CHANGED"}
    ids = [e["data"]["subchannel"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 42
    listed = control.call("query-subchannels", chpid="0.40")["subchannels"]
    assert ids == [s["subchannel"] for s in listed]
    for e, s in zip(events, listed):
        d = e["data"]
        assert d["subscription"] == b and d["chpid"] == "0.40" and d["change"] == "offline"
        assert (d["devno"], d["pim"], d["pam"], d["pom"], d["lpm"], d["pnom"]) == \
            (s["devno"], s["pim"], s["pam"], s["pom"], s["lpm"], s["pnom"])
    assert sch.nothing_pending()

    events = both.events(43)
    assert events[0]["event"] == "CHANNEL_PATH_CHANGED" and all(e["data"]["subscription"] == c for e in events)
    assert both.nothing_pending()


def test_events_follow_the_commands_reply(connect):
    me = connect()
    # Pipelined: subscribe, vary, query in one write. The vary's events come after its reply
    # and before the next command's reply.
    me.sock.sendall(b'{"execute":"subscribe-path-events","id":"s"}'
                    b'{"execute":"vary-path","arguments":{"chpid":"0.40","state":"offline"},"id":"v"}'
                    b'{"execute":"query-version","id":"q"}')
    kinds = [me.line() for _ in range(4)]
    assert [m.get("id", m.get("event")) for m in kinds] == ["s", "v", "CHANNEL_PATH_CHANGED", "q"]


def test_filters(connect):
    by_chpid, by_sch, by_change, by_css, control = connect(), connect(), connect(), connect(), connect()
    by_chpid.call("subscribe-path-events", chpids=["0.41"])
    by_sch.call("subscribe-path-events", granularity="both", subchannels=["0.0.0003"])
    by_change.call("subscribe-path-events", changes=["online", "reset"])
    by_css.call("subscribe-path-events", cssid=0xfe)
    vary(control, "0.40", "offline")
    vary(control, "0.41", "offline")
    vary(control, "0.40", "online")
    assert control.call("reset-channel-path", chpid="0.4c") == {"cc": 0}

    got = by_chpid.events(1)
    assert [(e["data"]["chpid"], e["data"]["change"]) for e in got] == [("0.41", "offline")]
    assert by_chpid.nothing_pending()

    # 0.0.0003 uses 0.40 and 0.41 (embedded topology): its own subchannel events only, and the
    # chpid events of its paths. It does not use 0.4c.
    paths = [c for c in control.call("query-subchannels", devno="0.0.1000")["subchannels"][0]["chpids"] if c]
    got = by_sch.events(6)
    assert [(e["event"][0], e["data"]["chpid"], e["data"]["change"]) for e in got] == [
        ("C", "0.40", "offline"), ("S", "0.40", "offline"),
        ("C", "0.41", "offline"), ("S", "0.41", "offline"),
        ("C", "0.40", "online"), ("S", "0.40", "online")]
    assert {"0.40", "0.41"} <= set(paths) and "0.4c" not in paths
    assert all(e["data"]["subchannel"] == "0.0.0003" for e in got if e["event"][0] == "S")
    assert by_sch.nothing_pending()

    got = by_change.events(2)
    assert [(e["data"]["chpid"], e["data"]["change"]) for e in got] == [("0.40", "online"), ("0.4c", "reset")]
    assert isinstance(got[1]["data"]["crw"], int) and got[1]["data"]["subchannels"] == 0
    assert by_change.nothing_pending()
    assert by_css.nothing_pending()  # css 0xfe had no change


def test_configure_and_faults_carry_the_crw(connect):
    me = connect()
    me.call("subscribe-path-events", chpids=["0.41"])
    events = []
    me.call("configure-chpid", events, chpid="0.41", state="standby")
    me.call("configure-chpid", events, chpid="0.41", state="configured")
    me.call("inject-path-fault", events, chpid="0.41", fault="temporary-error")
    me.call("inject-path-fault", events, chpid="0.41", fault="recovered")
    events += me.events(4 - len(events))
    assert [(e["data"]["change"], e["data"]["configure"], e["data"]["subchannels"]) for e in events] == [
        ("standby", "standby", 42), ("configured", "configured", 42),
        ("temporary-error", "configured", 42), ("recovered", "configured", 42)]
    crws = []
    while (r := me.call("store-crw"))["cc"] == 0:
        crws.append(r)
    # Each event carries the CRW the machine queued for it: path gone (ERC 6), path come (2),
    # temporary error (3), recovered (2). Under MCSSE (css 0 and fe) each is chained with a
    # second word naming the css; the event carries the first.
    assert all(r["decoded"]["chained"] for r in crws[0::2])
    crws = crws[0::2]
    assert [e["data"]["crw"] for e in events] == [r["crw"] for r in crws]
    assert [r["decoded"]["erc"] for r in crws] == [6, 2, 3, 2]
    assert me.nothing_pending()


def test_unsubscribe_and_query(connect):
    me, control = connect(), connect()
    a = me.call("subscribe-path-events", granularity="subchannel", chpids=["0.40"], changes=["offline"],
                queue_limit=100)["subscription"]
    b = me.call("subscribe-path-events")["subscription"]
    info = me.call("query-path-event-subscriptions")
    assert info == [
        {"subscription": a, "granularity": "subchannel", "chpids": ["0.40"], "changes": ["offline"],
         "queue-limit": 100, "published": 0, "delivered": 0, "coalesced": 0, "dropped": 0, "queued": 0},
        {"subscription": b, "granularity": "chpid", "queue-limit": 131072, "published": 0, "delivered": 0,
         "coalesced": 0, "dropped": 0, "queued": 0}]
    # Another connection cannot see or end them.
    assert control.call("query-path-event-subscriptions") == []
    err = control.error("unsubscribe-path-events", subscription=a)
    assert err == {"class": "GenericError", "desc": f"subscription {a} does not exist on this connection"}

    assert me.call("unsubscribe-path-events", subscription=a) == {}
    vary(control, "0.40", "offline")
    [event] = me.events(1)
    assert event["data"]["subscription"] == b
    assert me.nothing_pending()
    assert [s["subscription"] for s in me.call("query-path-event-subscriptions")] == [b]
    assert me.call("query-path-event-subscriptions")[0]["delivered"] == 1


def test_subscriptions_die_with_their_connection(connect, cssd):
    gone = connect()
    gone.call("subscribe-path-events", granularity="both")
    gone.close()
    control = connect()
    # Changes after the close must not be queued anywhere: a new subscriber sees only its own.
    for _ in range(50):
        vary(control, "0.40", "offline")
        vary(control, "0.40", "online")
    me = connect()
    [sub] = [me.call("subscribe-path-events")["subscription"]]
    vary(control, "0.40", "offline")
    assert me.events(1)[0]["data"]["subscription"] == sub
    assert me.nothing_pending()


@pytest.mark.parametrize("arguments,cls,desc", [
    ({"chpids": ["0.99"]}, "DeviceNotFound", "channel path 0.99 does not exist"),
    ({"chpids": ["0.4g"]}, "GenericError", "chpids '0.4g': expected cssid.chpid in hex, like 0.4a"),
    ({"chpids": []}, "GenericError", "Parameter 'chpids' must not be empty: omit it to match every chpid"),
    ({"chpids": "0.40"}, "GenericError", "Invalid parameter type for 'chpids', expected: array"),
    ({"subchannels": ["0.0.ffff"]}, "DeviceNotFound", "subchannel 0.0.ffff does not exist"),
    ({"granularity": "device"}, "GenericError", "Parameter 'granularity' does not accept value 'device'"),
    # QEMU 7.2 names a list element 'null' in this message (input_type_enum); we match it.
    ({"changes": ["gone"]}, "GenericError", "Parameter 'null' does not accept value 'gone'"),
    ({"cssid": 256}, "GenericError", "Parameter 'cssid' expects uint8"),
    ({"cssid": 1, "chpids": ["0.40"]}, "GenericError", "chpid 0.40 is not in css 1: the filter could never match"),
    ({"queue-limit": 0}, "GenericError", "Parameter 'queue-limit' expects 1..1048576"),
    ({"subscription": 1}, "GenericError", "Parameter 'subscription' is unexpected"),
])
def test_bad_subscribe_arguments(connect, arguments, cls, desc):
    me = connect()
    me.sock.sendall(json.dumps({"execute": "subscribe-path-events", "arguments": arguments}).encode())
    reply = me.reply()
    assert reply == {"error": {"class": cls, "desc": desc}}
    # Nothing was created, and the connection still works.
    assert me.call("query-path-event-subscriptions") == []


def test_subscription_limits(connect):
    me = connect()
    for _ in range(8):
        me.call("subscribe-path-events")  # 8 x 131072 = the per-connection budget
    assert me.error("subscribe-path-events", queue_limit=1) == {
        "class": "GenericError",
        "desc": "'queue-limit' 1 would make this connection's queues hold more than 1048576 events "
                "(its other subscriptions take 1048576): pass a smaller 'queue-limit'"}
    other = connect()
    for _ in range(64):
        other.call("subscribe-path-events", queue_limit=16)
    assert other.error("subscribe-path-events", queue_limit=16)["desc"] == \
        "this connection already has 64 subscriptions, the most it may hold"
    assert len(other.call("query-path-event-subscriptions")) == 64


def test_bad_unsubscribe_arguments(connect):
    me = connect()
    assert me.error("unsubscribe-path-events", subscription=12345) == {
        "class": "GenericError", "desc": "subscription 12345 does not exist on this connection"}
    assert me.error("unsubscribe-path-events") == {
        "class": "GenericError", "desc": "Parameter 'subscription' is missing"}
    assert me.error("unsubscribe-path-events", subscription="1")["desc"] == \
        "Invalid parameter type for 'subscription', expected: integer"


def test_stalled_subscriber_coalesces_and_counts_drops_exactly(connect):
    """A subscriber that stops reading: its events are coalesced, then dropped and reported
    with the exact count; everybody else is served at full speed meanwhile."""
    stalled = connect(rcvbuf=4096)
    sub = stalled.call("subscribe-path-events", granularity="subchannel", chpids=["0.40"],
                       queue_limit=20)["subscription"]
    reader = connect()
    reader.call("subscribe-path-events", chpids=["0.40"])
    received = []
    done = threading.Event()

    def read_all():
        while len(received) < 401:
            received.append(reader.line())
        done.set()

    thread = threading.Thread(target=read_all, daemon=True)
    thread.start()

    control = connect()
    toggles = 200
    # Every command is answered while the stalled subscriber reads nothing (a server that waited
    # for it would answer none: the socket's hang guard fails the call). How fast is the
    # machine's business, not this test's: no bound on the time it takes.
    for _ in range(toggles):
        vary(control, "0.40", "offline")
        vary(control, "0.40", "online")
    # The same subchannel and chpid again and again: coalesced while pending.
    for i in range(100):
        vary(control, "0.40", "offline" if i % 2 == 0 else "online", subchannel="0.0.0003")
    vary(control, "0.40", "offline", subchannel="0.0.0003")  # 101st: ends offline
    assert done.wait(120), f"the reading subscriber got {len(received)} of 401 events"
    assert all(e["event"] == "CHANNEL_PATH_CHANGED" for e in received)

    # Now read everything the stalled subscriber has; the query's reply comes after its queue.
    stalled.send("query-path-event-subscriptions")
    events, drops = [], []
    after_last_drop = {}  # subchannel -> its last event after the last drop report
    while True:
        m = stalled.line()
        if "return" in m:
            [info] = m["return"]
            break
        if m["event"] == "PATH_EVENTS_DROPPED":
            assert m["data"]["subscription"] == sub
            drops.append(m["data"]["dropped"])
            after_last_drop.clear()
        else:
            assert m["event"] == "SUBCHANNEL_PATHS_CHANGED"
            events.append(m["data"])
            after_last_drop[m["data"]["subchannel"]] = m["data"]

    published = toggles * 2 * 42 + 101
    assert info["published"] == published
    assert info["delivered"] == len(events)
    assert info["dropped"] == sum(drops) > 0
    assert info["coalesced"] > 0 and info["queued"] == 0
    assert info["delivered"] + info["coalesced"] + info["dropped"] == published
    # Drops take the oldest and are reported before anything later, so an event that follows
    # the last drop report is the latest for its subchannel and chpid: it matches the model.
    # (For the others the client was told to re-query.)
    current = {s["subchannel"]: s for s in control.call("query-subchannels", chpid="0.40")["subchannels"]}
    assert after_last_drop["0.0.0003"]["change"] == "offline"
    assert len(after_last_drop) >= 2
    for sch, e in after_last_drop.items():
        s = current[sch]
        assert (e["lpm"], e["pam"], e["pom"], e["pnom"]) == (s["lpm"], s["pam"], s["pom"], s["pnom"]), sch
    # And it is back to normal: the next change arrives complete.
    # 41 events (0.0.0003 was already offline on 0.40) into a queue of 20: one burst larger
    # than the queue loses its oldest part even for a subscriber that reads.
    vary(control, "0.40", "offline")
    burst = stalled.events(21)
    assert burst[0]["event"] == "PATH_EVENTS_DROPPED" and burst[0]["data"]["dropped"] == 21
    assert [e["data"]["subchannel"] for e in burst[1:]] == [s for s in sorted(current) if s != "0.0.0003"][21:]
    assert stalled.nothing_pending()
