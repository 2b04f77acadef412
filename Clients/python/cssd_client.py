#!/usr/bin/env python3
"""Minimal cssd client built on QEMU's own QMP library (qemu.qmp).

    cssd_client.py [-s SOCKET] COMMAND [key=value ...]

SOCKET is unix:PATH, tcp:HOST:PORT (as cssd's --qmp and cssctl --socket take them), a socket
path or HOST:PORT (default: $CSSD_SOCKET, else /run/cssd/qmp.sock when it exists, else
./cssd.sock).  Values are parsed as JSON when possible (n=1, flag=true, ids=[1,2]), else taken
as strings; an argument the command's schema declares as a string or an enum keeps its text
(chpid=0.40 sends "0.40", not the number 0.4).  Prints the server version (stderr), then the command's
result as JSON (stdout).  Exit status: 0 success, 1 the command failed (QMP error reply),
2 could not connect.
"""

import argparse
import asyncio
import json
import os
import sys

from qemu.qmp import ConnectError, ExecuteError, QMPClient


INSTALLED_SOCKET = "/run/cssd/qmp.sock"


def parse_args(pairs, strings=frozenset()):
    """['a=1', 'b=x'] -> {'a': 1, 'b': 'x'}: JSON when valid, else a string; keys in `strings`
    (the command's string and enum arguments) always keep their text."""
    args = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"argument {pair!r} is not key=value")
        if key in strings:
            args[key] = value
            continue
        try:
            args[key] = json.loads(value)
        except ValueError:
            args[key] = value
    return args


def string_arguments(schema, command):
    """The arguments of `command` that query-qmp-schema types as strings (builtin 'str' or an
    enum): their values are text even when they look like numbers (0.40)."""
    types = {entry["name"]: entry for entry in schema}
    info = types.get(command)
    arg_type = types.get(info.get("arg-type", "")) if info else None
    strings = set()
    for member in (arg_type or {}).get("members", []):
        t = types.get(member["type"], {})
        if t.get("json-type") == "string" or t.get("meta-type") == "enum":
            strings.add(member["name"])
    return frozenset(strings)


def default_socket():
    return os.environ.get("CSSD_SOCKET") or (
        INSTALLED_SOCKET if os.path.exists(INSTALLED_SOCKET) else "./cssd.sock")


def parse_address(text):
    """'unix:PATH' -> PATH; 'tcp:HOST:PORT' (tcp:[::1]:PORT too) or 'HOST:PORT' -> (host, port);
    anything else is a unix socket path."""
    if text.startswith("unix:"):
        return text[len("unix:"):]
    explicit = text.startswith("tcp:")
    rest = text[len("tcp:"):] if explicit else text
    host, sep, port = rest.rpartition(":")
    if sep and host and port.isdigit() and (explicit or "/" not in rest):
        return (host[1:-1] if host.startswith("[") and host.endswith("]") else host, int(port))
    if explicit:
        raise SystemExit(f"{text!r} is not tcp:HOST:PORT")
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


async def run(address, command, pairs):
    qmp = await connect("cssd-client", address)
    if qmp is None:
        return 2
    try:
        version = await qmp.execute("query-version")
        qemu = version["qemu"]
        print(f"server version {qemu['major']}.{qemu['minor']}.{qemu['micro']}"
              f" ({version['package'] or 'no package'})", file=sys.stderr)
        strings = string_arguments(await qmp.execute("query-qmp-schema"), command) if pairs else frozenset()
        arguments = parse_args(pairs, strings)
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
    ap.add_argument("-s", "--socket", default=default_socket(),
                    help="unix:PATH, tcp:HOST:PORT, a socket path or HOST:PORT (default: $CSSD_SOCKET, "
                         "else /run/cssd/qmp.sock when it exists, else ./cssd.sock)")
    ap.add_argument("command", help="QMP command, e.g. query-version")
    ap.add_argument("args", nargs="*", metavar="key=value", help="command arguments")
    opts = ap.parse_args()
    parse_args(opts.args)  # a malformed pair is refused before connecting
    return asyncio.run(run(parse_address(opts.socket), opts.command, opts.args))


if __name__ == "__main__":
    sys.exit(main())
