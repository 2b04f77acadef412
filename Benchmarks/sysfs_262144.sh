#!/bin/bash
# 262,144 subchannels on an ext4 (inline_data) image kept in /dev/shm: start-up and idle of the
# release build, devices offline, then every device online (root: mounts a loop device).
# Usage: [BINS=label=PATH,...] [CSSCTL=PATH] Benchmarks/sysfs_262144.sh
set -e
cd "$(dirname "$0")/.."
truncate -s 30G /dev/shm/bench262.img
mkfs.ext4 -q -F -O inline_data -I 512 -N 8000000 /dev/shm/bench262.img
mkdir -p /mnt/bench && mount -o loop,noatime /dev/shm/bench262.img /mnt/bench
export CSSCTL=${CSSCTL:-.build/release/cssctl}
t0=$(date +%s)
python3 -c "
import sys; sys.path.insert(0, 'Benchmarks')
import sysfs_scale as S
print(S.build_tree(262144, '/mnt/bench'))
"
echo "tree built in $(( $(date +%s) - t0 )) s"; df -h /mnt/bench /dev/shm | tail -2
BINS="${BINS:-release=.build/release/cssd}" IDLE_S=30 ROUNDS=2 TREE=/mnt/bench/sys262144 BENCH_DIR=/dev/shm python3 Benchmarks/sysfs_idle_ab.py 262144
python3 - <<'PY'
import glob
n = 0
for path in glob.glob('/mnt/bench/sys262144/devices/css0/*/*/online'):
    with open(path, 'w') as f: f.write('1\n')
    n += 1
print('set online:', n)
PY
BINS="${BINS:-release=.build/release/cssd}" IDLE_S=30 ROUNDS=2 TREE=/mnt/bench/sys262144 BENCH_DIR=/dev/shm python3 Benchmarks/sysfs_idle_ab.py 262144
umount /mnt/bench
rm -f /dev/shm/bench262.img
