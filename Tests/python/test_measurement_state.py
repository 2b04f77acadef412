"""The model's channel-measurement facility with --state-dir (issue 21): an acknowledged
set-channel-measurement or set-chpid-load survives a restart and a SIGKILL, and no counter (the
64-bit totals, the 32-bit words of the CUE) goes backwards across it, so that a Prometheus
rate() sees no reset. A state dir written before the facility was kept still opens.

The model's counters advance with cssd's monotonic clock (2 s updates): the tests wait for
samples by polling with generous deadlines."""

from __future__ import annotations

import os
import signal
import sqlite3

import pytest

from harness.cssd import cssd_binary, start_cssd
from harness.net import wait_until
from harness.qmp import Client

from test_measurement import path, topology, write

LOAD = {"util_part": 40, "util_total": 60, "read_total": 1.5e9}


@pytest.fixture
def binary():
    if cssd_binary() is None:
        pytest.skip("cssd binary not found: build it (swift build) or set CSSD_BIN")


def measured(client: Client, chpid: str = "0.40") -> dict | None:
    """The path's measurement once its metrics are available (two samples), else None."""
    reply = client.call("query-chpid-measurements", chpids=[chpid])
    entry = path(reply, chpid)
    return entry if entry["available"] else None


def words(entry: dict) -> dict:
    """The CUE's raw counters (the utilization group), without the timestamp."""
    return {k: v for k, v in entry["utilization"].items() if k != "timestamp"}


def killed_and_started_again(server, workdir: str, args: list[str]):
    """SIGKILL right after the last acknowledged command, then a new cssd with the same args."""
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    return start_cssd(workdir, *args)


def facility_state(server) -> str:
    client = Client(server.sock)
    try:
        return client.call("query-chpid-measurements")["state"]
    finally:
        client.close()


def assert_not_backwards(before: dict, after: dict, what: str) -> None:
    for key, value in before.items():
        if value is None:
            continue
        assert after[key] is not None and after[key] >= value, f"{what} {key}: {value} before, {after[key]} after"


@pytest.mark.parametrize("stop", ["SIGKILL", "SIGTERM"])
def test_the_facility_and_the_loads_survive_a_restart_and_no_counter_goes_back(binary, short_tmp, stop):
    top = write(short_tmp, topology({"chpids": [{"chpid": "0.60", "cmg": 1}]}))
    args = ["--topology", top, "--state-dir", os.path.join(short_tmp, "state")]
    server = start_cssd(short_tmp, *args)
    try:
        client = Client(server.sock)
        assert client.call("set-channel-measurement", enabled=True) == {"state": "enabled"}
        client.call("set-chpid-load", chpid="0.40", load=LOAD)
        client.call("set-chpid-load", chpid="0.60", load={"util_part": 25})
        wait_until(
            lambda: (lambda e: e if e and e["metrics"]["util_part"] == pytest.approx(40, rel=1e-6) else None)(
                measured(client)),
            60, "an interval of the load on 0.40", interval=0.5)
        # The last values served before the stop: nothing after the last acknowledged command
        # is recorded, so the restart must not serve less than these.
        served = measured(client)
        served_osa = measured(client, "0.60")
        client.close()
        if stop == "SIGKILL":
            server = killed_and_started_again(server, short_tmp, args)
        else:
            assert server.stop() == 0
            server = start_cssd(short_tmp, *args)
        client = Client(server.sock)
        first = path(client.call("query-chpid-measurements", chpids=["0.40"]), "0.40")
        assert first.get("reason") != "facility-disabled", first
        assert "channel measurement restored" in server.log_tail()
        assert_not_backwards(served["totals"], first["totals"], "total")
        assert_not_backwards(words(served), words(first), "32-bit word")
        # The loads came back: an interval after the restart shows them again.
        again = wait_until(lambda: measured(client), 60, "two samples of 0.40 after the restart", interval=0.5)
        assert again["metrics"]["util_part"] == pytest.approx(40, rel=1e-6)
        assert again["metrics"]["read_total"] == pytest.approx(1.5e9, abs=2048)
        assert_not_backwards(served["totals"], again["totals"], "total")
        osa = wait_until(lambda: measured(client, "0.60"), 60, "two samples of 0.60", interval=0.5)
        assert osa["metrics"]["util_part"] == pytest.approx(25, rel=1e-4)
        assert_not_backwards(served_osa["totals"], osa["totals"], "total")
        # A change after the restart is recorded too.
        assert client.call("set-channel-measurement", enabled=False) == {"state": "disabled"}
        client.close()
        server = killed_and_started_again(server, short_tmp, args)
        assert facility_state(server) == "disabled"
    finally:
        server.stop()


def test_a_state_dir_from_before_the_facility_was_kept_still_opens(binary, short_tmp):
    """A state dir an older cssd wrote has no `measurement` table: it opens, the facility starts
    as the topology gives it (off), and the table is added for the next change."""
    top = write(short_tmp, topology({}))
    state = os.path.join(short_tmp, "state")
    args = ["--topology", top, "--state-dir", state]
    server = start_cssd(short_tmp, *args)
    client = Client(server.sock)
    client.call("vary-path", chpid="0.40", state="offline", force=True)  # its device has no other path
    client.close()
    assert server.stop() == 0
    with sqlite3.connect(os.path.join(state, "state.sqlite")) as db:
        db.execute("DROP TABLE measurement")
    db.close()
    server = start_cssd(short_tmp, *args)
    try:
        client = Client(server.sock)
        assert client.call("query-chpid-measurements")["state"] == "disabled"
        assert next(p for p in client.call("query-chpids") if p["chpid"] == "0.40")["vary"] == "offline"
        client.call("set-channel-measurement", enabled=True)
        client.close()
        server = killed_and_started_again(server, short_tmp, args)
        assert facility_state(server) == "enabled"
    finally:
        server.stop()
