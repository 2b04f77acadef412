"""The `query-subchannels` page size that keeps a reply line under 64 KiB (issue #20).

DigitalOcean's go-qemu reads QMP with a bufio.Scanner and drops any line over its 64 KiB
token limit. API/css.md names the largest `limit` whose page stays under it, for the longest
entry the schema allows; this test measures that entry on a served page and checks the figure.
"""

from __future__ import annotations

import json
import os

import pytest

from harness.cssd import cssd_binary, cssd_server
from harness.qmp import Client


GO_QEMU_LINE = 64 * 1024
PAGE = 190  # the figure API/css.md states

# What the model cannot show at once but another backend or state can, in bytes over what the
# worst topology below serves: linux-sysfs adds `"vpm": 255` and `"device": false`; pnom and
# lpum may reach 3 digits (served as 0 here).
EXTRA = {
    "vpm": len(', "vpm": 255'),
    "device": len(', "device": false'),
    "pnom": len("255") - len("0"),
    "lpum": len("128") - len("0"),
}


def worst_topology(count: int) -> dict:
    """Subchannels with every field at its longest: two-digit cssid, ssid 3, four-digit
    numbers, eight two-digit chpids, four-digit types, QDIO, not enabled."""
    chpids = [f"fe.f{i}" for i in range(8)]
    return {
        "format": "cssd-topology", "version": 1,
        "chpids": [{"chpid": c, "type": "0x1a"} for c in chpids],
        "subchannels": [
            {"subchannel": f"fe.3.{0xffff - i:04x}", "devno": f"fe.3.{0xffff - i:04x}", "dev-type": "ffff/ff",
             "cu-type": "1731/ff", "enabled": False, "chpids": chpids}
            for i in range(count)
        ],
    }


def raw_replies(workdir, *requests):
    """The raw reply lines (the bytes go-qemu's scanner would read) of `requests` (each a dict of
    query-subchannels arguments) to a server on the worst-case topology of 400 subchannels."""
    if cssd_binary() is None:
        pytest.skip("cssd binary not found: build it (swift build) or set CSSD_BIN")
    path = os.path.join(workdir, "worst.json")
    with open(path, "w") as f:
        json.dump(worst_topology(400), f)
    with cssd_server(workdir, extra_args=["--topology", path]) as server:
        client = Client(server.sock)
        try:
            lines = []
            for arguments in requests:
                client.send("query-subchannels", **arguments)
                lines.append(client.file.readline())
            return lines
        finally:
            client.close()


def test_page_of_190_stays_under_go_qemus_line_limit(short_tmp):
    [line] = raw_replies(short_tmp, {"limit": PAGE})
    page = json.loads(line)["return"]
    assert len(page["subchannels"]) == PAGE and "next" in page
    # Every member the schema has is served, at its longest, but for EXTRA.
    entry = page["subchannels"][0]
    assert set(entry) | {"vpm", "device"} == {
        "subchannel", "devno", "dev-type", "cu-type", "enabled", "dnv", "pim", "pam", "pom", "lpm", "pnom", "lpum",
        "chpids", "type", "qdio", "vpm", "device"}
    assert entry["pim"] == entry["pam"] == entry["lpm"] == 255 and entry["type"] == "io" and entry["qdio"] is True
    worst = len(line) + PAGE * sum(EXTRA.values())
    assert worst < GO_QEMU_LINE, worst
    # The figure is the largest: one more entry of the longest kind would not fit.
    longest_entry = len(json.dumps(entry, separators=(", ", ": "))) + sum(EXTRA.values())
    assert worst + len(", ") + longest_entry >= GO_QEMU_LINE - 512, (worst, longest_entry)


AVAIL_PAGE = 175  # the figure API/css.json states for query-subchannels with 'availability'


def test_page_of_175_with_availability_stays_under_go_qemus_line_limit(short_tmp):
    """With 'availability' true every entry carries it: the model says "good", the longest
    value Linux shows is "no device" (5 bytes more)."""
    line, without = raw_replies(short_tmp, {"limit": AVAIL_PAGE, "availability": True}, {"limit": AVAIL_PAGE})
    page = json.loads(line)["return"]
    assert len(page["subchannels"]) == AVAIL_PAGE and "next" in page
    assert {s["availability"] for s in page["subchannels"]} == {"good"}
    assert "availability" not in json.loads(without)["return"]["subchannels"][0]  # only when asked
    extra = sum(EXTRA.values()) + len("no device") - len("good")
    worst = len(line) + AVAIL_PAGE * extra
    assert worst < GO_QEMU_LINE, worst
    entry = page["subchannels"][0]
    longest_entry = len(json.dumps(entry, separators=(", ", ": "))) + extra
    assert longest_entry == 369, longest_entry  # the figure API/css.json states
    assert worst + len(", ") + longest_entry >= GO_QEMU_LINE - 512, (worst, longest_entry)
