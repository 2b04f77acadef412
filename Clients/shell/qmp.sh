#!/bin/sh
# qmp.sh - send one QMP command to cssd (or QEMU) and pretty-print the reply.
#
#   qmp.sh [-s SOCKET] [-t SECONDS] [-N] COMMAND [key=value ...]
#   qmp.sh [-s SOCKET] [-t SECONDS] [-N] -j '{"execute": ..., "arguments": {...}}'
#
# SOCKET: a unix socket path, unix:PATH or tcp:HOST:PORT (default: $CSSD_SOCKET,
# else /run/cssd/qmp.sock when it exists, else ./cssd.sock).
# key=value: the value is used as JSON when it is valid JSON (1, true, null,
# [..], {..}, "str"), else as a string (path=/tmp/x -> "/tmp/x"); an argument
# the command's schema (query-qmp-schema) declares as a string or an enum keeps
# its text, so chpid=0.40 sends "0.40", not the number 0.4.
# -N skips qmp_capabilities (e.g. to send it yourself with -j).
#
# Exit status: 0 success reply, 1 error reply, 2 connection failure or no reply,
# 64 usage error.  Needs socat and jq.  POSIX sh (works with dash).

set -u

prog=${0##*/}
CR=$(printf '\r')

usage() {
    cat >&2 <<EOF
usage: $prog [-s SOCKET] [-t SECONDS] [-N] COMMAND [key=value ...]
       $prog [-s SOCKET] [-t SECONDS] [-N] -j JSON
EOF
    exit 64
}

die() { printf '%s: %s\n' "$prog" "$1" >&2; exit "${2:-2}"; }

# ---------------------------------------------------------------------------
# Session mode: run by socat with stdin/stdout connected to the QMP socket.
# Input: $QMP_SH_REQ (request), $QMP_SH_NEG (1 = negotiate), $QMP_SH_OUT (file
# that receives the reply line).
# ---------------------------------------------------------------------------
read_msg() {
    # Read one CRLF-terminated JSON line into $line; skip events.
    while :; do
        IFS= read -r line || return 1
        line=${line%"$CR"}
        case $line in
            *'"event"'*)
                if printf '%s' "$line" | jq -e 'has("event")' >/dev/null 2>&1; then
                    continue
                fi ;;
        esac
        return 0
    done
}

# The names of COMMAND's arguments that query-qmp-schema types as strings (the
# builtin str, or an enum), as a JSON array, from the schema reply on stdin.
string_arguments() {
    jq -c --arg c "$1" '
        (.return // []) as $s
        | ($s | map({key: .name, value: .}) | from_entries) as $t
        | ($t[$c]["arg-type"] // "") as $at
        | [($t[$at].members // [])[]
           | select(($t[.type]["json-type"] // "") == "string" or ($t[.type]["meta-type"] // "") == "enum")
           | .name]'
}

session() {
    read_msg || { echo "no greeting" >"$QMP_SH_OUT.err"; exit 2; }
    printf '%s' "$line" | jq -e 'has("QMP")' >/dev/null 2>&1 \
        || { printf 'not a QMP greeting: %s\n' "$line" >"$QMP_SH_OUT.err"; exit 2; }
    if [ "$QMP_SH_NEG" = 1 ]; then
        printf '%s\n' '{"execute":"qmp_capabilities"}'
        read_msg || { echo "connection closed during negotiation" >"$QMP_SH_OUT.err"; exit 2; }
        if ! printf '%s' "$line" | jq -e 'has("return")' >/dev/null 2>&1; then
            printf '%s\n' "$line" >"$QMP_SH_OUT"   # negotiation error: report it
            exit 0
        fi
        # Values that parsed as JSON but may be meant as text (chpid=0.40): the
        # schema says which arguments are strings.
        if [ -n "${QMP_SH_ALT-}" ] && [ "$QMP_SH_ALT" != '{}' ]; then
            printf '%s\n' '{"execute":"query-qmp-schema","id":"qmp.sh-schema"}'
            read_msg || { echo "connection closed reading the schema" >"$QMP_SH_OUT.err"; exit 2; }
            strings=$(printf '%s' "$line" | string_arguments "$QMP_SH_CMD") || strings='[]'
            QMP_SH_REQ=$(jq -c -n --argjson r "$QMP_SH_REQ" --argjson alt "$QMP_SH_ALT" --argjson s "$strings" \
                '$r | .arguments += ($alt | with_entries(select(.key as $k | $s | index($k))))')
        fi
    fi
    printf '%s\n' "$QMP_SH_REQ"
    read_msg || { echo "connection closed before the reply" >"$QMP_SH_OUT.err"; exit 2; }
    printf '%s\n' "$line" >"$QMP_SH_OUT"
    exit 0
}

if [ "${1-}" = "--session" ]; then
    session
fi

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
json=
negotiate=1
tmo=${QMP_TIMEOUT:-10}
while getopts s:j:t:Nh opt; do
    case $opt in
        s) sock=$OPTARG ;;
        j) json=$OPTARG ;;
        t) tmo=$OPTARG ;;
        N) negotiate=0 ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))

command -v socat >/dev/null 2>&1 || die "socat not found" 2
command -v jq >/dev/null 2>&1 || die "jq not found" 2

if [ -n "$json" ]; then
    [ $# -eq 0 ] || usage
    req=$(jq -c -n --argjson r "$json" '$r' 2>/dev/null) || die "-j: not a single JSON value" 64
else
    [ $# -ge 1 ] || usage
    cmd=$1; shift
    args='{}'
    alt='{}'   # the text of values that parsed as JSON scalars, for string arguments
    for kv in "$@"; do
        case $kv in
            *=*) ;;
            *) die "argument '$kv' is not key=value" 64 ;;
        esac
        key=${kv%%=*}
        val=${kv#*=}
        [ -n "$key" ] || die "argument '$kv' has an empty key" 64
        if jq -n --argjson v "$val" '$v' >/dev/null 2>&1; then
            args=$(jq -c -n --argjson a "$args" --arg k "$key" --argjson v "$val" '$a + {($k): $v}')
            if jq -e -n --argjson v "$val" '$v | type | . == "number" or . == "boolean" or . == "null"' >/dev/null 2>&1; then
                alt=$(jq -c -n --argjson a "$alt" --arg k "$key" --arg v "$val" '$a + {($k): $v}')
            fi
        else
            args=$(jq -c -n --argjson a "$args" --arg k "$key" --arg v "$val" '$a + {($k): $v}')
        fi
    done
    if [ "$args" = '{}' ]; then
        req=$(jq -c -n --arg c "$cmd" '{execute: $c}')
    else
        req=$(jq -c -n --arg c "$cmd" --argjson a "$args" '{execute: $c, arguments: $a}')
    fi
fi

case $sock in
    tcp:*) addr="TCP:${sock#tcp:}" ;;
    unix:*) addr="UNIX-CONNECT:${sock#unix:}" ;;
    *) [ -S "$sock" ] || die "$sock: no such socket" 2
       addr="UNIX-CONNECT:$sock" ;;
esac

out=$(mktemp "${TMPDIR:-/tmp}/qmpsh.XXXXXX") || die "mktemp failed" 2
trap 'rm -f "$out" "$out.err"' EXIT
trap 'exit 130' INT TERM

QMP_SH_REQ=$req QMP_SH_NEG=$negotiate QMP_SH_OUT=$out QMP_SH_SELF=$0
QMP_SH_ALT=${alt-'{}'} QMP_SH_CMD=${cmd-}
export QMP_SH_REQ QMP_SH_NEG QMP_SH_OUT QMP_SH_SELF QMP_SH_ALT QMP_SH_CMD
if command -v timeout >/dev/null 2>&1; then
    to="timeout $tmo"
else
    to=
fi
# shellcheck disable=SC2086
$to socat "$addr" 'SYSTEM:exec /bin/sh "$QMP_SH_SELF" --session' 2>"$out.err"
rc=$?

if [ ! -s "$out" ]; then
    if [ "$rc" -eq 124 ]; then
        die "timed out after ${tmo}s talking to $sock" 2
    fi
    msg=$(cat "$out.err" 2>/dev/null)
    die "connection to $sock failed${msg:+: $msg}" 2
fi

reply=$(cat "$out")
printf '%s\n' "$reply" | jq . 2>/dev/null || printf '%s\n' "$reply"
if printf '%s' "$reply" | jq -e . >/dev/null 2>&1; then
    printf '%s' "$reply" | jq -e 'has("error") | not' >/dev/null 2>&1 || exit 1
else
    case $reply in *'"error":'*) exit 1 ;; esac   # not parseable by jq (e.g. QEMU's inf)
fi
exit 0
