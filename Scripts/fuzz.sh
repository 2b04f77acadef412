#!/bin/sh
# Fuzz framing + parsing + dispatch with libFuzzer.
#   Scripts/fuzz.sh [SECONDS] [extra libFuzzer flags]
# Builds Sources/QMPFuzz with -sanitize=fuzzer,address (CSSD_FUZZ=1, see Package.swift) into
# .build-fuzz, runs on a copy of Tests/Fuzz/corpus, and leaves crashes in fuzz-artifacts/.
# Add every input that once failed to Tests/Fuzz/regressions/ (the test suite replays them).
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-600}
[ $# -gt 0 ] && shift
CSSD_FUZZ=1 swift build -c release --scratch-path .build-fuzz --product qmp-fuzz
mkdir -p fuzz-artifacts .build-fuzz/corpus
cp Tests/Fuzz/corpus/* .build-fuzz/corpus/ 2>/dev/null || true
LSAN_OPTIONS="suppressions=$(pwd)/Scripts/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
    exec .build-fuzz/release/qmp-fuzz .build-fuzz/corpus -max_total_time="$seconds" \
    -max_len=8192 -timeout=10 -rss_limit_mb=2048 -artifact_prefix=fuzz-artifacts/ "$@"
