"""Guests and vfio-ccw over real sockets: the embedded guest (guest1: two virtio devices and the
42 DASDs of host chpid 0.40 passed through), strategies side by side, chpid virtualisation and
the virtio clash, guest STSCH/STCRW, GUEST_PATH_CHANGED, and bad input leaving state alone."""

from __future__ import annotations

import pytest

from harness.cssd import cssd_server
from harness.qmp import Client


GUEST = "guest1"
# Linux vfio_ccw_sch_probe refuses a subchannel whose PMCW has the QDIO facility; so does cssd.
QDIO_REFUSAL = ("host subchannel 0.0.0000 has the QDIO facility (an OSA, HiperSockets or FCP device): vfio-ccw "
                "does not support QDIO, so it cannot be passed through "
                "(Linux: \"vfio: ccw: does not support QDIO: 0.0.0000\")")


def passthrough(client, guest=GUEST):
    page = client.call("query-guest-subchannels", guest=guest)
    return [s for s in page["subchannels"] if s["kind"] == "passthrough"]


def stats(client, guest=GUEST):
    [s] = client.call("query-path-event-stats", guest=guest)
    return s


def test_embedded_guest(connect):
    me = connect()
    [g] = [g for g in me.call("query-guests") if g["name"] == GUEST]
    assert g["strategy"] == "crw" and g["virtio"] == 2 and g["passthrough"] == 42 and g["cssids"] == [0xfe]
    assert {m["host-chpid"] for m in g["chpid-map"]} >= {"0.40"}
    devices = passthrough(me)
    assert len(devices) == 42 and all(d["chpids"][0].startswith("fe.") for d in devices)
    on40 = [d for d in devices if "0.40" in d["host-chpids"]]
    assert len(on40) == 42
    virtio = [s for s in me.call("query-guest-subchannels", guest=GUEST)["subchannels"] if s["kind"] == "virtio"]
    assert [v["chpids"][0] for v in virtio] == ["fe.00", "fe.00"]


@pytest.mark.parametrize("strategy", ["per-device", "crw", "lazy"])
def test_one_chpid_event_under_each_strategy(connect, strategy):
    me = connect()
    me.call("set-path-event-strategy", guest=GUEST, strategy=strategy)
    before = stats(me)
    assert me.call("configure-chpid", chpid="0.40", state="standby")["changed"] == 42
    after = stats(me)
    delta = {k: after[k] - before[k] for k in ("host-events", "notifications", "crws-queued", "schib-refreshes")}
    expected = {"per-device": {"host-events": 1, "notifications": 42, "crws-queued": 1 * 0, "schib-refreshes": 42},
                "crw": {"host-events": 1, "notifications": 0, "crws-queued": 1, "schib-refreshes": 0},
                "lazy": {"host-events": 1, "notifications": 0, "crws-queued": 0, "schib-refreshes": 0}}[strategy]
    assert delta == expected
    assert after["stale-devices"] == 42 and after["untold-events"] == 42
    if strategy == "crw":
        crw = me.call("guest-store-crw", guest=GUEST)
        assert crw["cc"] == 0 and crw["decoded"]["rsc"] == 4 and crw["decoded"]["erc"] == 6
        assert crw["decoded"]["rsid"] == 0x40  # guest chpid fe.40
        assert stats(me)["untold-events"] == 0 and stats(me)["stale-devices"] == 42
    # The guest's STSCH shows the path gone, under the guest's ids.
    dev = passthrough(me)[0]
    slot = dev["host-chpids"].index("0.40")
    got = me.call("guest-store-subchannel", guest=GUEST, subchannel=dev["subchannel"])
    assert got["cc"] == 0 and got["schib"]["pam"] & (0x80 >> slot) == 0
    assert got["schib"]["devno"] == int(dev["devno"].split(".")[2], 16)
    assert got["schib"]["chpids"][slot] == 0x40
    assert stats(me)["stale-devices"] == 41


def test_guest_path_changed_events(connect):
    sub, control = connect(), connect()
    sid = sub.call("subscribe-path-events", granularity="guest", guests=[GUEST])["subscription"]
    control.call("inject-path-fault", chpid="0.40", fault="permanent-error")
    [event] = sub.events(1)
    assert event["event"] == "GUEST_PATH_CHANGED"
    d = event["data"]
    assert d["subscription"] == sid and d["guest"] == GUEST and d["guest-chpid"] == "fe.40"
    assert d["host-chpid"] == "0.40" and d["change"] == "permanent-error" and d["strategy"] == "crw"
    assert d["devices"] == 42 and d["visible"] == 42 and d["notifications"] == 0
    assert isinstance(d["crw"], int) and d["crw-lost"] is False
    # A vary changes only the host lpm: no guest-visible change, no CRW from the machine.
    control.call("vary-path", chpid="0.40", state="offline")
    [event] = sub.events(1)
    assert event["data"]["visible"] == 0 and "crw" not in event["data"]
    assert sub.nothing_pending()


def test_guest_crw_overflow_sets_r(connect):
    me = connect()
    for state in ["standby", "configured"] * 40:
        me.call("configure-chpid", chpid="0.40", state=state)
    s = stats(me)
    assert s["crws-lost"] > 0 and s["crws-pending"] > 0
    first = me.call("guest-store-crw", guest=GUEST)
    assert first["decoded"]["overflow"] is True
    while me.call("guest-store-crw", guest=GUEST)["cc"] == 0:
        pass
    assert stats(me)["crws-pending"] == 0


def test_crw_strategy_forwards_what_linux_vfio_ccw_forwards(connect):
    """chp_process_crw only logs a temporary error (ERC 3), and chsc_chp_offline/online return
    early while the host has the chpid varied offline: the guest gets no CRW for either; the
    recovery (ERC 2) and a report on a varied-online chpid reach it (API/vfio-ccw.md)."""
    sub, me = connect(), connect()
    sub.call("subscribe-path-events", granularity="guest", guests=[GUEST])
    queued = stats(me)["crws-queued"]
    me.call("inject-path-fault", chpid="0.40", fault="temporary-error")
    [event] = sub.events(1)
    assert event["data"]["visible"] == 42 and "crw" not in event["data"] and event["data"]["crw-lost"] is False
    assert stats(me)["crws-queued"] == queued and me.call("guest-store-crw", guest=GUEST)["cc"] == 1
    me.call("inject-path-fault", chpid="0.40", fault="recovered")
    [event] = sub.events(1)
    crw = me.call("guest-store-crw", guest=GUEST)
    assert crw["cc"] == 0 and crw["decoded"]["erc"] == 2 and crw["decoded"]["rsid"] == 0x40
    me.call("vary-path", chpid="0.40", state="offline")
    me.call("configure-chpid", chpid="0.40", state="standby")
    me.call("configure-chpid", chpid="0.40", state="configured")
    assert all("crw" not in e["data"] for e in sub.events(3))
    assert me.call("guest-store-crw", guest=GUEST)["cc"] == 1
    me.call("vary-path", chpid="0.40", state="online")
    me.call("configure-chpid", chpid="0.40", state="standby")
    sub.events(2)
    crw = me.call("guest-store-crw", guest=GUEST)
    assert crw["cc"] == 0 and crw["decoded"]["erc"] == 6 and crw["decoded"]["overflow"] is False


def test_virtio_clash_and_both_ways_out(connect):
    me = connect()
    # The embedded host has no DASD on a chpid numbered like the virtual one (fe.00), so map a
    # free DASD (on 0.4c/0.4d) onto fe.00 by hand.
    free = me.call("query-subchannels", chpid="0.4c")["subchannels"][0]
    err = me.error("attach-passthrough", guest=GUEST, host_subchannel=free["subchannel"],
                   guest_chpids=["fe.00"] * len([c for c in free["chpids"] if c]))
    assert err["class"] == "GenericError"
    assert "virtual channel path" in err["desc"] and "free guest chpid" in err["desc"]
    assert "separate guest css" in err["desc"]
    count = len(passthrough(me))
    # Way 1: a free guest chpid; way 2: a separate guest css for vfio devices.
    n = len([c for c in free["chpids"] if c])
    dev = me.call("attach-passthrough", guest=GUEST, host_subchannel=free["subchannel"],
                  guest_chpids=[f"fe.{0x80 + i:02x}" for i in range(n)])
    assert dev["chpids"][0] == "fe.80" and dev["host-subchannel"] == free["subchannel"]
    me.call("detach-passthrough", guest=GUEST, guest_subchannel=dev["subchannel"])
    dev = me.call("attach-passthrough", guest=GUEST, host_subchannel=free["subchannel"],
                  guest_subchannel="0.0.0000")
    assert dev["chpids"][0] == "0.4c"
    assert me.call("query-guests")[0]["cssids"] == [0, 0xfe]
    assert len(passthrough(me)) == count + 1


@pytest.mark.parametrize("command,arguments,cls,desc", [
    ("query-guest-subchannels", {"guest": "nope"}, "DeviceNotFound", "guest 'nope' does not exist"),
    ("guest-store-crw", {"guest": "nope"}, "DeviceNotFound", "guest 'nope' does not exist"),
    ("set-path-event-strategy", {"guest": GUEST, "strategy": "eager"}, "GenericError",
     "Parameter 'strategy' does not accept value 'eager'"),
    ("attach-passthrough", {"guest": GUEST, "host-subchannel": "0.0.0003"}, "GenericError",
     "host subchannel 0.0.0003 is already passed through to guest 'guest1' as fe.0.0002"),
    ("attach-passthrough", {"guest": GUEST, "host-subchannel": "0.0.ffff"}, "DeviceNotFound",
     "host subchannel 0.0.ffff does not exist"),
    ("attach-passthrough", {"guest": GUEST, "host-subchannel": "0.0.0035", "guest-subchannel": "fe.4.0000"},
     "GenericError", "guest-subchannel 'fe.4.0000': ssid 4 is out of range (0..3)"),
    ("attach-passthrough", {"guest": GUEST, "host-subchannel": "0.0.0000"}, "GenericError", QDIO_REFUSAL),
    ("attach-passthrough", {"guest": GUEST, "host-subchannel": "0.0.0000", "guest-subchannel": "0.0.0000",
                            "guest-chpids": ["0.01"]}, "GenericError", QDIO_REFUSAL),
    ("detach-passthrough", {"guest": GUEST, "guest-subchannel": "fe.0.0000"}, "DeviceNotFound",
     "guest 'guest1' has no subchannel fe.0.0000"),
    ("guest-store-subchannel", {"guest": GUEST, "subchannel": "zz"}, "GenericError",
     "subchannel 'zz': expected cssid.ssid.schno in hex, like 0.0.0042"),
])
def test_bad_input_is_a_clear_error_and_changes_nothing(connect, command, arguments, cls, desc):
    me = connect()
    before = (me.call("query-guests"), me.call("query-path-event-stats"))
    me.sock.sendall(__import__("json").dumps({"execute": command, "arguments": arguments}).encode())
    reply = me.reply()
    assert reply["error"]["class"] == cls
    assert reply["error"]["desc"] == desc
    assert (me.call("query-guests"), me.call("query-path-event-stats")) == before


def test_guest_stsch_of_unknown_subchannel_is_cc3(connect):
    me = connect()
    assert me.call("guest-store-subchannel", guest=GUEST, subchannel="fe.3.ffff") == {"cc": 3}


def test_qdio_subchannels_show_qf_and_cannot_be_passed_through(connect):
    """The embedded OSA triple (1732/01 on control unit 1731/01) has the QDIO facility: PMCW QF
    (flags 0x8000) in STSCH, "qdio": true in query-subchannels; attach-passthrough refuses each
    of them and changes nothing; MSCH keeps QF; the connection carries on."""
    me = connect()
    page = me.call("query-subchannels", cssid=0)["subchannels"]
    qdio = [s["subchannel"] for s in page if s.get("qdio")]
    assert qdio == ["0.0.0000", "0.0.0001", "0.0.0002"]
    assert all(s["cu-type"] == "1731/01" for s in page if s.get("qdio"))
    assert all("qdio" not in s for s in page if s["cu-type"] != "1731/01")
    stored = me.call("store-subchannel", subchannel="0.0.0001")
    assert stored["schib"]["flags"] & 0x8000 and int(stored["raw"][8:10], 16) & 0x80
    assert not me.call("store-subchannel", subchannel="0.0.0003")["schib"]["flags"] & 0x8000
    before = (me.call("query-guests"), me.call("query-path-event-stats"),
              me.call("query-guest-subchannels", guest=GUEST))
    for host in qdio:
        err = me.error("attach-passthrough", guest=GUEST, host_subchannel=host)
        assert err["class"] == "GenericError"
        assert err["desc"].startswith(f"host subchannel {host} has the QDIO facility")
        assert err["desc"].endswith(f'(Linux: "vfio: ccw: does not support QDIO: {host}")')
    assert (me.call("query-guests"), me.call("query-path-event-stats"),
            me.call("query-guest-subchannels", guest=GUEST)) == before
    # MSCH of the stored PMCW (QF included, as Linux's cio_commit_config passes it) is accepted
    # and leaves QF; QF on a DASD is a reserved bit.
    assert me.call("modify-subchannel", subchannel="0.0.0001", isc=5) == {"cc": 0}
    after = me.call("store-subchannel", subchannel="0.0.0001")["schib"]
    assert after["isc"] == 5 and after["flags"] & 0x8000
    assert me.call("modify-subchannel", subchannel="0.0.0001", flags=after["flags"] & ~0x8000) == {"cc": 0}
    assert me.call("store-subchannel", subchannel="0.0.0001")["schib"]["flags"] & 0x8000
    dasd = me.call("store-subchannel", subchannel="0.0.0003")["schib"]["flags"]
    err = me.error("modify-subchannel", subchannel="0.0.0003", flags=dasd | 0x8000)
    assert err["class"] == "GenericError" and "reserved PMCW flag bits 0x8000" in err["desc"]
    # A DASD still attaches on the same connection.
    free = me.call("query-subchannels", chpid="0.4c")["subchannels"][0]["subchannel"]
    assert me.call("attach-passthrough", guest=GUEST, host_subchannel=free)["host-subchannel"] == free


def test_a_recorded_qdio_attach_is_skipped_on_replay(short_tmp):
    """A state dir from a cssd that still accepted QDIO subchannels holds an attach of one: on
    restart its replay fails like a live attach would, is logged as a warning naming the
    request and the reason, and the rest of the record is restored; cssd starts."""
    import os
    import sqlite3

    state = os.path.join(short_tmp, "state")

    def start():
        server = cssd_server(short_tmp, extra_args=["--state-dir", state])
        server.start()
        return server

    server = start()
    try:
        c = Client(server.sock)
        c.call("attach-passthrough", guest=GUEST, host_subchannel="0.0.0035")
        c.call("set-path-event-strategy", guest=GUEST, strategy="lazy")
        c.close()
    finally:
        # SIGKILL: the commands stay in the log, as in a state dir of the older cssd this stands
        # for (a clean stop folds them into a snapshot and empties the log).
        os.killpg(server.proc.pid, __import__("signal").SIGKILL)
        server.proc.wait()
    # What the older cssd would have recorded: the same attach, of the OSA device 0.0.0000.
    db = sqlite3.connect(os.path.join(state, "state.sqlite"))
    with db:
        [(row, request)] = db.execute(
            "SELECT id, request FROM commands WHERE request LIKE '%attach-passthrough%'").fetchall()
        db.execute("UPDATE commands SET request = ? WHERE id = ?", (request.replace("0.0.0035", "0.0.0000"), row))
    db.close()
    server = start()
    try:
        c = Client(server.sock)
        [g] = [g for g in c.call("query-guests") if g["name"] == GUEST]
        assert g["passthrough"] == 42 and g["strategy"] == "lazy"
        log = server.log_tail()
        assert "state dir: a recorded command failed again" in log
        assert "0.0.0000 has the QDIO facility" in log and "state restored" in log
        c.close()
    finally:
        server.stop()
