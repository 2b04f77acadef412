"""cssd (and QEMU, when installed) driven by QEMU's own client library qemu.qmp
and by its qmp-shell tool."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys

import pytest

qmp = pytest.importorskip("qemu.qmp")
from qemu.qmp import ExecuteError, QMPClient  # noqa: E402

TIMEOUT = 10


def run(coro):
    """Run a coroutine with an overall time limit."""
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


async def connected(sock):
    client = QMPClient("pytest")
    await client.connect(sock)
    return client


def test_connect_negotiates(any_server):
    async def go():
        c = await connected(any_server.sock)
        try:
            assert c.greeting is not None
            ver = c.greeting.QMP.version["qemu"]
            assert set(ver) == {"major", "minor", "micro"}
            assert "oob" in c.greeting.QMP.capabilities
        finally:
            await c.disconnect()
    run(go())


def test_query_version(any_server):
    async def go():
        c = await connected(any_server.sock)
        try:
            v = await c.execute("query-version")
            assert set(v) == {"qemu", "package"}
            assert all(isinstance(v["qemu"][k], int) for k in ("major", "minor", "micro"))
            assert v == c.greeting.QMP.version
        finally:
            await c.disconnect()
    run(go())


def test_query_commands(any_server):
    async def go():
        c = await connected(any_server.sock)
        try:
            cmds = await c.execute("query-commands")
            names = {x["name"] for x in cmds}
            assert {"qmp_capabilities", "query-version", "query-commands", "query-qmp-schema"} <= names
        finally:
            await c.disconnect()
    run(go())


def test_query_qmp_schema(any_server):
    async def go():
        c = await connected(any_server.sock)
        try:
            schema = await c.execute("query-qmp-schema")
            assert isinstance(schema, list) and schema
            assert all("name" in e and "meta-type" in e for e in schema)
            cmds = {e["name"] for e in schema if e["meta-type"] == "command"}
            assert {"qmp_capabilities", "query-version", "query-commands"} <= cmds
        finally:
            await c.disconnect()
    run(go())


def test_unknown_command(any_server):
    async def go():
        c = await connected(any_server.sock)
        try:
            with pytest.raises(ExecuteError) as ei:
                await c.execute("no-such-command")
            assert ei.value.error.error.class_ == "CommandNotFound"
            assert ei.value.error.error.desc == "The command no-such-command has not been found"
            # the connection is still usable afterwards
            assert "qemu" in await c.execute("query-version")
        finally:
            await c.disconnect()
    run(go())


def test_bad_argument(any_server):
    async def go():
        c = await connected(any_server.sock)
        try:
            with pytest.raises(ExecuteError) as ei:
                await c.execute("query-version", {"bogus": 1})
            assert ei.value.error.error.class_ == "GenericError"
            assert ei.value.error.error.desc == "Parameter 'bogus' is unexpected"
        finally:
            await c.disconnect()
    run(go())


def test_many_concurrent_executes(any_server):
    """Many requests in flight at once; every reply must reach its caller."""
    async def go():
        c = await connected(any_server.sock)
        try:
            n = 200
            calls = []
            for i in range(n):
                if i % 3 == 0:
                    calls.append(c.execute("query-version"))
                elif i % 3 == 1:
                    calls.append(c.execute("query-commands"))
                else:
                    calls.append(c.execute("no-such-command"))
            results = await asyncio.gather(*calls, return_exceptions=True)
            for i, r in enumerate(results):
                if i % 3 == 0:
                    assert isinstance(r, dict) and "qemu" in r, r
                elif i % 3 == 1:
                    assert isinstance(r, list), r
                else:
                    assert isinstance(r, ExecuteError) and r.error.error.class_ == "CommandNotFound", r
        finally:
            await c.disconnect()
    run(go())


def test_several_clients(cssd):
    """cssd serves several qemu.qmp clients at once (QEMU's -qmp serves only one)."""
    async def go():
        clients = [await connected(cssd.sock) for _ in range(5)]
        try:
            res = await asyncio.gather(*(c.execute("query-version") for c in clients))
            assert len({str(r) for r in res}) == 1
        finally:
            for c in clients:
                await c.disconnect()
    run(go())


# --------------------------------------------------------------------------
# qmp-shell
# --------------------------------------------------------------------------

def qmp_shell_argv():
    exe = shutil.which("qmp-shell")
    if exe:
        return [exe]
    return [sys.executable, "-m", "qemu.qmp.qmp_shell"]


def run_qmp_shell(sock, stdin_text, tmp_path, extra=()):
    # qmp-shell reads commands with input(); with stdin not a tty it just reads
    # lines until EOF.  HOME is redirected so its history file goes to tmp.
    env = dict(os.environ, HOME=str(tmp_path))
    return subprocess.run(qmp_shell_argv() + list(extra) + [sock], input=stdin_text,
                          capture_output=True, text=True, timeout=30, env=env)


def test_qmp_shell_pipe(any_server, tmp_path):
    p = run_qmp_shell(any_server.sock, "query-version\nquery-commands\nno-such-command\n", tmp_path)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "Welcome to the QMP low-level shell!" in out
    assert "Connected to QEMU " in out
    assert '{"return": {"qemu": {' in out
    assert '{"name": "query-version"}' in out
    assert '"class": "CommandNotFound"' in out


def test_qmp_shell_arguments(cssd, tmp_path):
    p = run_qmp_shell(cssd.sock, "query-version bogus=1\n", tmp_path)
    assert p.returncode == 0, p.stderr
    assert "Parameter 'bogus' is unexpected" in p.stdout


def test_qmp_shell_pretty(cssd, tmp_path):
    p = run_qmp_shell(cssd.sock, "query-version\n", tmp_path, extra=["-p"])
    assert p.returncode == 0, p.stderr
    assert '"package": "cssd' in p.stdout


def test_qmp_shell_pty(cssd, tmp_path):
    """Interactive use through a pseudo terminal (prompt, banner, reply)."""
    pexpect = pytest.importorskip("pexpect")
    env = dict(os.environ, HOME=str(tmp_path), TERM="dumb")
    argv = qmp_shell_argv()
    child = pexpect.spawn(argv[0], argv[1:] + [cssd.sock], env=env, timeout=10, encoding="utf-8")
    try:
        child.expect(r"Connected to QEMU \d+\.\d+\.\d+")
        child.expect_exact("(QEMU) ")
        child.sendline("query-version")
        child.expect(r'\{"return": \{"qemu": \{')
        child.expect_exact("(QEMU) ")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
