"""DASD path health on the linux-sysfs backend (issue 22, API/dasd.json): per device in
query-dasd-paths, per chpid in query-chpids, the DASD driver's kernel-log lines re-reading a
device at once, dasd-path-reset writing path_reset (audited; the kernel's refusal a clear
error), query-path-verification, and bad input answered without harm to the server."""

from __future__ import annotations

import os

from harness.net import wait_until
from harness.qmp import Client
from harness.sysfs import build_tree, make_dasd, sysfs


def dasd_tree(short_tmp):
    """lpar.json's tree; 0.0.1000 (0.0.0006, chpids 0.40-0.43) a DASD with one path of each
    kind the driver takes out of use, 0.0.1001 (0.0.0007) a healthy one."""
    tree = build_tree("lpar.json", short_tmp)
    # 0.40 in use without zHPF; 0.41 IFCC-disabled; 0.42 miscabled; 0.43 CUIR-quiesced, non-preferred.
    make_dasd(tree, "0.0.0006", "0.0.1000", path_masks="80 10 20 10 80 40",
              path_security={"0.40": "Encryption"})
    make_dasd(tree, "0.0.0007", "0.0.1001")
    return tree


def by_devno(client, devno):
    [device] = client.call("query-dasd-paths", devno=devno)
    return device


def test_every_mask_kind_per_device_and_per_chpid(start, short_tmp):
    tree = dasd_tree(short_tmp)
    me = Client(sysfs(tree, "--poll-interval", "0", "--no-inotify", start=start).sock)
    devices = me.call("query-dasd-paths")
    assert [d["devno"] for d in devices] == ["0.0.1000", "0.0.1001"]
    d = devices[0]
    assert d["driver"] == "dasd-eckd" and d["online"] and d["path-masks"] == "80 10 20 10 80 40"
    assert [(p["chpid"], p["in-use"], p["disabled-because"]) for p in d["paths"]] == [
        ("0.40", True, []), ("0.41", False, ["ifcc-threshold"]), ("0.42", False, ["miscabled"]),
        ("0.43", False, ["cuir-quiesced"])]
    assert [p["non-preferred"] for p in d["paths"]] == [False, False, False, True]
    assert [p["no-hpf"] for p in d["paths"]] == [True, False, False, False]
    assert d["paths"][0]["fc-security"] == "Encryption" and "fc-security" not in d["paths"][1]
    assert (d["path-autodisable"], d["path-threshold"], d["path-interval"], d["hpf"]) == (True, 256, 300, True)
    assert d["problems"] == []
    chpids = {c["chpid"]: c for c in me.call("query-chpids")}
    assert chpids["0.41"]["dasd"] == {"devices": 2, "in-use": 1, "non-preferred": 0, "miscabled": 0,
                                      "cuir-quiesced": 0, "no-hpf": 0, "ifcc-disabled": 1, "unknown": 0}
    assert chpids["0.43"]["dasd"]["cuir-quiesced"] == 1 and chpids["0.43"]["dasd"]["non-preferred"] == 1
    assert "dasd" not in chpids["0.60"]  # only OSA behind it
    assert [d["devno"] for d in me.call("query-dasd-paths", chpid="0.41")] == ["0.0.1000", "0.0.1001"]
    assert me.call("query-dasd-paths", chpid="0.60") == []


def test_bad_input_gets_clear_errors_and_the_server_survives(start, short_tmp):
    tree = dasd_tree(short_tmp)
    # A path_masks of the wrong format: unknown with the reason, never a guessed value.
    with open(os.path.join(tree, "devices/css0/0.0.0007/0.0.1001/path_masks"), "w") as f:
        f.write("f0 00 00\n")
    me = Client(sysfs(tree, "--poll-interval", "0", "--no-inotify", start=start).sock)
    bad = by_devno(me, "0.0.1001")
    assert "paths" not in bad and "path-masks" not in bad
    assert any("path_masks: 'f0 00 00' is not six two-digit hex bytes" in p for p in bad["problems"])
    assert by_devno(me, "0.0.1000")["paths"]  # the rest is served
    assert me.call("query-chpids")[0]["chpid"]
    e = me.error("query-dasd-paths", devno="0.0.zz")
    assert e["class"] == "GenericError" and "devno" in e["desc"]
    assert me.error("query-dasd-paths", devno="0.0.9999")["class"] == "DeviceNotFound"
    assert me.error("query-dasd-paths", chpid="0.99")["class"] == "DeviceNotFound"
    assert me.error("dasd-path-reset", devno="0.0.9999")["class"] == "DeviceNotFound"
    e = me.error("dasd-path-reset", devno="0.0.f500")
    assert e["class"] == "GenericError" and "is not bound to dasd-eckd or dasd-fba" in e["desc"], e
    e = me.error("dasd-path-reset", devno="0.0.1000", chpids="0.40")
    assert e["class"] == "GenericError" and "chpids" in e["desc"], e
    e = me.error("dasd-path-reset", devno="0.0.1000", chpids=["0.60"])
    assert "0.60: not a path of device 0.0.1000" in e["desc"], e
    # An empty list wrote 00 and said ok.
    e = me.error("dasd-path-reset", devno="0.0.1000", chpids=[])
    assert e["class"] == "GenericError" and "at least one chpid" in e["desc"], e
    e = me.error("dasd-path-reset", devno="0.0.1001")
    assert "the path masks of device 0.0.1001 are unknown" in e["desc"], e
    assert me.call("query-version")


def test_a_malformed_path_masks_that_changes_is_reported_as_it_is_now(start, short_tmp):
    """One malformed value replaced by another: the problem quotes the file as it is now (the
    sweep took any failure after the first for "no change" and kept quoting the first)."""
    tree = dasd_tree(short_tmp)
    masks = os.path.join(tree, "devices/css0/0.0.0007/0.0.1001/path_masks")
    me = Client(sysfs(tree, "--poll-interval", "100", "--sweep-interval", "300", start=start).sock)

    def problems_quote(text):
        return any(f"path_masks: '{text}' is not six" in p for p in by_devno(me, "0.0.1001")["problems"])

    for text in ["zz 00 00 00 00 00", "f0 00 00", "qq"]:
        with open(masks, "w") as f:
            f.write(text + "\n")
        wait_until(lambda: problems_quote(text), timeout=60, what=f"the problem quoting {text!r}")
    with open(masks, "w") as f:
        f.write("80 00 00 00 00 00\n")
    wait_until(lambda: by_devno(me, "0.0.1001").get("path-masks") == "80 00 00 00 00 00", timeout=60,
               what="the masks read again")
    assert by_devno(me, "0.0.1001")["problems"] == []


def test_an_ifcc_line_rereads_the_device_and_path_reset_gives_it_back(start, short_tmp, kmsg):
    tree = dasd_tree(short_tmp)
    path, writer = kmsg
    srv = sysfs(tree, "--poll-interval", "0", "--no-inotify", "--kernel-log", path, start=start)
    me = Client(srv.sock)
    watcher = Client(srv.sock)
    watcher.call("subscribe-path-events", granularity="both")
    assert all(p["in-use"] for p in by_devno(me, "0.0.1001")["paths"])
    # The driver disables 0.42 (slot 2) and logs it; nothing else changed in the tree.
    device = os.path.join(tree, "devices/css0/0.0.0007/0.0.1001")
    with open(os.path.join(device, "path_masks"), "w") as f:
        f.write("d0 00 00 00 00 20\n")
    writer().write("3,812,1234567,-;dasd-eckd 0.0.1001: Path 0.42 (pathmask 20) is disabled - IFCC threshold "
                   "exceeded\n")
    disabled = wait_until(
        lambda: [p["chpid"] for p in by_devno(me, "0.0.1001")["paths"] if p["disabled-because"]], 30,
        "the IFCC-disabled path")
    assert disabled == ["0.42"]
    # A path event of its own, with the reason in its kind; the device named by its subchannel event.
    chpid_event, sch_event = watcher.events(2)
    assert chpid_event["event"] == "CHANNEL_PATH_CHANGED", chpid_event
    assert (chpid_event["data"]["chpid"], chpid_event["data"]["change"]) == ("0.42", "driver-disabled-ifcc")
    assert chpid_event["data"]["subchannels"] == 1 and chpid_event["data"]["vary"] == "online"
    assert sch_event["event"] == "SUBCHANNEL_PATHS_CHANGED"
    assert (sch_event["data"]["subchannel"], sch_event["data"]["devno"]) == ("0.0.0007", "0.0.1001")
    assert sch_event["data"]["change"] == "driver-disabled-ifcc" and sch_event["data"]["pam"] == 0xf0
    assert me.call("query-chpids")[[c["chpid"] for c in me.call("query-chpids")].index("0.42")]["dasd"][
        "ifcc-disabled"] == 1
    # Given back: the mask of what the driver disabled goes to path_reset; audited.
    with open(os.path.join(device, "path_masks"), "w") as f:
        f.write("f0 00 00 00 00 00\n")  # what the kernel would then show
    after = me.call("dasd-path-reset", devno="0.0.1001")
    assert open(os.path.join(device, "path_reset")).read() == "20"
    assert all(p["in-use"] and not p["disabled-because"] for p in after["paths"])
    # The path back in use: a driver-enabled event (from the reset's re-read), no disabling.
    chpid_event, sch_event = watcher.events(2)
    assert (chpid_event["data"]["chpid"], chpid_event["data"]["change"]) == ("0.42", "driver-enabled")
    assert (sch_event["data"]["devno"], sch_event["data"]["change"]) == ("0.0.1001", "driver-enabled")
    assert watcher.nothing_pending()
    srv.wait_line("notice", "command=dasd-path-reset", "outcome=ok")
    # The kernel refuses (here: path_reset is a directory, EISDIR): a clear error, the server lives.
    os.remove(os.path.join(device, "path_reset"))
    os.mkdir(os.path.join(device, "path_reset"))
    e = me.error("dasd-path-reset", devno="0.0.1001", chpids=["0.42"])
    assert e["class"] == "GenericError" and "path_reset" in e["desc"] and "EISDIR" in e["desc"], e
    srv.wait_line("notice", "command=dasd-path-reset", "EISDIR")
    assert me.call("query-version")


def test_path_verification_as_lscss_vpm_shows_it(start, short_tmp):
    tree = dasd_tree(short_tmp)
    with open(os.path.join(tree, "devices/css0/0.0.0007/vpm"), "w") as f:
        f.write("e0\n")  # 0.43 usable, not verified
    me = Client(sysfs(tree, "--poll-interval", "0", "--no-inotify", start=start).sock)
    due = {s["subchannel"]: s for s in me.call("query-path-verification")}
    assert due["0.0.0007"]["unverified"] == ["0.43"] and due["0.0.0007"]["vpm"] == 0xe0
    assert "0.0.0006" not in due
    assert by_devno(me, "0.0.1001")["needs-path-verification"] is True
    assert by_devno(me, "0.0.1000")["needs-path-verification"] is False


def test_the_dasd_fixture_description(start, short_tmp):
    """Tests/fixtures/sysfs/dasd.json (make_sysfs.py's `dasd` device extra): every mask kind,
    an FBA DASD, a 3390 bound to no DASD driver, and malformed files served as unknown."""
    tree = build_tree("dasd.json", short_tmp)
    me = Client(sysfs(tree, "--poll-interval", "0", "--no-inotify", start=start).sock)
    devices = {d["devno"]: d for d in me.call("query-dasd-paths")}
    assert sorted(devices) == ["0.0.1000", "0.0.1001", "0.0.1002", "0.0.1004"]
    assert [p["disabled-because"] for p in devices["0.0.1000"]["paths"]] == [
        [], ["ifcc-threshold"], ["miscabled"], ["cuir-quiesced"]]
    assert devices["0.0.1000"]["fc-security"] == "Inconsistent"
    assert devices["0.0.1001"]["paths"][0]["fc-security"] == "Encryption"
    assert devices["0.0.1002"]["driver"] == "dasd-fba" and devices["0.0.1002"]["hpf"] is False
    broken = devices["0.0.1004"]
    assert "paths" not in broken and "path-threshold" not in broken and broken["path-interval"] == 300
    assert len(broken["problems"]) == 2, broken["problems"]
    chpids = {c["chpid"]: c["dasd"] for c in me.call("query-chpids")}
    assert chpids["0.40"]["devices"] == 2 and chpids["0.40"]["unknown"] == 1
    assert chpids["0.42"]["miscabled"] == 1 and chpids["0.43"]["devices"] == 3


def test_metrics_per_chpid(start, short_tmp):
    """cssd_chpid_dasd_devices and cssd_chpid_dasd_paths{state} per chpid with DASDs behind it."""
    from harness.cssd import metrics_port
    from harness.prometheus import scrape_values
    tree = build_tree("dasd.json", short_tmp)
    srv = sysfs(tree, "--poll-interval", "0", "--no-inotify", "--metrics", "tcp:127.0.0.1:0", start=start)
    values = scrape_values(metrics_port(srv))
    assert values['cssd_chpid_dasd_devices{chpid="0.41"}'] == 2
    assert values['cssd_chpid_dasd_paths{chpid="0.41",state="ifcc-disabled"}'] == 1
    assert values['cssd_chpid_dasd_paths{chpid="0.40",state="unknown"}'] == 1
    assert values['cssd_chpid_dasd_paths{chpid="0.42",state="miscabled"}'] == 1
    assert values['cssd_chpid_dasd_paths{chpid="0.43",state="cuir-quiesced"}'] == 1
    assert values['cssd_chpid_dasd_paths{chpid="0.40",state="no-hpf"}'] == 1


def test_a_followed_kernel_log_file_survives_truncation_and_rotation(start, short_tmp):
    """--kernel-log FILE: after logrotate's copytruncate (truncated in place) or a rename and a
    new file, the new lines are acted on (both went silent: nothing read, nothing logged)."""
    tree = dasd_tree(short_tmp)
    log = os.path.join(short_tmp, "kern.log")
    with open(log, "w") as f:
        f.write("[    1.000000] boot\n" * 100)
    srv = sysfs(tree, "--poll-interval", "0", "--no-inotify", "--kernel-log", log, start=start)
    me = Client(srv.sock)

    def disable(mask, chpid, bit):
        device = os.path.join(tree, "devices/css0/0.0.0007/0.0.1001")
        with open(os.path.join(device, "path_masks"), "w") as f:
            f.write(mask + "\n")
        with open(log, "a") as f:
            f.write(f"[  99.000000] dasd-eckd 0.0.1001: Path {chpid} (pathmask {bit}) is disabled - "
                    "IFCC threshold exceeded\n")
        return wait_until(lambda: by_devno(me, "0.0.1001")["path-masks"] == mask or None, 60,
                          f"the IFCC line for {chpid} acted on")

    disable("d0 00 00 00 00 20", "0.42", "20")
    open(log, "w").close()  # copytruncate
    disable("b0 00 00 00 00 40", "0.41", "40")
    os.rename(log, log + ".1")
    open(log, "w").close()  # a new file by the same name
    disable("70 00 00 00 00 80", "0.40", "80")


def test_kernel_log_lines_are_counted_in_the_metrics(short_tmp, kmsg):
    """The watcher's counts reach /metrics (they were kept and never exported): every outcome
    from the start, then a garbled cio line and an acted-on one counted."""
    from harness.cssd import start_with_metrics
    from harness.prometheus import http_get

    tree = dasd_tree(short_tmp)
    path, writer = kmsg
    server = start_with_metrics(short_tmp, "--backend", f"linux-sysfs:{tree}", "--poll-interval", "0",
                                "--no-inotify", "--kernel-log", path)
    try:
        def lines():
            body = http_get(f"http://127.0.0.1:{server.extra['metrics_port']}/metrics")[2].decode()
            out = {}
            for line in body.splitlines():
                if line.startswith("cssd_kernel_log_lines_total{"):
                    outcome = line.split('outcome="')[1].split('"')[0]
                    out[outcome] = float(line.rsplit(" ", 1)[1])
            return out

        assert lines() == {"acted": 0, "ignored": 0, "garbled": 0, "too_long": 0, "lost": 0}
        w = writer()
        w.write("crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=3, anc=0, erc=4, rsid=-1\n")
        w.write("5,12,99,-;cio: Processing deconfigure for channel path 0.41\n")
        w.write("6,1,1,-;usb 1-1: new device\n")
        wait_until(lambda: lines() == {"acted": 1, "ignored": 1, "garbled": 1, "too_long": 0, "lost": 0} or None,
                   60, "the three lines counted")
        assert Client(server.sock).call("query-version")  # and the garbled one harmed nothing
    finally:
        server.stop()
