"""Channel measurement (issue 21) in Prometheus: a real Prometheus scrapes cssd (model backend)
and evaluates the shipped recording rules (Deploy/prometheus/cssd-rules.yml) to the same
utilization and rates as `query-chpid-measurements`, for paths of CMG 1, 2 and 3.

The model's counters are a pure function of the server's monotonic clock and the load set
per chpid; the machine updates them every 2 s. The loads are set and the test waits until
the query reports a whole interval under them before Prometheus starts, so that every window
Prometheus evaluates holds one load: then each rule's value is the query's, whatever the
scrape times (the rules divide by the measurement's own clock).
"""

from __future__ import annotations

import json
import math
import os
import subprocess

from harness.cssd import start_with_metrics
from harness.net import wait_until
from harness.paths import REPO_ROOT
from harness.prometheus import http_get, query, run_prometheus, scrape_values, tool
from harness.qmp import Client

RULES = REPO_ROOT / "Deploy" / "prometheus" / "cssd-rules.yml"

# chpstat metric key -> recording rule (Deploy/prometheus/cssd-rules.yml).
RULE_OF = {
    "util_part": "chpid:cssd_util_part_percent:rate1m",
    "util_total": "chpid:cssd_util_total_percent:rate1m",
    "util_bus": "chpid:cssd_util_bus_percent:rate1m",
    "read_part": "chpid:cssd_read_part_bytes_per_second:rate1m",
    "read_total": "chpid:cssd_read_total_bytes_per_second:rate1m",
    "write_part": "chpid:cssd_write_part_bytes_per_second:rate1m",
    "write_total": "chpid:cssd_write_total_bytes_per_second:rate1m",
    "ficon_rate": "chpid:cssd_ficon_rate_per_second:rate1m",
    "ficon_active": "chpid:cssd_ficon_active:rate1m",
    "ficon_defer": "chpid:cssd_ficon_defer_per_second:rate1m",
    "hpf_rate": "chpid:cssd_hpf_rate_per_second:rate1m",
    "hpf_defer": "chpid:cssd_hpf_defer_per_second:rate1m",
    "msg_rate_part": "chpid:cssd_msg_rate_part_per_second:rate1m",
    "msg_rate_total": "chpid:cssd_msg_rate_total_per_second:rate1m",
    "msg_size_part": "chpid:cssd_msg_size_part_bytes:rate1m",
    "msg_size_total": "chpid:cssd_msg_size_total_bytes:rate1m",
    "send_fail_part": "chpid:cssd_send_fail_part_per_second:rate1m",
    "rcv_fail_part": "chpid:cssd_rcv_fail_part_per_second:rate1m",
    "rcv_fail_total": "chpid:cssd_rcv_fail_total_per_second:rate1m",
}

# Two FICON paths (CMG 2), an OSA (CMG 1) and a coupling link (CMG 3, data units of 256 bytes,
# message units of 64: MeasurementModel.defaultCMCB), each its type's usual group.
TOPOLOGY = {
    "format": "cssd-topology", "version": 1,
    "chpids": [{"chpid": "0.40", "type": "0x1a", "shared": True}, {"chpid": "0.41", "type": "0x1a"},
               {"chpid": "0.60", "type": "0x11"}, {"chpid": "0.f0", "type": "0x24"}],
    "subchannels": [{"subchannel": "0.0.0000", "devno": "0.0.1000", "dev-type": "3390/0c", "cu-type": "3990/e9",
                     "chpids": ["0.40", "0.41"]}],
}

# Loads that make whole counts per 2 s update (the model floors its counters): 4,000,000 work
# units/s, 5,000,000 bus cycles/s and 4096-byte data units per CMG 2 path, 15,625 ticks of
# 128 us per update for CMG 1. Then every interval has the same deltas and the query's last
# interval is any window's average.
LOADS = {
    2: [{"util_part": 40, "util_total": 95, "util_bus": 30, "read_part": 4096 * 50000, "read_total": 4096 * 200000,
         "write_part": 4096 * 25000, "write_total": 4096 * 75000, "ficon_rate": 1000, "ficon_active": 3,
         "ficon_defer": 5, "hpf_rate": 4000, "hpf_active": 2, "hpf_defer": 1},
        {"util_part": 10, "util_total": 20, "read_part": 4096 * 500, "read_total": 4096 * 1000}],
    1: [{"util_part": 32, "util_total": 64}],
    # CMG 3: 1000 and 4000 data units of 256 bytes, 100 and 300 message units of 64 bytes per
    # second (so 40- and 53.3-byte messages), 5 failed sends, 1 and 3 refused messages.
    3: [{"write_part": 256 * 1000, "write_total": 256 * 4000, "msg_rate_part": 64 * 100,
         "msg_rate_total": 64 * 300, "send_fail_part": 5, "rcv_fail_part": 1, "rcv_fail_total": 3}],
}


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def test_recording_rules_give_the_querys_utilization(short_tmp):
    topology = os.path.join(short_tmp, "top.json")
    with open(topology, "w") as f:
        json.dump(TOPOLOGY, f)
    server = start_with_metrics(short_tmp, "--topology", topology)
    client = Client(server.sock)
    try:
        port = server.extra["metrics_port"]
        # Disabled at start: every chpid's info series says why, no counter yet.
        values = scrape_values(port)
        assert values['cssd_channel_measurement_facility_state{state="disabled"}'] == 1.0
        reasons = {k: v for k, v in values.items() if k.startswith("cssd_chpid_measurement_info{")}
        assert reasons and all('reason="facility-disabled"' in k or 'cmg=""' in k for k in reasons), reasons
        assert not any(k.startswith("cssd_chpid_channel_work_units_total") for k in values)

        assert client.call("set-channel-measurement", enabled=True)["state"] == "enabled"
        paths = client.call("query-chpid-measurements")["channel-paths"]
        loaded: dict[str, dict] = {}
        for cmg, loads in LOADS.items():
            chpids = [p["chpid"] for p in paths if p.get("cmg") == cmg][:len(loads)]
            assert len(chpids) == len(loads), f"the topology lacks CMG {cmg} paths: {paths}"
            for chpid, load in zip(chpids, loads):
                client.call("set-chpid-load", chpid=chpid, load=load)
                loaded[chpid] = load

        def first(chpid: str) -> str:
            return next(iter(loaded[chpid]))

        def under_load() -> dict | None:
            reply = client.call("query-chpid-measurements", chpids=list(loaded))["channel-paths"]
            metrics = {p["chpid"]: p.get("metrics") for p in reply}
            if all(m and _close(m[first(c)], loaded[c][first(c)]) for c, m in metrics.items()):
                return metrics
            return None

        wait_until(lambda: under_load() is not None, 30, "a whole measurement interval under the loads")
        text = http_get(f"http://127.0.0.1:{port}/metrics")[2]
        check = subprocess.run([tool("promtool"), "check", "metrics"], input=text, capture_output=True)
        assert check.returncode == 0, (check.stdout + check.stderr).decode()

        with run_prometheus(short_tmp, {
            "global": {"scrape_interval": "500ms", "evaluation_interval": "500ms"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "cssd", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
        }) as base:
            def rule_values(rule: str) -> dict[str, float]:
                return {r["metric"]["chpid"]: float(r["value"][1]) for r in query(base, rule)}

            wait_until(lambda: all(c in rule_values(RULE_OF[first(c)]) for c in loaded), 60,
                       "the recording rules to cover every loaded chpid")
            expected = under_load()
            assert expected is not None
            for chpid, metrics in expected.items():
                # The join labels: the HMC exporter's chpid label and the partition's name.
                info = query(base, f'cssd_chpid_measurement_info{{chpid="{chpid}"}}')
                assert len(info) == 1 and info[0]["metric"]["channel_css_chpid"] == chpid
                assert info[0]["metric"]["partition"] == "MODEL" and info[0]["metric"].get("reason", "") == ""  # Prometheus drops empty labels
                compared = 0
                for key, rule in RULE_OF.items():
                    want = metrics.get(key)
                    if want is None:
                        continue
                    got = rule_values(rule).get(chpid)
                    assert got is not None, f"{rule} has no value for {chpid} (query: {key}={want})"
                    assert _close(got, want), f"{chpid} {key}: rule {got}, query {want}"
                    compared += 1
                assert compared >= 2, (chpid, metrics)
    finally:
        client.close()
        server.stop()
