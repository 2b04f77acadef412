#!/usr/bin/env python3
"""--notify figures (issue 14), with a private RabbitMQ node on loopback and oslo.messaging's
own notification listener (threading executor) in this process:

(a) throughput with publisher confirms: --count vary-path requests on 0.40 (alternately offline
    and online), pipelined by one QMP client (a window of 64 outstanding); time from the first
    send until query-notify says every notification is confirmed, and until the listener has
    them all: notifications/s.
(b) latency: --samples vary-path requests one at a time, 20 ms apart; time from just before the
    send until the listener's endpoint is called with it (median, p90, p99, max).
(c) a 10 s broker outage under a steady stream of --rate changes/s: the broker is stopped 5 s
    in and started again 10 s after it went down; query-notify is sampled every 50 ms: the
    outbox's highest depth, the time from the broker being up again until the outbox is empty
    (drain), and whether the listener got every sequence number (nothing lost) and how many
    duplicates (redeliveries, dropped by oslo by _unique_id).

(a') the same as (a) with --state-dir (the outbox kept in DIR/notify-outbox.sqlite, only durable
    changes published), by a second cssd in the same run.
(s) the baseline of (a'): the same requests to a cssd with --state-dir and without --notify.
(d) restart with a full outbox: the broker stopped, --held vary-path requests (default 100,000)
    wait in the outbox of a cssd with --state-dir; cssd is killed (SIGKILL) and started again:
    time until its QMP socket answers (state replay and outbox reload; the reload alone as
    cssd logs it), then the broker is started: time until the outbox is empty (all confirmed).

Usage: Benchmarks/notify.py [--count 20000] [--samples 300] [--rate 200] [--held 100000] [--parts aAsbcd]
       CSSD_BIN overrides the binary (default ROOT/.build/release/cssd).
Build first: swift build -c release --product cssd
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Tests", "python"))

sys.path.insert(0, os.path.join(ROOT, "Benchmarks", "tools"))
from harness.broker import Broker  # noqa: E402
from benchlib import QMP, pct  # noqa: E402
import oslo_messaging  # noqa: E402
from oslo_config import cfg  # noqa: E402


class Endpoint:
    def __init__(self):
        self.times = {}      # sequence -> monotonic time of first arrival
        self.duplicates = 0
        self.count = 0
        self.epoch = None
        self.cv = threading.Condition()

    def _got(self, payload):
        now = time.monotonic()
        with self.cv:
            if payload.get("epoch") != self.epoch:
                return
            sequence = payload.get("sequence")
            if sequence in self.times:
                self.duplicates += 1
            else:
                self.times[sequence] = now
            self.count += 1
            self.cv.notify_all()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self._got(payload)

    def warn(self, ctxt, publisher_id, event_type, payload, metadata):
        self._got(payload)

    def wait_count(self, n, timeout=120):
        deadline = time.time() + timeout
        with self.cv:
            while len(self.times) < n:
                left = deadline - time.time()
                if left <= 0:
                    raise RuntimeError(f"listener has {len(self.times)} of {n}")
                self.cv.wait(left)


def listener_for(broker, tmp, endpoint):
    path = os.path.join(tmp, "oslo.conf")
    with open(path, "w") as f:
        f.write("[oslo_messaging_rabbit]\namqp_durable_queues = true\n")
    conf = cfg.ConfigOpts()
    conf(["--config-file", path], project="cssd-bench")
    transport = oslo_messaging.get_notification_transport(conf, url=broker.transport_url())
    listener = oslo_messaging.get_notification_listener(
        transport, [oslo_messaging.Target(topic="notifications")], [endpoint], executor="threading")
    listener.start()
    return listener, transport


def queue_without_consumer(broker, tmp):
    """oslo's listener declares its durable queue (bound to the exchange), then stops: the
    notifications pile up in the broker, persisted and confirmed, with no consumer on the cores.
    Returns the transport (cleanup() it at the end)."""
    listener, transport = listener_for(broker, tmp, Endpoint())
    time.sleep(1)
    listener.stop()
    listener.wait()
    return transport


def start_cssd(binary, tmp, broker, *extra, connected=True, name="cssd"):
    cred = os.path.join(tmp, "cred")
    with open(cred, "w") as f:
        f.write("username=guest\npassword=guest\n")
    sock = os.path.join(tmp, name + ".sock")
    if os.path.exists(sock):
        os.remove(sock)
    log = open(os.path.join(tmp, name + ".log"), "ab")
    proc = subprocess.Popen(
        [binary, "--qmp", f"unix:{sock}", "--notify", broker.url, "--notify-credentials", cred, "--notify-durable",
         *extra],
        stdout=log, stderr=subprocess.STDOUT)
    client = None
    for _ in range(6000):
        try:
            client = QMP(sock)
            break
        except OSError:
            time.sleep(0.01)
    while connected and client.call("query-notify")["state"] != "connected":
        time.sleep(0.05)
    return proc, client


def wait_status(client, predicate, timeout=120, interval=0.01):
    deadline = time.time() + timeout
    while True:
        status = client.call("query-notify")
        if predicate(status):
            return status
        if time.time() > deadline:
            raise RuntimeError(f"query-notify never matched: {status}")
        time.sleep(interval)


def part_a(client, endpoint, count, start_sequence):
    t0 = time.monotonic()
    client.vary_pipelined(count, first=start_sequence + 1)
    t_replies = time.monotonic() - t0
    target = start_sequence + count - 1
    wait_status(client, lambda s: s["confirmed"] >= target, interval=0.005)
    t_confirmed = time.monotonic() - t0
    endpoint.wait_count(target)
    t_listener = time.monotonic() - t0
    print(f"(a) {count} changes: replies {t_replies:.2f} s; all confirmed {t_confirmed:.2f} s "
          f"= {count / t_confirmed:,.0f} notifications/s with confirms; all in the listener {t_listener:.2f} s "
          f"= {count / t_listener:,.0f}/s")


def part_b(client, endpoint, samples, next_sequence):
    latencies = []
    for i in range(samples):
        sequence = next_sequence + i
        t0 = time.monotonic()
        client.call("vary-path", chpid="0.40", state="offline" if sequence % 2 else "online")
        endpoint.wait_count(sequence, timeout=10)
        latencies.append((endpoint.times[sequence] - t0) * 1000)
        time.sleep(0.02)
    print(f"(b) vary-path -> listener over {samples}: median {statistics.median(latencies):.2f} ms, "
          f"p90 {pct(latencies, 90):.2f} ms, p99 {pct(latencies, 99):.2f} ms, max {max(latencies):.2f} ms")
    return next_sequence + samples


def part_c(client, endpoint, broker, rate, next_sequence):
    total_seconds = 25
    count = rate * total_seconds
    samples = []
    stop_sampling = threading.Event()
    events = {}

    def sampler(path):
        sampler_client = QMP(path)
        while not stop_sampling.is_set():
            status = sampler_client.call("query-notify")
            samples.append((time.monotonic(), status["outbox-depth"], status["state"]))
            time.sleep(0.05)

    def outage():
        time.sleep(5)
        events["down"] = time.monotonic()
        broker.stop()
        events["stopped"] = time.monotonic()
        time.sleep(max(0, 10 - (time.monotonic() - events["down"])))
        broker.start()
        events["up"] = time.monotonic()

    threading.Thread(target=sampler, args=(client.sock.getpeername(),), daemon=True).start()
    outage_thread = threading.Thread(target=outage)
    outage_thread.start()
    t0 = time.monotonic()
    for i in range(count):
        sequence = next_sequence + i
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        client.call("vary-path", chpid="0.40", state="offline" if sequence % 2 else "online")
    outage_thread.join()
    last = next_sequence + count - 1
    drained = wait_status(client, lambda s: s["outbox-depth"] == 0 and s["confirmed"] >= last, interval=0.01)
    endpoint.wait_count(last, timeout=120)
    stop_sampling.set()
    empty_after = [t for t, depth, _ in samples if t > events["up"] and depth == 0]
    drain = (empty_after[0] - events["up"]) if empty_after else float("nan")
    peak = max(depth for _, depth, _ in samples)
    missing = set(range(1, last + 1)) - set(endpoint.times)
    print(f"(c) {rate} changes/s for {total_seconds} s ({count}); broker down {events['up'] - events['down']:.1f} s "
          f"(stop took {events['stopped'] - events['down']:.1f} s, start {events['up'] - events['stopped'] - (10 - (events['stopped'] - events['down'])):.1f} s): "
          f"outbox peak {peak} notifications; empty {drain:.2f} s after the broker was up; "
          f"missing {len(missing)}; duplicates seen by the listener {endpoint.duplicates}; "
          f"published {drained['published']}, confirmed {drained['confirmed']}, failed {drained['failed']}, "
          f"dropped {drained['dropped']}, connections {drained['connections']}")


def part_a_with_state_dir(binary, tmp, broker, endpoint, count):
    """(a') as (a), by a cssd with --state-dir (a fresh one) and the same listener."""
    proc, client = start_cssd(binary, tmp, broker, "--state-dir", os.path.join(tmp, "state-a"), name="cssd-a")
    try:
        with endpoint.cv:
            endpoint.epoch = client.call("query-notify")["epoch"]
            endpoint.times = {}
        print("(a') with --state-dir:", end=" ")
        part_a(client, endpoint, count, 1)
    finally:
        proc.terminate()
        proc.wait()


def part_s(binary, tmp, count):
    """(s) the baseline of (a'): the same pipelined vary-path requests to a cssd with
    --state-dir and without --notify (the state store's durable changes/s)."""
    sock = os.path.join(tmp, "cssd-s.sock")
    proc = subprocess.Popen([binary, "--qmp", f"unix:{sock}", "--state-dir", os.path.join(tmp, "state-s")],
                            stdout=open(os.path.join(tmp, "cssd-s.log"), "ab"), stderr=subprocess.STDOUT)
    try:
        for _ in range(6000):
            try:
                client = QMP(sock)
                break
            except OSError:
                time.sleep(0.01)
        t0 = time.monotonic()
        client.vary_pipelined(count)
        elapsed = time.monotonic() - t0
        print(f"(s) --state-dir without --notify: {count} changes: replies {elapsed:.2f} s = {count / elapsed:,.0f}/s")
    finally:
        proc.terminate()
        proc.wait()


def part_d(binary, tmp, broker, held):
    """(d) restart with `held` notifications in the state dir's outbox."""
    state = os.path.join(tmp, "state-d")
    broker.stop()
    extra = ("--state-dir", state, "--notify-outbox-events", str(held))
    proc, client = start_cssd(binary, tmp, broker, *extra, connected=False, name="cssd-d")
    t0 = time.monotonic()
    client.vary_pipelined(held)
    t_changes = time.monotonic() - t0
    status = client.call("query-notify")
    assert status["outbox-depth"] == held and status["dropped"] == 0, status
    time.sleep(0.5)  # the writer's last batch
    size = sum(os.path.getsize(os.path.join(state, n)) for n in os.listdir(state) if n.startswith("notify-outbox"))
    proc.kill()
    proc.wait()
    t0 = time.monotonic()
    proc, client = start_cssd(binary, tmp, broker, *extra, connected=False, name="cssd-d")
    t_restart = time.monotonic() - t0
    status = client.call("query-notify")
    with open(os.path.join(tmp, "cssd-d.log"), errors="replace") as f:
        lines = [line for line in f if "outbox restored" in line]
    took = lines[-1].split("took=")[1].split()[0] if lines else "?"
    print(f"(d) {held} durable changes with the broker down: {t_changes:.1f} s ({held / t_changes:,.0f}/s); "
          f"outbox file {size / 1e6:.1f} MB; after SIGKILL, restart until QMP answers {t_restart:.2f} s "
          f"(outbox reload {took}); restored {status['restored']}, rebuilt {status['rebuilt']}, "
          f"depth {status['outbox-depth']}")
    try:
        broker.start()
        t0 = time.monotonic()
        wait_status(client, lambda s: s["state"] == "connected", timeout=60, interval=0.01)
        t_connected = time.monotonic() - t0
        wait_status(client, lambda s: s["outbox-depth"] == 0, timeout=600, interval=0.05)
        t_drain = time.monotonic() - t0 - t_connected
        print(f"    broker started: cssd connected {t_connected:.1f} s later (reconnect backoff), outbox empty "
              f"{t_drain:.1f} s after that ({held / t_drain:,.0f} notifications/s with confirms)")
    finally:
        proc.terminate()
        proc.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--held", type=int, default=100000)
    parser.add_argument("--parts", default="aAsbcd")
    args = parser.parse_args()
    binary = os.environ.get("CSSD_BIN", os.path.join(ROOT, ".build", "release", "cssd"))
    tmp = tempfile.mkdtemp(prefix="cssdn", dir="/tmp")
    broker = Broker().start()
    endpoint = Endpoint()
    proc = None
    try:
        listener, transport = listener_for(broker, tmp, endpoint)
        proc, client = start_cssd(binary, tmp, broker)
        endpoint.epoch = client.call("query-notify")["epoch"]
        sequence = 1
        if "a" in args.parts:
            part_a(client, endpoint, args.count, sequence)
            sequence += args.count
        if "b" in args.parts:
            sequence = part_b(client, endpoint, args.samples, sequence)
        if "c" in args.parts:
            part_c(client, endpoint, broker, args.rate, sequence)
        proc.terminate()
        proc.wait()
        proc = None
        if "A" in args.parts:
            part_a_with_state_dir(binary, tmp, broker, endpoint, args.count)
        if "s" in args.parts:
            part_s(binary, tmp, args.count)
        if "d" in args.parts:
            part_d(binary, tmp, broker, args.held)
        listener.stop()
        listener.wait()
        transport.cleanup()
    finally:
        if proc:
            proc.terminate()
            proc.wait()
        broker.close()


if __name__ == "__main__":
    main()
