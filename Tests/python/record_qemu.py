#!/usr/bin/env python3
"""Record QEMU 7.2's replies to every compat case into qemu_replies.json.

    python3 record_qemu.py            # all fast cases (about a minute)
    python3 record_qemu.py --slow     # also the >64 MiB case (QEMU needs about 7 minutes)
    python3 record_qemu.py -k nest    # only cases whose id contains "nest"

Existing entries not re-recorded (e.g. slow ones) are kept.  The recording
lets test_qemu_compat.py compare cssd against QEMU on machines without QEMU.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness.process import ServerHolder  # noqa: E402
from harness.qemu import RECORD_FILE, dump_records, load_records, qemu_binary, qemu_server, raw_preview, raw_to_record  # noqa: E402
from harness.qmp import exchange_full  # noqa: E402
from test_qemu_compat import CASES, SLOW_CASES, SLOW_END_ID, run_case  # noqa: E402


def qemu_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.splitlines()[0] if out.stdout else "?"
    except Exception as e:  # pragma: no cover
        return f"? ({e})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slow", action="store_true", help="also record the slow over-limit cases")
    ap.add_argument("--only-slow", action="store_true", help="record only the slow cases")
    ap.add_argument("-k", default="", help="only cases whose id contains this")
    ap.add_argument("-o", default=str(RECORD_FILE), help="output file")
    ap.add_argument("--idle", type=float, default=0.5, help="idle seconds that end a case (default 0.5)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below

    binary = qemu_binary()
    if not binary:
        print("qemu-system-s390x not found on PATH (or QEMU_BIN)", file=sys.stderr)
        return 2
    records = load_records(args.o) if os.path.exists(args.o) else {}

    cases = [] if args.only_slow else [c for c in CASES if args.k in c.id]
    slow = [c for c in SLOW_CASES if args.k in c.id] if (args.slow or args.only_slow) else []
    workdir = tempfile.mkdtemp(prefix="qmprec", dir="/tmp")
    holder = ServerHolder(lambda: qemu_server(workdir))
    try:
        srv = holder.get()
        ex = exchange_full(srv.sock, b"", negotiate=False, expect=0)
        records["__greeting__"] = ex.greeting
        records["__greeting_line__"] = ex.greeting_line.decode("latin-1")
        records["__meta__"] = {"qemu": qemu_version(binary), "argv": srv.argv[1:-2],
                               "recorded": time.strftime("%Y-%m-%d %H:%M:%S")}
        for case in cases + slow:
            t0 = time.monotonic()
            if case in slow:
                ex = run_case(holder.get().sock, case, until_id=SLOW_END_ID, timeout=3600, grace=2.0,
                              stall=900)
            else:
                ex = run_case(holder.get().sock, case, idle=args.idle, timeout=120)
            records[case.id] = {
                "negotiate": case.negotiate,
                "raw_sha256": raw_to_record(case.raw),
                "raw_preview": raw_preview(case.raw),
                "chunks": list(case.chunks) if isinstance(case.chunks, tuple) else case.chunks,
                "replies": ex.replies,
                # The raw lines, CRLF included (latin-1: QEMU's inf and any stray byte survive).
                "lines": [line.decode("latin-1") for line in ex.raw_lines],
            }
            print(f"{case.id:40s} {len(ex.replies):5d} replies  {time.monotonic() - t0:6.1f}s", flush=True)
        if holder.restarts:
            print(f"warning: QEMU had to be restarted {holder.restarts} times", file=sys.stderr)
    finally:
        holder.stop()
    known = {c.id for c in CASES + SLOW_CASES} | {"__greeting__", "__greeting_line__", "__meta__"}
    records = {k: v for k, v in records.items() if k in known}
    ordered = {k: records[k] for k in ["__meta__", "__greeting__", "__greeting_line__"] + [c.id for c in CASES + SLOW_CASES]
               if k in records}
    dump_records(ordered, args.o)
    print(f"wrote {args.o}: {len(ordered) - 3} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
