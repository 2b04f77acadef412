"""Kernel behaviour since 6.1 read right by the linux-sysfs backend (issue 22; the facts are in
shared/reference/host-paths.md §2), each on a fixture tree changed the way the kernel changes
it, behind cssd's back:

- Linux 6.4 (stable back to 4.14, af11f99f): when the last path of an *offline* ccw device
  goes, the kernel unregisters the ccw device and keeps the subchannel. That is a path loss,
  not a deleted device.
- Linux before the 6.14-rc3 fix (7bd88fd3): where SCLP cannot read channel-path info (a KVM
  guest) `configure` alternates between EOPNOTSUPP and 3; the state is unknown throughout.
"""

from __future__ import annotations

import os
import time

from harness.qmp import Client
from harness.sysfs import set_status, sysfs, sysfs_tree


def subchannel(client, devno):
    return client.call("query-subchannels", devno=devno)["subchannels"][0]


def wait_for(predicate, what, guard=60.0):
    deadline = time.monotonic() + guard
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {guard} s: {what}"
        time.sleep(0.05)


def unregister_device(tree, sch, busid):
    """What the kernel's ccw_device_unregister leaves: the subchannel with its dev_busid, no
    ccw device directory, no bus/ccw link (the directory goes at once, as kernfs's does)."""
    os.rename(os.path.join(tree, "devices", "css0", sch, busid), os.path.join(tree, "..", "removed-" + busid))
    os.unlink(os.path.join(tree, "bus", "ccw", "devices", busid))


def test_an_offline_device_unregistered_after_its_last_path_went_is_a_path_loss(start, short_tmp):
    tree = sysfs_tree(short_tmp)
    # A device directory that goes is found by the sweep (every subchannel within 2 s here).
    srv = sysfs(tree, "--poll-interval", "100", "--sweep-interval", "2000", start=start)
    c = Client(srv.sock)
    before = subchannel(c, "0.0.100a")  # offline, paths 0.46 0.47 0.4a 0.4b
    assert (before["dev-type"], before.get("enabled")) == ("3390/0c", False), before
    # The varies' own changes: not the redundancy-lost and last-path-lost changes that follow
    # them for the online devices sharing these paths.
    c.call("subscribe-path-events", granularity="both", subchannels=["0.0.0010"], changes=["offline"])
    for chpid in ("0.46", "0.47", "0.4a", "0.4b"):
        set_status(tree, chpid, "offline")
        chpid_event, sch_event = c.events(2)
        assert (chpid_event["data"]["chpid"], chpid_event["data"]["change"]) == (chpid, "offline")
        assert sch_event["data"]["subchannel"] == "0.0.0010"
    assert sch_event["data"]["lpm"] == 0  # the last path went: the loss is this event
    # Then the kernel unregisters the offline device (IO_SCH_UNREG_CDEV); the subchannel stays.
    unregister_device(tree, "0.0.0010", "0.0.100a")
    # And, for contrast, an offline device that goes while its paths are there: a device that
    # went. Once cssd serves that, it has read the tree after both removals.
    unregister_device(tree, "0.0.0008", "0.0.1002")
    gone = wait_for(lambda: (s := subchannel(c, "0.0.1002")).get("device") is False and s, "1002 read as gone")
    assert gone["dev-type"] == "0000/00", gone
    after = subchannel(c, "0.0.100a")
    assert "device" not in after, after  # still the device it was, behind no path
    assert (after["dev-type"], after["cu-type"], after["subchannel"]) == ("3390/0c", "3990/e9", "0.0.0010"), after
    assert c.nothing_pending()  # no path event for the unregistering itself: the loss was published


def test_configure_alternating_between_eopnotsupp_and_3_stays_unknown(start, short_tmp):
    tree = sysfs_tree(short_tmp)
    configure = os.path.join(tree, "devices", "css0", "chp0.46", "configure")

    def write(text):
        with open(configure, "w", encoding="ascii") as f:
            f.write(text)

    write("")  # EOPNOTSUPP (an empty read here: a fixture file cannot fail)
    srv = sysfs(tree, "--poll-interval", "100", start=start)
    c = Client(srv.sock)

    def path():
        return next(p for p in c.call("query-chpids") if p["chpid"] == "0.46")

    assert path()["configure-known"] is False
    c.call("subscribe-path-events", chpids=["0.46"])
    # A pre-fix kernel's next read gives its cached 3; then the path is varied off, so that a
    # reading of the chpid is known to have happened (its event).
    write("3\n")
    set_status(tree, "0.46", "offline")
    [event] = c.events(1)
    assert event["data"]["change"] == "offline"
    assert path()["configure-known"] is False, path()
    # A real state makes it known again: a change from the last known state (none: not-recognized).
    write("1\n")
    [event] = c.events(1)
    assert (event["data"]["change"], event["data"]["configure"]) == ("configured", "configured"), event
    assert "configure-known" not in path()


def remove_subchannel(tree, sch, busid):
    """What the kernel's css_sch_device_unregister leaves: no subchannel, no device. The
    directory goes at once (moved out of the tree), as a kernfs directory does, not file by
    file as rmtree would take it apart under a reading."""
    os.rename(os.path.join(tree, "devices", "css0", sch), os.path.join(tree, "..", "removed-" + sch))
    os.unlink(os.path.join(tree, "bus", "css", "devices", sch))
    os.unlink(os.path.join(tree, "bus", "ccw", "devices", busid))


def test_subchannels_removed_by_a_cio_ignore_purge_are_an_operators_action(start, short_tmp):
    """Linux 6.18 (c93452e0): `echo purge > /proc/cio_ignore` also unregisters the I/O
    subchannels of ignored device numbers, and nothing else removes a subchannel of a device
    that became unavailable any more. cssd tells them apart by the ignore list, read when
    subchannels go: those on it are an operator's purge, the others are not explained."""
    tree = sysfs_tree(short_tmp)
    proc = os.path.join(short_tmp, "proc")
    os.makedirs(proc)
    with open(os.path.join(proc, "cio_ignore"), "w", encoding="ascii") as f:
        f.write("0.0.1000-0.0.1001\n0.0.100a\n")  # as blacklist.c prints it
    srv = sysfs(tree, "--poll-interval", "100", "--proc-root", proc, start=start)
    c = Client(srv.sock)
    [purged] = c.call("query-subchannels", devno="0.0.100a")["subchannels"]
    journal = c.call("query-path-event-journal")
    remove_subchannel(tree, "0.0.0010", "0.0.100a")  # purged: its number is ignored
    remove_subchannel(tree, "0.0.000f", "0.0.1009")  # gone for another reason
    wait_for(lambda: not any(s["subchannel"] in ("0.0.0010", "0.0.000f")
                             for s in c.call("query-subchannels")["subchannels"]), "the removals read")
    log = wait_for(lambda: "removed by a purge" in (t := srv.log_tail(20000)) and t, "the purge in the log", guard=10)
    purge = next(line for line in log.splitlines() if "removed by a purge of /proc/cio_ignore" in line)
    assert "an operator's action" in purge and "0.0.0010 (device 0.0.100a)" in purge, purge
    assert "0.0.000f" not in purge, purge
    other = next(line for line in log.splitlines() if "not on /proc/cio_ignore" in line)
    assert "0.0.000f (device 0.0.1009)" in other and "warning" in other, other
    # The purge is also a path event per chpid the subchannel used (from the journal, so that
    # nothing is coalesced): the removed subchannel named with its last masks; the other
    # removal is not explained, so no event says anything of it.
    w = Client(srv.sock)
    w.call("subscribe-path-events", granularity="both",
           since={"epoch": journal["epoch"], "sequence": journal["newest"]})
    chpids = [p for p in purged["chpids"] if p]
    events = w.events(2 * len(chpids))
    assert w.nothing_pending()
    assert [(e["event"], e["data"]["change"]) for e in events] == \
        [("CHANNEL_PATH_CHANGED", "subchannels-purged"), ("SUBCHANNEL_PATHS_CHANGED", "subchannels-purged")] * len(chpids)
    assert [e["data"]["chpid"] for e in events[::2]] == sorted(chpids)
    assert all(e["data"]["subchannels"] == 1 for e in events[::2])
    assert {(e["data"]["subchannel"], e["data"]["devno"]) for e in events[1::2]} == {("0.0.0010", "0.0.100a")}
