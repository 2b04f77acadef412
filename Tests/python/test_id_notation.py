"""One notation per id (issue 23): on cssctl's command line a cssid is hex, as in every id
(`fe` of `fe.0.0000`, `cssctl gen-topology --cssid fe`); QMP keeps its `cssid` arguments
numbers (254), and the help says so."""

from __future__ import annotations

import json
import subprocess
import time

from harness.cssd import cssctl_binary
from harness.qmp import Client


def test_events_cssid_is_hex_as_in_ids(start):
    srv = start()
    c = Client(srv.sock)
    fe = next(p["chpid"] for p in c.call("query-chpids", cssid=0xfe))
    zero = next(p["chpid"] for p in c.call("query-chpids", cssid=0))
    events = subprocess.Popen(
        [cssctl_binary(), "events", "--socket", srv.sock, "--cssid", "fe", "--count", "1", "--timeout", "30",
         "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Subscribed once the server holds a subscription for it: then vary css 0 first (not
        # admitted), then css fe.
        deadline = time.monotonic() + 30
        while not any(s.get("subscriptions") for s in c.call("query-connections")):
            assert time.monotonic() < deadline and events.poll() is None, events.communicate()
            time.sleep(0.05)
        c.call("vary-path", chpid=zero, state="offline", force=True)
        c.call("vary-path", chpid=fe, state="offline", force=True)
        out, err = events.communicate(timeout=30)
    finally:
        if events.poll() is None:
            events.kill()
            events.wait()
    assert events.returncode == 0, err
    [event] = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert event["data"]["chpid"] == fe, event


def test_events_cssid_out_of_range_or_not_hex_is_a_usage_error(short_tmp):
    for value in ("100", "0x1ff", "g"):
        p = subprocess.run([cssctl_binary(), "events", "--socket", f"{short_tmp}/none.sock", "--cssid", value],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 64, (value, p)
        assert "--cssid" in p.stderr and value in p.stderr, p.stderr


def test_help_says_where_qmp_keeps_numbers():
    p = subprocess.run([cssctl_binary(), "events", "--help"], capture_output=True, text=True, timeout=30)
    assert "hex" in p.stdout and "as a number" in p.stdout, p.stdout
