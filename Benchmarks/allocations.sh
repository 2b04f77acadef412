#!/usr/bin/env bash
# Heap allocations per request in release cssd: runs N pipelined query-version requests with
# an LD_PRELOAD malloc counter and subtracts an idle run (start, negotiate, quit).
#   Benchmarks/allocations.sh [N]     (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
swift build -c release --product cssd >/dev/null
dir=$(mktemp -d /tmp/cssd-alloc-XXXXXX)
trap 'rm -rf "$dir"' EXIT
gcc -O2 -shared -fPIC -o "$dir/malloc-count.so" Benchmarks/tools/malloc-count.c -ldl
run() {
    MALLOC_COUNT_OUT="$dir/count-$1" LD_PRELOAD="$dir/malloc-count.so" \
        .build/release/cssd --qmp "unix:$dir/s-$1" --allow-quit --log-level warning &
    for _ in $(seq 100); do [ -S "$dir/s-$1" ] && break; sleep 0.1; done
    python3 - "$dir/s-$1" "$1" <<'PY'
import socket, sys, threading
path, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX); s.connect(path)
f = s.makefile("rb")
f.readline()
s.sendall(b'{"execute":"qmp_capabilities"}'); f.readline()
reader = threading.Thread(target=lambda: [f.readline() for _ in range(n)])
reader.start()   # read while writing: cssd stops reading a client that does not read
s.sendall(b'{"execute":"query-version","id":1}' * n)
reader.join()
s.sendall(b'{"execute":"quit"}'); f.readline()
PY
    wait
    cut -d' ' -f2 "$dir/count-$1"
}
idle=$(run 0)
busy=$(run "$n")
echo "requests $n: allocations $busy, idle $idle, per request $(( (busy - idle) / n ))"
