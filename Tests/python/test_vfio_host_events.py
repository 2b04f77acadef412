"""vfio-ccw on a Linux host (issue 24): a path change attributed to the guests holding mdevs,
consolidated per guest (HOST_GUEST_PATH_CHANGED: one event for 42 devices on one chpid), and
the guest queries answering from what the host shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness import vfio
from harness.cssd import cssctl_binary
from harness.net import wait_until
from harness.paths import SYSFS_FIXTURES
from harness.qmp import Client
from harness.sysfs import set_status, sysfs


def synthetic_tree(outdir: str, subchannels: int, chpids: int, paths: int) -> str:
    """A tree of `subchannels` I/O subchannels (cssctl gen-topology), each with a ccw device."""
    topology = os.path.join(outdir, "t.json")
    subprocess.run([cssctl_binary(), "gen-topology", "--subchannels", str(subchannels), "--chpids", str(chpids),
                    "--paths", str(paths), "--cssid", "0", "--output", topology], check=True, timeout=60)
    with open(topology) as f:
        wrapped = {"topology": json.load(f)}
    with open(os.path.join(outdir, "d.json"), "w") as f:
        json.dump(wrapped, f)
    tree = os.path.join(outdir, "sys")
    subprocess.run([sys.executable, str(SYSFS_FIXTURES / "make_sysfs.py"), os.path.join(outdir, "d.json"), tree],
                   check=True, timeout=60)
    return tree


@pytest.fixture
def host42(short_tmp, start):
    """64 subchannels on chpid 0.00 alone; 42 of them passed through to libvirt domain db-1,
    one bound with an mdev nobody holds; cssd polling every 50 ms."""
    tree = synthetic_tree(short_tmp, 64, 1, 1)
    run = os.path.join(short_tmp, "run")
    proc = os.path.join(short_tmp, "proc")
    os.makedirs(proc)
    names = sorted(n for n in os.listdir(os.path.join(tree, "devices", "css0")) if n.startswith("0.0."))
    held = names[:42]
    for n, sch in enumerate(held + [names[42]]):
        vfio.bind_vfio(tree, sch)
        vfio.create_mdev(tree, sch, vfio.uuid_of(n), n)
    vfio.libvirt_domain(run, "db-1", 4100, [vfio.uuid_of(n) for n in range(42)])
    srv = sysfs(tree, "--poll-interval", "50", "--sweep-interval", "400", "--no-inotify", "--kernel-log", "none",
                "--proc-root", proc, "--run-root", run, start=start)
    client = Client(srv.sock)
    wait_until(lambda: len([e for e in client.call("query-host-passthrough") if e.get("guest") == "db-1"]) == 42,
               60, "db-1's 42 passthrough devices")
    return tree, run, srv, client, held


def test_a_chpid_going_offline_is_one_guest_event_naming_its_42_devices(host42):
    tree, run, srv, client, held = host42
    guest = client.call("subscribe-path-events", granularity="guest")["subscription"]
    detail = Client(srv.sock)
    both = detail.call("subscribe-path-events", granularity="both")["subscription"]
    set_status(tree, "0.00", "offline")
    event = client.events(1)[0]
    assert event["event"] == "HOST_GUEST_PATH_CHANGED", event
    data = event["data"]
    assert data["subscription"] == guest
    assert (data["guest"], data["pid"], data["host-chpid"], data["change"]) == ("db-1", 4100, "0.00", "offline")
    assert data["devices"] == 42 and data["without-path"] == 42
    assert data["subchannels"] == held
    assert data["mdevs"] == [vfio.uuid_of(n) for n in range(42)]
    # One event for the guest, not 42: nothing else is queued for it.
    assert client.nothing_pending()
    # The per-subchannel detail of the same change: its chpid event, then one per subchannel
    # (all 64: the 21 not held by db-1 too), under the same sequence.
    events = detail.events(1 + 64)
    assert events[0]["event"] == "CHANNEL_PATH_CHANGED" and events[0]["data"]["subscription"] == both
    assert {e["data"]["sequence"] for e in events} == {data["sequence"]}
    by_subchannel = {e["data"]["subchannel"]: e["data"] for e in events[1:]}
    assert all(by_subchannel[s]["lpm"] == 0 for s in held)
    detail.close()


def test_a_guest_filter_takes_a_host_guest_and_refuses_an_unknown_one(host42):
    tree, run, srv, client, held = host42
    err = client.error("subscribe-path-events", granularity="guest", guests=["nobody"])
    assert err["class"] == "DeviceNotFound", err
    client.call("subscribe-path-events", granularity="guest", guests=["db-1"])
    set_status(tree, "0.00", "offline")
    assert client.events(1)[0]["data"]["devices"] == 42


def test_the_guest_queries_answer_with_what_the_host_shows(host42):
    tree, run, srv, client, held = host42
    # The mdev nobody holds names no guest.
    assert client.call("query-guests") == [{
        "name": "db-1", "devices": 42, "passthrough": 42, "pid": 4100, "attribution": "libvirt",
        "mdevs": [vfio.uuid_of(n) for n in range(42)], "without-path": 0}]
    page = client.call("query-guest-subchannels", guest="db-1", limit=40)
    assert len(page["subchannels"]) == 40 and page["next"] == held[40]
    first = page["subchannels"][0]
    # What lives in QEMU (guest subchannel, devno, chpids, lpm) is absent, as the schema says.
    assert first == {"kind": "passthrough", "host-subchannel": held[0], "host-chpids": ["0.00"] + [None] * 7,
                     "pim": 0x80, "pam": 0x80, "pom": 0xFF, "pnom": 0, "mdev": vfio.uuid_of(0),
                     "mdev-state": "active"}
    rest = client.call("query-guest-subchannels", guest="db-1", start=page["next"])
    assert [s["host-subchannel"] for s in rest["subchannels"]] == held[40:] and "next" not in rest
    err = client.error("query-guest-subchannels", guest="nobody")
    assert err["class"] == "DeviceNotFound", err
    # The path goes: the guest's devices are without a path.
    set_status(tree, "0.00", "offline")
    wait_until(lambda: client.call("query-guests")[0]["without-path"] == 42, 60, "db-1 without paths")
    # The guest stops: libvirt removes its status file.
    os.remove(os.path.join(run, "libvirt", "qemu", "db-1.xml"))
    wait_until(lambda: client.call("query-guests") == [], 60, "db-1 gone")
