#!/usr/bin/env bash
# cssd vs QEMU 7.2's QMP monitor, same client (cssctl bench), one run, same machine.
#   Benchmarks/bench-vs-qemu.sh [extra cssctl bench options]
# Builds release binaries, starts both servers on private sockets, prints the table and the
# cssd/qemu ratios, and stops both. Run by hand; not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product cssd >/dev/null
swift build -c release --product cssctl >/dev/null
dir=$(mktemp -d /tmp/cssd-bench-XXXXXX)
cleanup() {
    [ -n "${cssd_pid:-}" ] && kill "$cssd_pid" 2>/dev/null || true
    [ -n "${qemu_pid:-}" ] && kill "$qemu_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
.build/release/cssd --qmp "unix:$dir/cssd.sock" --log-level warning &
cssd_pid=$!
qemu-system-s390x -machine s390-ccw-virtio -nodefaults -display none -S \
    -qmp "unix:$dir/qemu.sock,server=on,wait=off" &
qemu_pid=$!
for _ in $(seq 100); do [ -S "$dir/cssd.sock" ] && [ -S "$dir/qemu.sock" ] && break; sleep 0.1; done
echo "machine: $(nproc) cores, $(uname -m), load $(cut -d' ' -f1-3 /proc/loadavg)"
.build/release/cssctl bench --socket "$dir/cssd.sock" --label cssd --socket "$dir/qemu.sock" --label qemu "$@"
