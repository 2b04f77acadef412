"""Range filters applied by the server (issue 23): query-subchannels' `end` (with `start`, a
subchannel-id range that costs what it lists) and `devno-ranges` (device-number ranges), and
`cssctl lscss RANGE` / `lscss -d RANGE` asking for them instead of fetching every subchannel.

Every answer is checked against the reference: the whole listing, filtered here."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from harness.cssd import cssctl_binary
from harness.qmp import Client


def key(text: str) -> tuple:
    return tuple(int(part, 16) for part in text.split("."))


def everything(c: Client) -> list:
    return c.call("query-subchannels", limit=16384)["subchannels"]


def pages(c: Client, limit: int, **arguments) -> list:
    """Every page of a query, `next` back as `start` (the selecting arguments each time)."""
    out = []
    while True:
        page = c.call("query-subchannels", limit=limit, **arguments)
        out += page["subchannels"]
        if "next" not in page:
            return out
        arguments["start"] = page["next"]


@pytest.fixture
def client(start):
    return Client(start().sock)


def test_end_bounds_a_subchannel_range(client):
    c = client
    whole = everything(c)
    ids = [s["subchannel"] for s in whole]
    assert len(ids) > 20
    first, last = ids[3], ids[17]
    assert c.call("query-subchannels", start=first, end=last)["subchannels"] == whole[3:18]
    # Paged through: the same rows; the last page, which reaches 'end', has no 'next'.
    assert pages(c, 4, start=first, end=last) == whole[3:18]
    # 'end' alone: from the first subchannel; an 'end' before 'start': nothing.
    assert c.call("query-subchannels", end=ids[2])["subchannels"] == whole[:3]
    assert c.call("query-subchannels", start=last, end=first) == {"subchannels": []}
    # An id between subchannels bounds as well as one that is there.
    assert c.call("query-subchannels", start="0.0.0000", end="0.0.ffff")["subchannels"] == [
        s for s in whole if key(s["subchannel"])[:2] == (0, 0)]
    # With the other filters.
    chpid = whole[5]["chpids"][0]
    assert c.call("query-subchannels", chpid=chpid, end=last)["subchannels"] == [
        s for s in whole[:18] if chpid in s["chpids"]]


def test_devno_ranges_select_device_numbers(client):
    c = client
    whole = everything(c)
    devnos = sorted(key(s["devno"]) for s in whole if s.get("devno"))
    low, high = devnos[2], devnos[9]
    as_id = lambda k: "%x.%x.%04x" % k
    ranges = [{"first": as_id(low), "last": as_id(high)}, {"first": as_id(devnos[-1]), "last": as_id(devnos[-1])},
              {"first": as_id(high), "last": as_id(low)}]  # the last one reversed: matches nothing
    expected = [s for s in whole if s.get("devno") and (low <= key(s["devno"]) <= high or key(s["devno"]) == devnos[-1])]
    assert c.call("query-subchannels", **{"devno-ranges": ranges})["subchannels"] == expected
    assert pages(c, 3, **{"devno-ranges": ranges}) == expected
    assert c.call("query-subchannels", **{"devno-ranges": []}) == {"subchannels": []}
    error = c.error("query-subchannels", **{"devno-ranges": [ranges[0]] * 257})
    assert error["class"] == "GenericError" and "at most 256" in error["desc"], error
    error = c.error("query-subchannels", **{"devno-ranges": [{"first": "0.0.1000", "last": "x"}]})
    assert error["class"] == "GenericError", error
    assert c.call("query-version")  # the connection survives bad input


def lscss(sock: str, *args: str) -> bytes:
    p = subprocess.run([cssctl_binary(), "lscss", "--socket", sock, *args], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_lscss_ranges_match_the_whole_listing_filtered(start, short_tmp):
    srv = start()
    whole = lscss(srv.sock).decode().splitlines()
    header, rows = whole[:2], whole[2:]
    ids = [r.split()[1] for r in rows]
    a, b, c_, d = ids[1], ids[6], ids[4], ids[12]
    # Overlapping and out-of-order ranges: the rows in id order, each once.
    got = lscss(srv.sock, f"{c_}-{d},{a}-{b}").decode().splitlines()
    assert got == header + [r for r in rows if key(a) <= key(r.split()[1]) <= key(d)]
    # A single id, and a range FROM > TO (matches nothing, as lscss).
    assert lscss(srv.sock, b).decode().splitlines() == header + [r for r in rows if r.split()[1] == b]
    assert lscss(srv.sock, f"{d}-{a}").decode().splitlines() == header
    # -d: device numbers.
    devs = sorted((r.split()[0] for r in rows if r.split()[0] != "none"), key=key)
    lo, hi = devs[3], devs[8]
    got = lscss(srv.sock, "-d", f"{lo}-{hi},{devs[-1]}").decode().splitlines()
    assert got == header + [r for r in rows if r.split()[0] != "none"
                            and (key(lo) <= key(r.split()[0]) <= key(hi) or r.split()[0] == devs[-1])]


def test_lscss_asks_the_server_for_its_ranges(short_tmp):
    """What cssctl sends (a server that records the requests): the range, not everything."""
    from test_listings import FakeServer
    server = FakeServer(os.path.join(short_tmp, "fake.sock"))
    try:
        subprocess.run([cssctl_binary(), "lscss", "--socket", server.path, "0.0.0003-0.0.0004,0.0.0001"],
                       capture_output=True, timeout=30, check=True)
    finally:
        server.close()
    # (This server ignores 'end' and pages on: each walk's first request is what counts.)
    requests = [r["arguments"] for r in server.requests if r["execute"] == "query-subchannels"]
    assert all("end" in r for r in requests), requests
    walks = {}
    for r in requests:
        walks.setdefault(r["end"], r["start"])
    assert list(walks.items()) == [("0.0.0001", "0.0.0001"), ("0.0.0004", "0.0.0003")], requests
    server = FakeServer(os.path.join(short_tmp, "fake2.sock"))
    try:
        subprocess.run([cssctl_binary(), "lscss", "--socket", server.path, "-d", "0.0.1003-0.0.1004,1001"],
                       capture_output=True, timeout=30, check=True)
    finally:
        server.close()
    requests = [r["arguments"] for r in server.requests if r["execute"] == "query-subchannels"]
    assert requests[0] == {"limit": 16384, "devno-ranges": [
        {"first": "0.0.1003", "last": "0.0.1004"}, {"first": "0.0.1001", "last": "0.0.1001"}]}, requests
    assert all("devno-ranges" in r for r in requests), requests
