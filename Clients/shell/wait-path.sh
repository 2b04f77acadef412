#!/bin/sh
# wait-path.sh - wait until cssd reports a channel path reaching a state, then
# run a command.
#
#   wait-path.sh [-s SOCKET] [-t SECONDS] CHPID STATE [COMMAND [ARG ...]]
#
# Subscribes to the path events of CHPID (subscribe-path-events) and waits for
# a CHANNEL_PATH_CHANGED that takes it to STATE: online or offline (vary-path),
# configured or standby (configure-chpid).  It waits for the change: a path that
# is already in STATE does not count.  "subscribed: ID" on stderr says when the
# subscription is in place.  Then runs COMMAND in place of the script (its exit
# status is ours), or exits 0.
#
# SOCKET: unix socket path, unix:PATH or tcp:HOST:PORT (default: $CSSD_SOCKET,
# else /run/cssd/qmp.sock when it exists, else ./cssd.sock).  -t SECONDS: give up after that long (default 0: never).
#
# Exit status: 0 the change came (without COMMAND), 1 timeout or error reply
# (e.g. DeviceNotFound for an unknown chpid), 2 connection failure or the
# server hung up, 64 usage error.  Needs socat and jq.  POSIX sh (works with
# dash).

set -u

prog=${0##*/}
CR=$(printf '\r')

usage() {
    echo "usage: $prog [-s SOCKET] [-t SECONDS] CHPID STATE [COMMAND [ARG ...]]" >&2
    exit 64
}

die() { printf '%s: %s\n' "$prog" "$1" >&2; exit "${2:-2}"; }

# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------
if [ -n "${CSSD_SOCKET-}" ]; then
    sock=$CSSD_SOCKET
elif [ -S /run/cssd/qmp.sock ]; then
    sock=/run/cssd/qmp.sock
else
    sock=./cssd.sock
fi
tmo=0
while getopts s:t:h opt; do
    case $opt in
        s) sock=$OPTARG ;;
        t) tmo=$OPTARG ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 2 ] || usage
chpid=$1 state=$2
shift 2

case $state in
    online|offline|configured|standby) ;;
    *) die "STATE must be online, offline, configured or standby, not '$state'" 64 ;;
esac
case $tmo in
    ''|.|*[!0-9.]*|*.*.*) die "-t: '$tmo' is not a number of seconds" 64 ;;
esac

command -v socat >/dev/null 2>&1 || die "socat not found" 2
command -v jq >/dev/null 2>&1 || die "jq not found" 2

case $sock in
    tcp:*) addr="TCP:${sock#tcp:}" ;;
    unix:*) addr="UNIX-CONNECT:${sock#unix:}" ;;
    *) [ -S "$sock" ] || die "$sock: no such socket" 2
       addr="UNIX-CONNECT:$sock" ;;
esac

# ---------------------------------------------------------------------------
# Session: socat talks to the server through two FIFOs.  We hold the write end
# of its input open (fd 4) instead of a sleeping feeder process, so the
# connection lasts exactly as long as this shell; its output is read on fd 3.
# ---------------------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/waitpath.XXXXXX") || die "mktemp failed" 2
socat_pid=
dog_pid=

cleanup() {
    [ -z "$socat_pid" ] || kill "$socat_pid" 2>/dev/null
    [ -z "$dog_pid" ] || kill "$dog_pid" 2>/dev/null
    exec 3<&- 4>&-
    [ -z "$socat_pid" ] || wait "$socat_pid" 2>/dev/null
    [ -z "$dog_pid" ] || wait "$dog_pid" 2>/dev/null
    socat_pid= dog_pid=
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkfifo "$tmp/in" "$tmp/out" || die "mkfifo failed" 2
socat -t 0 - "$addr" <"$tmp/in" >"$tmp/out" 2>"$tmp/err" &
socat_pid=$!
exec 4>"$tmp/in" 3<"$tmp/out"
# A socat that failed to connect must not kill us with SIGPIPE when we write.
trap '' PIPE

# The timeout stops socat; the reader then sees the end of its output.
case $tmo in
    *[1-9]*)
        (
            exec 3<&- 4>&-
            nap=
            trap '[ -z "$nap" ] || { kill "$nap"; wait "$nap"; }; exit 0' TERM
            sleep "$tmo" &
            nap=$!
            wait "$nap" && : >"$tmp/timedout" && kill "$socat_pid"
        ) 2>/dev/null &
        dog_pid=$! ;;
esac

# The connection ended: the timeout, or the server went away.
lost() {
    [ -e "$tmp/timedout" ] && die "$chpid did not become $state within ${tmo}s" 1
    msg=$(cat "$tmp/err" 2>/dev/null)
    msg=${msg##*" E "}   # socat's date, pid and level
    die "$1${msg:+: $msg}" 2
}

# Reads one CRLF-terminated line into $line.
next_line() {
    IFS= read -r line <&3 || return 1
    line=${line%"$CR"}
}

# Reads the next line that is not an event into $line.
next_reply() {
    while next_line; do
        case $line in
            *'"event"'*)
                if printf '%s' "$line" | jq -e 'has("event")' >/dev/null 2>&1; then
                    continue
                fi ;;
        esac
        return 0
    done
    return 1
}

subscribe=$(jq -c -n --arg c "$chpid" --arg s "$state" \
    '{execute: "subscribe-path-events", arguments: {chpids: [$c], changes: [$s]}, id: "wait-path"}')
printf '%s\n%s\n' '{"execute": "qmp_capabilities", "id": "negotiate"}' "$subscribe" >&4 2>/dev/null

next_line || lost "connection to $sock failed"
printf '%s' "$line" | jq -e 'has("QMP")' >/dev/null 2>&1 || die "not a QMP greeting: $line" 2
next_reply || lost "connection to $sock closed during negotiation"
printf '%s' "$line" | jq -e 'has("return")' >/dev/null 2>&1 \
    || die "capabilities negotiation failed: $line" 2
next_reply || lost "connection to $sock closed before the subscription"
if ! sid=$(printf '%s' "$line" | jq -e '.return.subscription' 2>/dev/null); then
    err=$(printf '%s' "$line" | jq -r '.error | "\(.class): \(.desc)"' 2>/dev/null) || err=$line
    die "$err" 1
fi
echo "subscribed: $sid" >&2

# The subscription's filter lets only CHPID's changes to STATE through; SHUTDOWN
# comes to every client, so the event name is still checked.
while next_line; do
    printf '%s' "$line" | jq -e --arg s "$state" \
        '.event == "CHANNEL_PATH_CHANGED" and .data.change == $s' >/dev/null 2>&1 || continue
    cleanup
    trap - EXIT INT TERM PIPE
    [ $# -eq 0 ] && exit 0
    exec "$@"
done
lost "connection to $sock closed"
