"""vfio-ccw passthrough on a Linux host (issue 24): cssd's linux-sysfs backend over a fixture tree
with subchannels bound to vfio_ccw, their mdevs, and `/run` and `/proc` stand-ins for the guests.

`cssctl lscss --vfio` is compared with the real lscss (s390-tools c6649588, built as
Tests/fixtures/sysfs/README.md says) over the same tree at each stage:
Tests/fixtures/sysfs/golden/lpar-vfio-<stage>.lscss[_<arg>...].txt."""

from __future__ import annotations

import os
import subprocess

import pytest

from harness.cssd import cssctl_binary
from harness.net import wait_until
from harness.paths import SYSFS_FIXTURES
from harness.qmp import Client
from harness.sysfs import build_tree, sysfs
from harness import vfio

GOLDEN = SYSFS_FIXTURES / "golden"
UUID = vfio.uuid_of(0xA1)


def lscss(sock: str, *args: str) -> bytes:
    p = subprocess.run([cssctl_binary(), "lscss", "--socket", sock, *args], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


def golden(stage: str, *args: str) -> bytes:
    return (GOLDEN / (f"lpar-vfio-{stage}.lscss" + "".join("_" + a for a in args) + ".txt")).read_bytes()


@pytest.fixture
def host(short_tmp, start):
    """The lpar tree, an empty /run and /proc, and a cssd reading them every 50 ms."""
    tree = build_tree("lpar.json", short_tmp)
    run = os.path.join(short_tmp, "run")
    proc = os.path.join(short_tmp, "proc")
    os.makedirs(run)
    os.makedirs(proc)
    srv = sysfs(tree, "--poll-interval", "50", "--sweep-interval", "200", "--no-inotify", "--kernel-log", "none",
                "--proc-root", proc, "--run-root", run, start=start)
    return tree, run, proc, srv


def passthrough(client: Client, **arguments) -> list:
    return client.call("query-host-passthrough", **arguments)


def test_lscss_vfio_follows_each_stage_as_the_real_lscss_prints_it(host):
    tree, run, proc, srv = host
    client = Client(srv.sock)
    assert passthrough(client) == []
    vfio.bind_vfio(tree, "0.0.0006", override="vfio_ccw")
    vfio.bind_vfio(tree, "0.0.0007")
    wait_until(lambda: len(passthrough(client)) == 2, 30, "both bindings seen")
    assert lscss(srv.sock, "--vfio") == golden("bound", "--vfio")
    # The plain listing of a bound subchannel: its number, no device columns.
    wait_until(lambda: lscss(srv.sock) == golden("bound"), 30, "the plain listing without the ccw devices")
    vfio.create_mdev(tree, "0.0.0006", UUID, 0)
    wait_until(lambda: passthrough(client)[0].get("mdev") == UUID, 30, "the mdev seen")
    for args in (("--vfio",), ("--vfio", "-u"), ("--vfio", "-s", "--vpm"), ("--vfio", "--chsc")):
        assert lscss(srv.sock, *args) == golden("mdev", *args), args
    vfio.remove_mdev_pending(tree, "0.0.0006", UUID)
    wait_until(lambda: passthrough(client)[0].get("mdev-state") == "removal-pending", 30, "the removal pending")
    assert lscss(srv.sock, "--vfio") == golden("pending", "--vfio")
    vfio.remove_mdev(tree, "0.0.0006", UUID)
    wait_until(lambda: "mdev" not in passthrough(client)[0], 30, "the mdev gone")
    assert lscss(srv.sock, "--vfio") == golden("bound", "--vfio")


def test_lscss_vfio_refuses_what_lscss_refuses(host):
    _, _, _, srv = host
    for args in (("--vfio", "--io"), ("--vfio", "-a"), ("--vfio", "-d"), ("--vfio", "-t", "3390")):
        p = subprocess.run([cssctl_binary(), "lscss", "--socket", srv.sock, *args], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 64, (args, p)
        assert "--vfio can not be used with --io, -d, -t or --avail" in p.stderr


def test_guests_are_named_from_libvirt_or_the_holding_process(host):
    tree, run, proc, srv = host
    client = Client(srv.sock)
    for n, sch in enumerate(("0.0.0006", "0.0.0007", "0.0.0009")):
        vfio.bind_vfio(tree, sch)
        vfio.create_mdev(tree, sch, vfio.uuid_of(n), n)
    # A libvirt domain holds two; a QEMU started by hand the third.
    vfio.libvirt_domain(run, "db-1", 4100, [vfio.uuid_of(0), vfio.uuid_of(1).upper()])
    vfio.qemu_process(proc, 4200, "scratch", [2])
    entries = wait_until(
        lambda: (lambda e: e if len(e) == 3 and all(x.get("holder") != "none" for x in e) else None)(
            passthrough(client)), 30, "three attributed passthroughs")
    assert [(e["subchannel"], e["holder"], e.get("guest"), e.get("pid")) for e in entries] == [
        ("0.0.0006", "libvirt", "db-1", 4100), ("0.0.0007", "libvirt", "db-1", 4100),
        ("0.0.0009", "process", "scratch", 4200)]
    assert entries[0]["devno"] == "0.0.1000" and entries[0]["iommu-group"] == 0
    assert entries[0]["chpids"] == ["0.40", "0.41", "0.42", "0.43"] and entries[0]["operational"] is True
    assert [e["subchannel"] for e in passthrough(client, guest="db-1")] == ["0.0.0006", "0.0.0007"]
    assert passthrough(client, guest="nobody") == []
    # The hand-started guest exits: nobody holds its mdev any more.
    import shutil
    shutil.rmtree(os.path.join(proc, "4200"))
    wait_until(lambda: passthrough(client)[2]["holder"] == "none", 30, "the guest gone")


def test_the_model_backend_says_it_has_no_host_passthrough(short_tmp, start):
    srv = start()
    client = Client(srv.sock)
    client.send("query-host-passthrough")
    reply = client.reply()
    assert reply["error"]["class"] == "GenericError"
    assert "query-guests" in reply["error"]["desc"]


def test_metrics_per_guest_count_passthrough_and_devices_without_path(short_tmp, start):
    from harness.cssd import metrics_port
    from harness.prometheus import scrape_values
    from harness.sysfs import set_status
    tree = build_tree("lpar.json", short_tmp)
    run = os.path.join(short_tmp, "run")
    os.makedirs(os.path.join(short_tmp, "proc"))
    # 0.0.000f (chpids 4a 4b) and 0.0.0009 (40-43) go to db-1, 0.0.0008 to web.
    for n, sch in enumerate(("0.0.000f", "0.0.0009", "0.0.0008")):
        vfio.bind_vfio(tree, sch)
        vfio.create_mdev(tree, sch, vfio.uuid_of(n), n)
    vfio.libvirt_domain(run, "db-1", 4100, [vfio.uuid_of(0), vfio.uuid_of(1)])
    vfio.libvirt_domain(run, "web", 4200, [vfio.uuid_of(2)])
    srv = sysfs(tree, "--poll-interval", "50", "--sweep-interval", "200", "--no-inotify", "--kernel-log", "none",
                "--proc-root", os.path.join(short_tmp, "proc"), "--run-root", run, "--metrics", "tcp:127.0.0.1:0",
                start=start)
    port = metrics_port(srv)

    def gauges():
        values = scrape_values(port)
        return {k: v for k, v in values.items() if k.startswith("cssd_host_guest_")}

    wait_until(lambda: gauges() == {
        'cssd_host_guest_passthrough_devices{guest="db-1"}': 2.0,
        'cssd_host_guest_passthrough_without_path_devices{guest="db-1"}': 0.0,
        'cssd_host_guest_passthrough_devices{guest="web"}': 1.0,
        'cssd_host_guest_passthrough_without_path_devices{guest="web"}': 0.0,
    }, 30, "the guests' gauges")
    # Someone's chchp -v 0 on both of 0.0.000f's paths: db-1 has one device without a path.
    set_status(tree, "0.4a", "offline")
    set_status(tree, "0.4b", "offline")
    wait_until(lambda: gauges().get('cssd_host_guest_passthrough_without_path_devices{guest="db-1"}') == 1.0, 30,
               "db-1's device without a path")
    assert gauges()['cssd_host_guest_passthrough_without_path_devices{guest="web"}'] == 0.0
    # web's domain stops (libvirt removes its status file): its series go.
    os.remove(os.path.join(run, "libvirt", "qemu", "web.xml"))
    wait_until(lambda: not any("web" in k for k in gauges()), 30, "web's series gone")


def test_the_interlock_protects_a_passed_through_device_a_guest_holds(host):
    """A subchannel bound to vfio_ccw has no online ccw device on the host; a guest drives it
    through its mdev. Varying its last path off needs force once a guest holds the mdev (both
    of its paths went without force)."""
    tree, run, proc, srv = host
    client = Client(srv.sock)
    vfio.bind_vfio(tree, "0.0.000f")  # 0.0.1009 on 0.4a and 0.4b
    vfio.create_mdev(tree, "0.0.000f", UUID, 7)
    wait_until(lambda: len(passthrough(client)) == 1 or None, 30, "the passthrough read")
    # An mdev nobody holds: no guest's last path.
    client.call("vary-path", chpid="0.4a", state="offline")
    client.call("vary-path", chpid="0.4a", state="online")
    vfio.libvirt_domain(run, "db-1", 4100, [UUID])
    wait_until(lambda: passthrough(client)[0].get("guest") == "db-1" or None, 30, "db-1 holding it")
    client.call("vary-path", chpid="0.4a", state="offline")
    err = client.error("vary-path", chpid="0.4b", state="offline")
    assert err["class"] == "GenericError" and "0.0.1009" in err["desc"], err
    client.call("vary-path", chpid="0.4b", state="offline", force=True)
