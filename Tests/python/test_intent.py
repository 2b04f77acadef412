"""Intended chpid state and drift (API/intent.md, issue 22) over a real cssd on a fixture sysfs
tree with --state-dir: what vary-path and configure-chpid record, set-chpid-intent for a
chpid set elsewhere, drift after a simulated reboot (every chpid reads online again) reported
as events, in query-chpid-drift and in the metrics, reapply-chpid-intent through vary-path and
configure-chpid (audited), SIGKILL right after an acknowledged intent change, and the bad
input each command refuses."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from harness.cssd import start_cssd, start_with_metrics
from harness.prometheus import http_get
from harness.qmp import Client
from harness.sysfs import set_status, sysfs_tree


def chp_file(tree, chpid, name):
    return os.path.join(tree, "devices", "css0", f"chp{chpid}", name)


def read(path):
    with open(path, encoding="ascii") as f:
        return f.read().strip()


def write(path, text):
    with open(path, "w", encoding="ascii") as f:
        f.write(text + "\n")


def reboot(tree):
    """What a reboot does to the tree: every chpid is varied online again (chp_new() sets
    state 1); configure state is the machine's and stays."""
    css = os.path.join(tree, "devices", "css0")
    for name in os.listdir(css):
        if name.startswith("chp"):
            write(os.path.join(css, name, "status"), "online")


def drift_of(client, chpid):
    report = client.call("query-chpid-drift", chpids=[chpid])
    assert report["tracking"] is True, report
    [entry] = report["chpids"]
    return entry


def vary_of(client, chpid):
    return next(p["vary"] for p in client.call("query-chpids") if p["chpid"] == chpid)


def wait_for(predicate, what, guard=60.0):
    deadline = time.monotonic() + guard
    while not predicate():
        assert time.monotonic() < deadline, f"not within {guard} s: {what}"
        time.sleep(0.05)


class SysfsHost:
    """cssd on linux-sysfs over a fixture tree with a state dir in `tmp` (`starter` from
    harness.cssd), restartable on the same tree and state: stopped (SIGTERM, exit 0
    asserted) or killed (SIGKILL), with something done to the tree in between."""

    def __init__(self, tmp, starter=start_cssd):
        self.tmp, self.starter = tmp, starter
        self.tree = sysfs_tree(tmp)
        self.state = os.path.join(tmp, "state")
        self.server = None

    def start(self):
        self.server = self.starter(self.tmp, "--backend", f"linux-sysfs:{self.tree}", "--poll-interval", "100",
                                   "--state-dir", self.state)
        return Client(self.server.sock)

    def restart(self, kill=False, meanwhile=None):
        """A new connection to a new cssd on the same tree and state, after `meanwhile()`."""
        if kill:
            os.killpg(self.server.proc.pid, signal.SIGKILL)
            self.server.proc.wait()
        else:
            assert self.server.stop() == 0
        if meanwhile is not None:
            meanwhile()
        return self.start()

    def stop(self):
        if self.server is not None:
            self.server.stop()


@pytest.fixture
def host(short_tmp):
    h = SysfsHost(short_tmp)
    try:
        yield h
    finally:
        h.stop()


def test_drift_after_a_simulated_reboot_is_reported_then_reapplied(host):
    tree = host.tree
    c = host.start()
    watcher = Client(host.server.sock)
    watcher.call("subscribe-path-events", granularity="chpid")
    # Through cssd: recorded as intended (the field each command wrote).
    c.call("vary-path", chpid="0.40", state="offline")
    c.call("configure-chpid", chpid="0.41", state="standby")
    # Set elsewhere: 0.48 is standby in the fixture and meant to stay so, varied off too;
    # 0.42 is meant to be standby but is configured: drift at once.
    info = c.call("set-chpid-intent", chpid="0.48", configure="standby", vary="offline")
    assert info["drifted"] is False, info  # kept in standby deliberately: its vary is moot
    info = c.call("set-chpid-intent", chpid="0.42", configure="standby")
    assert (info["drifted"], info["configure-drifted"], info["configure"]) == (True, True, "configured"), info
    # The drift is an observed change, committed after the reply: the journal's newest counts
    # it once it is durable, as the subscriber gets it (live events wait for durability too).
    while not [e for e in watcher.events(1) if e["data"]["change"] == "drift"]:
        pass
    watcher.close()
    epoch = c.call("query-path-event-journal")["epoch"]
    before_stop = c.call("query-path-event-journal")["newest"]
    c = host.restart(meanwhile=lambda: reboot(tree))
    log = host.server.log_tail(20000)
    assert "intended chpid state: chpids drifted" in log and "drifted=2" in log, log
    report = c.call("query-chpid-drift")
    assert report["tracking"] is True and report["drifted"] == 2, report
    by_chpid = {entry["chpid"]: entry for entry in report["chpids"]}
    assert set(by_chpid) == {"0.40", "0.41", "0.42", "0.48"}
    assert by_chpid["0.40"] == {
        "chpid": "0.40", "intended-vary": "offline", "present": True, "vary": "online",
        "configure": "configured", "vary-drifted": True, "configure-drifted": False, "drifted": True}
    assert by_chpid["0.41"]["drifted"] is False  # configure persists at machine level
    assert by_chpid["0.42"]["configure-drifted"] is True
    assert by_chpid["0.48"]["drifted"] is False, by_chpid["0.48"]
    # Published at start, after what changed while down: 0.40 (and 0.48) read online again
    # (observed), then a drift event per drifted chpid, journaled for a resuming subscriber.
    newest = c.call("query-path-event-journal")["newest"]
    c.call("subscribe-path-events", since={"epoch": epoch, "sequence": before_stop})
    events = c.events(newest - before_stop)
    drift = [(e["data"]["chpid"], e["data"]["vary"]) for e in events if e["data"]["change"] == "drift"]
    assert drift == [("0.40", "online"), ("0.42", "online")], events
    observed = [e["data"]["chpid"] for e in events if e["data"]["change"] == "online"]
    assert "0.40" in observed, events
    c.close()  # the rest on a connection without a subscription
    c = Client(host.server.sock)
    # Reapply: one write, through vary-path (the file is written), then no drift left.
    reply = c.call("reapply-chpid-intent", chpid="0.40")
    assert (reply["vary"], reply["drift"]["drifted"]) == ("offline", False), reply
    assert read(chp_file(tree, "0.40", "status")) == "offline"
    reply = c.call("reapply-chpid-intent", chpid="0.42")
    assert (reply["configure"], reply["drift"]["drifted"]) == ("standby", False), reply
    assert read(chp_file(tree, "0.42", "configure")) == "0"
    # Nothing to do now: nothing written, the reply says so.
    reply = c.call("reapply-chpid-intent", chpid="0.40")
    assert "vary" not in reply and reply["changed"] == 0 and reply["drift"]["drifted"] is False, reply
    assert c.call("query-chpid-drift")["drifted"] == 0
    # Audited: the command, its arguments and its outcome.
    audit = [line for line in host.server.log_tail(20000).splitlines() if "command=reapply-chpid-intent" in line]
    assert any("0.40" in line and "outcome=ok" in line for line in audit), audit


def test_drift_while_running_is_published_once_and_cleared_intent_stops_it(host):
    tree = host.tree
    c = host.start()
    c.call("vary-path", chpid="0.43", state="offline")
    c.call("subscribe-path-events", chpids=["0.43"])
    set_status(tree, "0.43", "online")  # someone's chchp -v 1, behind cssd's back
    observed, drift = c.events(2)
    assert observed["data"]["change"] == "online" and drift["data"]["change"] == "drift", (observed, drift)
    assert drift_of(c, "0.43")["vary-drifted"] is True
    # Another reading that changes nothing about 0.43 publishes no second drift event.
    set_status(tree, "0.44", "offline")
    wait_for(lambda: vary_of(c, "0.44") == "offline", "0.44 read offline")
    assert c.nothing_pending()
    c.call("clear-chpid-intent", chpid="0.43")
    assert c.call("query-chpid-drift", chpids=["0.43"])["chpids"] == []
    set_status(tree, "0.43", "offline")
    [event] = c.events(1)
    assert event["data"]["change"] == "offline"  # and no drift: nothing is intended now
    assert c.nothing_pending()


@pytest.mark.parametrize("command", ["set-chpid-intent", "vary-path"])
def test_sigkill_right_after_an_acknowledged_intent_change_keeps_it(host, command):
    c = host.start()
    if command == "vary-path":
        c.call("vary-path", chpid="0.45", state="offline")
    else:
        c.call("set-chpid-intent", chpid="0.45", vary="offline")
    c = host.restart(kill=True)  # at once after the reply: it was durable before it was sent
    entry = drift_of(c, "0.45")
    assert entry["intended-vary"] == "offline", entry
    assert entry["drifted"] is (command == "set-chpid-intent"), entry


def test_an_unknown_configure_state_is_no_drift(host):
    """A KVM guest's `configure` read fails (EOPNOTSUPP; an empty file here): unknown, so an
    intended configure state neither drifts nor is rewritten."""
    write(chp_file(host.tree, "0.46", "configure"), "")
    c = host.start()
    info = c.call("set-chpid-intent", chpid="0.46", configure="standby")
    assert "configure" not in info and info["drifted"] is False, info
    reply = c.call("reapply-chpid-intent", chpid="0.46")
    assert "configure" not in reply and reply["changed"] == 0, reply
    assert read(chp_file(host.tree, "0.46", "configure")) == ""


def test_drift_metrics(host):
    host.starter = start_with_metrics
    c = host.start()
    server = host.server
    c.call("set-chpid-intent", chpid="0.47", vary="offline")
    c.call("set-chpid-intent", chpid="0.4a", vary="online")
    status, _, body = http_get(f"http://127.0.0.1:{server.extra['metrics_port']}/metrics")
    text = body.decode()
    assert status == 200
    assert 'cssd_chpid_intent_drift{chpid="0.47",field="vary"} 1' in text, text
    assert 'cssd_chpid_intent_drift{chpid="0.4a",field="vary"} 0' in text
    assert 'cssd_chpid_intent_drift{chpid="0.47",field="absent"} 0' in text
    assert re.search(r"^cssd_chpid_intent_drifted 1(\.0)?$", text, re.M), text
    c.call("clear-chpid-intent", chpid="0.47")
    text = http_get(f"http://127.0.0.1:{server.extra['metrics_port']}/metrics")[2].decode()
    assert 'chpid="0.47",field=' not in text
    assert re.search(r"^cssd_chpid_intent_drifted 0(\.0)?$", text, re.M), text


def test_bad_input_gets_clear_errors_and_the_connection_survives(host):
    c = host.start()
    error = c.error("set-chpid-intent", chpid="0.99", vary="offline")
    assert error == {"class": "DeviceNotFound", "desc": "channel path 0.99 does not exist"}, error
    error = c.error("reapply-chpid-intent", chpid="0.99")
    assert error["class"] == "DeviceNotFound", error
    error = c.error("set-chpid-intent", chpid="0.40")
    assert error["class"] == "GenericError" and "needs 'vary' or 'configure'" in error["desc"], error
    error = c.error("set-chpid-intent", chpid="0.40", configure="not-recognized")
    assert error["class"] == "GenericError" and "not-recognized" in error["desc"], error
    error = c.error("set-chpid-intent", chpid="0.40", vary=1)
    assert error["class"] == "GenericError" and "vary" in error["desc"], error
    error = c.error("set-chpid-intent", chpid="0.4g", vary="online")
    assert error["class"] == "GenericError" and "0.4g" in error["desc"], error
    assert c.call("query-chpid-drift") == {"tracking": True, "drifted": 0, "chpids": []}


@pytest.mark.parametrize("backend", ["model", "linux-sysfs without --state-dir"])
def test_where_intent_is_not_kept_the_commands_say_why(short_tmp, backend):
    args = [] if backend == "model" else ["--backend", f"linux-sysfs:{sysfs_tree(short_tmp)}"]
    server = start_cssd(short_tmp, *args)
    try:
        c = Client(server.sock)
        report = c.call("query-chpid-drift")
        assert report["tracking"] is False and report["chpids"] == [], report
        reason = "cannot drift" if backend == "model" else "only with --state-dir"
        assert reason in report["reason"], report
        for command in ("set-chpid-intent", "reapply-chpid-intent", "clear-chpid-intent"):
            arguments = {"chpid": "0.40", **({"vary": "online"} if command == "set-chpid-intent" else {})}
            error = c.error(command, **arguments)
            assert error["class"] == "GenericError" and reason in error["desc"], error
    finally:
        server.stop()
