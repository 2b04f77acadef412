"""Resume and state over real sockets: epoch and sequence on every path event, the journal
(subscribe-path-events 'since', PATH_EVENTS_GAP, query-path-event-journal), and --state-dir
(SIGKILL in the middle of a stream of changes, restart, nothing acknowledged lost; corrupt,
foreign and read-only state dirs refused, untouched)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from harness.clients import PATH_EVENTS
from harness.cssd import cssctl_binary, cssd_binary, refused, start_cssd
from harness.net import wait_until
from harness.paths import fill_filesystem
from harness.qmp import Client, data_without_subscription, vary, visible_state
from harness.sysfs import set_status, sysfs_tree


def wait_for_changes_after(client, sequence, count=20, guard=120.0):
    """The journal's newest sequence once `count` changes were published after `sequence` (a
    writer runs beside): an outcome to wait for, not a guess of how fast the machine varies."""
    deadline = time.monotonic() + guard
    while True:
        newest = client.call("query-path-event-journal")["newest"]
        if newest >= sequence + count:
            return newest
        assert time.monotonic() < deadline, f"no {count} changes after {sequence} within {guard} s: {newest}"
        time.sleep(0.05)


@pytest.fixture
def servers(short_tmp):
    started = []

    def make(*args, workdir=short_tmp):
        server = start_cssd(workdir, *args)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def test_every_event_of_a_change_carries_its_sequence(servers):
    server = servers()
    sub, writer = Client(server.sock), Client(server.sock)
    sub.call("subscribe-path-events", granularity="both")
    journal = writer.call("query-path-event-journal")
    assert journal["newest"] == 0 and "oldest" not in journal and journal["held"] == 0
    vary(writer, "0.40", "offline")
    vary(writer, "0.41", "offline")
    events = sub.events(2 * 43)
    assert {e["data"]["epoch"] for e in events} == {journal["epoch"]}
    assert [e["data"]["sequence"] for e in events] == [1] * 43 + [2] * 43
    assert list(events[0]["data"])[-2:] == ["epoch", "sequence"]
    after = writer.call("query-path-event-journal")
    assert (after["epoch"], after["oldest"], after["newest"], after["held"]) == (journal["epoch"], 1, 2, 2)


def test_resume_while_a_writer_keeps_varying_no_gap_no_duplicate(servers):
    server = servers("--event-journal", "100000")
    stop = threading.Event()
    failures = []

    def writer():
        try:
            c = Client(server.sock)
            i = 0
            while not stop.is_set():
                # Forced: the fourth of 0.40-0.43 takes the last path of 42 DASDs in use (the interlock).
                vary(c, f"0.4{i % 4}", "offline" if (i // 4) % 2 == 0 else "online", force=True)
                i += 1
            c.close()
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    first = Client(server.sock)
    first.call("subscribe-path-events")
    thread = threading.Thread(target=writer)
    thread.start()
    seen = first.events(50)
    position = seen[-1]["data"]
    first.close()  # the subscriber goes away while the writer goes on
    control = Client(server.sock)
    wait_for_changes_after(control, position["sequence"])  # changes it missed
    second = Client(server.sock)
    sid = second.call("subscribe-path-events",
                      since={"epoch": position["epoch"], "sequence": position["sequence"]})["subscription"]
    wait_for_changes_after(control, control.call("query-path-event-journal")["newest"])  # and live ones
    stop.set()
    thread.join()
    assert not failures, failures
    newest = Client(server.sock).call("query-path-event-journal")["newest"]
    got = []
    while not got or got[-1] < newest:
        got.append(second.events(1)[0]["data"]["sequence"])
    [info] = second.call("query-path-event-subscriptions")
    assert info["subscription"] == sid and info["dropped"] == 0
    # Strictly increasing (order kept, no duplicate), all after the position, up to the newest;
    # a change not delivered was replaced by a newer one of the same chpid while unread
    # (counted as coalesced), and never one of the replayed past.
    assert got == sorted(set(got)) and got[0] > position["sequence"] and got[-1] == newest
    assert len(got) + info["coalesced"] == newest - position["sequence"] == info["published"]
    assert got[0] == position["sequence"] + 1


def test_position_older_than_the_journal_and_foreign_epoch_report_a_gap(servers):
    server = servers("--event-journal", "5")
    writer, sub = Client(server.sock), Client(server.sock)
    # 0.44-0.47: the 8 DASDs on 0.44-0.4b keep four paths, so each vary is exactly one change
    # (no redundancy-lost change after it).
    for i in range(12):
        vary(writer, f"0.4{4 + i % 4}", "offline" if (i // 4) % 2 == 0 else "online")
    journal = writer.call("query-path-event-journal")
    assert (journal["oldest"], journal["newest"], journal["held"], journal["capacity"]) == (8, 12, 5, 5)
    epoch = journal["epoch"]
    sub.call("subscribe-path-events", since={"epoch": epoch, "sequence": 2})
    events = sub.events(6)
    gap = events[0]
    assert gap["event"] == "PATH_EVENTS_GAP"
    assert {k: v for k, v in gap["data"].items() if k != "subscription"} == {
        "reason": "journal", "first": 3, "last": 7, "epoch": epoch, "sequence": 2}
    assert [e["data"]["sequence"] for e in events[1:]] == [8, 9, 10, 11, 12]
    assert sub.nothing_pending()

    foreign = Client(server.sock)
    foreign.call("subscribe-path-events", since={"epoch": "feedfeedfeedfeed", "sequence": 3})
    [gap] = foreign.events(1)
    assert gap["event"] == "PATH_EVENTS_GAP"
    assert {k: v for k, v in gap["data"].items() if k != "subscription"} == {
        "reason": "epoch", "first": 1, "last": 12, "epoch": epoch, "sequence": 12}
    assert foreign.nothing_pending()
    vary(writer, "0.48", "offline")
    assert foreign.events(1)[0]["data"]["sequence"] == 13

    # Exactly at the newest: nothing to replay, no gap; ahead of it: refused.
    current = Client(server.sock)
    current.call("subscribe-path-events", since={"epoch": epoch, "sequence": 13})
    assert current.nothing_pending()
    error = current.error("subscribe-path-events", since={"epoch": epoch, "sequence": 14})
    assert error["class"] == "GenericError" and "newest change of that epoch is 13" in error["desc"]
    assert current.error("subscribe-path-events", since={"epoch": epoch})["class"] == "GenericError"


def drain(client):
    """The events queued for `client`: the server writes them before a query's reply."""
    events = []
    client.send("query-version")
    client.reply(events)
    return events


@pytest.mark.parametrize("granularity", ["chpid", "subchannel", "both", "guest"])
def test_since_replays_with_the_subscriptions_own_filters_and_granularity(servers, granularity):
    server = servers()
    writer = Client(server.sock)
    filters = {"granularity": granularity}
    if granularity != "guest":
        filters["chpids"] = ["0.40", "0.44"]
        filters["changes"] = ["offline", "standby"]
    live = Client(server.sock)
    live.call("subscribe-path-events", **filters)
    vary(writer, "0.40", "offline")  # before the position
    assert drain(live) or granularity == "guest"
    position = writer.call("query-path-event-journal")
    seen = []
    for change in (lambda: vary(writer, "0.40", "online"), lambda: vary(writer, "0.41", "offline"),
                   lambda: writer.call("configure-chpid", chpid="0.44", state="standby"),
                   lambda: vary(writer, "0.44", "offline"), lambda: vary(writer, "0.40", "offline"),
                   lambda: writer.call("inject-path-fault", chpid="0.43", fault="temporary-error")):
        change()
        seen += drain(live)  # read after each change: nothing coalesced
    resumed = Client(server.sock)
    resumed.call("subscribe-path-events", since={"epoch": position["epoch"], "sequence": position["newest"]},
                 **filters)
    got = drain(resumed)
    assert [data_without_subscription(e) for e in got] == [data_without_subscription(e) for e in seen]
    sequences = [e["data"]["sequence"] for e in got]
    assert sequences == sorted(sequences) and all(s > position["newest"] for s in sequences)
    if granularity != "guest":
        assert got
        assert {e["data"]["chpid"] for e in got} == {"0.40", "0.44"}
        assert {e["data"]["change"] for e in got} == {"offline", "standby"}
        assert {e["event"] for e in got} == {
            "chpid": {"CHANNEL_PATH_CHANGED"}, "subchannel": {"SUBCHANNEL_PATHS_CHANGED"},
            "both": {"CHANNEL_PATH_CHANGED", "SUBCHANNEL_PATHS_CHANGED"}}[granularity]
    else:
        assert {e["event"] for e in got} <= {"GUEST_PATH_CHANGED"}


def test_sigkill_in_a_stream_of_changes_then_restart_loses_nothing_acknowledged(short_tmp):
    state = os.path.join(short_tmp, "state")
    args = ["--state-dir", state, "--event-journal", "1000000"]
    server = start_cssd(short_tmp, *args)
    try:
        acked = {}  # chpid -> number of varies whose reply came
        stop = threading.Event()

        def writer(chpid):
            c = Client(server.sock)
            n = 0
            try:
                while not stop.is_set():
                    vary(c, chpid, "offline" if n % 2 == 0 else "online")
                    n += 1
                    acked[chpid] = n
            except Exception:  # noqa: BLE001 - the server was killed under us
                pass

        sub = Client(server.sock)
        epoch = sub.call("query-path-event-journal")["epoch"]
        sub.call("subscribe-path-events")
        # 0.44-0.46: the DASDs on 0.44-0.4b keep five paths, so every vary is one change (no
        # redundancy-lost change: the counts below are per command).
        threads = [threading.Thread(target=writer, args=(f"0.4{4 + i}",)) for i in range(3)]
        for t in threads:
            t.start()
        before = sub.events(40)
        time.sleep(0.5)
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        stop.set()
        for t in threads:
            t.join()
        # What the subscriber got before the kill, to the end of the stream.
        try:
            while True:
                line = sub.file.readline()
                if not line:
                    break
                message = __import__("json").loads(line)
                if "event" in message:
                    before.append(message)
        except OSError:
            pass
        seen = [e["data"]["sequence"] for e in before]
        assert seen == sorted(set(seen))

        server = start_cssd(short_tmp, *args)
        log = server.log_tail()
        assert "state restored" in log and f"epoch={epoch}" in log
        c = Client(server.sock)
        journal = c.call("query-path-event-journal")
        assert journal["epoch"] == epoch and journal["oldest"] == 1
        total = sum(acked.values())
        assert total >= 40 // 1 - 3 or total > 0
        # Every acknowledged change is there (and at most one more per writer: its request was
        # in flight); no event a subscriber saw names a change that was lost.
        assert total <= journal["newest"] <= total + 3
        assert seen[-1] <= journal["newest"]
        replay = Client(server.sock)
        replay.call("subscribe-path-events", since={"epoch": epoch, "sequence": 0})
        history = replay.events(journal["newest"])
        per_chpid = {}
        for e in history:
            per_chpid[e["data"]["chpid"]] = per_chpid.get(e["data"]["chpid"], 0) + 1
        for chpid, n in acked.items():
            assert n <= per_chpid.get(chpid, 0) <= n + 1
        by_sequence = {e["data"]["sequence"]: e["data"] for e in history}
        for e in before:
            old, new = dict(e["data"]), dict(by_sequence[e["data"]["sequence"]])
            old.pop("subscription"), new.pop("subscription")
            assert old == new  # the same change under the same number
        # The state is the model's after those changes.
        chpids = {p["chpid"]: p["vary"] for p in c.call("query-chpids")}
        for chpid in acked:
            assert chpids[chpid] == ("offline" if per_chpid[chpid] % 2 == 1 else "online")
        # The subscriber resumes after the last change it saw and misses nothing; the sequence
        # continues.
        resumed = Client(server.sock)
        resumed.call("subscribe-path-events", since={"epoch": epoch, "sequence": seen[-1]})
        rest = [e["data"]["sequence"] for e in resumed.events(journal["newest"] - seen[-1])]
        assert rest == list(range(seen[-1] + 1, journal["newest"] + 1))
        vary(c, "0.47", "offline")
        [live] = resumed.events(1)
        assert (live["data"]["epoch"], live["data"]["sequence"]) == (epoch, journal["newest"] + 1)
    finally:
        server.stop()


def test_sigkill_under_pipelined_load_loses_no_acknowledged_change(short_tmp):
    """One connection keeps 64 vary-path requests in flight (group commit: replies of many
    changes wait for one commit): SIGKILL mid-stream; every change whose reply came survives,
    in order, and the state after restart is that of the changes that survived."""
    state = os.path.join(short_tmp, "state")
    args = ["--state-dir", state, "--event-journal", "1000000"]
    server = start_cssd(short_tmp, *args)
    try:
        writer = Client(server.sock)  # negotiated; read raw below
        sock = writer.sock
        epoch = Client(server.sock).call("query-path-event-journal")["epoch"]
        window, sent, acked, buf = 64, 0, 0, b""
        request = lambda n: json.dumps({"execute": "vary-path", "id": n, "arguments": {
            "chpid": "0.44", "state": "offline" if n % 2 else "online"}}).encode()
        killed = False
        try:
            while True:
                while sent - acked < window:
                    sent += 1
                    sock.sendall(request(sent))
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\r\n")
                for line in lines:
                    message = json.loads(line)
                    assert "return" in message and message["id"] == acked + 1, message
                    acked += 1
                if not killed and acked >= 200:
                    # Killed at a point of the stream, not after a guessed time: 200 replies in.
                    killed = True
                    os.killpg(server.proc.pid, signal.SIGKILL)
        except (ConnectionResetError, BrokenPipeError, OSError):
            pass
        server.proc.wait()
        assert acked >= 200

        server = start_cssd(short_tmp, *args)
        c = Client(server.sock)
        journal = c.call("query-path-event-journal")
        assert journal["epoch"] == epoch
        # Every acknowledged change is there; at most those sent after it were made too.
        assert acked <= journal["newest"] <= sent
        replay = Client(server.sock)
        replay.call("subscribe-path-events", since={"epoch": epoch, "sequence": 0})
        history = [e["data"] for e in replay.events(journal["newest"])]
        assert [d["sequence"] for d in history] == list(range(1, journal["newest"] + 1))
        assert {d["chpid"] for d in history} == {"0.44"}
        # Change n took 0.44 offline when n is odd: the state is the last surviving change's.
        chpids = {p["chpid"]: p["vary"] for p in c.call("query-chpids")}
        assert chpids["0.44"] == ("offline" if journal["newest"] % 2 else "online")
    finally:
        server.stop()


def test_guests_attachments_and_faults_survive_a_restart(short_tmp):
    state = os.path.join(short_tmp, "state")
    server = start_cssd(short_tmp, "--state-dir", state)
    try:
        c = Client(server.sock)
        guests = c.call("query-guests")
        name = guests[0]["name"]
        c.call("set-path-event-strategy", guest=name, strategy="per-device")
        page = c.call("query-guest-subchannels", guest=name)["subchannels"]
        passthrough = [s["subchannel"] for s in page if s["kind"] == "passthrough"]
        c.call("detach-passthrough", guest=name, guest_subchannel=passthrough[-1])
        c.call("inject-path-fault", chpid="0.41", fault="permanent-error")
        c.call("configure-chpid", chpid="0.42", state="standby")
        c.call("store-crw")  # one of the fault's CRWs taken: the queue's rest must come back
        before = (c.call("query-guests"), c.call("query-chpids"), c.call("query-subchannels"), c.call("query-css"))
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        server = start_cssd(short_tmp, "--state-dir", state)
        c = Client(server.sock)
        assert (c.call("query-guests"), c.call("query-chpids"), c.call("query-subchannels"), c.call("query-css")) == before
    finally:
        server.stop()


def test_guest_store_subchannel_survives_sigkill(short_tmp):
    """A guest's STSCH changes the guest (its device's view and counters: API/vfio.json marks it
    "changes": "guests"), so it is recorded: SIGKILL right after its reply loses nothing."""
    state = os.path.join(short_tmp, "state")
    server = start_cssd(short_tmp, "--state-dir", state)
    try:
        c = Client(server.sock)
        name = c.call("query-guests")[0]["name"]
        page = c.call("query-guest-subchannels", guest=name)["subchannels"]
        device = next(s for s in page if s["kind"] == "passthrough" and "0.40" in s["host-chpids"])

        def guest_view():
            return c.call("query-guest-subchannels", guest=name), c.call("query-path-event-stats", guest=name)

        vary(c, "0.40", "offline")  # the host changed under the guest, which has not looked yet
        unseen = guest_view()
        c.call("guest-store-subchannel", guest=name, subchannel=device["subchannel"])
        seen = guest_view()
        assert seen != unseen
        [stats] = seen[1]
        assert stats["guest-stsch"] == 1
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        server = start_cssd(short_tmp, "--state-dir", state)
        c = Client(server.sock)
        assert guest_view() == seen
    finally:
        server.stop()


def snapshot(directory):
    """The files of a state dir with their bytes; SQLite's shared-memory index (-shm), which any
    reader may touch, only by name."""
    out = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith("-shm"):
            out[name] = None
            continue
        with open(os.path.join(directory, name), "rb") as f:
            out[name] = f.read()
    return out


def unchanged(before, after):
    """`after` (a snapshot) is `before`, but for the empty write-ahead log and its index that
    the read-only check may leave beside a state.sqlite closed cleanly: no content."""
    after = dict(after)
    if "state.sqlite-wal" not in before and after.get("state.sqlite-wal") == b"":
        after.pop("state.sqlite-wal")
        after.pop("state.sqlite-shm", None)
    return after == before


def test_corrupt_state_dir_is_refused_and_left_alone(short_tmp):
    state = os.path.join(short_tmp, "state")
    os.mkdir(state)
    with open(os.path.join(state, "state.sqlite"), "wb") as f:
        f.write(b"this is not an SQLite database, but it is someone's file\n" * 100)
    before = snapshot(state)
    message = refused(short_tmp, "--state-dir", state)
    assert "refusing to start" in message and "not a cssd state database" in message
    assert snapshot(state) == before


def test_state_dir_of_another_topology_is_refused_and_left_alone(short_tmp):
    state = os.path.join(short_tmp, "state")
    server = start_cssd(short_tmp, "--state-dir", state)
    c = Client(server.sock)
    vary(c, "0.40", "offline")
    server.stop()
    topology = os.path.join(short_tmp, "other.json")
    subprocess.run([os.environ.get("CSSCTL_BIN", cssd_binary().replace("cssd", "cssctl")), "gen-topology",
                    "--subchannels", "16", "--chpids", "4", "--paths", "2", "--output", topology], check=True)
    before = snapshot(state)
    message = refused(short_tmp, "--state-dir", state, "--topology", topology)
    assert "another topology" in message
    assert unchanged(before, snapshot(state))


def test_read_only_state_dir_is_refused(short_tmp):
    state = os.path.join(short_tmp, "state")
    server = start_cssd(short_tmp, "--state-dir", state)
    server.stop()
    before = snapshot(state)
    if os.geteuid() == 0:
        # root writes through permission bits: make it a read-only mount instead.
        subprocess.run(["mount", "--bind", state, state], check=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", state], check=True)
    else:
        os.chmod(state, 0o555)
    try:
        message = refused(short_tmp, "--state-dir", state)
        assert "not writable" in message
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", state], check=True)
        else:
            os.chmod(state, 0o755)
    assert snapshot(state) == before


@pytest.mark.parametrize("client", ["cssctl", "python"])
def test_client_resume_file_survives_a_restart_of_either_side(short_tmp, client):
    state = os.path.join(short_tmp, "state")
    position_file = os.path.join(short_tmp, "position.json")
    server = start_cssd(short_tmp, "--state-dir", state)
    try:
        # The idle timeout is what marks a change complete (and ends the client): 3 s without an
        # event, far longer than the varies sent right after the client subscribed take.
        def watch():
            if client == "cssctl":
                argv = [cssctl_binary(), "events", "--socket", f"unix:{server.sock}", "--resume", position_file,
                        "--timeout", "3"]
            else:
                argv = [__import__("sys").executable, str(PATH_EVENTS), "-s", server.sock, "--resume", position_file,
                        "--timeout", "3"]
            return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def lines(p):
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            return out.splitlines()

        def position():
            with open(position_file) as f:
                return __import__("json").load(f)

        c = Client(server.sock)
        epoch = c.call("query-path-event-journal")["epoch"]
        p = watch()
        # Subscribed (an absent file: from now on); a Python client takes seconds to start on a
        # loaded machine, so wait for its word, not for a guess.
        assert p.stderr.readline().startswith("subscribed: ")
        for state_ in ("offline", "online", "offline"):
            vary(c, "0.40", state_)
        assert len(lines(p)) == 3
        assert position() == {"epoch": epoch, "sequence": 3}
        # The client is gone: two changes, then cssd is killed and restarted.
        vary(c, "0.41", "offline")
        vary(c, "0.41", "online")
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        server = start_cssd(short_tmp, "--state-dir", state)
        printed = lines(watch())
        assert len(printed) == 2 and all("0.41" in line for line in printed)
        if client == "cssctl":
            assert [__import__("json").loads(line)["data"]["sequence"] for line in printed] == [4, 5]
        assert position() == {"epoch": epoch, "sequence": 5}
        # Nothing new: nothing printed, the position stays.
        assert lines(watch()) == []
        assert position() == {"epoch": epoch, "sequence": 5}
    finally:
        server.stop()


@pytest.mark.parametrize("stop", ["SIGKILL", "SIGTERM"])
def test_linux_sysfs_journal_survives_a_restart_and_changes_made_while_down_are_published(short_tmp, stop):
    tree = sysfs_tree(short_tmp)
    state = os.path.join(short_tmp, "state")
    args = ["--backend", f"linux-sysfs:{tree}", "--poll-interval", "100", "--state-dir", state]
    server = start_cssd(short_tmp, *args)
    try:
        c = Client(server.sock)
        epoch = c.call("query-path-event-journal")["epoch"]
        c.call("subscribe-path-events", chpids=["0.40", "0.41"])
        set_status(tree, "0.40", "offline")
        [observed] = c.events(1)
        assert (observed["data"]["change"], observed["data"]["sequence"]) == ("offline", 1)
        c.call("vary-path", chpid="0.40", state="online")
        [own] = c.events(1)  # after the reply, once its number is durable
        assert (own["data"]["change"], own["data"]["sequence"]) == ("online", 2)
        if stop == "SIGKILL":
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait()
        else:
            assert server.stop() == 0
        set_status(tree, "0.41", "offline")  # while cssd is down
        server = start_cssd(short_tmp, *args)
        assert "host changed since the last recorded state" in server.log_tail()
        c = Client(server.sock)
        journal = c.call("query-path-event-journal")
        assert (journal["epoch"], journal["oldest"], journal["newest"], journal["held"]) == (epoch, 1, 3, 3)
        # A subscriber that had seen change 1 resumes across the restart with no gap: change 2
        # as it was sent before, then what changed while cssd was down, under a new number.
        c.call("subscribe-path-events", chpids=["0.40", "0.41"], since={"epoch": epoch, "sequence": 1})
        replayed, down = c.events(2)
        assert data_without_subscription(replayed) == data_without_subscription(own)
        assert down["event"] == "CHANNEL_PATH_CHANGED"
        assert (down["data"]["chpid"], down["data"]["change"], down["data"]["sequence"]) == ("0.41", "offline", 3)
        c.call("vary-path", chpid="0.40", state="offline")
        [event] = c.events(1)
        assert (event["data"]["epoch"], event["data"]["sequence"]) == (epoch, 4)
        # Nothing changed while down this time: nothing more is published at the next start.
        server.stop()
        server = start_cssd(short_tmp, *args)
        c = Client(server.sock)
        assert c.call("query-path-event-journal")["newest"] == 4
    finally:
        server.stop()


def state_rows(state, table):
    import sqlite3
    connection = sqlite3.connect(os.path.join(state, "state.sqlite"))
    try:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        connection.close()


def test_compaction_restores_the_same_state_and_truncates_the_log(short_tmp):
    state = os.path.join(short_tmp, "state")
    args = ["--state-dir", state, "--state-snapshot-every", "50", "--event-journal", "100"]
    server = start_cssd(short_tmp, *args)
    try:
        c = Client(server.sock)
        epoch = c.call("query-path-event-journal")["epoch"]
        name = c.call("query-guests")[0]["name"]
        c.call("set-path-event-strategy", guest=name, strategy="crw")
        for n in range(230):
            # Forced: the fourth of 0.40-0.43 takes the last path of 42 DASDs in use (the interlock).
            vary(c, f"0.4{n % 4}", "offline" if (n // 4) % 2 == 0 else "online", force=True)
            if n % 40 == 0:
                c.call("inject-path-fault", chpid="0.44", fault="temporary-error" if n % 80 == 0 else "recovered")
                c.call("store-crw")
                c.call("guest-store-crw", guest=name)
        before = visible_state(c)
        newest = before[-1]["newest"]
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        assert state_rows(state, "commands") < 50  # the log before the last snapshot is gone
        assert 100 <= state_rows(state, "journal") <= 100 + 64  # the newest --event-journal, trimmed in batches
        server = start_cssd(short_tmp, *args)
        log = server.log_tail()
        assert "state restored" in log and 'snapshot="commands 1-' in log
        c = Client(server.sock)
        assert visible_state(c) == before
        # A subscriber resumes across the restart from inside the journal: no gap.
        c.call("subscribe-path-events", since={"epoch": epoch, "sequence": newest - 30})
        assert [e["data"]["sequence"] for e in c.events(30)] == list(range(newest - 29, newest + 1))
        assert server.stop() == 0  # a clean stop writes a snapshot: nothing is left to replay
        assert state_rows(state, "commands") == 0
        server = start_cssd(short_tmp, *args)
        assert "commands=0" in server.log_tail()
        c = Client(server.sock)
        assert visible_state(c) == before
        vary(c, "0.45", "offline")
        assert c.call("query-path-event-journal")["newest"] == newest + 1
    finally:
        server.stop()


def test_corrupt_snapshot_is_refused_and_left_alone(short_tmp):
    import sqlite3
    state = os.path.join(short_tmp, "state")
    server = start_cssd(short_tmp, "--state-dir", state)
    c = Client(server.sock)
    vary(c, "0.40", "offline")
    assert server.stop() == 0
    connection = sqlite3.connect(os.path.join(state, "state.sqlite"))
    connection.execute("UPDATE snapshot SET model = substr(model, 1, length(model) - 1) || x'ff'")
    connection.commit()
    connection.close()
    before = snapshot(state)
    message = refused(short_tmp, "--state-dir", state)
    assert "refusing to start" in message and "the snapshot is corrupt" in message
    assert unchanged(before, snapshot(state))


def test_cssctl_events_resume_file_written_with_count_and_at_start(short_tmp):
    """--resume FILE is written when the subscription starts (a run that prints nothing leaves a
    position) and after --count: the position before the change --count may have cut, so the
    next run prints that change again rather than skip any of it."""
    position_file = os.path.join(short_tmp, "position.json")
    server = start_cssd(short_tmp)
    try:
        def position():
            with open(position_file) as f:
                return __import__("json").load(f)

        c = Client(server.sock)
        vary(c, "0.41", "offline")
        epoch = c.call("query-path-event-journal")["epoch"]
        quiet = subprocess.run([cssctl_binary(), "events", "--socket", server.sock, "--resume", position_file,
                                "--timeout", "1"], capture_output=True, text=True, timeout=60)
        assert quiet.returncode == 0 and quiet.stdout == "", quiet.stderr
        assert position() == {"epoch": epoch, "sequence": 1}
        p = subprocess.Popen([cssctl_binary(), "events", "--socket", server.sock, "--resume", position_file,
                              "--count", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.stderr.readline().startswith("subscribed: ")
        vary(c, "0.41", "online")
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert __import__("json").loads(out)["data"]["sequence"] == 2
        assert position() == {"epoch": epoch, "sequence": 1}
        again = subprocess.run([cssctl_binary(), "events", "--socket", server.sock, "--resume", position_file,
                                "--timeout", "2"], capture_output=True, text=True, timeout=60)
        assert [__import__("json").loads(l)["data"]["sequence"] for l in again.stdout.splitlines()] == [2]
        assert position() == {"epoch": epoch, "sequence": 2}
    finally:
        server.stop()


def test_cssctl_events_reconnects_and_resumes_across_a_restart(short_tmp):
    """--reconnect: cssd killed and started again (with its state dir); the client connects
    again by itself and gets the change made before it was back, then the next ones."""
    state = os.path.join(short_tmp, "state")
    server = start_cssd(short_tmp, "--state-dir", state)
    p = subprocess.Popen([cssctl_binary(), "events", "--socket", server.sock, "--reconnect", "--count", "3"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stderr.readline().startswith("subscribed: ")
        c = Client(server.sock)
        vary(c, "0.41", "offline")
        assert __import__("json").loads(p.stdout.readline())["data"]["sequence"] == 1
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        assert "connecting again" in p.stderr.readline()
        server = start_cssd(short_tmp, "--state-dir", state)
        c = Client(server.sock)
        vary(c, "0.41", "online")  # most likely before the client is back: 'since' brings it
        vary(c, "0.42", "offline")
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert [__import__("json").loads(l)["data"]["sequence"] for l in out.splitlines()] == [2, 3]
    finally:
        if p.poll() is None:
            p.kill()
        server.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs (root)")
def test_a_full_disk_under_pipelined_load_fails_whole_batches_and_loses_nothing(short_tmp):
    """The state dir's filesystem fills while one connection keeps 64 changes in flight (group
    commit): from the first commit that fails, every reply is the command's error ("the change
    was made but could not be recorded"), the server answers on, and no subscriber hears of those
    changes. Space freed, the next commit records them too (they were made), their events follow,
    and a SIGKILL then loses nothing: the journal and the state after restart are the last
    change's."""
    disk = os.path.join(short_tmp, "disk")
    os.mkdir(disk)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", disk], check=True)
    server = None
    try:
        state = os.path.join(disk, "state")
        args = ["--state-dir", state, "--event-journal", "1000000"]
        server = start_cssd(short_tmp, *args)
        subscriber = Client(server.sock)
        subscriber.call("subscribe-path-events")
        writer = Client(server.sock)
        epoch = writer.call("query-path-event-journal")["epoch"]
        filler = fill_filesystem(disk)

        sock, window, sent, replies, buf = writer.sock, 64, 0, [], b""
        request = lambda n: json.dumps({"execute": "vary-path", "id": n, "arguments": {
            "chpid": "0.44", "state": "offline" if n % 2 else "online"}}).encode()
        # Until 256 replies after the first failure (the WAL may have room for a few commits).
        while not replies or "return" in replies[-1] or len(replies) < replies.index(
                next(r for r in replies if "error" in r)) + 256:
            assert sent < 100000, "the full disk never failed a commit"
            while sent - len(replies) < window:
                sent += 1
                sock.sendall(request(sent))
            chunk = sock.recv(1 << 16)
            assert chunk, "the server closed the connection"
            buf += chunk
            *lines, buf = buf.split(b"\r\n")
            for line in lines:
                message = json.loads(line)
                assert message.get("id") == len(replies) + 1, message
                replies.append(message)
        while len(replies) < sent:  # the rest of the window
            replies.append(writer.reply())
        first_error = next(i for i, r in enumerate(replies) if "error" in r)
        ok = first_error  # replies 1..ok were acknowledged
        refused = 0
        for reply in replies[first_error:]:
            assert reply["error"]["class"] == "GenericError", reply
            desc = reply["error"]["desc"]
            # A failed batch: made, not recorded. Then, until the next retry (each second),
            # refused unrun: nothing more is held or retried per command.
            if desc.startswith("the state dir cannot record changes now (its last commit failed: "):
                assert "nothing was changed" in desc, desc
                refused += 1
            else:
                assert desc.startswith("the change was made but could not be recorded in the state dir: "), desc
        assert writer.call("query-version")  # the connection and the server survive
        # The journal's newest is a position to resume from: durable changes only (it said the
        # newest change made, a number a crash would give to another change).
        assert writer.call("query-path-event-journal")["newest"] == ok

        # The subscriber heard of acknowledged changes only: everything queued for it comes
        # before the reply to a query sent now.
        subscriber.send("query-version")
        heard = []
        while "event" in (message := subscriber.line()):
            heard.append(message["data"]["sequence"])
        assert "return" in message
        assert all(sequence <= ok for sequence in heard), (heard, ok)
        print(f"{ok} changes recorded before the disk filled, {sent - ok} failed ({refused} refused unrun)")

        os.remove(filler)
        # The next recorded command after the retry interval commits what is held with it.
        vary_of = lambda client: {p["chpid"]: p["vary"] for p in client.call("query-chpids")}["0.44"]
        target = "online" if vary_of(writer) == "offline" else "offline"

        def recorded():
            writer.send("vary-path", chpid="0.44", state=target)
            return "return" in writer.reply()

        wait_until(recorded, timeout=60, what="a change recorded once space is freed")
        newest = writer.call("query-path-event-journal")["newest"]
        # The changes that could not be recorded were made: recorded with this commit, their
        # events delivered now, the last one's among them.
        events = []
        while not events or events[-1]["data"]["sequence"] < newest:
            events += subscriber.events(1)
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait()

        server = start_cssd(short_tmp, *args)
        c = Client(server.sock)
        journal = c.call("query-path-event-journal")
        assert (journal["epoch"], journal["newest"]) == (epoch, newest)
        assert vary_of(c) == target
    finally:
        if server is not None:
            server.stop()
        subprocess.run(["umount", disk], check=True)
