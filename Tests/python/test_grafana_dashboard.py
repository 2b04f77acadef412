"""Deploy/grafana/cssd-dashboard.json against a real Prometheus scraping cssd with the shipped
rules (Grafana itself is not installed here): every panel's every query, with the dashboard's
variables as Grafana would fill them, is accepted by Prometheus and returns series once cssd has
something to show (a path varied and faulted, a device without a path, a measured chpid under
load, commands run)."""

from __future__ import annotations

import json
import re

import pytest

from harness.cssd import start_with_metrics
from harness.net import wait_until
from harness.paths import REPO_ROOT
from harness.prometheus import http_get, run_prometheus
from harness.qmp import Client

import urllib.error
import urllib.parse

DASHBOARD = REPO_ROOT / "Deploy" / "grafana" / "cssd-dashboard.json"
RULES = REPO_ROOT / "Deploy" / "prometheus" / "cssd-rules.yml"


def filled(expr: str) -> str:
    """The query as Grafana sends it with every instance selected and a 15 s scrape."""
    return expr.replace("$instance", ".*").replace("$__rate_interval", "1m")


def test_the_dashboard_is_grafanas_shape():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert names == ["datasource", "instance"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and len(ids) >= 10
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"]), panel["title"]
        for target in panel["targets"]:
            # Every query follows the dashboard's host selection.
            assert 'instance=~"$instance"' in target["expr"], (panel["title"], target["expr"])


def test_every_panel_query_returns_series_from_a_real_prometheus(short_tmp):
    dashboard = json.loads(DASHBOARD.read_text())
    server = start_with_metrics(short_tmp)
    client = Client(server.sock)
    try:
        # Something in every panel: a measured chpid under load, a path offline and one in
        # error, devices without a path (0.60's OSA devices: force takes their last path).
        assert client.call("set-channel-measurement", enabled=True)["state"] == "enabled"
        paths = client.call("query-chpid-measurements")["channel-paths"]
        chpid = next(p["chpid"] for p in paths if p.get("cmg") == 2)
        client.call("set-chpid-load", chpid=chpid, load={"util_part": 40, "util_total": 95, "util_bus": 30,
                                                          "read_part": 4096 * 50000, "read_total": 4096 * 200000,
                                                          "write_part": 4096 * 25000, "write_total": 4096 * 75000})
        port = server.extra["metrics_port"]
        with run_prometheus(short_tmp, {
            "global": {"scrape_interval": "500ms", "evaluation_interval": "500ms"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "cssd", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
        }) as base:
            client.call("vary-path", chpid="0.41", state="offline")
            client.call("inject-path-fault", chpid="0.42", fault="permanent-error")
            client.call("configure-chpid", chpid="0.60", state="standby", force=True)
            client.call("subscribe-path-events")

            def answer(expr: str):
                url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": filled(expr)})
                status, _, body = http_get(url)
                reply = json.loads(body)
                assert status == 200 and reply["status"] == "success", (expr, reply)
                return reply["data"]["result"]

            # The instance variable's own query.
            wait_until(lambda: answer("group by (instance) (cssd_build_info)"), 30, "cssd_build_info")
            for panel in dashboard["panels"]:
                for target in panel["targets"]:
                    expr = target["expr"]
                    wait_until(lambda: answer(expr), 90, f"{panel['title']}: {expr}")
            # The values say what happened.
            assert float(answer('sum(cssd_chpid_vary_state{instance=~".*",state="offline"})')[0]["value"][1]) == 1.0
            assert float(answer('sum(cssd_css_online_devices_without_path{instance=~".*"})')[0]["value"][1]) >= 3
    finally:
        client.close()
        server.stop()


@pytest.mark.parametrize("expr", ["", "sum(", "rate(cssd_qmp_commands_total)"])
def test_the_check_would_catch_a_bad_query(short_tmp, expr):
    """The same check refuses what Prometheus refuses (a test that cannot fail is no test)."""
    server = start_with_metrics(short_tmp)
    try:
        with run_prometheus(short_tmp, {"global": {"scrape_interval": "1s"}, "scrape_configs": []}) as base:
            url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": filled(expr)})
            with pytest.raises(urllib.error.HTTPError) as refused:
                http_get(url)
            assert refused.value.code == 400 and json.loads(refused.value.read())["status"] == "error"
    finally:
        server.stop()
