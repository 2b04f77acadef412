"""The state dir as an operator meets it (API/resume.md, "--state-dir"): a host that changed
does not brick it, an interrupted first start (SIGKILL, a full disk) leaves either nothing or a
valid store, one daemon holds it at a time, and a clean stop leaves one complete, closed file."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest

from harness.cssd import cssd_binary, start_cssd
from harness.net import wait_until
from harness.paths import fill_filesystem
from harness.qmp import Client, data_without_subscription, vary, visible_state
from harness.sysfs import set_status, sysfs_tree


def run_to_exit(workdir, *args, timeout=60):
    """cssd with `args` on a socket of its own; (exit status, stderr) once it exits by itself.
    One that keeps serving instead is stopped, and the status is None."""
    sock = os.path.join(workdir, f"other-{time.monotonic_ns()}.sock")
    proc = subprocess.Popen([cssd_binary(), "--qmp", f"unix:{sock}", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline and not os.path.exists(sock):
        time.sleep(0.02)
    if proc.poll() is None and os.path.exists(sock):
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=timeout)
        return None, err
    _, err = proc.communicate(timeout=max(1, deadline - time.monotonic()))
    return proc.returncode, err


# --- A changed host never bricks the state dir ---------------------------------------------

def test_a_host_that_gained_and_lost_devices_keeps_its_state_dir(short_tmp):
    tree = sysfs_tree(short_tmp)
    css0 = os.path.join(tree, "devices", "css0")
    aside = os.path.join(short_tmp, "aside")
    os.mkdir(aside)
    # 0.0.0010 is not there at the first start: it comes while cssd is down.
    shutil.move(os.path.join(css0, "0.0.0010"), os.path.join(aside, "0.0.0010"))
    state = os.path.join(short_tmp, "state")
    args = ["--backend", f"linux-sysfs:{tree}", "--poll-interval", "100", "--state-dir", state]
    server = start_cssd(short_tmp, *args)
    try:
        c = Client(server.sock)
        epoch = c.call("query-path-event-journal")["epoch"]
        subchannels = c.call("query-css")
        c.call("subscribe-path-events", chpids=["0.40", "0.41"])
        c.call("vary-path", chpid="0.40", state="offline")
        [own] = c.events(1)
        assert own["data"]["sequence"] == 1
        # A device goes while cssd runs and follows it.
        shutil.move(os.path.join(css0, "0.0.0007"), os.path.join(aside, "0.0.0007"))
        wait_until(lambda: c.call("query-css") != subchannels, 20, "cssd did not follow the removed subchannel")
        assert server.stop() == 0
        # While cssd is down: one subchannel comes, another goes, a path goes offline.
        shutil.move(os.path.join(aside, "0.0.0010"), os.path.join(css0, "0.0.0010"))
        shutil.move(os.path.join(css0, "0.0.0008"), os.path.join(aside, "0.0.0008"))
        set_status(tree, "0.41", "offline")
        server = start_cssd(short_tmp, *args)
        log = server.log_tail()
        assert "refusing" not in log
        assert "host changed since the last recorded state" in log
        # 0.0.0007, gone while cssd ran, was recorded gone at the clean stop.
        assert "subchannels-added=1" in log and "subchannels-removed=1" in log, log
        c = Client(server.sock)
        journal = c.call("query-path-event-journal")
        # The same history: its epoch, its numbering, its journal; the path change made while
        # down is published under the next number.
        assert (journal["epoch"], journal["oldest"], journal["newest"]) == (epoch, 1, 2)
        names = [s["subchannel"] for s in c.call("query-subchannels", limit=1000)["subchannels"]]
        assert "0.0.0010" in names and "0.0.0008" not in names and "0.0.0007" not in names
        c.call("subscribe-path-events", chpids=["0.40", "0.41"], since={"epoch": epoch, "sequence": 0})
        replayed, down = c.events(2)
        assert data_without_subscription(replayed) == data_without_subscription(own)
        assert (down["data"]["chpid"], down["data"]["change"], down["data"]["sequence"]) == ("0.41", "offline", 2)
        # The journal's history names devices that are gone: it is replayed as it was, per
        # subchannel too.
        both = Client(server.sock)
        both.call("subscribe-path-events", granularity="both", since={"epoch": epoch, "sequence": 0})
        history = []
        both.call("query-version", events=history)
        assert {e["data"]["sequence"] for e in history} == {1, 2}
        assert any(e["data"].get("subchannel") == "0.0.0008" for e in history if e["data"]["sequence"] == 1)
        assert server.stop() == 0
        # Nothing changed since: the next start reports nothing and publishes nothing.
        server = start_cssd(short_tmp, *args)
        log = server.log_tail()
        assert "host changed" not in log
        c = Client(server.sock)
        assert c.call("query-path-event-journal")["newest"] == 2
    finally:
        server.stop()


def test_a_state_dir_of_the_model_is_refused_by_a_host_and_left_alone(short_tmp):
    state = os.path.join(short_tmp, "state")
    server = start_cssd(short_tmp, "--state-dir", state)
    vary(Client(server.sock), "0.40", "offline")
    assert server.stop() == 0
    with open(os.path.join(state, "state.sqlite"), "rb") as f:
        before = f.read()
    status, err = run_to_exit(short_tmp, "--backend", f"linux-sysfs:{sysfs_tree(short_tmp)}", "--state-dir", state)
    assert status == 1 and "written by the model backend, not linux-sysfs" in err, err
    with open(os.path.join(state, "state.sqlite"), "rb") as f:
        assert f.read() == before
    assert not os.path.exists(os.path.join(state, "lock"))  # let go with the refusal


# --- An interrupted first start is not a broken state dir ----------------------------------

def started_fresh(workdir, state, replaced_empty=False):
    """`state` is taken as never created; with `replaced_empty` the log says an empty
    state.sqlite was started afresh (a warning, not silence), and only then."""
    server = start_cssd(workdir, "--state-dir", state)
    try:
        assert "state dir created" in server.log_tail()
        assert ("held no state" in server.log_tail()) == replaced_empty, server.log_tail()
        c = Client(server.sock)
        vary(c, "0.40", "offline")
        epoch = c.call("query-path-event-journal")["epoch"]
    finally:
        assert server.stop() == 0
    server = start_cssd(workdir, "--state-dir", state)
    try:
        assert "state restored" in server.log_tail()
        assert Client(server.sock).call("query-path-event-journal")["epoch"] == epoch
    finally:
        server.stop()
    assert [n for n in os.listdir(state) if n.startswith("state.sqlite.")] == []


def test_what_an_older_interrupted_first_start_left_is_taken_as_never_created(short_tmp):
    # 0 bytes: killed before SQLite wrote anything.
    empty = os.path.join(short_tmp, "empty")
    os.mkdir(empty)
    open(os.path.join(empty, "state.sqlite"), "wb").close()
    started_fresh(short_tmp, empty, replaced_empty=True)
    # A database with WAL set and no table yet: killed before the first transaction committed.
    header = os.path.join(short_tmp, "header")
    os.mkdir(header)
    connection = sqlite3.connect(os.path.join(header, "state.sqlite"))
    connection.execute("PRAGMA journal_mode=WAL")
    connection.close()
    assert os.path.getsize(os.path.join(header, "state.sqlite")) > 0
    started_fresh(short_tmp, header, replaced_empty=True)
    # The store being built when this version was killed.
    building = os.path.join(short_tmp, "building")
    os.mkdir(building)
    with open(os.path.join(building, "state.sqlite.new"), "wb") as f:
        f.write(b"SQLite format 3\x00" + b"\x00" * 100)
    started_fresh(short_tmp, building)


def test_a_database_with_tables_of_its_own_is_still_refused(short_tmp):
    state = os.path.join(short_tmp, "state")
    os.mkdir(state)
    connection = sqlite3.connect(os.path.join(state, "state.sqlite"))
    connection.execute("CREATE TABLE mine (x)")
    connection.execute("INSERT INTO mine VALUES (1)")
    connection.commit()
    connection.close()
    status, err = run_to_exit(short_tmp, "--state-dir", state)
    assert status == 1 and "not a cssd state database" in err, err


def _first_start(sock: str, state: str) -> subprocess.Popen:
    """cssd starting on a new state dir, its output discarded (it is killed at some moment)."""
    return subprocess.Popen([cssd_binary(), "--qmp", f"unix:{sock}", "--state-dir", state],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _kill_then_start_again(workdir: str, proc: subprocess.Popen, state: str, outcomes: dict,
                           then_vary: bool) -> None:
    """SIGKILLs `proc`, counts what it left (a store or nothing), and checks that the next start
    on the same dir works (and, with `then_vary`, records a change)."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    outcomes["store" if os.path.exists(os.path.join(state, "state.sqlite")) else "nothing"] += 1
    server = start_cssd(workdir, "--state-dir", state)
    try:
        log = server.log_tail()
        assert "state dir created" in log or "state restored" in log, log
        if then_vary:
            vary(Client(server.sock), "0.40", "offline")
    finally:
        assert server.stop() == 0


def test_sigkill_at_random_moments_of_a_first_start_leaves_nothing_or_a_valid_store(short_tmp):
    rng = random.Random(20)
    # How long a first start takes here (until it listens), to spread the kills over it.
    began = time.monotonic()
    probe = start_cssd(short_tmp, "--state-dir", os.path.join(short_tmp, "probe"))
    took = time.monotonic() - began
    assert probe.stop() == 0
    outcomes = {"nothing": 0, "store": 0}
    for round_ in range(12):
        state = os.path.join(short_tmp, f"s{round_}")
        sock = os.path.join(short_tmp, f"k{round_}.sock")
        proc = _first_start(sock, state)
        time.sleep(rng.uniform(0, took))
        _kill_then_start_again(short_tmp, proc, state, outcomes, then_vary=True)
    # And right when a database file appears in the dir (the moment a store being created is
    # most likely to be half made), a few microseconds to a millisecond later.
    for round_ in range(6):
        state = os.path.join(short_tmp, f"a{round_}")
        sock = os.path.join(short_tmp, f"a{round_}.sock")
        proc = _first_start(sock, state)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if any(name.startswith("state.sqlite") for name in os.listdir(state)):
                    break
            except FileNotFoundError:
                pass
        time.sleep(rng.uniform(0, 0.001))
        _kill_then_start_again(short_tmp, proc, state, outcomes, then_vary=False)
    print("after SIGKILL:", outcomes)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs (root)")
def test_a_full_disk_at_the_first_start_leaves_nothing_and_the_next_start_works(short_tmp):
    disk = os.path.join(short_tmp, "disk")
    os.mkdir(disk)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", disk], check=True)
    try:
        state = os.path.join(disk, "state")
        os.mkdir(state)
        filler = fill_filesystem(disk)
        status, err = run_to_exit(short_tmp, "--state-dir", state)
        assert status == 1 and "refusing to start" in err, err
        # Said as what it is, not as a corrupt file to delete.
        assert "full" in err and "not a cssd state database" not in err, err
        assert os.listdir(state) == [], os.listdir(state)
        os.remove(filler)
        started_fresh(short_tmp, state)
    finally:
        subprocess.run(["umount", disk], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs (root)")
def test_a_filesystem_too_small_for_sqlite_is_named_as_such(short_tmp):
    """64 KiB: SQLite creates the file but cannot size its shared memory; the refusal called
    the file "not a cssd state database (corrupt ...)", inviting its deletion."""
    disk = os.path.join(short_tmp, "disk")
    os.mkdir(disk)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", disk], check=True)
    try:
        status, err = run_to_exit(short_tmp, "--state-dir", disk)
        assert status == 1 and "refusing to start" in err, err
        assert "filesystem is full or too small" in err and "not a cssd state database" not in err, err
    finally:
        subprocess.run(["umount", disk], check=True)


# --- One daemon per state dir --------------------------------------------------------------

def test_a_second_daemon_on_the_same_state_dir_is_refused_and_names_the_holder(short_tmp):
    state = os.path.join(short_tmp, "state")
    first = start_cssd(short_tmp, "--state-dir", state)
    try:
        c = Client(first.sock)
        epoch = c.call("query-path-event-journal")["epoch"]
        status, err = run_to_exit(short_tmp, "--state-dir", state)
        assert status == 1, err
        assert "refusing to start" in err and f"pid {first.proc.pid}" in err, err
        assert os.path.join(state, "lock") in err, err
        # The holder serves on, its changes durable as before.
        vary(c, "0.40", "offline")
        assert c.call("query-path-event-journal")["newest"] == 1
        # Killed, it leaves its lock file behind, and the lock goes with the process.
        os.killpg(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
        second = start_cssd(short_tmp, "--state-dir", state)
        try:
            journal = Client(second.sock).call("query-path-event-journal")
            assert (journal["epoch"], journal["newest"]) == (epoch, 1)
            with open(os.path.join(state, "lock")) as f:
                assert f.read().split() == [str(second.proc.pid)]
        finally:
            assert second.stop() == 0
        assert not os.path.exists(os.path.join(state, "lock"))
    finally:
        first.stop()


# --- A clean stop leaves a complete, closed store ------------------------------------------

@pytest.mark.parametrize("snapshot_every", ["100000", "0"])
def test_a_clean_stop_leaves_one_complete_closed_file(short_tmp, snapshot_every):
    state = os.path.join(short_tmp, "state")
    args = ["--state-dir", state, "--state-snapshot-every", snapshot_every]
    server = start_cssd(short_tmp, *args)
    try:
        c = Client(server.sock)
        name = c.call("query-guests")[0]["name"]
        c.call("set-path-event-strategy", guest=name, strategy="per-device")
        for n in range(40):
            # Forced: the fourth of 0.40-0.43 is the last path of 42 DASDs in use (the interlock).
            vary(c, f"0.4{n % 4}", "offline" if (n // 4) % 2 == 0 else "online", force=True)
        c.call("inject-path-fault", chpid="0.44", fault="permanent-error")
        before = visible_state(c)
    finally:
        assert server.stop() == 0
    log = server.log_tail(200_000)
    assert "forced crash" not in log and "will be upgraded" not in log, log
    wal = os.path.join(state, "state.sqlite-wal")
    assert not os.path.exists(wal) or os.path.getsize(wal) == 0
    assert not os.path.exists(os.path.join(state, "lock"))
    # state.sqlite alone is the whole state.
    copy = os.path.join(short_tmp, "copy")
    os.mkdir(copy)
    shutil.copy(os.path.join(state, "state.sqlite"), copy)
    server = start_cssd(short_tmp, "--state-dir", copy, "--state-snapshot-every", snapshot_every)
    try:
        assert "state restored" in server.log_tail()
        assert visible_state(Client(server.sock)) == before
    finally:
        assert server.stop() == 0
