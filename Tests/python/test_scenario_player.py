"""The scenario player in cssd (API/scenario.json, issue 26) over real sockets: exact replay
in model time on two fresh servers, pause/resume/stop in wall time with a stop reply that
says where it stopped, one scenario at a time, a restart with --state-dir after SIGKILL
mid-play (the model as the scenario left it, the scenario 'interrupted'), and cssctl
scenario play/watch/stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from harness.cssd import cssctl_binary, start_cssd
from harness.net import wait_until
from harness.qmp import Client

# On the embedded topology: switch A (0.40-0.43, 42 DASDs on all four) fails as one
# incident and comes back, one device loses a path of its own, a link flaps, and an
# operator varies a path with force.
REPLAY = {
    "scenario": "replay",
    "groups": {"switch-a": ["0.40", "0.41", "0.42", "0.43"]},
    "steps": [
        {"name": "dev", "at": 0, "execute": "inject-device-path-fault",
         "arguments": {"device": "0.0.2000", "chpid": "0.44", "fault": "permanent-error"}},
        {"name": "down", "at": 100, "execute": "inject-path-fault",
         "arguments": {"group": "switch-a", "fault": "permanent-error"}},
        {"name": "flap", "at": 200, "loop": {"count": 25, "period": 10, "steps": [
            {"name": "d", "at": 0, "execute": "inject-path-fault", "arguments": {"chpid": "0.45", "fault": "temporary-error"}},
            {"name": "u", "at": 5, "execute": "inject-path-fault", "arguments": {"chpid": "0.45", "fault": "recovered"}}]}},
        {"name": "vary", "at": 1000, "execute": "vary-path",
         "arguments": {"chpid": "0.46", "state": "offline", "force": True}},
        {"name": "up", "at": 2000, "execute": "inject-path-fault",
         "arguments": {"group": "switch-a", "fault": "recovered"}},
    ],
}


def flap(count: int, period: int, chpid: str = "0.40", clock: str = "wall") -> dict:
    return {"scenario": "flap", "clock": clock, "steps": [
        {"name": "f", "at": 0, "loop": {"count": count, "period": period, "steps": [
            {"name": "down", "at": 0, "execute": "inject-path-fault",
             "arguments": {"chpid": chpid, "fault": "permanent-error"}},
            {"name": "up", "at": period // 2, "execute": "inject-path-fault",
             "arguments": {"chpid": chpid, "fault": "recovered"}}]}}]}


def cssctl(sock: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`cssctl scenario ARGS... --socket SOCK` (the nested subcommands take it after them)."""
    return subprocess.run([cssctl_binary(), "scenario", *args, "--socket", sock], capture_output=True,
                          text=True, timeout=timeout)


def until_ended(client: Client) -> dict:
    """Waits for SCENARIO_ENDED, sent to every connection in command mode when a run ends,
    and checks that query-scenario says the same; its data."""
    event = client.events(1)[0]
    assert event["event"] == "SCENARIO_ENDED", event
    assert client.call("query-scenario") == event["data"], event
    return event["data"]


def events_until_ended(subscriber: Client) -> list:
    """A subscriber's events up to SCENARIO_ENDED, which is the last of the list."""
    events = []
    while not events or events[-1]["event"] != "SCENARIO_ENDED":
        events += subscriber.events(1)
    return events


def path_gone(client: Client) -> bool:
    """Whether 0.40 (slot 0 of the 42 DASDs on switch A) is out of their PAM (a permanent error)."""
    masks = {s["pam"] & 0x80 for s in client.call("query-subchannels", chpid="0.40")["subchannels"]}
    assert len(masks) == 1, masks
    return masks == {0}


def comparable(event: dict) -> dict:
    """An event without what may differ between two servers: its timestamp and epoch."""
    data = dict(event["data"])
    data.pop("epoch", None)
    data.pop("subscription", None)
    return {"event": event["event"], "data": data}


def test_the_same_scenario_gives_the_same_events_on_two_fresh_servers(short_tmp):
    runs = []
    for n in range(2):
        workdir = os.path.join(short_tmp, f"s{n}")
        os.mkdir(workdir)
        server = start_cssd(workdir)
        try:
            control = Client(server.sock)
            status = control.call("scenario-load", scenario=json.dumps(REPLAY))
            assert status == {"state": "loaded", "name": "replay", "played": 0, "total": 54}
            assert control.call("scenario-play", clock="model")["state"] in ("playing", "finished")
            done = until_ended(control)
            assert done["state"] == "finished" and done["played"] == 54 and done["last-step"] == "up", done
            journal = control.call("query-path-event-journal")
            newest = journal["newest"]
            # Every change from the first, as the journal keeps it: a resumed past is never
            # coalesced (a live subscriber that reads late may see a flapping chpid's events
            # merged, depending on when it read).
            watcher = Client(server.sock)
            watcher.call("subscribe-path-events", granularity="both",
                         since={"epoch": journal["epoch"], "sequence": 0})
            events = []

            def delivered():
                # Queued events are written before a reply: a query collects them.
                watcher.call("query-version", events=events)
                return any(e["data"].get("sequence") == newest for e in events)
            wait_until(delivered, 60, "the last change's events", interval=0.05)
            watcher.call("query-version", events=events)
            runs.append(([comparable(e) for e in events], newest))
        finally:
            server.stop()
    (first, newest_a), (second, newest_b) = runs
    assert newest_a == newest_b and newest_a >= 54
    sequences = sorted({e["data"]["sequence"] for e in first})
    assert sequences == list(range(1, newest_a + 1))
    kinds = {e["data"]["change"] for e in first}
    assert {"permanent-error", "temporary-error", "recovered", "offline"} <= kinds
    # Every event names the scenario and step that made its change, replayed from the journal
    # as live (the redundancy follow-ups name the step that caused them).
    assert {(e["data"]["scenario"]) for e in first} == {"replay"}
    assert {e["data"]["step"] for e in first} >= {"dev", "down", "flap#1/d", "flap#25/u", "vary", "up"}
    assert first == second


def test_pause_resume_stop_and_one_scenario_at_a_time(short_tmp):
    server = start_cssd(short_tmp)
    try:
        c = Client(server.sock)
        # 400 steps over 40 s of wall time: far from its end while the test runs.
        c.call("scenario-load", scenario=json.dumps(flap(200, 200)))
        assert c.call("scenario-play")["state"] == "playing"
        until_state_played = lambda n: wait_until(  # noqa: E731
            lambda: c.call("query-scenario")["played"] >= n, 60, f"{n} steps played", interval=0.05)
        until_state_played(2)
        refused = c.error("scenario-play")
        assert refused["class"] == "GenericError" and "already playing" in refused["desc"], refused
        assert "stop it" in c.error("scenario-load", scenario=json.dumps(flap(2, 10)))["desc"]

        paused = c.call("scenario-pause")
        assert paused["state"] == "paused"
        # Nothing plays while paused (a step is due every 100 ms).
        time.sleep(0.5)
        assert c.call("query-scenario")["played"] == paused["played"]
        assert c.call("scenario-resume")["state"] == "playing"
        until_state_played(paused["played"] + 1)

        stopped = c.call("scenario-stop")
        assert stopped["state"] == "stopped" and stopped["name"] == "flap" and stopped["total"] == 400
        # The reply first, then the event that the run ended, with the same status.
        assert until_ended(c) == stopped
        played = stopped["played"]
        assert played > paused["played"]
        assert stopped["last-step"] == f"f#{(played + 1) // 2}/{'down' if played % 2 else 'up'}"
        assert stopped["next-step"] == f"f#{played // 2 + 1}/{'up' if played % 2 else 'down'}"
        # The model is as the steps played left it: after a 'down' the path is gone.
        assert path_gone(c) == (played % 2 == 1)
        # Stopped stays stopped: nothing more is played.
        assert c.call("query-scenario") == stopped
        assert c.error("scenario-stop")["class"] == "GenericError"
    finally:
        server.stop()


@pytest.mark.parametrize("stop", ["SIGKILL", "SIGTERM"])
def test_a_restart_after_a_stop_mid_play_says_the_scenario_was_interrupted(short_tmp, stop):
    """A crash, or a clean stop (whose snapshot folds the steps' records: a marker after it
    tells the next start), mid-play: the model as the scenario left it, and 'interrupted'."""
    state = os.path.join(short_tmp, "state")
    server = start_cssd(short_tmp, "--state-dir", state)
    c = Client(server.sock)
    c.call("scenario-load", scenario=json.dumps(flap(500, 100)))
    c.call("scenario-play")
    wait_until(lambda: c.call("query-scenario")["played"] >= 7, 60, "7 steps played", interval=0.05)
    if stop == "SIGKILL":
        os.killpg(server.proc.pid, signal.SIGKILL)
    else:
        server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=30)
    c.close()

    server = start_cssd(short_tmp, "--state-dir", state)
    try:
        c = Client(server.sock)
        status = c.call("query-scenario")
        assert status["state"] == "interrupted" and status["name"] == "flap" and status["total"] == 1000, status
        played = status["played"]
        assert 1 <= played < 1000
        assert status["last-step"] == f"f#{(played + 1) // 2}/{'down' if played % 2 else 'up'}"
        assert path_gone(c) == (played % 2 == 1), status
        server.wait_line("scenario 'flap' was interrupted", f"{played} of 1000 steps played", timeout=30)
        # A new scenario may be loaded and played over it.
        c.call("scenario-load", scenario=json.dumps(flap(1, 10, clock="model")))
        c.call("scenario-play")
        assert until_ended(c)["state"] == "finished"
    finally:
        server.stop()


def test_cssctl_scenario_play_watch_and_stop(short_tmp):
    server = start_cssd(short_tmp)
    try:
        path = os.path.join(short_tmp, "flap.json")
        with open(path, "w") as f:
            json.dump(flap(3, 20, clock="model"), f)
        p = cssctl(server.sock, "play", path, "--watch", timeout=120)
        assert p.returncode == 0, p.stderr
        lines = p.stdout.splitlines()
        assert lines[-1] == "flap: finished, 6/6 steps (model time), last f#3/up", p.stdout
        # Its events as they came (a flapping chpid's unread events coalesce into the newest).
        assert "event 6 CHANNEL_PATH_CHANGED 0.40 recovered" in lines, p.stdout

        bad = os.path.join(short_tmp, "bad.json")
        with open(bad, "w") as f:
            f.write('{"scenario": "x", "steps": [\n {"at": 0, "execute": "inject-path-fault",'
                    ' "arguments": {"chpid": "0.77", "fault": "recovered"}}]}\n')
        p = cssctl(server.sock, "play", bad)
        assert p.returncode == 1
        assert p.stderr.strip().startswith(f"{bad}:2:") and "0.77" in p.stderr, p.stderr

        with open(path, "w") as f:
            json.dump(flap(500, 200), f)
        p = cssctl(server.sock, "play", path)
        assert p.returncode == 0 and p.stdout.startswith("flap: playing, 0/1000 steps (wall time)"), p
        watcher = subprocess.Popen([cssctl_binary(), "scenario", "watch", "--socket", server.sock],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: Client(server.sock).call("query-scenario")["played"] >= 2, 60, "2 steps",
                       interval=0.05)
            p = cssctl(server.sock, "stop")
            assert p.returncode == 0 and p.stdout.startswith("flap: stopped, "), p
            out, err = watcher.communicate(timeout=60)
            assert watcher.returncode == 0, err
            assert out.splitlines()[-1].startswith("flap: stopped, "), out
        finally:
            if watcher.poll() is None:
                watcher.kill()
                watcher.wait()
    finally:
        server.stop()


def test_metrics_count_scenario_changes_under_a_fixed_label(short_tmp):
    from harness.cssd import start_with_metrics
    from harness.prometheus import scrape_values

    server = start_with_metrics(short_tmp)
    try:
        c = Client(server.sock)
        c.call("scenario-load", scenario=json.dumps(flap(3, 20, clock="model")))
        c.call("scenario-play")
        assert until_ended(c)["state"] == "finished"
        port = server.extra["metrics_port"]
        values = wait_until(
            lambda: (v := scrape_values(port)).get(
                'cssd_path_changes_total{change="recovered",cause="scenario"}') == 3.0 and v,
            20, "the scenario's changes counted")
        assert values['cssd_path_changes_total{change="permanent-error",cause="scenario"}'] == 3.0
        # The scenario's and steps' names never become labels.
        assert not [key for key in values if "flap" in key], [key for key in values if "flap" in key]
    finally:
        server.stop()


def test_device_and_control_unit_steps_play_and_survive_a_sigkill(short_tmp):
    """A device added and one removed, a control unit quiescing and resuming its paths: played
    by the server with their events (subchannel-added/-removed, driver-disabled-cuir,
    driver-enabled), recorded with --state-dir as the commands that make them
    (add-device, remove-device, inject-dasd-path-fault), so a SIGKILL keeps what they did."""
    topology = os.path.join(os.path.dirname(__file__), "..", "..", "API", "examples", "topology.json")
    scenario = {"scenario": "devices", "steps": [
        {"name": "add", "at": 0, "execute": "add-device", "arguments": {
            "device": "0.0.4710", "subchannel": "0.0.0010", "chpids": ["0.40", "0.44"],
            "dev-type": "3390/0c", "cu-type": "3990/e9"}},
        {"name": "quiesce", "at": 10, "execute": "quiesce-control-unit",
         "arguments": {"chpids": ["0.40"], "devices": ["0.0.4700", "0.0.4701"]}},
        {"name": "remove", "at": 20, "execute": "remove-device", "arguments": {"device": "0.0.4703"}},
        {"name": "resume", "at": 30, "execute": "resume-control-unit",
         "arguments": {"chpids": ["0.40"], "devices": ["0.0.4701"]}},
    ]}
    args = ["--topology", topology, "--state-dir", os.path.join(short_tmp, "state")]
    server = start_cssd(short_tmp, *args)
    try:
        control = Client(server.sock)
        watcher = Client(server.sock)
        watcher.call("subscribe-path-events", granularity="both")
        control.call("scenario-load", scenario=json.dumps(scenario))
        control.call("scenario-play", clock="model")
        done = until_ended(control)
        assert done["state"] == "finished" and done["played"] == 4, done
        # Two chpids added, two devices quiesced on one, four chpids of the removed device, one
        # resumed: nine changes, durable (the journal's newest counts durable ones) once the
        # run's end is announced.
        newest = 9
        assert control.call("query-path-event-journal")["newest"] == newest
        # The subscriber has every change's events before the end (sent to it too).
        events = events_until_ended(watcher)
        assert events.pop()["data"] == done
        assert events[-1]["data"]["sequence"] == newest, events[-1]
        changes = [e["data"]["change"] for e in events]
        assert {(e["data"]["scenario"], e["data"]["step"]) for e in events} == {
            ("devices", "add"), ("devices", "quiesce"), ("devices", "remove"), ("devices", "resume")}
        for kind in ("subchannel-added", "driver-disabled-cuir", "subchannel-removed", "driver-enabled"):
            assert kind in changes, changes
        before = (control.call("query-subchannels"), control.call("query-dasd-paths"))
        devnos = [s["devno"] for s in before[0]["subchannels"]]
        assert "0.0.4710" in devnos and "0.0.4703" not in devnos
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        server = start_cssd(short_tmp, *args)
        after = Client(server.sock)
        assert (after.call("query-subchannels"), after.call("query-dasd-paths")) == before
        journal = after.call("query-path-event-journal")
        assert journal["newest"] == newest
        assert after.call("query-scenario")["state"] != "interrupted"
        # The changes the restart made again from the recorded steps keep their cause: a
        # subscriber resuming from the start sees the scenario and step of each, as live.
        after.call("subscribe-path-events", granularity="chpid", since={"epoch": journal["epoch"], "sequence": 0})
        resumed = after.events(newest)
        assert [e["data"]["sequence"] for e in resumed] == list(range(1, newest + 1)), resumed
        steps = {"subchannel-added": "add", "driver-disabled-cuir": "quiesce", "subchannel-removed": "remove",
                 "driver-enabled": "resume"}
        assert [(e["data"]["scenario"], e["data"]["step"]) for e in resumed] == [
            ("devices", steps[e["data"]["change"]]) for e in resumed], resumed
    finally:
        server.stop()


def test_a_refused_step_ends_the_run_with_scenario_ended_failed(short_tmp):
    """An operator step the last-path interlock refuses stops the run: SCENARIO_ENDED 'failed'
    names the step and the reason, on every connection (a subscriber gets it after the
    events of the steps played); the model is as the steps before it left it."""
    scenario = {"scenario": "refused", "steps": [
        {"name": "three", "at": 0, "execute": "inject-path-fault",
         "arguments": {"chpids": ["0.40", "0.41", "0.42"], "fault": "permanent-error"}},
        {"name": "last", "at": 10, "execute": "vary-path", "arguments": {"chpid": "0.43", "state": "offline"}},
        {"name": "never", "at": 20, "execute": "inject-path-fault", "arguments": {"chpid": "0.40", "fault": "recovered"}},
    ]}
    server = start_cssd(short_tmp)
    try:
        control = Client(server.sock)
        watcher = Client(server.sock)
        watcher.call("subscribe-path-events", granularity="chpid")
        control.call("scenario-load", scenario=json.dumps(scenario))
        control.call("scenario-play", clock="model")
        ended = until_ended(control)
        assert ended["state"] == "failed" and ended["played"] == 1 and ended["total"] == 3, ended
        assert ended["last-step"] == "three" and ended["next-step"] == "last", ended
        assert ended["failure"].startswith("last: ") and "0.43" in ended["failure"], ended
        events = events_until_ended(watcher)
        assert events.pop()["data"] == ended
        # The step's three failures, and the follow-up of the third (one path left).
        assert [(e["data"]["chpid"], e["data"]["change"]) for e in events] == [
            ("0.40", "permanent-error"), ("0.41", "permanent-error"), ("0.42", "permanent-error"),
            ("0.42", "redundancy-lost")], events
        # 0.43 still online: the refused vary changed nothing.
        assert {s["pam"] & 0x10 for s in control.call("query-subchannels", chpid="0.43")["subchannels"]} == {0x10}
        server.wait_line("scenario 'refused' failed", "1 of 3 steps played", timeout=30)
    finally:
        server.stop()


def test_periodic_snapshots_keep_every_step_once_and_the_interrupted_notice(short_tmp):
    """--state-snapshot-every 1: a snapshot after every recorded command, so one falls inside a
    step of several records (a group of chpids: one record each) and after every step. A
    SIGKILL after the run, and one mid-play: the model, the journal's newest and the
    'interrupted' notice as without snapshots (a snapshot inside a step used to be followed by
    the rest of its records, replayed twice; one after the last step's record folded the
    record that told the restart how far the run got)."""
    state = os.path.join(short_tmp, "state")
    args = ["--state-dir", state, "--state-snapshot-every", "1"]
    server = start_cssd(short_tmp, *args)
    try:
        c = Client(server.sock)
        c.call("scenario-load", scenario=json.dumps(REPLAY))
        c.call("scenario-play", clock="model")
        assert until_ended(c)["state"] == "finished"
        before = (c.call("query-subchannels"), c.call("query-chpids"), c.call("query-path-event-journal")["newest"])
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=30)
        c.close()
        server = start_cssd(short_tmp, *args)
        c = Client(server.sock)
        assert (c.call("query-subchannels"), c.call("query-chpids"),
                c.call("query-path-event-journal")["newest"]) == before
        assert c.call("query-scenario")["state"] != "interrupted"

        c.call("scenario-load", scenario=json.dumps(flap(500, 100)))
        c.call("scenario-play")
        wait_until(lambda: c.call("query-scenario")["played"] >= 5, 60, "5 steps played", interval=0.05)
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=30)
        c.close()
        server = start_cssd(short_tmp, *args)
        c = Client(server.sock)
        status = c.call("query-scenario")
        assert status["state"] == "interrupted" and status["name"] == "flap", status
        played = status["played"]
        assert status["last-step"] == f"f#{(played + 1) // 2}/{'down' if played % 2 else 'up'}", status
        assert path_gone(c) == (played % 2 == 1), status
    finally:
        server.stop()


def test_scenario_ended_follows_every_path_event_of_a_large_run(short_tmp):
    """A run whose events are far more than one output chunk (64 KiB): SCENARIO_ENDED is
    written once every path event published before it is, for a subscriber that reads."""
    topology = os.path.join(short_tmp, "t.json")
    subprocess.run([cssctl_binary(), "gen-topology", "--subchannels", "4096", "--chpids", "8", "--paths", "4",
                    "--cssid", "0", "--output", topology], check=True, capture_output=True)
    server = start_cssd(short_tmp, "--topology", topology)
    try:
        control = Client(server.sock)
        chpid = control.call("query-chpids")[0]["chpid"]
        watcher = Client(server.sock)
        watcher.call("subscribe-path-events", granularity="subchannel")
        scenario = {"scenario": "big", "steps": [
            {"name": "down", "at": 0, "execute": "inject-path-fault",
             "arguments": {"chpid": chpid, "fault": "temporary-error"}},
            {"name": "up", "at": 10, "execute": "inject-path-fault",
             "arguments": {"chpid": chpid, "fault": "recovered"}}]}
        control.call("scenario-load", scenario=json.dumps(scenario))
        control.call("scenario-play", clock="model")
        assert until_ended(control)["state"] == "finished"
        newest = control.call("query-path-event-journal")["newest"]
        events = events_until_ended(watcher)
        # Each of the chpid's 2,048 subchannels (the up coalesced into its unread down), more
        # than one chunk of output, and nothing of the run after the end.
        sequences = {e["data"]["sequence"] for e in events[:-1]}
        assert newest in sequences and sequences <= set(range(1, newest + 1)), (sequences, newest)
        assert len({e["data"]["subchannel"] for e in events[:-1]}) == 2048, len(events)
        assert watcher.nothing_pending()
    finally:
        server.stop()
