"""`cssctl lschp` / `cssctl lscss`: s390-tools' layouts, byte for byte.

(a) Against cssd's embedded topology: Tests/fixtures/golden/embedded.*.txt, made once by cssctl
    and checked by eye against the format rules (UPDATE_GOLDEN=1 rewrites them).
(b) Against `cssd --backend linux-sysfs:ROOT` over the trees make_sysfs.py builds from the
    fixture descriptions: the outputs of the real lschp/lscss over the same trees
    (Tests/fixtures/sysfs/golden, see the README there). Skipped when cssd has no such backend.
(c) Against `cssd --topology` with the description's topology: every lscss golden exactly; the
    lschp goldens with the cells the model cannot know rewritten (see `model_lschp_view`).
(d) make_sysfs.py itself: exact bytes of the files it writes.

A golden file's name is its command: `<fixture>.<tool>[_<arg>...].txt` runs `<tool> <arg>...`.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from harness.cssd import cssctl_binary, cssd_binary, cssd_server
from harness.paths import REPO_ROOT
from harness.process import Server


FIXTURES = REPO_ROOT / "Tests" / "fixtures"
SYSFS = FIXTURES / "sysfs"
REAL_GOLDEN = SYSFS / "golden"
EMBEDDED_GOLDEN = FIXTURES / "golden"
DESCRIPTIONS = ("lpar", "kvm-guest")
# Machines with what only a real machine shows (a device number without a ccw device, the
# kernel's vpm 00): the sysfs backend only; their goldens are derived from lscss.c (see the
# README there), and the model cannot serve them.
SYSFS_ONLY = ("field",)


def golden_command(path: Path) -> Tuple[str, List[str]]:
    """`lpar.lscss_--vpm_-u.txt` -> ("lpar", ["lscss", "--vpm", "-u"])."""
    fixture, _, rest = path.name[: -len(".txt")].partition(".")
    return fixture, rest.split("_")


def goldens(directory: Path, fixture: str) -> List[Path]:
    return sorted(p for p in directory.glob(f"{fixture}.*.txt"))


def listing(sock: str, tool: str, *args: str) -> subprocess.CompletedProcess:
    """Runs `cssctl TOOL --socket SOCK ARGS...`, output as bytes (trailing blanks matter)."""
    return subprocess.run([cssctl_binary(), tool, "--socket", sock, *args], capture_output=True, timeout=60)


def checked_listing(sock: str, tool: str, *args: str) -> bytes:
    p = listing(sock, tool, *args)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


def load_make_sysfs():
    spec = importlib.util.spec_from_file_location("make_sysfs", SYSFS / "make_sysfs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_sysfs = load_make_sysfs()


def description(name: str) -> dict:
    return json.loads((SYSFS / f"{name}.json").read_text())


# --------------------------------------------------------------------------
# Servers: one per (description, source), started on first use
# --------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def sysfs_backend_supported() -> bool:
    binary = cssd_binary()
    if not binary:
        return False
    p = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    return "--backend" in p.stdout and "linux-sysfs" in p.stdout


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> Dict[str, str]:
    """Each description built into a sysfs tree."""
    root = tmp_path_factory.mktemp("sysfs")
    result = {}
    for name in DESCRIPTIONS + SYSFS_ONLY:
        make_sysfs.build(description(name), str(root / name))
        result[name] = str(root / name)
    return result


@pytest.fixture(scope="module")
def servers(trees):
    """`get(name, source)` -> socket of a cssd serving description `name` from `source`:
    "model" (its topology via --topology) or "sysfs" (its tree via --backend linux-sysfs)."""
    if cssd_binary() is None:
        pytest.skip("cssd binary not found: build it (swift build) or set CSSD_BIN")
    running: Dict[Tuple[str, str], Server] = {}
    workdirs = []

    def get(name: str, source: str) -> str:
        if (name, source) not in running:
            workdir = tempfile.mkdtemp(prefix="qmpl", dir="/tmp")  # short: unix socket paths
            workdirs.append(workdir)
            if source == "model":
                topology = os.path.join(workdir, "topology.json")
                with open(topology, "w") as f:
                    json.dump(model_topology(name), f)
                args = ["--topology", topology]
            else:
                args = ["--backend", f"linux-sysfs:{trees[name]}"]
            running[(name, source)] = cssd_server(workdir, extra_args=args).start()
        return running[(name, source)].sock

    try:
        yield get
    finally:
        for server in running.values():
            server.stop()
        for workdir in workdirs:
            shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------
# (a) the embedded topology
# --------------------------------------------------------------------------

EMBEDDED_COMMANDS = [
    ["lschp"],
    ["lschp", "0.4d", "4e", "fe.00"],
    ["lscss"],
    ["lscss", "--vpm"],
    ["lscss", "-s", "-u"],
    ["lscss", "-d", "0.0.3000-0.0.3001,fe.0.0002"],
]


def golden_name(fixture: str, argv: List[str]) -> str:
    return f"{fixture}.{'_'.join(argv)}.txt"


@pytest.mark.parametrize("argv", EMBEDDED_COMMANDS, ids=lambda a: " ".join(a))
def test_embedded_golden(cssd, argv):
    out = checked_listing(cssd.sock, *argv)
    path = EMBEDDED_GOLDEN / golden_name("embedded", argv)
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(out)
    assert out == path.read_bytes()


def test_embedded_goldens_all_used():
    made = {golden_name("embedded", argv) for argv in EMBEDDED_COMMANDS}
    assert {p.name for p in EMBEDDED_GOLDEN.glob("embedded.*.txt")} == made


def test_listings_follow_path_changes(cssd):
    """Vary off and standby show up where lschp/lscss show them: Vary, Cfg., PAM and VPM."""
    for command, args in (("vary-path", ["chpid=0.41", "state=offline"]),
                          ("configure-chpid", ["chpid=0.42", "state=standby"])):
        p = subprocess.run([cssctl_binary(), "--socket", cssd.sock, command, *args], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    chp = checked_listing(cssd.sock, "lschp", "41", "42").decode().splitlines()
    # Cmg: the model's group (FICON: 2), in standby too, as the model's Shared (a kernel says
    # 'unknown' for both there: model_lschp_view).
    assert chp[2:] == ["0.41   0     1     1a    2    1       0101 ",
                       "0.42   1     0     1a    2    1       0102 "]
    css = checked_listing(cssd.sock, "lscss", "--vpm", "0.0.0003").decode().splitlines()
    assert css[2] == "0.0.1000 0.0.0003  3390/0c 3990/e9 yes  f0  d0  ff  90  40414243 00000000"


def test_lschp_json_is_the_reply_entries(cssd):
    p = subprocess.run([cssctl_binary(), "--socket", cssd.sock, "query-chpids"], capture_output=True, text=True)
    everything = json.loads(p.stdout)
    chosen = json.loads(checked_listing(cssd.sock, "lschp", "--json", "0.60", "4d"))
    assert chosen == [c for c in everything if c["chpid"] in ("0.4d", "0.60")]
    assert len(json.loads(checked_listing(cssd.sock, "lschp", "--json"))) == len(everything)


def test_lscss_json_combines_the_pages(cssd):
    listed = json.loads(checked_listing(cssd.sock, "lscss", "--json"))
    assert set(listed) == {"subchannels"}
    assert len(listed["subchannels"]) == 3 + 42 + 8 + 2 + 4
    short = json.loads(checked_listing(cssd.sock, "lscss", "--json", "-s", "0.0.0035-0.0.ffff"))
    assert [s["subchannel"] for s in short["subchannels"]] == ["0.0.0035", "0.0.0036"]


@pytest.mark.parametrize("argv,message", [
    (["lschp", "123"], "123 is not a valid channel-path ID"),
    (["lschp", "0.4g"], "0.4g is not a valid channel-path ID"),
    (["lscss", "0x5"], "Invalid ID specified: 0x5"),
    (["lscss", "0.0.0001-"], "Invalid ID specified: 0.0.0001-"),
    (["lscss", "-t", "3390/0c0"], "Invalid device type specified: 3390/0c0"),
])
def test_usage_errors_exit_64(short_tmp, argv, message):
    p = listing(os.path.join(short_tmp, "unused.sock"), *argv)
    assert p.returncode == 64
    assert message in p.stderr.decode()


def test_connection_failure_exits_2(short_tmp):
    for tool in ("lschp", "lscss"):
        p = listing(os.path.join(short_tmp, "absent.sock"), tool)
        assert p.returncode == 2 and p.stdout == b""
        assert b"cannot connect" in p.stderr


class FakeServer:
    """A QMP server on a unix socket that pages query-subchannels two at a time and refuses
    query-chpids, recording the arguments it was sent."""

    SUBCHANNELS = [
        {"subchannel": f"0.0.000{i}", "devno": f"0.0.100{i}", "dev-type": "3390/0c", "cu-type": "3990/e9",
         "enabled": i != 2, "dnv": True, "pim": 0xc0, "pam": 0xc0, "pom": 0xff, "lpm": 0x40, "pnom": 0,
         "lpum": 0, "chpids": ["0.40", "0.41", None, None, None, None, None, None],
         # Offline (not in use) as cssd says it since issue 22: lscss's Use column is blank.
         **({"online": False} if i == 2 else {})}
        for i in range(5)
    ]

    def __init__(self, path: str):
        self.path = path
        self.requests: List[dict] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def reply(self, request: dict) -> dict:
        command = request.get("execute")
        if command == "qmp_capabilities":
            return {"return": {}}
        if command == "query-subchannels":
            args = request.get("arguments", {})
            ids = [s["subchannel"] for s in self.SUBCHANNELS]
            first = ids.index(args["start"]) if "start" in args else 0
            page = {"subchannels": self.SUBCHANNELS[first:first + 2]}
            if first + 2 < len(ids):
                page["next"] = ids[first + 2]
            return {"return": page}
        return {"error": {"class": "CommandNotFound", "desc": f"The command {command} has not been found"}}

    def serve(self):
        conn, _ = self.listener.accept()
        with conn:
            conn.sendall(b'{"QMP": {"version": {}, "capabilities": []}}\r\n')
            buffer, decoder = "", json.JSONDecoder()
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data.decode()
                while buffer.strip():
                    try:
                        request, end = decoder.raw_decode(buffer.lstrip())
                    except ValueError:
                        break
                    buffer = buffer.lstrip()[end:]
                    self.requests.append(request)
                    # An event first: the client must skip it.
                    conn.sendall(b'{"event": "X", "data": {}, "timestamp": {"seconds": 0, "microseconds": 0}}\r\n')
                    conn.sendall(json.dumps({**self.reply(request), "id": request.get("id")}).encode() + b"\r\n")

    def close(self):
        self.listener.close()
        self.thread.join(timeout=5)


def test_lscss_pages_with_next_as_start(short_tmp):
    server = FakeServer(os.path.join(short_tmp, "fake.sock"))
    try:
        out = checked_listing(server.path, "lscss", "--vpm").decode().splitlines()
    finally:
        server.close()
    assert [r["arguments"] for r in server.requests if r["execute"] == "query-subchannels"] == [
        {"limit": 16384}, {"limit": 16384, "start": "0.0.0002"}, {"limit": 16384, "start": "0.0.0004"}]
    assert len(out) == 2 + 5
    assert out[4] == "0.0.1002 0.0.0002  3390/0c 3990/e9      c0  c0  ff  40  40410000 00000000"


def test_error_reply_exits_1(short_tmp):
    server = FakeServer(os.path.join(short_tmp, "fake.sock"))
    try:
        p = listing(server.path, "lschp")
    finally:
        server.close()
    assert p.returncode == 1 and p.stdout == b""
    assert p.stderr.decode().strip() == "CommandNotFound: The command query-chpids has not been found"


# --------------------------------------------------------------------------
# (b) the sysfs backend against the real tools
# --------------------------------------------------------------------------

REAL_CASES = [(name, path) for name in DESCRIPTIONS for path in goldens(REAL_GOLDEN, name)]


def test_real_goldens_exist():
    for name in DESCRIPTIONS:
        tools = {golden_command(p)[1][0] for p in goldens(REAL_GOLDEN, name)}
        assert tools == {"lschp", "lscss"}, name


@pytest.mark.parametrize("name,path", REAL_CASES, ids=[p.name for _, p in REAL_CASES])
def test_sysfs_backend_matches_real_tools(servers, name, path):
    if not sysfs_backend_supported():
        pytest.skip("cssd has no --backend linux-sysfs:ROOT (see cssd --help)")
    _, argv = golden_command(path)
    assert checked_listing(servers(name, "sysfs"), *argv) == path.read_bytes()


SYSFS_ONLY_CASES = [(name, path) for name in SYSFS_ONLY for path in goldens(REAL_GOLDEN, name)]


@pytest.mark.parametrize("name,path", SYSFS_ONLY_CASES, ids=[p.name for _, p in SYSFS_ONLY_CASES])
def test_sysfs_backend_matches_lscss_source(servers, name, path):
    """A subchannel whose device number has no ccw device: lscss.c fill_io_devid prints
    dev_busid with blank DevType, CU Type and Use, and -t or -d with a range skip it; VPM is
    the vpm file as it is."""
    if not sysfs_backend_supported():
        pytest.skip("cssd has no --backend linux-sysfs:ROOT (see cssd --help)")
    _, argv = golden_command(path)
    assert checked_listing(servers(name, "sysfs"), *argv) == path.read_bytes()


def test_query_subchannels_says_when_no_device_is_there(servers):
    if not sysfs_backend_supported():
        pytest.skip("cssd has no --backend linux-sysfs:ROOT (see cssd --help)")
    listed = json.loads(checked_listing(servers("field", "sysfs"), "lscss", "--json"))["subchannels"]
    by_id = {s["subchannel"]: s for s in listed}
    assert by_id["0.0.0001"]["device"] is False and by_id["0.0.0001"]["devno"] == "0.0.1001"
    assert "device" not in by_id["0.0.0000"] and "device" not in by_id["0.0.0002"]
    assert [by_id[i]["vpm"] for i in ("0.0.0000", "0.0.0001", "0.0.0002")] == [0x80, 0, 0]
    # Other subchannel types: listed only when asked for, with their type, no device, no paths.
    assert "0.0.ff00" not in by_id
    every = json.loads(checked_listing(servers("field", "sysfs"), "lscss", "--json", "-a"))["subchannels"]
    others = {s["subchannel"]: s for s in every if s["type"] != "io"}
    assert {i: (s["type"], s["devno"], s["pim"]) for i, s in others.items()} == {
        "0.0.ff00": ("chsc", "", 0), "0.1.0100": ("eadm", "", 0)}
    # The model: every device is there, and it has no vpm.
    model = json.loads(checked_listing(servers("lpar", "model"), "lscss", "--json"))["subchannels"]
    assert all("device" not in s and "vpm" not in s for s in model)


def test_orphaned_devices_are_served_and_followed(servers, trees):
    """css0/defunct/: query-orphaned-devices serves the devices there (the model: none), and
    one that appears behind cssd's back is listed after the next layout check."""
    if not sysfs_backend_supported():
        pytest.skip("cssd has no --backend linux-sysfs:ROOT (see cssd --help)")
    sock = servers("field", "sysfs")
    query = lambda s: json.loads(subprocess.run([cssctl_binary(), "--socket", s, "query-orphaned-devices"],
                                                capture_output=True, text=True, timeout=30).stdout)
    assert query(sock) == [
        {"devno": "0.0.3000", "dev-type": "3390/0c", "cu-type": "3990/e9", "online": True},
        {"devno": "0.1.3001", "dev-type": "1732/01", "cu-type": "1731/01", "online": False}]
    assert query(servers("lpar", "model")) == []
    listed = json.loads(checked_listing(sock, "lscss", "--json", "-t", "1732"))
    assert [d["devno"] for d in listed["orphaned-devices"]] == ["0.1.3001"]
    # -s: 0.0.3000 shortened, then lscss stops at 0.1.3001; -u: N/A, YES.
    cells = ["3000", "N/A", "3390/0C", "3990/E9", "YES", "", "", "", ""]
    assert checked_listing(sock, "lscss", "-s", "-u").decode().splitlines()[-1] == \
        " ".join(c.ljust(w) for c, w in zip(cells, (8, 9, 7, 7, 4, 3, 3, 4, 17)))
    make_sysfs.write_defunct(trees["field"], os.path.join(trees["field"], "devices", "css0"), "0.0.3002",
                             {"dev_type": (0x3390, 0x0c), "cu_type": (0x3990, 0xe9), "online": False})
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(query(sock)) != 3:
            time.sleep(0.2)
        assert [d["devno"] for d in query(sock)] == ["0.0.3000", "0.0.3002", "0.1.3001"]
    finally:
        shutil.rmtree(os.path.join(trees["field"], "devices", "css0", "defunct", "0.0.3002"))


# --------------------------------------------------------------------------
# (c) the model, from the same topology
# --------------------------------------------------------------------------

LSCHP_WIDTHS = (6, 5, 5, 5, 4, 6, 6)


def model_topology(name: str) -> dict:
    """Description `name`'s topology for the model, with a channel-measurement section giving
    each path the group its sysfs description has ('none' where sysfs says 'unknown'), so that
    the model's Cmg (query-chpids, lschp) is the real one."""
    topology = dict(description(name)["topology"])
    groups = description(name).get("sysfs", {}).get("chpids", {})
    topology["channel-measurement"] = {"chpids": [
        {"chpid": c["chpid"], "cmg": groups.get(c["chpid"], {}).get("cmg", "none")} for c in topology["chpids"]]}
    return topology


def model_lschp_view(golden: bytes, topology: dict) -> bytes:
    """The real lschp output as the model shows the same machine (its Cmg, as the sysfs
    description's, comes from the topology's channel-measurement section: `model_topology`).
    A topology cannot say:
    - Shared where the kernel says 'unknown' (a path not configured, or no measurement
      characteristics as in a QEMU guest): the model still knows the topology's flag, 1 or 0;
    - an internal channel id, '(07c0)': a topology pchid is always physical, ' 07c0 '.
    Everything else (CHPID, Vary, Cfg., Type, physical PCHIDs, order) must be equal."""
    shared = {c["chpid"]: c.get("shared", False) for c in topology["chpids"]}
    lines = golden.decode().split("\n")
    for index in range(2, len(lines) - 1):
        cells, position = [], 0
        for width in LSCHP_WIDTHS:
            cells.append(lines[index][position:position + width])
            position += width + 1
        chpid = cells[0].strip()
        if cells[5].strip() == "-":
            cells[5] = "1" if shared[chpid] else "0"
        if cells[6].startswith("("):
            cells[6] = f" {cells[6][1:5]} "
        lines[index] = " ".join(cell.ljust(width) for cell, width in zip(cells, LSCHP_WIDTHS))
    return "\n".join(lines).encode()


def test_model_lschp_view_changes_only_what_it_says():
    golden = (REAL_GOLDEN / "lpar.lschp.txt").read_bytes()
    view = model_lschp_view(golden, description("lpar")["topology"]).decode().splitlines()
    real = golden.decode().splitlines()
    changed = {(r[:4], r[25:], v[25:]) for r, v in zip(real, view) if r != v}
    assert changed == {  # (chpid, real Cmg..PCHID, the model's)
        ("0.48", "-    -       0150 ", "-    1       0150 "),
        ("0.f0", "-    1      (07c0)", "-    1       07c0 "),
    }


@pytest.mark.parametrize("name", DESCRIPTIONS)
def test_topology_loads(servers, name):
    sock = servers(name, "model")
    p = subprocess.run([cssctl_binary(), "--socket", sock, "query-css"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    topology = description(name)["topology"]
    assert json.loads(p.stdout)[0]["subchannels"] == len(topology["subchannels"])
    assert json.loads(p.stdout)[0]["chpids"] == len(topology["chpids"])


@pytest.mark.parametrize("name,path", REAL_CASES, ids=[p.name for _, p in REAL_CASES])
def test_model_matches_real_tools(servers, name, path):
    _, argv = golden_command(path)
    expected = path.read_bytes()
    if argv[0] == "lschp":
        expected = model_lschp_view(expected, description(name)["topology"])
    if "--avail" in argv:
        expected = model_avail_view(expected)
    assert checked_listing(servers(name, "model"), *argv) == expected


def model_avail_view(golden: bytes) -> bytes:
    """The real lscss --avail output as the model shows it: the model has no device states
    (a boxed device is one a partition reserved), so every device there is `good`. Only the
    last column of a row that says something else changes."""
    lines = golden.decode().split("\n")
    for index in range(2, len(lines)):
        head, cell = lines[index][:-6], lines[index][-6:]  # Avail. is the last column, 6 wide
        if cell.strip().lower() in ("boxed", "no path", "no device"):
            lines[index] = head + ("GOOD  " if cell.strip().isupper() else "good  ")
    return "\n".join(lines).encode()


def test_model_avail_view_changes_only_what_it_says():
    golden = (REAL_GOLDEN / "lpar.lscss_--avail.txt").read_bytes()
    real, view = golden.decode().splitlines(), model_avail_view(golden).decode().splitlines()
    assert [(r, v) for r, v in zip(real, view) if r != v] == [(
        "0.0.1007 0.0.000d  3390/0c 3990/e9      c0  40  ff   48490000 00000000 boxed ",
        "0.0.1007 0.0.000d  3390/0c 3990/e9      c0  40  ff   48490000 00000000 good  ")]


def test_subchannel_without_device_number(short_tmp):
    """No valid device number: lscss shows the subchannel's dev_busid, 'none', and no device
    columns; -s and -d leave it out (checked against the real lscss over make_sysfs's tree)."""
    topology = {"format": "cssd-topology", "version": 1,
                "chpids": [{"chpid": "0.40", "type": "0x1a", "shared": True, "pchid": "0x100"}],
                "subchannels": [
                    {"subchannel": "0.0.0000", "devno": None, "dev-type": "3390/0c", "cu-type": "3990/e9",
                     "enabled": True, "chpids": ["0.40"]},
                    {"subchannel": "0.0.0001", "devno": "0.0.1001", "dev-type": "3390/0c", "cu-type": "3990/e9",
                     "online": False, "chpids": ["0.40"]}]}
    path = os.path.join(short_tmp, "top.json")
    with open(path, "w") as f:
        json.dump(topology, f)
    with cssd_server(short_tmp, extra_args=["--topology", path]) as server:
        rows = checked_listing(server.sock, "lscss").decode().splitlines()[2:]
        short = checked_listing(server.sock, "lscss", "-s", "-u").decode().splitlines()[2:]
        by_device = checked_listing(server.sock, "lscss", "-d", "0.0.0000-0.0.ffff").decode().splitlines()[2:]
    assert rows == ["none     0.0.0000                       80  80  ff   40000000 00000000",
                    "0.0.1001 0.0.0001  3390/0c 3990/e9      80  80  ff   40000000 00000000"]
    assert short == ["1001     0001      3390/0C 3990/E9      80  80  FF   40000000 00000000"]
    assert by_device == rows[1:]


# --------------------------------------------------------------------------
# (d) make_sysfs.py
# --------------------------------------------------------------------------

def read(tree: str, relative: str) -> bytes:
    with open(os.path.join(tree, relative), "rb") as f:
        return f.read()


def test_make_sysfs_channel_paths(trees):
    css = os.path.join(trees["lpar"], "devices", "css0")
    expected = {
        "chp0.40/status": b"online\n", "chp0.49/status": b"offline\n",
        "chp0.40/configure": b"1\n", "chp0.48/configure": b"0\n",
        "chp0.40/type": b"1a\n", "chp0.60/type": b"11\n",
        "chp0.40/cmg": b"2\n", "chp0.46/cmg": b"unknown\n", "chp0.48/cmg": b"unknown\n",
        "chp0.40/shared": b"1\n", "chp0.4a/shared": b"0\n", "chp0.48/shared": b"unknown\n",
        "chp0.40/chid": b"0100\n", "chp0.40/chid_external": b"1\n",
        "chp0.f0/chid": b"07c0\n", "chp0.f0/chid_external": b"0\n",
        "chp0.4b/chid": b"", "chp0.4b/chid_external": b"",
        "real_cssid": b"0\n",
    }
    assert {name: read(css, name) for name in expected} == expected
    assert sorted(n for n in os.listdir(css) if n.startswith("chp")) == [
        f"chp0.{c}" for c in ("40", "41", "42", "43", "44", "45", "46", "47", "48", "49", "4a", "4b", "60", "f0")]
    assert stat.S_IMODE(os.stat(os.path.join(css, "chp0.40", "status")).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(os.path.join(css, "chp0.40", "type")).st_mode) == 0o444


def test_make_sysfs_subchannels(trees):
    sch = os.path.join(trees["lpar"], "devices", "css0", "0.0.000b")
    expected = {
        "chpids": b"48 44 49 45 00 00 00 00 \n",  # 25 bytes, a blank before the newline
        "pimpampom": b"f0 70 ff\n",               # 0.48 is in standby: out of PAM
        "vpm": b"50\n",                           # 0.49 is varied offline: out of vpm too
        "dev_busid": b"0.0.1005\n", "type": b"0\n", "modalias": b"css:t0\n", "driver_override": b"(null)\n",
        "0.0.1005/devtype": b"3390/0c\n", "0.0.1005/cutype": b"3990/e9\n", "0.0.1005/online": b"1\n",
        "0.0.1005/modalias": b"ccw:t3990mE9dt3390dm0C\n", "0.0.1005/availability": b"good\n",
        "0.0.1005/cmb_enable": b"0\n",
    }
    assert {name: read(sch, name) for name in expected} == expected
    assert read(trees["lpar"], "devices/css0/0.0.0008/0.0.1002/online") == b"0\n"
    assert read(trees["lpar"], "devices/css0/0.0.000d/0.0.1007/availability") == b"boxed\n"
    assert read(trees["lpar"], "devices/css0/0.0.000c/chpids") == b"40 41 42 43 44 45 46 47 \n"
    assert read(trees["lpar"], "devices/css0/0.1.0001/dev_busid") == b"0.1.1101\n"


def test_make_sysfs_links(trees):
    root = trees["lpar"]
    link = os.path.join(root, "bus", "css", "devices", "0.0.000b")
    assert os.readlink(link) == "../../../devices/css0/0.0.000b"
    device = os.path.join(root, "bus", "ccw", "devices", "0.0.1005")
    assert os.path.realpath(device) == os.path.realpath(os.path.join(root, "devices", "css0", "0.0.000b", "0.0.1005"))
    assert len(os.listdir(os.path.join(root, "bus", "css", "devices"))) == 19
    assert os.listdir(os.path.join(root, "devices", "css0", "defunct")) == []


def test_make_sysfs_kvm_guest(trees):
    css = os.path.join(trees["kvm-guest"], "devices", "css0")
    assert read(css, "real_cssid") == b"fe\n"
    assert read(css, "chp0.00/type") == b"32\n"
    assert read(css, "chp0.00/shared") == b"unknown\n"  # no measurement characteristics in QEMU
    assert read(css, "chp0.00/chid") == b""
    assert read(css, "0.0.0000/chpids") == b"00 00 00 00 00 00 00 00 \n"
    assert read(css, "0.0.0000/pimpampom") == b"80 80 ff\n"
    assert read(css, "0.0.0000/0.0.0000/devtype") == b"n/a\n"
    assert read(css, "0.0.0000/0.0.0000/modalias") == b"ccw:t3832m01dtdm\n"
    assert read(css, "0.0.0003/0.0.000a/cutype") == b"3832/05\n"


def test_make_sysfs_without_device_number(tmp_path):
    make_sysfs.build({"topology": {
        "format": "cssd-topology", "version": 1,
        "chpids": [{"chpid": "0.40", "type": 26, "configure": "reserved"}],
        "subchannels": [{"subchannel": "0.0.7", "devno": None, "cu-type": "3990/e9", "chpids": ["0.40"]}]},
        "sysfs": {"chpids": {"0.40": {"configure": None}}}}, str(tmp_path / "t"))
    sch = tmp_path / "t" / "devices" / "css0" / "0.0.0007"
    assert (sch / "dev_busid").read_bytes() == b"none\n"
    assert (sch / "pimpampom").read_bytes() == b"80 00 ff\n"
    assert [p.name for p in sch.iterdir() if p.is_dir()] == []
    assert (tmp_path / "t" / "devices" / "css0" / "chp0.40" / "configure").read_bytes() == b""


@pytest.mark.parametrize("change,message", [
    (lambda d: d["topology"]["chpids"][0].update(chpid="fe.40"), "ids must be in css 0"),
    (lambda d: d["sysfs"]["chpids"]["0.40"].update(cgm=2), "unknown key 'cgm'"),
    (lambda d: d["sysfs"]["chpids"].update({"0.48": {"cmg": 2}}), "no cmg"),
    (lambda d: d["sysfs"]["chpids"].update({"0.4b": {"chid_external": 0}}), "for a chpid with a pchid"),
    (lambda d: d["sysfs"]["devices"].update({"0.0.9999": {}}), "not a device bus id"),
    (lambda d: d.update(extra=1), "unknown key 'extra'"),
])
def test_make_sysfs_refuses(tmp_path, change, message):
    d = description("lpar")
    change(d)
    with pytest.raises(make_sysfs.DescriptionError, match=message):
        make_sysfs.build(d, str(tmp_path / "t"))


def test_make_sysfs_command_line(tmp_path):
    script = str(SYSFS / "make_sysfs.py")
    p = subprocess.run(["python3", script, str(SYSFS / "kvm-guest.json"), str(tmp_path / "t")], capture_output=True)
    assert p.returncode == 0 and p.stderr == b""
    p = subprocess.run(["python3", script, str(SYSFS / "kvm-guest.json"), str(tmp_path / "t")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "exists and is not empty" in p.stderr
    assert subprocess.run(["python3", script], capture_output=True).returncode == 64
