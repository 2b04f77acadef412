"""The chpid condition on linux-sysfs (API/linux-sysfs.md, "Channel-path condition"): Linux has
no attribute for it, so cssd derives it from what it reads and reports: a configured chpid that
no subchannel having it installed holds in its PAM is permanent-error. The event and the
metric agree, and the chpid's CHANNEL_PATH_CHANGED goes out once, when its condition changes,
however many readings find its subchannels' PAM bits cleared (each device still gets its own
SUBCHANNEL_PATHS_CHANGED)."""

from __future__ import annotations

import os
import time

from harness.cssd import metrics_port
from harness.net import wait_until
from harness.prometheus import scrape_values
from harness.qmp import Client
from harness.sysfs import sysfs, sysfs_tree

CHPID = "0.41"
OPERATIONAL = {"operational": 1, "temporary-error": 0, "permanent-error": 0}
PERMANENT = {"operational": 0, "temporary-error": 0, "permanent-error": 1}
#: The subchannels of lpar.json that have 0.41 installed.
MEMBERS_OF_41 = ["0.0.0006", "0.0.0007", "0.0.0008", "0.0.0009", "0.0.000c", "0.1.0000", "0.1.0001"]


def condition_series(port: int, chpid: str) -> dict:
    """state -> value of cssd_chpid_condition_state for `chpid`."""
    out = {}
    for key, value in scrape_values(port).items():
        if key.startswith("cssd_chpid_condition_state{") and f'chpid="{chpid}"' in key:
            out[key.split('state="')[1].split('"')[0]] = value
    return out


def set_pam_bit(tree: str, subchannel: str, chpid: str, on: bool) -> None:
    """What the channel subsystem does to a subchannel's PAM (and the kernel's copy of it in
    `pimpampom`), behind cssd's back: the slot is the chpid's position in `chpids`."""
    base = os.path.join(tree, "devices", "css0", subchannel)
    slot = open(os.path.join(base, "chpids")).read().split().index(chpid.split(".")[1])
    path = os.path.join(base, "pimpampom")
    pim, pam, pom = (int(x, 16) for x in open(path).read().split())
    bit = 0x80 >> slot
    pam = pam | bit if on else pam & ~bit
    with open(path, "w") as f:
        f.write(f"{pim:02x} {pam:02x} {pom:02x}\n")


def test_pam_cleared_everywhere_is_permanent_error_once_and_the_metric_agrees(start, short_tmp):
    tree = sysfs_tree(short_tmp)
    # Nothing names the subchannels: the sweep (all of them within 500 ms) finds each change.
    srv = sysfs(tree, "--poll-interval", "100", "--sweep-interval", "500", "--no-inotify",
                "--metrics", "tcp:127.0.0.1:0", start=start)
    port = metrics_port(srv)
    c = Client(srv.sock)
    members = [s["subchannel"] for s in c.call("query-subchannels", chpid=CHPID, limit=1000)["subchannels"]]
    assert members == MEMBERS_OF_41
    assert condition_series(port, CHPID)["operational"] == 1
    c.call("subscribe-path-events", granularity="both", chpids=[CHPID])
    # One device after the other loses the path, each found by its own reading: the devices'
    # events, and nothing for the chpid, which the others still use.
    for sch in members[:-1]:
        set_pam_bit(tree, sch, CHPID, False)
        [event] = c.events(1)
        assert event["event"] == "SUBCHANNEL_PATHS_CHANGED", event
        assert (event["data"]["subchannel"], event["data"]["change"]) == (sch, "permanent-error"), event
        assert condition_series(port, CHPID) == OPERATIONAL
    # The last one: no subchannel has the chpid in its PAM any more. The chpid's event, once.
    set_pam_bit(tree, members[-1], CHPID, False)
    chpid_event, sch_event = c.events(2)
    assert chpid_event["event"] == "CHANNEL_PATH_CHANGED", chpid_event
    assert (chpid_event["data"]["chpid"], chpid_event["data"]["change"]) == (CHPID, "permanent-error")
    assert sch_event["data"]["subchannel"] == members[-1], sch_event
    wait_until(lambda: condition_series(port, CHPID) == PERMANENT, 10, "the metric saying permanent-error")
    # Sweeps go on reading the same masks (every 500 ms): nothing more is told.
    time.sleep(1.2)
    assert c.nothing_pending()
    # One device has the path back: the chpid recovered, told once; the metric follows.
    set_pam_bit(tree, members[0], CHPID, True)
    chpid_event, sch_event = c.events(2)
    assert (chpid_event["event"], chpid_event["data"]["change"]) == ("CHANNEL_PATH_CHANGED", "recovered"), chpid_event
    assert (sch_event["data"]["subchannel"], sch_event["data"]["change"]) == (members[0], "recovered"), sch_event
    wait_until(lambda: condition_series(port, CHPID) == OPERATIONAL, 10, "the metric saying operational")


def test_a_condition_read_at_start_and_a_standby_path_is_operational(start, short_tmp):
    tree = sysfs_tree(short_tmp)
    for sch in MEMBERS_OF_41:
        set_pam_bit(tree, sch, CHPID, False)
    srv = sysfs(tree, "--poll-interval", "100", "--metrics", "tcp:127.0.0.1:0", start=start)
    port = metrics_port(srv)
    c = Client(srv.sock)
    members = [s["subchannel"] for s in c.call("query-subchannels", chpid=CHPID, limit=1000)["subchannels"]]
    assert members == MEMBERS_OF_41
    assert condition_series(port, CHPID) == PERMANENT
    # 0.48 is in standby: configuration, not a fault, keeps it out of every PAM.
    assert condition_series(port, "0.48")["operational"] == 1
