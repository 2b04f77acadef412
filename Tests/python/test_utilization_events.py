"""Utilization-threshold path events (issue 21) over a real socket: subscribe-path-events with
'utilization' tells CHANNEL_PATH_UTILIZATION when a model chpid's load crosses the threshold,
once each way (hysteresis), and refuses bad thresholds with a clear error."""

from __future__ import annotations

import math

from harness.net import wait_until


def _cmg2_chpid(control) -> str:
    paths = control.call("query-chpid-measurements")["channel-paths"]
    return next(p["chpid"] for p in paths if p.get("cmg") == 2)


def _util_total(control, chpid: str):
    [path] = control.call("query-chpid-measurements", chpids=[chpid])["channel-paths"]
    return (path.get("metrics") or {}).get("util_total"), path["samples"]


def _reach(control, chpid: str, value: float) -> int:
    """Waits until the query reports `value` for a whole interval; its sample count then."""
    found = {}

    def there():
        util, samples = _util_total(control, chpid)
        found["samples"] = samples
        return util is not None and math.isclose(util, value, rel_tol=1e-9)

    wait_until(there, 30, f"util_total {value} on {chpid}")
    return found["samples"]


def test_a_crossing_is_told_once_each_way(connect):
    watcher, control = connect(), connect()
    assert control.call("set-channel-measurement", enabled=True)["state"] == "enabled"
    chpid = _cmg2_chpid(control)
    sub = watcher.call("subscribe-path-events", chpids=[chpid],
                       utilization={"threshold": 80, "hysteresis": 10})["subscription"]

    [info] = watcher.call("query-path-event-subscriptions")
    assert info["utilization"] == {"threshold": 80.0, "hysteresis": 10.0, "metric": "util_total"}
    control.call("set-chpid-load", chpid=chpid, load={"util_total": 90, "util_part": 10})
    [event] = watcher.events(1)
    assert event["event"] == "CHANNEL_PATH_UTILIZATION"
    data = dict(event["data"])
    assert math.isclose(data.pop("utilization"), 90.0, rel_tol=1e-9)
    assert data == {"subscription": sub, "chpid": chpid, "metric": "util_total", "level": "above", "threshold": 80.0}

    # Inside the band (70 <= 75 < 80) for two more machine updates, evaluated meanwhile (once
    # a second): nothing. Then under it: one "below", with the value that crossed.
    control.call("set-chpid-load", chpid=chpid, load={"util_total": 75, "util_part": 10})
    first = _reach(control, chpid, 75)
    wait_until(lambda: _util_total(control, chpid)[1] >= first + 2, 30, "two more updates at 75")
    control.call("set-chpid-load", chpid=chpid, load={"util_total": 60, "util_part": 10})
    [event] = watcher.events(1)
    assert (event["event"], event["data"]["level"]) == ("CHANNEL_PATH_UTILIZATION", "below")
    assert math.isclose(event["data"]["utilization"], 60.0, rel_tol=1e-9)
    assert watcher.nothing_pending()

    # A plain subscription to the same chpid gets none of these.
    plain = connect()
    plain.call("subscribe-path-events", chpids=[chpid])
    control.call("set-chpid-load", chpid=chpid, load={"util_total": 99, "util_part": 10})
    [event] = watcher.events(1)
    assert event["data"]["level"] == "above"
    assert plain.nothing_pending()


def test_bad_thresholds_get_a_clear_error_and_the_connection_goes_on(connect):
    c = connect()
    error = c.error("subscribe-path-events", utilization={"threshold": 0})
    assert error["class"] == "GenericError"
    assert error["desc"] == "Parameter 'utilization': threshold 0.0 is not a percentage in (0, 1000]"
    error = c.error("subscribe-path-events", utilization={"threshold": 50, "hysteresis": 60})
    assert "hysteresis 60.0 is not in [0, 50.0]" in error["desc"]
    error = c.error("subscribe-path-events", utilization={"threshold": 50, "metric": "util_nope"})
    assert error["class"] == "GenericError" and "metric" in error["desc"]
    assert c.call("subscribe-path-events", utilization={"threshold": 50})["subscription"] >= 1
    # The defaults are filled in: hysteresis 5 points, util_total.
    [info] = c.call("query-path-event-subscriptions")
    assert info["utilization"] == {"threshold": 50.0, "hysteresis": 5.0, "metric": "util_total"}
