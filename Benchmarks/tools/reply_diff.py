#!/usr/bin/env python3
"""Two cssd builds, the same requests, the reply bytes compared: does a refactoring keep the wire?

    Benchmarks/tools/reply_diff.py OLD/cssd NEW/cssd [cssd options, e.g. --backend linux-sysfs:TREE]

Starts each cssd in turn on a private unix socket (a linux-sysfs TREE is copied for each, since
writes change it), sends every request of REQS (each cssd reply shape the schema defines, before
and after path changes; the embedded topology's guest1), and compares the lines byte for byte
after masking what differs between any two runs (epoch, timestamps, byte counters, peer
credentials, socket path). Prints each differing pair and the count. Run by hand.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REQS = [
    '{"execute":"qmp_capabilities"}',
    '{"execute":"query-version"}', '{"execute":"query-commands"}',
    '{"execute":"query-chpids"}', '{"execute":"query-chpids","arguments":{"cssid":0}}',
    '{"execute":"query-css"}', '{"execute":"query-orphaned-devices"}',
    '{"execute":"query-subchannels","arguments":{"limit":5}}',
    '{"execute":"query-subchannels","arguments":{"chpid":"0.40","limit":3,"start":"0.0.0005"}}',
    '{"execute":"query-subchannels","arguments":{"devno":"0.0.0001"}}',
    '{"execute":"store-subchannel","arguments":{"subchannel":"0.0.0000"}}',
    '{"execute":"store-subchannel","arguments":{"subchannel":"0.3.ffff"}}',
    '{"execute":"store-crw"}',
    '{"execute":"query-guests"}',
    '{"execute":"query-guest-subchannels","arguments":{"guest":"guest1","limit":3}}',
    '{"execute":"query-guest-subchannels","arguments":{"guest":"guest1"}}',
    '{"execute":"query-path-event-stats"}',
    '{"execute":"subscribe-path-events","arguments":{"granularity":"both","chpids":["0.40"],"changes":["offline","online"],"queue-limit":10}}',
    '{"execute":"subscribe-path-events","arguments":{"granularity":"guest","guests":["guest1"]}}',
    '{"execute":"query-path-event-subscriptions"}',
    '{"execute":"query-notify"}', '{"execute":"query-connections"}',
    '{"execute":"vary-path","arguments":{"chpid":"0.40","state":"offline"}}',
    '{"execute":"configure-chpid","arguments":{"chpid":"0.41","state":"standby"}}',
    '{"execute":"inject-path-fault","arguments":{"chpid":"0.42","fault":"permanent-error"}}',
    '{"execute":"store-crw"}', '{"execute":"store-crw"}',
    '{"execute":"guest-store-crw","arguments":{"guest":"guest1"}}',
    '{"execute":"guest-store-subchannel","arguments":{"guest":"guest1","subchannel":"fe.0.0000"}}',
    '{"execute":"guest-store-subchannel","arguments":{"guest":"guest1","subchannel":"fe.3.ffff"}}',
    '{"execute":"query-chpids"}', '{"execute":"query-css"}',
    '{"execute":"query-subchannels","arguments":{"chpid":"0.40","limit":2}}',
    '{"execute":"query-guest-subchannels","arguments":{"guest":"guest1","limit":2}}',
    '{"execute":"query-path-event-journal"}', '{"execute":"query-path-event-stats","arguments":{"guest":"guest1"}}',
    '{"execute":"query-path-event-subscriptions"}', '{"execute":"query-connections"}',
    '{"execute":"modify-subchannel","arguments":{"subchannel":"0.0.0000","isc":3}}',
    '{"execute":"reset-channel-path","arguments":{"chpid":"0.43"}}',
]

def run(binary, workdir, extra):
    extra = list(extra)
    for i, e in enumerate(extra):
        if e.startswith("linux-sysfs:"):
            copy = os.path.join(workdir, "tree" + str(len(os.listdir(workdir))))
            shutil.copytree(e.split(":", 1)[1], copy, symlinks=True)
            extra[i] = "linux-sysfs:" + copy
    sock = os.path.join(workdir, os.path.basename(os.path.dirname(os.path.dirname(binary))) + str(len(os.listdir(workdir))) + ".sock")
    p = subprocess.Popen([binary, "--qmp", f"unix:{sock}", "--log-level", "error", *extra])
    deadline = time.monotonic() + 60
    while not os.path.exists(sock):
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.05)
    s = socket.socket(socket.AF_UNIX); s.connect(sock)
    f = s.makefile("rb")
    out = [f.readline()]
    for r in REQS:
        s.sendall(r.encode() + b"\n")
        while True:
            line = f.readline()
            out.append(line)
            if b'"return"' in line or b'"error"' in line:
                break
    s.close(); p.terminate(); p.wait()
    return out

def norm(line):
    line = re.sub(rb'"epoch": "[0-9a-f]+"', b'"epoch": "E"', line)
    line = re.sub(rb'"(seconds|microseconds)": \d+', rb'"\1": 0', line)
    line = re.sub(rb'"(bytes-in|bytes-out)": \d+', rb'"\1": 0', line)
    line = re.sub(rb'uid=\d+ gid=\d+ pid=\d+', b'ID', line)
    line = re.sub(rb'"pid": \d+', b'"pid": 0', line)
    line = re.sub(rb'"listener": "[^"]*"', b'"listener": "L"', line)
    return line

old, new = sys.argv[1], sys.argv[2]
extra = sys.argv[3:]
with tempfile.TemporaryDirectory() as d:
    a = run(old, d, extra); b = run(new, d, extra)
print(len(a), "lines old,", len(b), "new;", sum(len(x) for x in a), "bytes old")
bad = 0
for x, y in zip(a, b):
    if norm(x) != norm(y):
        bad += 1
        print("OLD", x[:400]); print("NEW", y[:400])
print("differences:", bad + abs(len(a) - len(b)))
