"""The impact queries and the last-path interlock (issue 22, API/impact.json) against a real cssd:
the audit line of a forced change, and the linux-sysfs backend over the lpar fixture, whose tree
has online and offline devices (make_sysfs.py writes each device's `online` file)."""

from __future__ import annotations

import os

import pytest

from harness.cssd import cssctl, cssd_binary, cssd_server
from harness.qmp import Client
from harness.sysfs import sysfs_tree


def test_force_is_in_the_audit_line(cssd):
    c = Client(cssd.sock)
    try:
        err = c.error("vary-path", chpid="0.60", state="offline")
        assert err["class"] == "GenericError"
        assert err["desc"] == ("vary-path 0.60 offline refused: it would take the last operational path of 3 "
                               "devices in use: 0.0.0600, 0.0.0601, 0.0.0602 (query-path-impact lists them; "
                               "pass 'force': true to do it anyway)")
        assert c.call("vary-path", chpid="0.60", state="offline", force=True)["changed"] == 3
        assert c.call("vary-path", chpid="0.60", state="online")["changed"] == 3
    finally:
        c.close()
    forced = cssd.wait_line("notice", "command=vary-path", "force=true")
    assert "outcome=ok" in forced and '\\"offline\\"' in forced
    lines = [l for l in cssd.log_tail(400000).splitlines() if "command=vary-path" in l]
    refused = [l for l in lines if "GenericError" in l]
    assert len(refused) == 1 and "force=" not in refused[0], lines
    assert not any("force=" in l for l in lines if '\\"online\\"' in l), lines


def test_cssctl_passes_force(cssd):
    p = cssctl(cssd.sock, "configure-chpid", "chpid=0.4c", "state=standby")
    assert p.returncode == 1 and "configure-chpid 0.4c standby refused" in p.stderr + p.stdout
    p = cssctl(cssd.sock, "configure-chpid", "chpid=0.4c", "state=standby", "force=true")
    assert p.returncode == 0, p.stderr


@pytest.fixture
def lpar(short_tmp):
    if cssd_binary() is None:
        pytest.skip("cssd binary not found: build it (swift build) or set CSSD_BIN")
    tree = sysfs_tree(short_tmp)
    with cssd_server(short_tmp, extra_args=["--backend", f"linux-sysfs:{tree}"]) as server:
        yield server, tree


def devnos(devices):
    return [d["devno"] for d in devices]


def test_sysfs_redundancy_and_impact(lpar):
    server, tree = lpar
    c = Client(server.sock)
    try:
        report = c.call("query-path-redundancy")
        # OSA on 0.60 and HiperSockets on 0.f0 run on one path; 0.0.1007 (offline, 0.48 in
        # standby and 0.49 varied off) has none.
        assert devnos(report["single-path"]) == ["0.0.f500", "0.0.f501", "0.0.f502",
                                                 "0.0.7000", "0.0.7001", "0.0.7002"]
        assert devnos(report["without-path"]) == ["0.0.1007"]
        assert report["without-path"][0]["in-use"] is False
        assert [p["chpid"] for p in report["critical-chpids"]] == ["0.60", "0.f0"]

        impact = c.call("query-path-impact", chpids=["0.46", "0.47", "0.4a", "0.4b"])
        # 0.0.1008 and 0.0.1009 are online, 0.0.100a is not (its online file reads 0).
        assert devnos(impact["lost-last-path"]) == ["0.0.1008", "0.0.1009", "0.0.100a"]
        assert [d["in-use"] for d in impact["lost-last-path"]] == [True, True, False]
        assert impact["in-use-lost-last-path-count"] == 2 and impact["severity"] == "high"
        # 0.0.1006 has eight paths, of which 0.46 and 0.47: it keeps six.
        assert impact["devices-losing-a-path"] == 4
    finally:
        c.close()


def test_sysfs_interlock(lpar):
    server, tree = lpar
    c = Client(server.sock)
    try:
        status = os.path.join(tree, "devices", "css0", "chp0.f0", "status")
        err = c.error("vary-path", chpid="0.f0", state="offline")
        assert err["desc"].startswith("vary-path 0.f0 offline refused: it would take the last operational path "
                                      "of 3 devices in use: 0.0.7000, 0.0.7001, 0.0.7002 ")
        with open(status) as f:
            assert f.read() == "online\n"  # nothing written
        # 0.4a alone leaves every device a path: done, no force.
        assert "changed" in c.call("vary-path", chpid="0.4a", state="offline")
        assert c.call("vary-path", chpid="0.f0", state="offline", force=True)
        with open(status) as f:
            assert f.read().strip() == "offline"
    finally:
        c.close()


def test_a_passed_through_device_is_in_use_whatever_its_host_online_says(short_tmp):
    """A vfio-ccw passthrough device has no online ccw device on its host (the subchannel is
    bound to vfio_ccw): the guest drives it, so the interlock protects its last path even when
    the topology says `online: false` (it let both paths go without force)."""
    if cssd_binary() is None:
        pytest.skip("cssd binary not found: build it (swift build) or set CSSD_BIN")
    import json

    from harness.paths import SYSFS_FIXTURES

    topology = json.loads((SYSFS_FIXTURES / "lpar.json").read_text())["topology"]
    for sch in topology["subchannels"]:
        if sch["subchannel"] == "0.0.000f":  # 0.0.1009 on 0.4a and 0.4b
            sch["online"] = False
            sch.pop("enabled", None)
            sch.pop("isc", None)
    topology["guests"] = [{"name": "vm1", "strategy": "crw", "devices": []}]
    path = os.path.join(short_tmp, "t.json")
    with open(path, "w") as f:
        json.dump(topology, f)
    with cssd_server(short_tmp, extra_args=["--topology", path]) as server:
        c = Client(server.sock)
        try:
            # Not passed through and offline: nobody's last path, no refusal.
            assert c.call("vary-path", chpid="0.4a", state="offline")["changed"] >= 1
            c.call("vary-path", chpid="0.4a", state="online")
            c.call("attach-passthrough", guest="vm1", host_subchannel="0.0.000f")
            c.call("vary-path", chpid="0.4a", state="offline")
            err = c.error("vary-path", chpid="0.4b", state="offline")
            assert err["class"] == "GenericError" and "1 device in use: 0.0.1009" in err["desc"], err
            assert c.call("vary-path", chpid="0.4b", state="offline", force=True)["changed"] >= 1
        finally:
            c.close()


def test_sysfs_a_chpid_read_standby_counts_as_gone_for_the_interlock(lpar):
    """A `configure` write can return before the kernel's PAM change is read (here: the fixture
    never clears it): 0.0.1009 runs on 0.4a and 0.4b; with 0.4a read standby, taking 0.4b
    without force went through."""
    server, tree = lpar
    c = Client(server.sock)
    try:
        c.call("configure-chpid", chpid="0.4a", state="standby")
        for command, arguments in (("configure-chpid", {"state": "standby"}), ("vary-path", {"state": "offline"})):
            err = c.error(command, chpid="0.4b", **arguments)
            assert err["class"] == "GenericError" and "1 device in use: 0.0.1009" in err["desc"], err
        assert c.call("configure-chpid", chpid="0.4a", state="configured")["chpid"] == "0.4a"
        c.call("vary-path", chpid="0.4b", state="offline")  # 0.4a is back: no longer the last path
    finally:
        c.close()
