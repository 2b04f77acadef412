#!/usr/bin/env bash
# TLS beside plain TCP, one run, same client: release cssd twice (one with --tls-creds and an
# authz policy, one plain on loopback), certificates made by openssl (Tests/python/harness/pki.py), then
#   cssctl bench --tls-creds CLIENT --tls-socket TLS --socket PLAIN --connections N ...
# Rows: connect (connect + TLS handshake + greeting: handshakes/s), sequential, pipelined.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product cssd >/dev/null
swift build -c release --product cssctl >/dev/null
bin=.build/release
work=$(mktemp -d /tmp/cssd-tls-bench.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
python3 -c "import sys; sys.path.insert(0, 'Tests/python'); from harness.pki import PKI; PKI('$work/pki')"
echo '{"policy": "deny", "rules": [{"match": "*,CN=mgmt", "policy": "allow", "format": "glob"}]}' >"$work/authz.json"
tls_port=${TLS_PORT:-4455}
plain_port=${PLAIN_PORT:-4456}
"$bin/cssd" --qmp "unix:$work/t.sock" --qmp "tcp:127.0.0.1:$tls_port" --tls-creds "$work/pki/server" \
    --tls-authz "$work/authz.json" --log-level warning 2>"$work/tls.log" &
pids+=($!)
"$bin/cssd" --qmp "unix:$work/p.sock" --qmp "tcp:127.0.0.1:$plain_port" --log-level warning 2>"$work/plain.log" &
pids+=($!)
sleep 1
"$bin/cssctl" bench --tls-creds "$work/pki/client-mgmt" --tls-socket "tcp:127.0.0.1:$tls_port" \
    --socket "tcp:127.0.0.1:$plain_port" --label tls --label plain \
    --connections "${CONNECTIONS:-1000}" --count "${COUNT:-20000}" --pipelined-count "${PIPELINED:-200000}" "$@"
