"""The channel-measurement facility (issue 21) on a real cssd process with a topology file:
query-chpid-measurements, set-channel-measurement, set-chpid-load, and the topology file's
`channel-measurement` section, over a QMP socket. The model's counters advance with cssd's own
monotonic clock (2 s updates), so the tests wait for new samples by polling, with generous
deadlines, never by sleeping a fixed time.
"""

from __future__ import annotations

import json
import os

import pytest

from harness.cssd import cssd_binary, cssd_server, refused
from harness.net import wait_until
from harness.qmp import Client


def topology(measurement: dict) -> dict:
    return {
        "format": "cssd-topology", "version": 1,
        "chpids": [
            {"chpid": "0.40", "type": "0x1a", "shared": True},
            {"chpid": "0.60", "type": "0x11"},
            {"chpid": "fe.00", "type": "0x32"},
        ],
        "subchannels": [
            {"subchannel": "0.0.0000", "devno": "0.0.1000", "dev-type": "3390/0c", "cu-type": "3990/e9",
             "chpids": ["0.40"]},
        ],
        "channel-measurement": measurement,
    }


def write(directory: str, document: dict) -> str:
    path = os.path.join(directory, "top.json")
    with open(path, "w") as f:
        json.dump(document, f)
    return path


@pytest.fixture
def binary():
    if cssd_binary() is None:
        pytest.skip("cssd binary not found: build it (swift build) or set CSSD_BIN")


def path(reply: dict, chpid: str) -> dict:
    return next(p for p in reply["channel-paths"] if p["chpid"] == chpid)


def test_a_loaded_path_shows_its_load_with_growing_totals(binary, short_tmp):
    top = write(short_tmp, topology({"chpids": [
        {"chpid": "0.40", "load": {"util_part": 40, "util_total": 60, "read_total": 1.5e9}},
        {"chpid": "0.60", "cmg": 1, "load": {"util_part": 25}},
    ]}))
    with cssd_server(short_tmp, extra_args=["--topology", top]) as server:
        client = Client(server.sock)
        try:
            before = client.call("query-chpid-measurements")
            assert before["state"] == "disabled"
            assert path(before, "0.40")["reason"] == "facility-disabled"
            assert "cmg" not in path(before, "fe.00") and path(before, "fe.00")["reason"] == "no-cmg"
            assert client.call("set-channel-measurement", enabled=True) == {"state": "enabled"}

            def measured():
                reply = client.call("query-chpid-measurements", chpids=["0.40", "0.60"])
                return reply if all(p["available"] for p in reply["channel-paths"]) else None

            first = wait_until(measured, 60, "two samples of 0.40 and 0.60", interval=0.5)
            ficon, osa = path(first, "0.40"), path(first, "0.60")
            assert ficon["cmg"] == 2 and osa["cmg"] == 1
            # Whole update intervals of 2 s: the load comes back up to the counters' whole units
            # (a data unit is 4096 bytes: 2 KB/s over 2 s).
            assert ficon["metrics"]["util_part"] == pytest.approx(40, rel=1e-6)
            assert ficon["metrics"]["util_total"] == pytest.approx(60, rel=1e-6)
            assert ficon["metrics"]["read_total"] == pytest.approx(1.5e9, abs=2048)
            assert osa["metrics"]["util_part"] == pytest.approx(25, rel=1e-4)
            assert ficon["metrics"]["interval"] > 0
            assert list(ficon["metrics"])[:3] == ["interval", "util_total", "util_part"]
            assert len(ficon["blocks"]["cue"]) == 64 and len(ficon["blocks"]["ext-cue"]) == 128
            # Totals grow as time passes, and never go back.
            start = ficon["totals"]["channel_work_units"]
            later = wait_until(
                lambda: (lambda p: p if p["totals"]["channel_work_units"] > start else None)(
                    path(client.call("query-chpid-measurements", chpids=["0.40"]), "0.40")),
                60, "the running total to grow", interval=0.5)
            assert later["totals"]["channel_work_units_cpc"] >= ficon["totals"]["channel_work_units_cpc"]

            # A new load from the next update on.
            client.call("set-chpid-load", chpid="0.40", load={"util_part": 10})
            wait_until(
                lambda: path(client.call("query-chpid-measurements", chpids=["0.40"]), "0.40")
                .get("metrics", {}).get("util_part") == pytest.approx(10, rel=1e-6),
                60, "util_part 10 over an interval of the new load", interval=0.5)

            # Bad input: clear errors, and the server keeps serving.
            error = client.error("set-chpid-load", chpid="0.60", load={"read_total": 1})
            assert error["class"] == "GenericError" and "expected one of util_total, util_part" in error["desc"]
            assert client.error("query-chpid-measurements", chpids=["0.77"])["class"] == "DeviceNotFound"
            assert client.call("set-channel-measurement", enabled=False) == {"state": "disabled"}
            assert path(client.call("query-chpid-measurements"), "0.40")["reason"] == "facility-disabled"
        finally:
            client.close()


def test_an_unauthorized_partition_cannot_enable(binary, short_tmp):
    top = write(short_tmp, topology({"authorized": False}))
    with cssd_server(short_tmp, extra_args=["--topology", top]) as server:
        client = Client(server.sock)
        try:
            error = client.error("set-channel-measurement", enabled=True)
            assert error["class"] == "GenericError"
            assert "Global performance data control" in error["desc"]
            assert "Access global performance data" in error["desc"]
            assert client.call("query-chpid-measurements")["state"] == "disabled"
        finally:
            client.close()


def test_a_bad_section_stops_cssd_naming_the_field(binary, short_tmp):
    top = write(short_tmp, topology({"chpids": [{"chpid": "0.60", "load": {"util_bus": 5}}]}))
    stderr = refused(short_tmp, "--topology", top)
    assert "channel-measurement.chpids[0].load.util_bus" in stderr, stderr
    top = write(short_tmp, topology({"chpids": [{"chpid": "0.40", "cmg": 9}]}))
    assert "channel-measurement.chpids[0].cmg" in refused(short_tmp, "--topology", top)
