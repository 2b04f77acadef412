"""DASD path health on the model backend (issue 22, API/dasd.json): the model's DASD drivers
(every 3390 on a 3990 of the embedded machine), inject-dasd-path-fault (IFCC threshold,
miscabling, CUIR quiesce and resume) shown by query-dasd-paths, query-chpids' roll-up, the
metrics and the driver-disabled path events, dasd-path-reset giving a path back, bad input
answered without harm to the server, and the faults' effect surviving a restart with
--state-dir."""

from __future__ import annotations

import os

from harness.cssd import metrics_port
from harness.prometheus import scrape_values
from harness.qmp import Client


def by_devno(client, devno):
    [device] = client.call("query-dasd-paths", devno=devno)
    return device


def disabled(device):
    return {p["chpid"]: p["disabled-because"] for p in device["paths"] if p["disabled-because"]}


def test_the_model_has_dasds_with_every_path_in_use(start):
    me = Client(start().sock)
    devices = me.call("query-dasd-paths")
    assert len(devices) == 52 and {d["driver"] for d in devices} == {"dasd-eckd"}
    d = by_devno(me, "0.0.2000")
    assert d["path-masks"] == "ff 00 00 00 00 00" and d["online"] and d["problems"] == []
    assert (d["path-autodisable"], d["path-threshold"], d["path-interval"]) == (True, 256, 300)
    # 0.4d is in standby: cio has one path, so the driver uses one.
    assert by_devno(me, "0.0.3000")["path-masks"] == "80 00 00 00 00 00"
    chpids = {c["chpid"]: c for c in me.call("query-chpids")}
    assert chpids["0.44"]["dasd"]["devices"] == 8 and chpids["0.44"]["dasd"]["in-use"] == 8
    assert "dasd" not in chpids["0.60"]  # only OSA behind it


def test_ifcc_threshold_miscabling_cuir_events_and_reset(start, short_tmp):
    srv = start("--metrics", "tcp:127.0.0.1:0")
    me = Client(srv.sock)
    watcher = Client(srv.sock)
    watcher.call("subscribe-path-events", granularity="both")
    # 255 IFCCs: counted, nothing disabled, no event.
    r = me.call("inject-dasd-path-fault", devno="0.0.2000", chpid="0.45", fault="ifcc", count=255)
    assert (r["disabled"], r["ifcc-errors"], r["kept-in-use"]) == ([], 255, False)
    assert watcher.nothing_pending()
    # The 256th within path_interval: the driver disables the path, one event of its own.
    r = me.call("inject-dasd-path-fault", devno="0.0.2000", chpid="0.45", fault="ifcc")
    assert (r["disabled"], r["ifcc-errors"]) == (["ifcc-threshold"], 0)
    assert r["device"]["path-masks"] == "bf 00 00 00 00 40"
    chpid_event, sch_event = watcher.events(2)
    assert (chpid_event["data"]["chpid"], chpid_event["data"]["change"]) == ("0.45", "driver-disabled-ifcc")
    assert chpid_event["data"]["subchannels"] == 1 and chpid_event["data"]["vary"] == "online"
    assert (sch_event["data"]["devno"], sch_event["data"]["change"]) == ("0.0.2000", "driver-disabled-ifcc")
    # Miscabling and a CUIR quiesce: their own kinds; a resume gives the quiesced path back.
    r = me.call("inject-dasd-path-fault", devno="0.0.2000", chpid="0.46", fault="miscabled")
    assert r["disabled"] == ["miscabled"]
    r = me.call("inject-dasd-path-fault", devno="0.0.2001", chpid="0.47", fault="cuir-quiesce")
    assert r["disabled"] == ["cuir-quiesced"] and r["device"]["path-masks"] == "ef 00 00 10 00 00"
    kinds = [e["data"]["change"] for e in watcher.events(4) if e["event"] == "CHANNEL_PATH_CHANGED"]
    assert kinds == ["driver-disabled-miscabled", "driver-disabled-cuir"]
    r = me.call("inject-dasd-path-fault", devno="0.0.2001", chpid="0.47", fault="cuir-resume")
    assert r["disabled"] == [] and r["device"]["path-masks"] == "ff 00 00 00 00 00"
    # The path back in use is a driver-enabled event.
    chpid_event, sch_event = watcher.events(2)
    assert (chpid_event["data"]["chpid"], chpid_event["data"]["change"]) == ("0.47", "driver-enabled")
    assert (sch_event["data"]["devno"], sch_event["data"]["change"]) == ("0.0.2001", "driver-enabled")
    assert disabled(by_devno(me, "0.0.2000")) == {"0.45": ["ifcc-threshold"], "0.46": ["miscabled"]}
    # The roll-up per chpid and the metrics.
    chpids = {c["chpid"]: c for c in me.call("query-chpids")}
    assert chpids["0.45"]["dasd"]["ifcc-disabled"] == 1 and chpids["0.45"]["dasd"]["in-use"] == 7
    assert chpids["0.46"]["dasd"]["miscabled"] == 1
    values = scrape_values(metrics_port(srv))
    assert values['cssd_chpid_dasd_paths{chpid="0.45",state="ifcc-disabled"}'] == 1
    assert values['cssd_chpid_dasd_paths{chpid="0.46",state="in-use"}'] == 7
    # cio's masks did not move: no redundancy lost, the impact of 0.44 unchanged.
    [sch] = me.call("query-subchannels", devno="0.0.2000")["subchannels"]
    assert sch["pam"] == 0xff and sch["lpm"] == 0xff
    # The driver keeps the last path: 0.0.3000 runs on 0.4c alone.
    r = me.call("inject-dasd-path-fault", devno="0.0.3000", chpid="0.4c", fault="ifcc", count=256)
    assert (r["disabled"], r["kept-in-use"]) == ([], True)
    r = me.call("inject-dasd-path-fault", devno="0.0.3000", chpid="0.4c", fault="cuir-quiesce")
    assert (r["disabled"], r["kept-in-use"]) == ([], True)
    # dasd-path-reset gives back every disabled path (audited), then refuses when none is left.
    after = me.call("dasd-path-reset", devno="0.0.2000")
    assert after["path-masks"] == "ff 00 00 00 00 00" and disabled(after) == {}
    srv.wait_line("notice", "command=dasd-path-reset", "outcome=ok")
    back = [(e["data"]["chpid"], e["data"]["change"]) for e in watcher.events(4) if e["event"] == "CHANNEL_PATH_CHANGED"]
    assert back == [("0.45", "driver-enabled"), ("0.46", "driver-enabled")]
    e = me.error("dasd-path-reset", devno="0.0.2000")
    assert e["class"] == "GenericError" and "disabled no path" in e["desc"], e
    assert watcher.nothing_pending()


def test_bad_input_gets_clear_errors_and_the_server_survives(start):
    me = Client(start().sock)
    cases = [
        (dict(devno="0.0.9999", chpid="0.44", fault="ifcc"), "DeviceNotFound", "0.0.9999"),
        (dict(devno="0.0.2000", chpid="0.99", fault="ifcc"), "DeviceNotFound", "0.99"),
        (dict(devno="0.0.0600", chpid="0.60", fault="ifcc"), "GenericError", "not a DASD"),
        (dict(devno="0.0.2000", chpid="0.40", fault="miscabled"), "GenericError", "not installed"),
        (dict(devno="0.0.2000", chpid="0.44", fault="short-circuit"), "GenericError", "fault"),
        (dict(devno="0.0.2000", chpid="0.44", fault="miscabled", count=2), "GenericError", "count"),
        (dict(devno="0.0.2000", chpid="0.44", fault="ifcc", count=0), "GenericError", "count"),
        (dict(devno="0.0.2000", chpid="0.44", fault="ifcc", count="1"), "GenericError", "count"),
        (dict(devno="0.0.2000", chpid="0.44"), "GenericError", "fault"),
    ]
    for arguments, klass, text in cases:
        e = me.error("inject-dasd-path-fault", **arguments)
        assert e["class"] == klass and text in e["desc"], (arguments, e)
    e = me.error("dasd-path-reset", devno="0.0.2000", chpids=["0.40"])
    assert e["class"] == "GenericError" and "not installed" in e["desc"], e
    # Nothing changed.
    assert by_devno(me, "0.0.2000")["path-masks"] == "ff 00 00 00 00 00"
    assert me.call("query-version")


def test_the_driver_state_survives_a_restart_with_the_state_dir(start, short_tmp):
    state = os.path.join(short_tmp, "state")
    me = Client(start("--state-dir", state, name="first").sock)
    me.call("inject-dasd-path-fault", devno="0.0.2000", chpid="0.45", fault="ifcc", count=256)
    me.call("inject-dasd-path-fault", devno="0.0.2001", chpid="0.46", fault="ifcc", count=100)
    me.call("inject-dasd-path-fault", devno="0.0.2002", chpid="0.47", fault="cuir-quiesce")
    before = me.call("query-dasd-paths")
    me.close()
    start.stop_all()
    me = Client(start("--state-dir", state, name="second").sock)
    assert me.call("query-dasd-paths") == before
    # The IFCC count came back too: 156 more within the interval disable 0.46.
    r = me.call("inject-dasd-path-fault", devno="0.0.2001", chpid="0.46", fault="ifcc", count=156)
    assert r["disabled"] == ["ifcc-threshold"]


def test_verify_paths_varies_each_chpid_off_and_on_in_turn(start):
    srv = start()
    me = Client(srv.sock)
    journal = me.call("query-path-event-journal")
    steps = me.call("verify-paths", chpids=["0.44", "0.45"])
    assert steps == [
        {"chpid": "0.44", "varied-offline": True, "varied-online": True, "subchannels": 8},
        {"chpid": "0.45", "varied-offline": True, "varied-online": True, "subchannels": 8}]
    # One chpid at a time: 0.44 is back online before 0.45 goes (from the journal: a replay is
    # not coalesced, where a live queue may fold 0.44's offline into its online).
    watcher = Client(srv.sock)
    watcher.call("subscribe-path-events", since={"epoch": journal["epoch"], "sequence": journal["newest"]})
    changes = [(e["data"]["chpid"], e["data"]["change"]) for e in watcher.events(4)]
    assert changes == [("0.44", "offline"), ("0.44", "online"), ("0.45", "offline"), ("0.45", "online")]
    assert {c["chpid"]: c["vary"] for c in me.call("query-chpids")}["0.44"] == "online"
    srv.wait_line("notice", "command=verify-paths", "outcome=ok")
    # 0.4c is the last operational path of 0.0.3000 and 0.0.3001 (0.4d is in standby): the
    # interlock refuses, force verifies it (the audit line records force).
    e = me.error("verify-paths", chpids=["0.4c"])
    assert e["class"] == "GenericError" and "0.0.3000" in e["desc"], e
    assert watcher.nothing_pending()
    assert me.call("verify-paths", chpids=["0.4c"], force=True)[0]["varied-online"]
    srv.wait_line("notice", "command=verify-paths", "force")
    # Bad input: clear errors, nothing varied.
    me.call("vary-path", chpid="0.46", state="offline")
    e = me.error("verify-paths", chpids=["0.47", "0.46"])
    assert e["class"] == "GenericError" and "0.46" in e["desc"] and "not varied online" in e["desc"], e
    e = me.error("verify-paths", chpids=["0.99"])
    assert e["class"] == "DeviceNotFound", e
    e = me.error("verify-paths", chpids=["0.47", "0.47"])
    assert e["class"] == "GenericError" and "twice" in e["desc"], e
    e = me.error("verify-paths", chpids=[])
    assert e["class"] == "GenericError", e
    e = me.error("verify-paths", chpids=["0.47"], force="yes")
    assert e["class"] == "GenericError" and "force" in e["desc"], e
    assert {c["chpid"]: c["vary"] for c in me.call("query-chpids")}["0.47"] == "online"
