#!/usr/bin/env python3
"""Minimal cssd client built on QEMU's own QMP library (qemu.qmp).

    cssd_client.py [-s SOCKET] COMMAND [key=value ...]

SOCKET is a unix socket path or HOST:PORT (default: $CSSD_SOCKET or ./cssd.sock).
Values are parsed as JSON when possible (n=1, flag=true, ids=[1,2]), else
taken as strings.  Prints the server version (stderr), then the command's
result as JSON (stdout).  Exit status: 0 success, 1 the command failed (QMP error reply),
2 could not connect.
"""

import argparse
import asyncio
import json
import os
import sys

from qemu.qmp import ConnectError, ExecuteError, QMPClient


def parse_args(pairs):
    """['a=1', 'b=x'] -> {'a': 1, 'b': 'x'} (JSON when valid, else string)."""
    args = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"argument {pair!r} is not key=value")
        try:
            args[key] = json.loads(value)
        except ValueError:
            args[key] = value
    return args


def parse_address(text):
    """'host:port' -> (host, port); anything else is a unix socket path."""
    host, sep, port = text.rpartition(":")
    if sep and host and port.isdigit() and "/" not in text:
        return (host, int(port))
    return text


async def connect(name, address):
    """A negotiated QMPClient, or None after saying why on stderr (exit status 2)."""
    qmp = QMPClient(name)
    try:
        await qmp.connect(address)  # reads the greeting, negotiates
    except ConnectError as err:
        print(f"cannot connect to {address}: {err}", file=sys.stderr)
        return None
    return qmp


async def run(address, command, arguments):
    qmp = await connect("cssd-client", address)
    if qmp is None:
        return 2
    try:
        version = await qmp.execute("query-version")
        qemu = version["qemu"]
        print(f"server version {qemu['major']}.{qemu['minor']}.{qemu['micro']}"
              f" ({version['package'] or 'no package'})", file=sys.stderr)
        try:
            result = await qmp.execute(command, arguments or None)
        except ExecuteError as err:
            print(f"error: {err.error_class}: {err.error.error.desc}", file=sys.stderr)
            return 1
        print(json.dumps(result, indent=2))
        return 0
    finally:
        try:
            await qmp.disconnect()
        except EOFError:
            pass  # the server hung up first (e.g. after "quit"): nothing lost


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-s", "--socket", default=os.environ.get("CSSD_SOCKET", "./cssd.sock"),
                    help="unix socket path or HOST:PORT (default: $CSSD_SOCKET or ./cssd.sock)")
    ap.add_argument("command", help="QMP command, e.g. query-version")
    ap.add_argument("args", nargs="*", metavar="key=value", help="command arguments")
    opts = ap.parse_args()
    return asyncio.run(run(parse_address(opts.socket), opts.command, parse_args(opts.args)))


if __name__ == "__main__":
    sys.exit(main())
