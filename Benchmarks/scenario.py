#!/usr/bin/env python3
"""A failure scenario at scale (issue 26's figure), played by cssd in model time.

A synthetic topology from `cssctl gen-topology` (default 262,144 subchannels, 256 chpids,
8 paths each: every chpid is in 8,192 subchannels), one cssd on it, one subscriber
(granularity chpid: one CHANNEL_PATH_CHANGED per change) on its own connection, and a
scenario of 10,000 steps: a loop of 20 iterations whose body takes chpids 0.00-0.f9 down and
back up one after the other (500 steps), each step changing 8,192 subchannels' masks with its
channel-path CRW. Measured from the scenario-play request:
- the time until query-scenario says finished (polled every 10 ms on the control connection);
- the time until the subscriber (reading all along on its own thread) has the last change's
  event, how many events it read and events/s; an event it had not read yet when the next
  change of its chpid came is coalesced (API/path-events.json), which its counters show;
- the changes the journal numbered (one per step: no device loses its redundancy here).

Usage: Benchmarks/scenario.py [--subchannels N] [--chpids N] [--steps N] [--build-dir DIR]
       CSSD_BIN / CSSCTL_BIN override the binaries (default BUILD_DIR/cssd, BUILD_DIR/cssctl,
       BUILD_DIR = ROOT/.build/release).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Benchmarks", "tools"))
from benchlib import QMP  # noqa: E402


def scenario(steps: int, chpids: int) -> dict:
    per_iteration = min(steps, 2 * (chpids - 6)) // 2 * 2
    assert steps % per_iteration == 0, "steps must be a multiple of the loop body"
    body = []
    for j in range(per_iteration // 2):
        chpid = f"0.{j:02x}"
        body.append({"name": f"down-{j}", "at": 2 * j, "execute": "inject-path-fault",
                     "arguments": {"chpid": chpid, "fault": "permanent-error"}})
        body.append({"name": f"up-{j}", "at": 2 * j + 1, "execute": "inject-path-fault",
                     "arguments": {"chpid": chpid, "fault": "recovered"}})
    return {"scenario": "bench", "clock": "model", "steps": [
        {"name": "sweep", "at": 0, "loop": {"count": steps // per_iteration, "period": 1000, "steps": body}}]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--subchannels", type=int, default=262144)
    parser.add_argument("--chpids", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--build-dir", default=os.path.join(ROOT, ".build", "release"))
    args = parser.parse_args()
    cssd = os.environ.get("CSSD_BIN") or os.path.join(args.build_dir, "cssd")
    cssctl = os.environ.get("CSSCTL_BIN") or os.path.join(args.build_dir, "cssctl")
    with tempfile.TemporaryDirectory(prefix="scen", dir="/tmp") as work:
        topology = os.path.join(work, "t.json")
        subprocess.run([cssctl, "gen-topology", "--subchannels", str(args.subchannels), "--chpids",
                        str(args.chpids), "--paths", "8", "--output", topology], check=True)
        sock = os.path.join(work, "s.sock")
        proc = subprocess.Popen([cssd, "--qmp", f"unix:{sock}", "--topology", topology, "--log-level", "warning"])
        try:
            deadline = time.monotonic() + 600
            while True:
                try:
                    probe = socket.socket(socket.AF_UNIX)
                    probe.connect(sock)
                    probe.close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("cssd did not start")
                    time.sleep(0.05)
            control, subscriber = QMP(sock, timeout=600), QMP(sock, timeout=600)
            subscriber.call("subscribe-path-events", granularity="chpid")
            text = json.dumps(scenario(args.steps, args.chpids))
            loaded = control.call("scenario-load", scenario=text)
            assert loaded["total"] == args.steps, loaded
            first = control.call("query-path-event-journal")["newest"]
            # The subscriber reads all along, on its own thread, as a client would; it keeps
            # the arrival time of every CHANNEL_PATH_CHANGED and its sequence.
            arrivals, replies = [], []

            def read():
                while True:
                    line = subscriber.file.readline()
                    if not line:
                        return
                    if b"CHANNEL_PATH_CHANGED" in line:
                        arrivals.append((time.perf_counter(), json.loads(line)["data"]["sequence"]))
                    elif b'"return"' in line:
                        replies.append(json.loads(line)["return"])
            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            began = time.perf_counter()
            control.call("scenario-play")
            while True:
                status = control.call("query-scenario")
                if status["state"] != "playing":
                    break
                time.sleep(0.01)
            finished = time.perf_counter() - began
            assert status["state"] == "finished" and status["played"] == args.steps, status
            newest = control.call("query-path-event-journal")["newest"]
            while not arrivals or arrivals[-1][1] < newest:
                time.sleep(0.01)
            delivered = arrivals[-1][0] - began
            received = len(arrivals)
            changes = newest - first
            subscriber.send("query-path-event-subscriptions")
            while not replies:
                time.sleep(0.01)
            [counters] = [{k: v for k, v in sub.items() if k in ("published", "delivered", "coalesced", "dropped")}
                          for sub in replies[0]]
        finally:
            proc.terminate()
            proc.wait(timeout=120)
    print(f"binary: {cssd}")
    print(f"topology: {args.subchannels} subchannels, {args.chpids} chpids, 8 paths each "
          f"({args.subchannels * 8 // args.chpids} subchannels per chpid)")
    print(f"scenario: {args.steps} steps in model time; {changes} changes numbered")
    print(f"played (query-scenario finished): {finished:.2f} s ({args.steps / finished:.0f} steps/s)")
    print(f"subscriber had the last change's event after {delivered:.2f} s: {received} events read "
          f"({received / delivered:.0f} events/s); its counters: {counters}")


if __name__ == "__main__":
    main()
