"""Redundancy of the devices in use: the series, the path events and the shipped alerts.

Devices in use (online) on exactly one operational path and on none, per chpid and per css
(cssd_{chpid,css}_online_devices_{single_path,redundancy_lost,without_path}); the
redundancy-lost and last-path-lost path events; the alerts CSSDRedundancyLost and
CSSDOnlineDevicesWithoutPath. Their timing is promtool's (Deploy/prometheus/cssd-rules.test.yml,
run by test_metrics.test_rules_pass_promtool); here a real Prometheus (Debian's package)
scrapes cssd with the shipped rules and evaluates their expressions, as written in the rules
file, against what cssd serves, for the model and for a linux-sysfs tree changed behind
cssd's back.
"""

from __future__ import annotations

import yaml

from harness.cssd import start_with_metrics
from harness.net import wait_until
from harness.paths import REPO_ROOT
from harness.prometheus import alert_firing, query, query_value, scrape_values
from harness.qmp import Client
from harness.sysfs import build_tree, set_status


RULES = REPO_ROOT / "Deploy" / "prometheus" / "cssd-rules.yml"


def rule_expression(alert: str) -> str:
    """The expression of a shipped alert, as the rules file has it."""
    with open(RULES, encoding="utf-8") as f:
        groups = yaml.safe_load(f)["groups"]
    expr, = [rule["expr"] for group in groups for rule in group["rules"] if rule.get("alert") == alert]
    return expr


def by_label(base: str, expr: str, label: str) -> dict:
    """label value -> sample value of an instant query."""
    return {sample["metric"][label]: float(sample["value"][1]) for sample in query(base, expr)}


def chpid_events(client: Client, changes: set, count: int) -> list:
    """The data of the next `count` CHANNEL_PATH_CHANGED events whose change is in `changes`."""
    found = []
    while len(found) < count:
        event, = client.events(1)
        if event["event"] == "CHANNEL_PATH_CHANGED" and event["data"]["change"] in changes:
            found.append(event["data"])
    return found


def test_model_series_events_and_the_alert_expressions(metrics_cssd, prometheus):
    base = prometheus
    wait_until(lambda: query_value(base, 'up{job="cssd"}') == 1.0, 30, "the target to be up")
    # Every chpid and css has the three series from the first scrape on.
    chpids = query_value(base, "count(cssd_chpid_info)")
    for family in ("single_path", "redundancy_lost", "without_path"):
        assert query_value(base, f"count(cssd_chpid_online_devices_{family})") == chpids, family
        assert query_value(base, f"count(cssd_css_online_devices_{family})") == 2.0, family
    redundancy_lost = rule_expression("CSSDRedundancyLost")
    without_path = rule_expression("CSSDOnlineDevicesWithoutPath")
    # The embedded topology: 0.0.3000-3001 have 0.4c and 0.4d, 0.4d in standby; the OSA triple
    # on 0.60 and the virtio devices on fe.00 were installed with one path (never redundant).
    assert by_label(base, redundancy_lost, "chpid") == {"0.4c": 2.0}
    assert query_value(base, 'cssd_chpid_online_devices_single_path{chpid="0.60"}') == 3.0
    assert query(base, without_path) == []

    watcher = Client(metrics_cssd.sock)
    client = Client(metrics_cssd.sock)
    try:
        watcher.call("subscribe-path-events", changes=["redundancy-lost", "last-path-lost"])
        # The 42 DASDs of 0.40-0.43 keep two paths after two varies; the third costs their
        # redundancy, a permanent error on the last their last path.
        for chpid in ("0.40", "0.41", "0.42"):
            assert client.call("vary-path", chpid=chpid, state="offline")["changed"] == 42
        wait_until(lambda: by_label(base, redundancy_lost, "chpid") == {"0.43": 42.0, "0.4c": 2.0}, 20,
                   "CSSDRedundancyLost's expression to name 0.43 with 42 devices")
        assert query(base, without_path) == []
        client.call("inject-path-fault", chpid="0.43", fault="permanent-error")
        wait_until(lambda: alert_firing(base, "CSSDOnlineDevicesWithoutPath", cssid="0"), 30,
                   "CSSDOnlineDevicesWithoutPath to fire for css 0")
        assert by_label(base, without_path, "cssid") == {"0": 42.0}
        assert by_label(base, 'cssd_chpid_online_devices_without_path > 0', "chpid") == {
            chpid: 42.0 for chpid in ("0.40", "0.41", "0.42", "0.43")}
        assert by_label(base, redundancy_lost, "chpid") == {"0.4c": 2.0}
        wait_until(lambda: query_value(base, 'cssd_path_changes_total{change="last-path-lost",cause="command"}')
                   == 1.0, 20, "the last-path-lost change counted")
        assert query_value(base, 'cssd_path_changes_total{change="redundancy-lost",cause="command"}') == 1.0

        lost = chpid_events(watcher, {"redundancy-lost", "last-path-lost"}, 2)
        assert [(e["chpid"], e["change"], e["subchannels"]) for e in lost] == [
            ("0.42", "redundancy-lost", 42), ("0.43", "last-path-lost", 42)]
        # Each follows the change that caused it: the next sequence number.
        assert lost[0]["sequence"] == 4 and lost[1]["sequence"] == 6

        # Recovery: the devices have a path again; nothing is lost, so no event; the alert ends.
        client.call("inject-path-fault", chpid="0.43", fault="recovered")
        wait_until(lambda: not alert_firing(base, "CSSDOnlineDevicesWithoutPath"), 30, "the alert to end")
        assert by_label(base, redundancy_lost, "chpid") == {"0.43": 42.0, "0.4c": 2.0}
        assert watcher.nothing_pending()
    finally:
        client.close()
        watcher.close()


def test_linux_sysfs_series_and_events_follow_the_tree(short_tmp):
    """linux-sysfs: the same series and events from what the tree says. 0.0.1009 (online) has
    0.4a and 0.4b; 0.0.100a (offline, not in use) has 0.46, 0.47, 0.4a and 0.4b."""
    tree = build_tree("lpar.json", short_tmp)
    server = start_with_metrics(short_tmp, "--backend", f"linux-sysfs:{tree}", "--poll-interval", "100",
                                "--no-inotify")
    port = server.extra["metrics_port"]
    watcher = Client(server.sock)
    try:
        watcher.call("subscribe-path-events", granularity="both", changes=["redundancy-lost", "last-path-lost"])
        first = scrape_values(port)
        for chpid in ("0.4a", "0.4b"):
            assert first[f'cssd_chpid_online_devices_redundancy_lost{{chpid="{chpid}"}}'] == 0
            assert first[f'cssd_chpid_online_devices_without_path{{chpid="{chpid}"}}'] == 0
        assert first['cssd_css_online_devices_without_path{cssid="0"}'] == 0

        # Someone's chchp -v 0 0.4b: 0.0.1009 runs on 0.4a alone.
        set_status(tree, "0.4b", "offline")
        wait_until(lambda: scrape_values(port)['cssd_chpid_online_devices_redundancy_lost{chpid="0.4a"}'] == 1, 20,
                   "0.0.1009 to count on 0.4a alone")
        events = watcher.events(2)
        assert [(e["event"], e["data"]["chpid"], e["data"]["change"]) for e in events] == [
            ("CHANNEL_PATH_CHANGED", "0.4b", "redundancy-lost"),
            ("SUBCHANNEL_PATHS_CHANGED", "0.4b", "redundancy-lost")]
        assert events[0]["data"]["subchannels"] == 1 and events[1]["data"]["devno"] == "0.0.1009"

        set_status(tree, "0.4a", "offline")
        wait_until(lambda: scrape_values(port)['cssd_css_online_devices_without_path{cssid="0"}'] == 1, 20,
                   "0.0.1009 to count without a path")
        values = scrape_values(port)
        assert values['cssd_chpid_online_devices_without_path{chpid="0.4a"}'] == 1
        assert values['cssd_chpid_online_devices_without_path{chpid="0.4b"}'] == 1
        assert values['cssd_chpid_online_devices_redundancy_lost{chpid="0.4a"}'] == 0
        events = watcher.events(2)
        assert [(e["data"]["chpid"], e["data"]["change"]) for e in events] == [
            ("0.4a", "last-path-lost"), ("0.4a", "last-path-lost")]
        assert values['cssd_path_changes_total{change="last-path-lost",cause="observed"}'] == 1
        # 0.0.100a lost 0.4a and 0.4b too, but it is offline: nobody uses it, nothing was told.
        assert watcher.nothing_pending()
    finally:
        watcher.close()
        server.stop()
