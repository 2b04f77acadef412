#!/usr/bin/env python3
"""Watch cssd's channel-path events with QEMU's own QMP library (qemu.qmp).

    path_events.py [-s SOCKET] [--chpid CHPID ...] [--granularity chpid|subchannel|both|guest]
                   [--guest NAME ...] [--count N] [--resume FILE]

Subscribes (subscribe-path-events), prints "subscribed: ID" to stderr, then one
line per event on stdout:

    CHANNEL_PATH_CHANGED 0.40 offline vary=offline configure=configured subchannels=42
    SUBCHANNEL_PATHS_CHANGED 0.40 offline 0.0.0003 devno=0.0.1000 pam=f0 pom=ff lpm=70 pnom=00
    PATH_EVENTS_DROPPED dropped=17

    PATH_EVENTS_GAP journal missed=5..9

With --resume FILE the position (epoch and sequence of the last change whose
events were all printed) is kept in FILE ({"epoch": ..., "sequence": N}, replaced
atomically: a temporary file, then rename); a later run subscribes with 'since'
and gets every change after it, or first a PATH_EVENTS_GAP naming those missed,
across a restart of this client or of cssd. Only an idle timeout (--timeout)
marks the last change complete; after --count, Ctrl-C or a hang-up a resumed run
may repeat that change's events, never skip one.

SOCKET is unix:PATH, tcp:HOST:PORT, a socket path or HOST:PORT (default: $CSSD_SOCKET, else
/run/cssd/qmp.sock when it exists, else ./cssd.sock).
Exit status: 0 after --count events or on Ctrl-C (SIGINT) or SIGTERM, 1 the
server refused the subscription, 2 could not connect or the server hung up.
"""

import argparse
import asyncio
import json
import os
import signal
import sys

from qemu.qmp import EventListener, ExecuteError
from qemu.qmp.protocol import Runstate

from cssd_client import connect, default_socket, parse_address

EVENTS = ("CHANNEL_PATH_CHANGED", "SUBCHANNEL_PATHS_CHANGED", "GUEST_PATH_CHANGED", "PATH_EVENTS_DROPPED",
          "PATH_EVENTS_GAP")


class ResumeFile:
    """--resume FILE: the last complete change's position, replaced atomically."""

    def __init__(self, path):
        self.path = path
        self.position = None
        self.current = None
        try:
            with open(path) as f:
                value = json.load(f)
            self.position = {"epoch": str(value["epoch"]), "sequence": int(value["sequence"])}
        except FileNotFoundError:
            pass

    def saw(self, event):
        data = event.get("data", {})
        if "epoch" not in data or "sequence" not in data:
            return
        seen = {"epoch": data["epoch"], "sequence": data["sequence"]}
        if event["event"] == "PATH_EVENTS_GAP":
            self.current = None
            self.save(seen)
            return
        if self.current is not None and self.current != seen:
            self.save(self.current)
        self.current = seen

    def finish(self, complete):
        if complete and self.current is not None:
            self.save(self.current)

    def save(self, position):
        if position == self.position:
            return
        self.position = position
        temporary = self.path + ".tmp"
        with open(temporary, "w") as f:
            json.dump(position, f)
            f.write("\n")
        os.replace(temporary, self.path)


def describe(event):
    """One line for an event: NAME chpid change ..."""
    name, data = event["event"], event.get("data", {})
    if name == "CHANNEL_PATH_CHANGED":
        return (f"{name} {data['chpid']} {data['change']} vary={data['vary']}"
                f" configure={data['configure']} subchannels={data['subchannels']}")
    if name == "SUBCHANNEL_PATHS_CHANGED":
        masks = " ".join(f"{m}={data[m]:02x}" for m in ("pam", "pom", "lpm", "pnom"))
        return (f"{name} {data['chpid']} {data['change']} {data['subchannel']}"
                f" devno={data['devno'] or '-'} {masks}")
    if name == "GUEST_PATH_CHANGED":
        return (f"{name} {data['guest-chpid']} {data['change']} guest={data['guest']}"
                f" host-chpid={data['host-chpid']} strategy={data['strategy']} devices={data['devices']}"
                f" visible={data['visible']} notifications={data['notifications']}")
    if name == "PATH_EVENTS_DROPPED":
        return f"{name} dropped={data['dropped']}"
    if name == "PATH_EVENTS_GAP":
        return f"{name} {data['reason']} missed={data['first']}..{data['last']}"
    return name


async def disconnected(qmp):
    """Returns once the connection is gone (the server hung up)."""
    while qmp.runstate not in (Runstate.DISCONNECTING, Runstate.IDLE):
        await qmp.runstate_changed()


async def watch(qmp, listener, count, resume=None, timeout=None):
    """Prints events until `count` of them (None: forever) or `timeout` seconds without one;
    2 if the server hangs up."""
    seen = 0
    idle = False
    lost = asyncio.create_task(disconnected(qmp))
    try:
        while count is None or seen < count:
            # A listener's get() never ends by itself: race it against the disconnection,
            # but print what arrived before the server went away.
            if listener.empty():
                get = asyncio.create_task(listener.get())
                await asyncio.wait({get, lost}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if not get.done() and not lost.done():
                    get.cancel()
                    idle = True
                    return 0
                if not get.done():
                    get.cancel()
                    print("the server closed the connection", file=sys.stderr)
                    return 2
                event = get.result()
            else:
                event = await listener.get()
            print(describe(event), flush=True)
            if resume is not None:
                resume.saw(event)
            seen += 1
        return 0
    finally:
        lost.cancel()
        if resume is not None:
            resume.finish(idle)


async def run(address, arguments, count, resume=None, timeout=None):
    # SIGINT and SIGTERM: cancelled, cleaned up, status 0. Both through the loop's own handler
    # (its wakeup fd): asyncio.run's SIGINT handler runs only when the loop wakes, and a
    # Ctrl-C that came just before it blocked left the client waiting (CI saw it hang 120 s).
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, asyncio.current_task().cancel)
    qmp = await connect("path-events", address)
    if qmp is None:
        return 2
    try:
        # Listen before subscribing: events may follow the reply at once.
        listener = EventListener(names=EVENTS)
        with qmp.listen(listener):
            try:
                if resume is not None and resume.position is not None:
                    arguments = dict(arguments, since=resume.position)
                reply = await qmp.execute("subscribe-path-events", arguments or None)
            except ExecuteError as err:
                print(f"error: {err.error_class}: {err.error.error.desc}", file=sys.stderr)
                return 1
            print(f"subscribed: {reply['subscription']}", file=sys.stderr, flush=True)
            return await watch(qmp, listener, count, resume, timeout)
    except asyncio.CancelledError:
        return 0
    finally:
        try:
            await qmp.disconnect()
        except EOFError:
            pass  # the server hung up first: nothing lost


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-s", "--socket", default=default_socket(),
                    help="unix:PATH, tcp:HOST:PORT, a socket path or HOST:PORT (default: $CSSD_SOCKET, "
                         "else /run/cssd/qmp.sock when it exists, else ./cssd.sock)")
    ap.add_argument("--chpid", action="append", default=[],
                    help="only changes of this chpid (cssid.chpid, e.g. 0.40); repeatable")
    ap.add_argument("--granularity", choices=("chpid", "subchannel", "both", "guest"),
                    help="chpid: one event per change (default); subchannel: one per subchannel; both;"
                         " guest: one per guest reached (vfio-ccw)")
    ap.add_argument("--guest", action="append", default=[], help="with --granularity guest: only this guest")
    ap.add_argument("--count", type=int, help="exit after this many events")
    ap.add_argument("--timeout", type=float, help="exit when no event came for this many seconds")
    ap.add_argument("--resume", metavar="FILE", help="keep the position in FILE and resume from it")
    opts = ap.parse_args()
    if opts.count is not None and opts.count < 1:
        ap.error("--count must be at least 1")
    arguments = {}
    if opts.chpid:
        arguments["chpids"] = opts.chpid
    if opts.granularity:
        arguments["granularity"] = opts.granularity
    if opts.guest:
        arguments["guests"] = opts.guest
    try:
        resume = ResumeFile(opts.resume) if opts.resume else None
        return asyncio.run(run(parse_address(opts.socket), arguments, opts.count, resume, opts.timeout))
    except KeyboardInterrupt:
        return 0  # Ctrl-C: asyncio.run has cancelled run(), which disconnected


if __name__ == "__main__":
    sys.exit(main())
