"""Devices added to and removed from the model (issue 26, API/css.json add-device and
remove-device): the subchannel appears or goes (store-subchannel cc 0 / cc 3), the machine
queues the subchannel report Linux's cio evaluates (RSC 3, ERC 2, chained under MCSSE), path
events subchannel-added / subchannel-removed, the subchannel counts in query-css and the
metrics; bad input answered without harm to the server; and with --state-dir the devices
survive a SIGKILL and a restart, through the command log and through a snapshot."""

from __future__ import annotations

import os
import signal

import pytest

from harness.cssd import metrics_port, start_cssd
from harness.prometheus import scrape_values
from harness.qmp import Client

# The embedded machine: css 0 has subchannels 0.0.0000-0.0.0036; 0.0.2000 is 0.0.002d on
# 0.44-0.4b; css fe makes MCSSE on, so channel reports are chained.
NEW = dict(device="0.0.4000", subchannel="0.0.0040", chpids=["0.44", "0.45"], dev_type="3390/0c", cu_type="3990/e9")


def drain_crws(client):
    words = []
    while True:
        r = client.call("store-crw")
        if r["cc"] == 1:
            return words
        words.append(r["crw"])


def subchannel_count(client, cssid=0):
    return next(c["subchannels"] for c in client.call("query-css") if c["cssid"] == cssid)


def test_a_device_comes_and_goes_with_its_reports_events_and_counts(start):
    srv = start("--metrics", "tcp:127.0.0.1:0")
    me = Client(srv.sock)
    watcher = Client(srv.sock)
    watcher.call("subscribe-path-events", granularity="chpid")
    drain_crws(me)
    count = subchannel_count(me)
    newest = me.call("query-path-event-journal")["newest"]

    r = me.call("add-device", **NEW)
    assert r == {"subchannel": "0.0.0040", "devno": "0.0.4000", "chpids": ["0.44", "0.45"], "crws": 2}
    stored = me.call("store-subchannel", subchannel="0.0.0040")
    assert stored["cc"] == 0
    schib = stored["schib"]
    assert (schib["dnv"], schib["devno"], schib["pim"], schib["pam"], schib["pom"]) == (True, 0x4000, 0xC0, 0xC0, 0xFF)
    # RSC 3 (subchannel), ERC 2 (installed parameters initialized), rsid = schno, chained to a
    # second word with rsid = cssid << 8 | ssid << 4: what Linux's css_process_crw reads.
    assert drain_crws(me) == [0x13020040, 0x03020000]
    events = watcher.events(2)
    assert [(e["data"]["chpid"], e["data"]["change"]) for e in events] == [
        ("0.44", "subchannel-added"), ("0.45", "subchannel-added")]
    assert subchannel_count(me) == count + 1
    # Journaled like any change: one entry per chpid.
    assert me.call("query-path-event-journal")["newest"] == newest + 2
    chpids = {c["chpid"]: c for c in me.call("query-chpids")}
    assert chpids["0.44"]["subchannels"] == 9 and chpids["0.46"]["subchannels"] == 8
    # A 3390 on a 3990: a model DASD, its driver using both paths.
    [dasd] = me.call("query-dasd-paths", devno="0.0.4000")
    assert dasd["path-masks"] == "c0 00 00 00 00 00"
    values = scrape_values(metrics_port(srv))
    assert values['cssd_css_subchannels{cssid="0"}'] == count + 1
    assert values['cssd_chpid_subchannels{chpid="0.44"}'] == 9

    r = me.call("remove-device", device="0.0.2000")
    assert r == {"subchannel": "0.0.002d", "devno": "0.0.2000",
                 "chpids": ["0.44", "0.45", "0.46", "0.47", "0.48", "0.49", "0.4a", "0.4b"], "crws": 2}
    assert me.call("store-subchannel", subchannel="0.0.002d")["cc"] == 3
    assert drain_crws(me) == [0x1302002D, 0x03020000]
    kinds = {(e["data"]["chpid"], e["data"]["change"]) for e in watcher.events(8)}
    assert kinds == {(f"0.{c:02x}", "subchannel-removed") for c in range(0x44, 0x4C)}
    assert subchannel_count(me) == count
    # The other subchannels kept their numbers.
    [sch] = me.call("query-subchannels", devno="0.0.2001")["subchannels"]
    assert sch["subchannel"] == "0.0.002e"
    values = scrape_values(metrics_port(srv))
    assert values['cssd_chpid_subchannels{chpid="0.46"}'] == 7
    assert watcher.nothing_pending()


def test_bad_input_gets_clear_errors_and_the_server_survives(start):
    me = Client(start().sock)
    me.call("add-device", **NEW)
    count = subchannel_count(me)
    cases = [
        ("add-device", dict(NEW, subchannel="0.0.0041"), "GenericError", "device 0.0.4000 already exists"),
        ("add-device", dict(NEW, device="0.0.4001"), "GenericError", "subchannel 0.0.0040 already exists"),
        ("add-device", dict(NEW, device="0.0.4001", subchannel="0.0.0041", chpids=["0.99"]), "DeviceNotFound", "0.99"),
        ("add-device", dict(NEW, device="0.0.4001", subchannel="0.0.0041", chpids=["0.44", "0.44"]), "GenericError",
         "listed twice"),
        ("add-device", dict(NEW, device="0.0.4001", subchannel="0.0.0041", chpids=[]), "GenericError", "at least one"),
        ("add-device", dict(NEW, device="0.0.4001", subchannel="0.0.0041", cu_type="3990"), "GenericError",
         "TTTT/MM"),
        ("add-device", dict(NEW, device="0.0.4001", subchannel="0.1.0041"), "GenericError", "subchannel set"),
        ("remove-device", dict(device="0.0.9999"), "DeviceNotFound", "0.0.9999"),
        # Passed through to guest1: the guest would keep a device without a host subchannel.
        ("remove-device", dict(device="0.0.1000"), "GenericError", "guest1"),
    ]
    for command, arguments, klass, text in cases:
        e = me.error(command, **arguments)
        assert e["class"] == klass and text in e["desc"], (command, arguments, e)
    assert subchannel_count(me) == count
    assert me.call("query-version")


@pytest.mark.parametrize("snapshot_every", ["1", "100000"])
def test_added_and_removed_devices_survive_sigkill_and_restart(short_tmp, snapshot_every):
    """With a snapshot after every command (the snapshot carries the devices) and with none
    (the command log replays them): after SIGKILL the next start neither refuses the state dir
    nor loses the devices."""
    state = os.path.join(short_tmp, "state")
    args = ["--state-dir", state, "--state-snapshot-every", snapshot_every]
    first = start_cssd(short_tmp, *args)
    try:
        me = Client(first.sock)
        me.call("add-device", **NEW)
        me.call("remove-device", device="0.0.2001")
        before = me.call("query-subchannels")
        os.killpg(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
    finally:
        first.stop()
    for _ in range(2):
        second = start_cssd(short_tmp, *args)
        try:
            me = Client(second.sock)
            assert me.call("query-subchannels") == before
            assert me.call("store-subchannel", subchannel="0.0.0040")["cc"] == 0
            assert me.call("store-subchannel", subchannel="0.0.002e")["cc"] == 3
            e = me.error("remove-device", device="0.0.2001")
            assert e["class"] == "DeviceNotFound", e
        finally:
            # The second round starts from what a clean stop leaves (a snapshot).
            assert second.stop() == 0
