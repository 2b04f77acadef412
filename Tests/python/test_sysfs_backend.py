"""The linux-sysfs backend on fixture trees (Tests/fixtures/sysfs): reading, vary and configure
writes, writes the kernel refuses, changes made behind cssd's back turning into path events,
and the same command-level checks against the model serving the same topology."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from harness.cssd import cssctl_binary, cssd_binary
from harness.qmp import Client
from harness.sysfs import FIXTURES, build_tree, sysfs, topology_file


DESCRIPTIONS = ["lpar.json", "kvm-guest.json"]


# Members only a real machine reports: Linux's verified path mask (the model has none).
SUBCHANNEL_MACHINE_ONLY = {"vpm"}


def all_subchannels(client, machine_only=False):
    """Every subchannel's entry; without `machine_only`, less SUBCHANNEL_MACHINE_ONLY, so that
    the two backends' entries compare."""
    if not machine_only:
        return [{k: v for k, v in s.items() if k not in SUBCHANNEL_MACHINE_ONLY}
                for s in all_subchannels(client, machine_only=True)]
    out, start = [], None
    while True:
        args = {"limit": 1000}
        if start:
            args["start"] = start
        page = client.call("query-subchannels", **args)
        out += page["subchannels"]
        start = page.get("next")
        if not start:
            return out


# Members only a real machine reports (the model knows shared always, has no cmg).
MACHINE_ONLY = {"cmg", "shared", "chid-external"}


@pytest.mark.parametrize("description", DESCRIPTIONS)
def test_reads_what_the_model_of_the_same_topology_holds(start, short_tmp, description):
    tree = build_tree(description, short_tmp)
    real = Client(sysfs(tree, start=start).sock)
    model = Client(start("--topology", topology_file(description, short_tmp), name="model").sock)
    # vpm: Linux's verified path mask, which only the machine states (the model has none).
    real_subchannels = all_subchannels(real, machine_only=True)
    machine_vpm = [s.pop("vpm") for s in real_subchannels]
    assert real_subchannels == all_subchannels(model)
    assert all("vpm" not in s for s in all_subchannels(model, machine_only=True))
    assert machine_vpm == [s["lpm"] & s["pam"] & s["pom"] for s in real_subchannels]  # make_sysfs's default
    # 'dasd': the model's 3390s have a DASD driver (issue 22), the fixture tree binds none.
    strip = lambda chps: [{k: v for k, v in c.items() if k not in MACHINE_ONLY and k != "dasd"} for c in chps]
    real_chpids = real.call("query-chpids")
    assert strip(real_chpids) == strip(model.call("query-chpids"))
    # What the model cannot know: sysfs says 'unknown' for a path without measurement data.
    by_id = {c["chpid"]: c for c in real_chpids}
    for c in model.call("query-chpids"):
        if c["configure"] == "configured":
            assert by_id[c["chpid"]].get("shared", c["shared"]) == c["shared"]
        else:
            assert "shared" not in by_id[c["chpid"]] and "cmg" not in by_id[c["chpid"]]
    # The SCHIB assembled from sysfs; the ISC (and so the flags word) is the kernel's own
    # and not in sysfs.
    schib = lambda c, s: {k: v for k, v in c.call("store-subchannel", subchannel=s)["schib"].items()
                          if k not in ("isc", "flags")}
    for sch in all_subchannels(real):
        assert schib(real, sch["subchannel"]) == schib(model, sch["subchannel"])


def test_vary_writes_status_and_matches_the_model(start, short_tmp):
    tree = build_tree("lpar.json", short_tmp)
    real = Client(sysfs(tree, "--poll-interval", "0", "--no-inotify", start=start).sock)
    model = Client(start("--topology", topology_file("lpar.json", short_tmp), name="model").sock)
    status = os.path.join(tree, "devices", "css0", "chp0.40", "status")
    for state in ["offline", "online", "offline"]:
        got = real.call("vary-path", chpid="0.40", state=state)
        assert got == model.call("vary-path", chpid="0.40", state=state)
        assert got["changed"] > 0
        with open(status) as f:
            assert f.read() == state
        assert all_subchannels(real) == all_subchannels(model)
    assert {c["chpid"]: c["vary"] for c in real.call("query-chpids")}["0.40"] == "offline"


def test_configure_writes_configure(start, short_tmp):
    tree = build_tree("lpar.json", short_tmp)
    real = Client(sysfs(tree, "--poll-interval", "0", start=start).sock)
    configure = os.path.join(tree, "devices", "css0", "chp0.48", "configure")
    real.call("configure-chpid", chpid="0.48", state="configured")
    with open(configure) as f:
        assert f.read() == "1"
    assert {c["chpid"]: c["configure"] for c in real.call("query-chpids")}["0.48"] == "configured"
    real.call("configure-chpid", chpid="0.48", state="standby")
    with open(configure) as f:
        assert f.read() == "0"


def test_refused_writes_are_clear_errors_and_cssd_goes_on(start, short_tmp):
    tree = build_tree("lpar.json", short_tmp)
    real = Client(sysfs(tree, "--poll-interval", "0", "--no-inotify", start=start).sock)
    chp40 = os.path.join(tree, "devices", "css0", "chp0.40")
    os.remove(os.path.join(chp40, "status"))
    os.symlink("/dev/full", os.path.join(chp40, "status"))  # every write: ENOSPC
    err = real.error("vary-path", chpid="0.40", state="offline")
    assert err == {"class": "GenericError",
                   "desc": f"writing 'offline' to {chp40}/status: ENOSPC (No space left on device)"}
    chp41 = os.path.join(tree, "devices", "css0", "chp0.41")
    os.remove(os.path.join(chp41, "configure"))
    os.mkdir(os.path.join(chp41, "configure"))  # a directory: EISDIR
    err = real.error("configure-chpid", chpid="0.41", state="standby")
    assert err["desc"] == f"writing '0' to {chp41}/configure: EISDIR (Is a directory)"
    # Unknown and malformed ids are refused before any write.
    assert real.error("vary-path", chpid="0.99", state="offline")["class"] == "DeviceNotFound"
    assert real.call("vary-path", chpid="0.42", state="offline")["changed"] > 0


@pytest.mark.parametrize("command,arguments,operation", [
    ("inject-path-fault", {"chpid": "0.40", "fault": "permanent-error"}, "inject-path-fault"),
    ("reset-channel-path", {"chpid": "0.40"}, "reset-channel-path"),
    ("store-crw", {}, "store-crw"),
    ("modify-subchannel", {"subchannel": "0.0.0003", "isc": 5}, "modify-subchannel"),
    ("vary-path", {"chpid": "0.40", "state": "offline", "subchannel": "0.0.0003"}, "vary-path with 'subchannel'"),
])
def test_operations_linux_has_no_file_for(start, short_tmp, command, arguments, operation):
    real = Client(sysfs(build_tree("lpar.json", short_tmp), "--poll-interval", "0", start=start).sock)
    err = real.error(command, **arguments)
    assert err["class"] == "GenericError"
    assert err["desc"].startswith(f"{operation} is not supported by the linux-sysfs backend: ")


@pytest.mark.parametrize("how", [["--poll-interval", "0"], ["--no-inotify", "--poll-interval", "100"]],
                         ids=["inotify", "polling"])
def test_changes_behind_cssds_back_become_events(start, short_tmp, how):
    tree = build_tree("lpar.json", short_tmp)
    me = Client(sysfs(tree, *how, start=start).sock)
    me.call("subscribe-path-events", granularity="both", chpids=["0.40", "0.41"])
    css0 = os.path.join(tree, "devices", "css0")
    with open(os.path.join(css0, "chp0.40", "status"), "w") as f:  # someone ran chchp -v 0 0.40
        f.write("offline\n")
    first = me.events(1)[0]
    assert first["event"] == "CHANNEL_PATH_CHANGED"
    assert first["data"]["chpid"] == "0.40" and first["data"]["change"] == "offline"
    assert first["data"]["vary"] == "offline"
    rest = me.events(first["data"]["subchannels"])
    assert all(e["event"] == "SUBCHANNEL_PATHS_CHANGED" and e["data"]["change"] == "offline" for e in rest)

    # The kernel lost path 0.41 on one device: its PAM bit goes (0.41 is slot 1 there).
    sch = next(s for s in all_subchannels(me) if s["chpids"][1] == "0.41")
    pimpampom = os.path.join(css0, sch["subchannel"], "pimpampom")
    pim, pam, pom = (int(x, 16) for x in open(pimpampom).read().split())
    with open(pimpampom, "w") as f:
        f.write(f"{pim:02x} {pam & ~0x40:02x} {pom:02x}\n")
    # The device's event; none for 0.41, which its other devices still have in their PAM
    # (API/linux-sysfs.md, "Channel-path condition": test_sysfs_condition.py).
    [got] = me.events(1)
    assert (got["event"], got["data"]["change"]) == ("SUBCHANNEL_PATHS_CHANGED", "permanent-error")
    assert got["data"]["subchannel"] == sch["subchannel"] and got["data"]["pam"] == pam & ~0x40
    assert me.nothing_pending()


def test_bad_root_refuses_to_start(short_tmp):
    binary = cssd_binary()
    if binary is None:
        pytest.skip("cssd binary not found")
    sock = os.path.join(short_tmp, "never.sock")
    result = subprocess.run([binary, "--qmp", f"unix:{sock}", "--backend", f"linux-sysfs:{short_tmp}/nothing"],
                            capture_output=True, timeout=20)
    assert result.returncode == 1
    assert b"cannot read the Linux sysfs tree" in result.stderr and b"no channel subsystem" in result.stderr
    assert not os.path.exists(sock)
    result = subprocess.run([binary, "--backend", "linux-sysfs", "--topology", "x.json"], capture_output=True, timeout=20)
    assert result.returncode != 0 and b"--topology describes the model" in result.stderr


def test_path_events_are_the_same_on_both_backends(start, short_tmp):
    """A vary through either backend gives the same events (subscription ids and each server's
    epoch aside)."""
    tree = build_tree("lpar.json", short_tmp)
    backends = {
        "sysfs": Client(sysfs(tree, "--poll-interval", "0", "--no-inotify", start=start).sock),
        "model": Client(start("--topology", topology_file("lpar.json", short_tmp), name="model").sock),
    }
    seen = {}
    for name, client in backends.items():
        client.call("subscribe-path-events", granularity="both")
        events = []
        for state in ["offline", "online"]:
            reply = client.call("vary-path", chpid="0.41", state=state)
            events += client.events(1 + reply["changed"])  # after the reply: the chpid's, then each subchannel's
        seen[name] = [(e["event"], {k: v for k, v in e["data"].items() if k not in ("subscription", "epoch")})
                      for e in events]
        assert client.nothing_pending()
    assert seen["sysfs"] == seen["model"]
    assert len(seen["model"]) > 2


def test_devices_that_appear_are_watched_too(start, short_tmp):
    """inotify only: a subchannel that appears is read, and its later changes are events."""
    import shutil
    tree = build_tree("lpar.json", short_tmp)
    srv = sysfs(tree, "--poll-interval", "0", start=start)
    me = Client(srv.sock)
    me.call("subscribe-path-events", granularity="subchannel")
    css0 = os.path.join(tree, "devices", "css0")
    count = len(all_subchannels(me))
    # A new DASD on 0.40 and 0.41: a copy of 0.0.0003 under a free number, device 0.0.1fff.
    src = next(s for s in all_subchannels(me) if s["chpids"][:2] == ["0.40", "0.41"])["subchannel"]
    new = os.path.join(css0, "0.0.0fff")
    shutil.copytree(os.path.join(css0, src), new + ".tmp", symlinks=True)
    old_dev = next(d for d in os.listdir(new + ".tmp") if d.startswith("0.0.") and os.path.isdir(os.path.join(new + ".tmp", d)))
    os.rename(os.path.join(new + ".tmp", old_dev), os.path.join(new + ".tmp", "0.0.1fff"))
    with open(os.path.join(new + ".tmp", "dev_busid"), "w") as f:
        f.write("0.0.1fff\n")
    os.rename(new + ".tmp", new)
    deadline = time.monotonic() + 10
    while len(all_subchannels(me)) != count + 1:
        assert time.monotonic() < deadline, f"the new subchannel was not read: {srv.log_tail()}"
        time.sleep(0.05)
    pimpampom = os.path.join(new, "pimpampom")
    pim, pam, pom = (int(x, 16) for x in open(pimpampom).read().split())
    with open(pimpampom, "w") as f:
        f.write(f"{pim:02x} {pam & ~0x80:02x} {pom:02x}\n")
    [event] = me.events(1)
    assert event["data"]["subchannel"] == "0.0.0fff" and event["data"]["change"] == "permanent-error"


def test_a_slow_write_blocks_only_its_own_connection(start, short_tmp):
    """A configure write the kernel takes long to complete (SCLP) runs off the event loop: the
    writing connection waits for its reply, everybody else is served meanwhile."""
    import threading
    tree = build_tree("lpar.json", short_tmp)
    srv = sysfs(tree, "--poll-interval", "0", "--no-inotify", start=start)
    writer, other = Client(srv.sock), Client(srv.sock)
    configure = os.path.join(tree, "devices", "css0", "chp0.41", "configure")
    os.remove(configure)
    os.mkfifo(configure)  # opening it for writing blocks until someone reads: a slow kernel
    writer.sock.sendall(b'{"execute":"configure-chpid","arguments":{"chpid":"0.41","state":"standby"},"id":"w"}'
                        b'{"execute":"query-version","id":"after"}')
    time.sleep(0.3)  # the write has begun (if not yet, the check below is merely weaker)
    # Nobody reads the FIFO before these replies came: a loop that waited for the write would
    # answer neither (the client's hang guard fails the call), however fast the machine.
    assert "return" in other.call_raw("query-version")
    assert other.call("query-chpids")[0]["chpid"] == "0.40"
    got = []
    reader = threading.Thread(target=lambda: got.append(open(configure).read()), daemon=True)
    reader.start()  # the "kernel" takes the write now
    reply = writer.reply()
    assert reply["id"] == "w" and "return" in reply, reply
    assert writer.reply()["id"] == "after"  # requests after it were held, then served in order
    reader.join(5)
    assert got == ["0"]


def test_an_unreadable_configure_is_a_dash_in_lschp(start, short_tmp):
    """A KVM guest cannot read `configure` (EOPNOTSUPP; an empty file here): lschp.c prints
    '-' for a failed read in the Cfg. column, so the golden row of kvm-guest, made by the real
    lschp over a readable `configure`, differs in that cell only. query-chpids says
    configure-known false."""
    tree = build_tree("kvm-guest.json", short_tmp)
    open(os.path.join(tree, "devices", "css0", "chp0.00", "configure"), "w").close()
    srv = sysfs(tree, "--poll-interval", "0", "--no-inotify", start=start)
    [path] = Client(srv.sock).call("query-chpids")
    assert path["configure"] == "not-recognized" and path["configure-known"] is False
    golden = open(os.path.join(FIXTURES, "golden", "kvm-guest.lschp.txt"), "rb").read().decode().split("\n")
    assert golden[2].startswith("0.00   1     1     ")
    golden[2] = "0.00   1     -     " + golden[2][len("0.00   1     1     "):]
    out = subprocess.run([cssctl_binary(), "lschp", "--socket", srv.sock], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode() == "\n".join(golden)


def test_vpm_is_read_from_sysfs_not_derived(start, short_tmp):
    """The kernel states `vpm` (00 for a device that is not online: it verifies paths only for
    an online device). query-subchannels serves it as `vpm`, lscss --vpm prints it, and a
    change of the file alone is picked up by the sweep."""
    with open(os.path.join(FIXTURES, "lpar.json"), encoding="utf-8") as f:
        desc = json.load(f)
    desc["sysfs"].setdefault("devices", {})["0.0.1002"] = {"vpm": "00"}
    path = os.path.join(short_tmp, "vpm.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(desc, f)
    tree = os.path.join(short_tmp, "sys")
    subprocess.run([sys.executable, os.path.join(FIXTURES, "make_sysfs.py"), path, tree], check=True, timeout=30)
    assert open(os.path.join(tree, "devices", "css0", "0.0.0008", "vpm")).read() == "00\n"
    srv = sysfs(tree, "--poll-interval", "100", "--sweep-interval", "300", "--no-inotify", start=start)
    client = Client(srv.sock)
    by_id = {s["subchannel"]: s for s in all_subchannels(client, machine_only=True)}
    assert by_id["0.0.0008"]["vpm"] == 0 and by_id["0.0.0008"]["lpm"] == 0xf0
    assert by_id["0.0.0006"]["vpm"] == 0xf0
    out = subprocess.run([cssctl_binary(), "lscss", "--socket", srv.sock, "--vpm", "0.0.0008"],
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().splitlines()[2] == \
        "0.0.1002 0.0.0008  3390/0c 3990/e9      f0  f0  ff  00  40414243 00000000"
    # Behind cssd's back, only vpm changes (the device was set online and verified two paths).
    with open(os.path.join(tree, "devices", "css0", "0.0.0008", "vpm"), "w") as f:
        f.write("c0\n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        [sch] = [s for s in all_subchannels(client, machine_only=True) if s["subchannel"] == "0.0.0008"]
        if sch["vpm"] == 0xc0:
            break
        time.sleep(0.1)
    assert sch["vpm"] == 0xc0


def test_make_sysfs_refuses_a_vpm_outside_the_pim(short_tmp):
    with open(os.path.join(FIXTURES, "lpar.json"), encoding="utf-8") as f:
        desc = json.load(f)
    desc["sysfs"].setdefault("devices", {})["0.0.1002"] = {"vpm": "08"}
    path = os.path.join(short_tmp, "bad.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(desc, f)
    p = subprocess.run([sys.executable, os.path.join(FIXTURES, "make_sysfs.py"), path, os.path.join(short_tmp, "t")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "sysfs.devices.0.0.1002.vpm: 08 has paths outside the PIM f0" in p.stderr
