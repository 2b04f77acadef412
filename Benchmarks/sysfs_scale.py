#!/usr/bin/env python3
"""How the linux-sysfs backend holds up as the machine grows (issue 15's figures).

For each size: a synthetic topology (32 chpids, 8 paths per subchannel, css 0) from
`cssctl gen-topology`, wrapped as {"topology": ...} and built into a fixture tree with
Tests/fixtures/sysfs/make_sysfs.py; then release cssd with `--backend linux-sysfs:TREE`, the
default --poll-interval (1000 ms) and --sweep-interval (30000 ms), `--no-inotify` (a fixture
file written by this script would otherwise be seen at once by inotify, which on a real host
sees only writes by processes: the kernel's own changes are found by polling, the sweep and the
kernel log, which is what is measured here) and `--kernel-log FIFO`. Measured:
- start-up: from exec to the socket accepting a connection (the first reading of the tree);
- memory: VmRSS above a server on a 16-subchannel tree, per subchannel;
- idle CPU over 10 s, nothing changing (polling and sweeping go on);
- 10 s of back-to-back query-version on one connection while it polls and sweeps: p50/p99/max;
- a chpid's `status` and `configure` written behind cssd's back, until CHANNEL_PATH_CHANGED
  reaches a subscriber (bound: poll interval + 100 ms);
- a kernel-log line (`crw_info : CRW reports ... rsc=4 ... rsid=XX`) after one subchannel's
  PAM bit for that chpid was cleared (a member in the last quarter of the path's, which are
  read in id order), until that subchannel's SUBCHANNEL_PATHS_CHANGED arrives (bound: 200 ms);
- one subchannel's POM and `vpm` bit for a path cleared (the channel subsystem found the path
  not operational during an I/O, and path verification dropped it: no channel report, no log
  line), until its event arrives (bound: the sweep interval; the sweep reads `vpm` while the
  kernel log is followed, API/linux-sysfs.md);
- the read(2) calls per second while idle (`syscr` of /proc/PID/io): the file reads of the
  sweep and the tick, which is what the idle figure is made of on any machine;
- `vary-path` round trips (offline and online on 10 chpids): the reply waits for the re-read of
  the chpid's subchannels.
Usage: Benchmarks/sysfs_scale.py [SIZES...]   (default 4096 16384 65536 262144)
Two builds in one run, on the same tree per size, alternating: CSSD_BINS=before=PATH,after=PATH.
IDLE_S sets the idle measurement's length (default 10 s).
Build first: swift build -c release --product cssd && swift build -c release --product cssctl
Trees are built under $BENCH_DIR (default /tmp) and removed afterwards; 262,144 subchannels
need about 14 GB of disk on ext4 (4 KiB per attribute file) and several minutes to build, or a
few hundred MB on a loop-mounted ext4 with inline_data (Benchmarks/RESULTS.md, "262,144").
"""

import json
import os
import random
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSSD = os.environ.get("CSSD", os.path.join(ROOT, ".build/release/cssd"))
CSSCTL = os.environ.get("CSSCTL", os.path.join(ROOT, ".build/release/cssctl"))
MAKE_SYSFS = os.path.join(ROOT, "Tests/fixtures/sysfs/make_sysfs.py")
POLL_S = 1.0
SWEEP_S = 30.0
IDLE_S = float(os.environ.get("IDLE_S", "10"))


class Client:
    """A QMP client with its own line buffer, so that waiting for an event can use select."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.buffer = b""
        self.events = []
        self.readline()
        self.call("qmp_capabilities")

    def readline(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buffer:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                    return None
            data = self.sock.recv(1 << 20)
            if not data:
                raise RuntimeError("connection closed")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def call(self, command, **arguments):
        self.sock.sendall(json.dumps({"execute": command, "arguments": arguments}).encode())
        while True:
            reply = json.loads(self.readline())
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"{command}: {reply['error']}")
            return reply["return"]

    def wait_event(self, match, timeout):
        """The monotonic time at which an event matching `match` was read, or None."""
        for e in self.events:
            if match(e):
                self.events.remove(e)
                return time.monotonic()
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(max(0.0, deadline - time.monotonic()))
            if line is None:
                return None
            now = time.monotonic()
            e = json.loads(line)
            if "event" in e and match(e):
                return now

    def drain(self, quiet=0.05):
        while self.readline(quiet) is not None:
            pass
        self.events.clear()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def read_calls(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("syscr:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build_tree(size, work):
    """The generated devices are offline; ONLINE_EVERY=K (env) sets every K-th one online (1: all),
    whose subchannel's `vpm` the sweep then reads beside `online` (API/linux-sysfs.md)."""
    topology = os.path.join(work, f"t{size}.json")
    subprocess.run([CSSCTL, "gen-topology", "--subchannels", str(size), "--chpids", "32", "--paths", "8",
                    "--cssid", "0", "--output", topology], check=True)
    with open(topology) as f:
        wrapped = {"topology": json.load(f)}
    every = int(os.environ.get("ONLINE_EVERY", "0"))
    if every:
        for index, sch in enumerate(wrapped["topology"]["subchannels"]):
            if index % every == 0:
                sch["online"] = True
    description = os.path.join(work, f"d{size}.json")
    with open(description, "w") as f:
        json.dump(wrapped, f)
    tree = os.path.join(work, f"sys{size}")
    began = time.perf_counter()
    subprocess.run([sys.executable, MAKE_SYSFS, description, tree], check=True)
    print(f"  tree of {size:,} built in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    return tree


def start(tree, sock, kmsg, binary=CSSD):
    began = time.perf_counter()
    proc = subprocess.Popen([binary, "--qmp", f"unix:{sock}", "--backend", f"linux-sysfs:{tree}", "--no-inotify",
                             "--kernel-log", kmsg, "--log-level", "warning"])
    while True:
        try:
            probe = socket.socket(socket.AF_UNIX)
            probe.connect(sock)
            probe.close()
            return proc, time.perf_counter() - began
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("cssd exited")
            time.sleep(0.005)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def measure(size, work, baseline_rss=None, binary=CSSD, tree=None, turn=0):
    """`turn`: which build on a shared tree this is (0, 1): each changes chpids of its own."""
    own_tree = tree is None
    if own_tree:
        tree = build_tree(size, work)
    css0 = os.path.join(tree, "devices", "css0")
    kmsg = os.path.join(work, f"kmsg{size}")
    if os.path.exists(kmsg):
        os.unlink(kmsg)
    os.mkfifo(kmsg)
    sock = os.path.join(work, f"s{size}.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    proc, startup = start(tree, sock, kmsg, binary)
    feeder = open(kmsg, "w", buffering=1)  # the server opened the FIFO for reading
    result = {"size": size, "startup_s": startup}
    try:
        client = Client(sock)
        time.sleep(1.0)
        result["rss_kib"] = rss_kib(proc.pid)
        if baseline_rss is not None:
            # Idle CPU: nothing changes, the backend polls and sweeps.
            c0, r0, t0 = cpu_seconds(proc.pid), read_calls(proc.pid), time.monotonic()
            time.sleep(IDLE_S)
            elapsed = time.monotonic() - t0
            result["idle_cpu"] = (cpu_seconds(proc.pid) - c0) / elapsed * 100
            result["reads_per_s"] = (read_calls(proc.pid) - r0) / elapsed
            # Latency while polling and sweeping.
            lat = []
            end = time.monotonic() + 10
            req = b'{"execute":"query-version"}'
            while time.monotonic() < end:
                t = time.perf_counter()
                client.sock.sendall(req)
                client.readline()
                lat.append(time.perf_counter() - t)
            lat.sort()
            result["p50_ms"] = lat[len(lat) // 2] * 1000
            result["p99_ms"] = lat[int(len(lat) * 0.99)] * 1000
            result["max_ms"] = lat[-1] * 1000
            result["requests"] = len(lat)
            # Behind cssd's back: chpid status and configure (polling).
            sub = Client(sock)
            sub.call("subscribe-path-events", granularity="both")
            chpids = [c["chpid"] for c in client.call("query-chpids")]
            times = []
            for i in range(6):
                chpid = chpids[6 * turn + i]
                directory = os.path.join(css0, "chp" + chpid)
                time.sleep(random.uniform(0, POLL_S))
                if i % 2 == 0:
                    t = time.monotonic()
                    write(os.path.join(directory, "status"), "offline\n")
                    got = sub.wait_event(lambda e: e["event"] == "CHANNEL_PATH_CHANGED" and e["data"]["chpid"] == chpid, 30)
                else:
                    t = time.monotonic()
                    write(os.path.join(directory, "configure"), "0\n")
                    got = sub.wait_event(lambda e: e["event"] == "CHANNEL_PATH_CHANGED" and e["data"]["chpid"] == chpid, 30)
                times.append(got - t if got else float("inf"))
                time.sleep(0.5)
                sub.events.clear()
            result["chpid_ms"] = [x * 1000 for x in times]
            time.sleep(2)  # let the subchannel events of those changes pass
            sub.drain()
            # Kernel log: clear one subchannel's PAM bit for a chpid, then the CRW line.
            klog = []
            for i in range(3):
                chpid = chpids[13 + 3 * turn + i]
                # A member in the last quarter of the path's, in id order: members are read
                # (and published) a slice at a time in id order, so this is the late case.
                index = random.randrange(size * 3 // 4, size - size // 16)
                sch = client.call("query-subchannels", chpid=chpid, start=f"0.{index >> 16}.{index & 0xffff:04x}",
                                  limit=1)["subchannels"][0]
                name = sch["subchannel"]
                slot = sch["chpids"].index(chpid)
                path = os.path.join(css0, name, "pimpampom")
                pim, pam, pom = (int(x, 16) for x in open(path).read().split())
                write(path, f"{pim:02x} {pam & ~(0x80 >> slot):02x} {pom:02x}\n")
                time.sleep(random.uniform(0, 0.3))
                t = time.monotonic()
                feeder.write(f"7,{1000 + i},{123456 + i},-;crw_info : CRW reports slct=0, oflw=0, chn=0, rsc=4, anc=0, "
                             f"erc=6, rsid={int(chpid.split('.')[1], 16):X}\n")
                got = sub.wait_event(lambda e: e["event"] == "SUBCHANNEL_PATHS_CHANGED" and e["data"]["subchannel"] == name, 30)
                klog.append((got - t) if got else float("inf"))
                time.sleep(0.3)
                sub.drain()
            result["kmsg_ms"] = [x * 1000 for x in klog]
            # The sweep: a path found not operational during an I/O (POM bit cleared by the
            # channel subsystem) and dropped by path verification (vpm), nothing else tells cssd.
            sweep = []
            total = size
            for i in range(2 if size <= 65536 else 1):
                # An online device's: Linux verifies the paths of online devices only, and the
                # sweep reads `vpm` of those only (a tree without one: no figure).
                index = random.randrange(total)
                subs = client.call("query-subchannels", start=f"0.{index >> 16}.{index & 0xffff:04x}",
                                   limit=4096)["subchannels"]
                subs = [entry for entry in subs if "online" not in entry and entry.get("devno")]
                if not subs:
                    continue
                name = subs[0]["subchannel"]
                path = os.path.join(css0, name, "pimpampom")
                pim, pam, pom = (int(x, 16) for x in open(path).read().split())
                vpm_path = os.path.join(css0, name, "vpm")
                vpm = int(open(vpm_path).read(), 16)
                t = time.monotonic()
                write(path, f"{pim:02x} {pam:02x} {pom & ~0x80:02x}\n")
                write(vpm_path, f"{vpm & ~0x80:02x}\n")
                got = sub.wait_event(lambda e: e["event"] == "SUBCHANNEL_PATHS_CHANGED" and e["data"]["subchannel"] == name,
                                     SWEEP_S + 10)
                sweep.append((got - t) if got else float("inf"))
                sub.drain()
            result["sweep_s"] = sweep
            # vary-path: the reply waits for the chpid's subchannels to be read (20 round trips).
            vary = []
            for i in range(10):
                for state in ("offline", "online"):
                    t = time.perf_counter()
                    client.call("vary-path", chpid=chpids[20 + i], state=state)
                    vary.append((time.perf_counter() - t) * 1000)
            result["vary_ms"] = vary
        return result
    finally:
        proc.terminate()
        proc.wait()
        feeder.close()
        if own_tree:
            shutil.rmtree(tree, ignore_errors=True)


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [4096, 16384, 65536, 262144]
    work = tempfile.mkdtemp(prefix="cssd-sysfs-", dir=os.environ.get("BENCH_DIR", "/tmp"))
    try:
        bins = [tuple(item.split("=", 1)) for item in os.environ.get("CSSD_BINS", f"cssd={CSSD}").split(",")]
        baselines = {label: measure(16, work, binary=path)["rss_kib"] for label, path in bins}
        print(f"server on a 16-subchannel tree: VmRSS {baselines} KiB")
        print("| build | subchannels | start-up | RSS above small | per subchannel | idle CPU | read(2)/s idle "
              "| query-version p50 / p99 / max "
              "| chpid change behind cssd's back (max of 6) | kernel-log line (max of 3) | POM+vpm by the sweep "
              "| vary-path (median / max of 20) |")
        print("|---|---:|---:|---:|---:|---:|---:|---|---|---|---|---|")
        for size in sizes:
            tree = build_tree(size, work)
            try:
                for turn, (label, path) in enumerate(bins):
                    report(label, size, measure(size, work, baselines[label], path, tree, turn), baselines[label])
            finally:
                shutil.rmtree(tree, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(label, size, r, baseline):
    above = (r["rss_kib"] - baseline) * 1024
    print(f"| {label} | {size:,} | {r['startup_s'] * 1000:.0f} ms | {above / 1048576:.1f} MiB | {above / size:.0f} B "
          f"| {r['idle_cpu']:.1f} % | {r['reads_per_s']:,.0f} | {r['p50_ms']:.3f} / {r['p99_ms']:.3f} / {r['max_ms']:.1f} ms "
          f"({r['requests']:,} requests) "
          f"| {max(r['chpid_ms']):.0f} ms (median {statistics.median(r['chpid_ms']):.0f}) "
          f"| {max(r['kmsg_ms']):.0f} ms (median {statistics.median(r['kmsg_ms']):.0f}) "
          f"| {', '.join(f'{x:.1f} s' for x in r['sweep_s']) or 'no online device'} "
          f"| {statistics.median(r['vary_ms']):.0f} / {max(r['vary_ms']):.0f} ms |", flush=True)



if __name__ == "__main__":
    main()
