"""How the linux-sysfs backend follows a machine (API/linux-sysfs.md, "Change detection"), on
CI-sized generated trees: reads run off the event loop, a chpid re-read reads its own
subchannels and no others, the sweep covers every subchannel within its bound, the kernel log
triggers re-reads and survives garbage, and a tree that goes away or turns unreadable is served
from the last view and caught up with. Timings here check the mechanism, not the performance
(Benchmarks/sysfs_scale.py measures that)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from harness.cssd import cssctl_binary
from harness.net import wait_until
from harness.qmp import Client
from harness.sysfs import FIXTURES, sysfs


SIZE = 2048


@pytest.fixture
def tree_dir(short_tmp, start):
    """Where trees are built: tmpfs when there is one (a tree is thousands of small files),
    removed afterwards, once the servers reading it have stopped (removed under a running
    server, the tree made it log thousands of problems and read it again and again)."""
    import tempfile
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else short_tmp
    d = tempfile.mkdtemp(prefix="cssd-tree-", dir=base)
    yield d
    start.stop_all()
    shutil.rmtree(d, ignore_errors=True)


def generated_tree(outdir: str, size: int = SIZE) -> str:
    topology = os.path.join(outdir, "gen.json")
    subprocess.run([cssctl_binary(), "gen-topology", "--subchannels", str(size), "--chpids", "32", "--paths", "8",
                    "--cssid", "0", "--output", topology], check=True, timeout=60)
    with open(topology) as f:
        description = {"topology": json.load(f)}
    path = os.path.join(outdir, "description.json")
    with open(path, "w") as f:
        json.dump(description, f)
    tree = os.path.join(outdir, "sys")
    subprocess.run([sys.executable, os.path.join(FIXTURES, "make_sysfs.py"), path, tree], check=True, timeout=120)
    return tree


def css0(tree: str) -> str:
    return os.path.join(tree, "devices", "css0")


def clear_pam(tree: str, subchannel: str, slot: int) -> int:
    path = os.path.join(css0(tree), subchannel, "pimpampom")
    pim, pam, pom = (int(x, 16) for x in open(path).read().split())
    with open(path, "w") as f:
        f.write(f"{pim:02x} {pam & ~(0x80 >> slot):02x} {pom:02x}\n")
    return pam & ~(0x80 >> slot)


def on_chpid(client: Client, chpid: str, limit: int = 1000) -> list:
    return client.call("query-subchannels", chpid=chpid, limit=limit)["subchannels"]


def test_a_chpid_trigger_reads_its_subchannels_and_no_others(start, tree_dir, kmsg):
    tree = generated_tree(tree_dir)
    path, writer = kmsg
    me = Client(sysfs(tree, "--poll-interval", "0", "--no-inotify", "--kernel-log", path, start=start).sock)
    me.call("subscribe-path-events", granularity="subchannel")
    chpids = [c["chpid"] for c in me.call("query-chpids")]
    mine = on_chpid(me, chpids[3])
    mine_ids = {s["subchannel"] for s in mine}
    other = next(s for s in on_chpid(me, chpids[20]) if s["subchannel"] not in mine_ids)
    # The kernel changed two SCHIBs: one on 0.03's path, one elsewhere. Nothing tells cssd yet.
    target = mine[5]
    pam = clear_pam(tree, target["subchannel"], target["chpids"].index(chpids[3]))
    clear_pam(tree, other["subchannel"], other["chpids"].index(chpids[20]))
    time.sleep(0.3)
    assert me.nothing_pending()
    # The kernel log names chpid 0.03 (a CRW for a channel path, as crw.c prints it).
    writer().write("6,100,2000,-;crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=4, anc=0, erc=6, rsid=%X\n"
                   % int(chpids[3].split(".")[1], 16))
    [event] = me.events(1)
    assert event["data"]["subchannel"] == target["subchannel"] and event["data"]["pam"] == pam
    time.sleep(0.3)
    assert me.nothing_pending(), "a subchannel not on the chpid was read"
    # A dmesg-style line for the other path finds the other change.
    writer().write("[  12.345678] cio: Processing deconfigure for channel path %s\n" % chpids[20])
    [event] = me.events(1)
    assert event["data"]["subchannel"] == other["subchannel"]


def test_the_kernel_log_survives_garbage(start, tree_dir, kmsg):
    tree = generated_tree(tree_dir, 256)
    path, writer = kmsg
    srv = sysfs(tree, "--poll-interval", "0", "--no-inotify", "--kernel-log", path, "--log-level", "debug", start=start)
    me = Client(srv.sock)
    me.call("subscribe-path-events", granularity="subchannel")
    chpid = me.call("query-chpids")[1]["chpid"]
    target = on_chpid(me, chpid)[0]
    pam = clear_pam(tree, target["subchannel"], target["chpids"].index(chpid))
    w = writer()
    w.write("x" * 100_000 + "\n")                                     # huge
    w.write("\x00\xff\xfe garbage \x01\n")                             # binary
    w.write("6,1,2,-;crw_info : CRW reports slct=0, oflw=zz\n")        # garbled cio message
    w.write("6,2,3,-;cio: Processing configure for channel path 0.zz\n")
    w.write("4,3,4,-;usb 1-1: new high-speed USB device\n")            # another subsystem
    w.write(" SUBSYSTEM=css\n")                                        # a kmsg continuation line
    w.write("6,4,5,-;cio: Link stopped: RS=04 RSID=%04X IC=01 IUPARAMS=n/a IUNODEID=n/a AUPARAMS=n/a AUNODEID=n/a\n"
            % int(chpid.split(".")[1], 16))
    [event] = me.events(1)
    assert event["data"]["subchannel"] == target["subchannel"] and event["data"]["pam"] == pam
    assert srv.alive()
    assert "a cio message that does not parse" in srv.log_tail(100_000)


def test_the_sweep_covers_every_subchannel_within_its_bound(start, tree_dir):
    tree = generated_tree(tree_dir)
    srv = sysfs(tree, "--poll-interval", "100", "--sweep-interval", "2000", "--no-inotify", start=start)
    me = Client(srv.sock)
    me.call("subscribe-path-events", granularity="subchannel")
    subchannels = []
    start_id = None
    while True:
        args = {"limit": 1000}
        if start_id:
            args["start"] = start_id
        page = me.call("query-subchannels", **args)
        subchannels += page["subchannels"]
        start_id = page.get("next")
        if not start_id:
            break
    assert len(subchannels) == SIZE
    picked = subchannels[::97]  # spread over the whole id range
    for sch in picked:
        clear_pam(tree, sch["subchannel"], 0)
    began = time.monotonic()
    got = {e["data"]["subchannel"] for e in me.events(len(picked))}
    assert got == {s["subchannel"] for s in picked}
    assert time.monotonic() - began < 2.0 + 1.0, "not covered within the sweep interval"


def one_subchannel(client: Client, subchannel: str) -> dict:
    [entry] = client.call("query-subchannels", start=subchannel, limit=1)["subchannels"]
    assert entry["subchannel"] == subchannel
    return entry


def test_with_the_kernel_log_the_sweep_reads_vpm_and_the_log_the_rest(start, tree_dir, kmsg):
    """With the kernel log followed, the sweep reads each device's `online` and, of an online
    device, its subchannel's `vpm` (what moves without a channel report or a chpid change: a
    device set on- or offline, path verification) and the whole subchannel when they moved; `pimpampom` and `chpids` move
    with a channel report, whose kernel-log line triggers their reading (API/linux-sysfs.md,
    "What the sweep reads")."""
    tree = generated_tree(tree_dir, 256)
    path, writer = kmsg
    # The generated devices are offline; Linux verifies the paths of online devices only
    # (device_fsm.c), so the sweep reads an offline device's `online` alone: the device whose
    # vpm moves below is online, and so is the one set offline (else nothing would change).
    names = sorted(e for e in os.listdir(css0(tree)) if e.startswith("0.0."))
    for index in (120, 200):
        directory = os.path.join(css0(tree), names[index])
        device = next(e for e in os.listdir(directory) if e.startswith("0.0."))
        with open(os.path.join(directory, device, "online"), "w") as f:
            f.write("1\n")
    srv = sysfs(tree, "--poll-interval", "100", "--sweep-interval", "500", "--no-inotify", "--kernel-log", path,
                start=start)
    me = Client(srv.sock)
    me.call("subscribe-path-events", granularity="subchannel")
    subchannels = me.call("query-subchannels", limit=256)["subchannels"]
    for index in (120, 200):  # query-subchannels says "online": false of an offline device only
        assert subchannels[index]["subchannel"] == names[index] and "online" not in subchannels[index]
    writer().write("6,1,1,-;usb 1-1: the log is open\n")  # the watcher is reading it from here on
    # Triggered: a SCHIB the kernel stored for a channel report, no line for it yet. Sweep
    # rounds (0.5 s each) go by without reading it: it is the log line's to trigger.
    target = subchannels[40]
    pam = clear_pam(tree, target["subchannel"], 0)
    time.sleep(2.0)
    assert me.nothing_pending(), "the sweep read pimpampom although the kernel log is followed"
    writer().write("6,2,2,-;crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=3, anc=0, erc=4, rsid=%X\n"
                   % int(target["subchannel"].split(".")[2], 16))
    [event] = me.events(1)
    assert event["data"]["subchannel"] == target["subchannel"] and event["data"]["pam"] == pam
    # Not swept: an offline device's vpm (Linux runs no path verification for it), so a vpm file
    # that moved there (which Linux does not do) goes unread over several sweep rounds.
    offline = subchannels[60]
    assert offline.get("online") is False
    vpm_file = os.path.join(css0(tree), offline["subchannel"], "vpm")
    with open(vpm_file) as f:
        kept = f.read()
    with open(vpm_file, "w") as f:
        f.write("%02x\n" % (int(kept, 16) ^ 0x80))
    time.sleep(2.0)
    assert one_subchannel(me, offline["subchannel"])["vpm"] == offline["vpm"], "the sweep read an offline device's vpm"
    with open(vpm_file, "w") as f:
        f.write(kept)
    # Swept: path verification moved one subchannel's vpm, nothing else.
    verified = subchannels[200]
    assert verified["vpm"] & 0x80
    with open(os.path.join(css0(tree), verified["subchannel"], "vpm")) as f:
        linux_vpm = int(f.read(), 16)
    pim = int(open(os.path.join(css0(tree), verified["subchannel"], "pimpampom")).read().split()[0], 16)
    first_slot = next(slot for slot in range(8) if pim & (0x80 >> slot))
    with open(os.path.join(css0(tree), verified["subchannel"], "vpm"), "w") as f:
        f.write("%02x\n" % (linux_vpm & ~(0x80 >> first_slot)))
    assert wait_until(lambda: one_subchannel(me, verified["subchannel"])["vpm"] == verified["vpm"] & 0x7f,
                      0.5 + 5.0, "the sweep to find the vpm change")
    # Swept: a driver set a device offline (a ccwgroup's member: no log line, no chpid change,
    # and the kernel leaves vpm as it was): a full reading follows.
    gone = subchannels[120]
    device = next(e for e in os.listdir(os.path.join(css0(tree), gone["subchannel"])) if e.startswith("0.0."))
    with open(os.path.join(css0(tree), gone["subchannel"], device, "online"), "w") as f:
        f.write("0\n")
    assert wait_until(lambda: one_subchannel(me, gone["subchannel"]).get("online") is False,
                      0.5 + 5.0, "the sweep to find the device set offline")
    assert srv.alive()


def test_reads_run_off_the_loop(start, tree_dir):
    """A full re-read of the tree (entries came) runs on the follower's thread: another
    connection's commands are answered meanwhile, and an attribute that is a FIFO nobody
    writes (a stuck attribute) is read without waiting."""
    tree = generated_tree(tree_dir, 4096)
    base = css0(tree)
    chp = os.path.join(base, "chp0.05", "cmg")
    os.remove(chp)
    os.mkfifo(chp)
    srv = sysfs(tree, "--poll-interval", "0", start=start)
    me, other = Client(srv.sock), Client(srv.sock)
    count = me.call("query-css")
    # A new subchannel directory: inotify on css0 asks for the listing, which differs: the
    # whole tree is read again (thousands of directories).
    src = os.path.join(base, "0.0.0001")
    new = os.path.join(base, "0.0.fff0")
    shutil.copytree(src, new + ".tmp", symlinks=True)
    device = next(d for d in os.listdir(new + ".tmp") if d.startswith("0.0."))
    os.rename(os.path.join(new + ".tmp", device), os.path.join(new + ".tmp", "0.0.fff0"))
    latencies = []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            t = time.perf_counter()
            assert "return" in other.call_raw("query-version")
            latencies.append(time.perf_counter() - t)

    thread = threading.Thread(target=hammer)
    thread.start()
    began = time.monotonic()
    os.rename(new + ".tmp", new)
    try:
        wait_until(lambda: me.call("query-css") != count, 30, "the new subchannel was not read")
    finally:
        stop.set()
        thread.join()
    reading = time.monotonic() - began
    # Answered all along: many replies while the tree was read, typically fast. (Not the
    # maximum: on a loaded machine the scheduler alone can hold a thread for a while.)
    latencies.sort()
    assert len(latencies) >= 10, (len(latencies), reading)
    assert latencies[len(latencies) // 2] < min(0.05, reading / 4), (latencies[len(latencies) // 2], reading)


def test_a_tree_that_goes_away_is_served_from_the_last_view(start, tree_dir):
    tree = generated_tree(tree_dir, 256)
    srv = sysfs(tree, "--poll-interval", "100", "--sweep-interval", "500", "--no-inotify", start=start)
    me = Client(srv.sock)
    me.call("subscribe-path-events", granularity="both")
    before = me.call("query-subchannels", limit=1000)
    chpids = me.call("query-chpids")
    hidden = os.path.join(os.path.dirname(tree), "hidden")
    os.rename(css0(tree), hidden)
    time.sleep(1.5)  # polls and sweeps over a missing tree
    assert me.call("query-subchannels", limit=1000) == before
    assert me.call("query-chpids") == chpids
    assert me.nothing_pending(), "something was reported for a tree that is not there"
    assert srv.alive()
    log = srv.log_tail(200_000)
    assert log.count("has gone") <= 3, "logged every tick"
    # A file that turns unreadable: a directory where pimpampom was.
    sch = before["subchannels"][3]["subchannel"]
    os.rename(hidden, css0(tree))
    pimpampom = os.path.join(css0(tree), sch, "pimpampom")
    saved = open(pimpampom).read()
    os.remove(pimpampom)
    os.mkdir(pimpampom)
    time.sleep(1.0)
    assert me.nothing_pending()
    assert me.call("query-subchannels", limit=1000) == before
    # Back, with a change made meanwhile: caught up.
    os.rmdir(pimpampom)
    with open(pimpampom, "w") as f:
        f.write(saved)
    clear_pam(tree, sch, 0)
    with open(os.path.join(css0(tree), "chp" + chpids[2]["chpid"], "status"), "w") as f:
        f.write("offline\n")
    events = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (
            any(e["data"].get("subchannel") == sch for e in events)
            and any(e["event"] == "CHANNEL_PATH_CHANGED" and e["data"]["chpid"] == chpids[2]["chpid"] for e in events)):
        events += me.events(1)
    assert any(e["data"].get("subchannel") == sch and e["data"]["change"] == "permanent-error" for e in events)
    assert any(e["event"] == "CHANNEL_PATH_CHANGED" and e["data"]["change"] == "offline" for e in events)


def test_directories_that_come_and_go_mid_sweep(start, tree_dir):
    tree = generated_tree(tree_dir, 256)
    srv = sysfs(tree, "--poll-interval", "100", "--sweep-interval", "500", "--no-inotify", start=start)
    me = Client(srv.sock)
    total = me.call("query-css")
    gone = os.path.join(css0(tree), "0.0.0007")
    aside = os.path.join(os.path.dirname(tree), "aside")
    shutil.move(gone, aside)
    wait_until(lambda: me.call("query-css") != total, 10, "the removed subchannel stayed")
    assert me.call("query-subchannels", start="0.0.0007", limit=1)["subchannels"][0]["subchannel"] != "0.0.0007"
    shutil.move(aside, gone)
    wait_until(lambda: me.call("query-css") == total, 10, "the subchannel that came back was not read")
    assert srv.alive()


def test_a_kernel_log_fifo_without_a_writer_is_not_followed(start, tree_dir, kmsg):
    """A FIFO whose writer closed (the forwarder died) counted as followed: the sweep kept to
    `vpm` and `online`, and a `pimpampom` change whose channel report nobody forwarded was never
    found. Without a writer the sweep reads whole again (found within its bound), a warning
    says so, and a writer that comes back is followed again."""
    tree = generated_tree(tree_dir, 256)
    path, writer = kmsg
    srv = sysfs(tree, "--poll-interval", "100", "--sweep-interval", "500", "--no-inotify", "--kernel-log", path,
                start=start)
    me = Client(srv.sock)
    subchannels = me.call("query-subchannels", limit=256)["subchannels"]
    writer().write("6,1,1,-;usb 1-1: the log is open\n")
    writer().close()  # the forwarder dies
    wait_until(lambda: "its writer closed the FIFO" in srv.log_tail(20000), 30, "the warning")
    target = subchannels[40]["subchannel"]
    pam = clear_pam(tree, target, 0)
    wait_until(lambda: one_subchannel(me, target)["pam"] == pam, 0.5 + 10.0, "the sweep to read pimpampom")
    # A writer again: its lines act (and the sweep keeps to vpm once more).
    with open(path, "w", buffering=1) as again:
        again.write("6,2,2,-;usb 1-1: the log is open again\n")
        other = subchannels[60]["subchannel"]
        pam = clear_pam(tree, other, 0)
        again.write("6,3,3,-;crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=3, anc=0, erc=4, rsid=%X\n"
                    % int(other.split(".")[2], 16))
        wait_until(lambda: one_subchannel(me, other)["pam"] == pam, 30, "the line to trigger the reading")
    assert srv.alive()
