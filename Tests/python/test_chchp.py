"""cssctl chchp: s390-tools' chchp command line (zconf/chp/chchp.c, v2.43.0) over QMP, against a
live cssd on the embedded topology: ids and ranges as chchp takes them, its per-path lines, the
first failure ending the run, its usage messages, and the state the server ends in."""

from __future__ import annotations

import pytest

from harness.cssd import cssctl
from harness.qmp import Client


def states(sock: str) -> dict:
    return {p["chpid"]: (p["vary"], p["configure"]) for p in Client(sock).call("query-chpids")}


def test_lists_ranges_and_unknown_ids(cssd):
    p = cssctl(cssd.sock, "chchp", "-v", "0", "0.42-0.40,0.fe", "44")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ("Vary offline 0.42... done.\nVary offline 0.41... done.\nVary offline 0.40... done.\n"
                        "Skipping unknown channel-path 0.fe\nVary offline 0.44... done.\n")
    now = states(cssd.sock)
    assert [now[c][0] for c in ("0.40", "0.41", "0.42", "0.43", "0.44")] == ["offline"] * 3 + ["online", "offline"]
    # Blank-separated ids, the long option, the attribute chchp would write to sysfs.
    p = cssctl(cssd.sock, "chchp", "--vary", "1", "0.40", "41")
    assert p.returncode == 0 and p.stdout == "Vary online 0.40... done.\nVary online 0.41... done.\n"
    p = cssctl(cssd.sock, "chchp", "-a", "status=online", "0.42,0.44")
    assert p.returncode == 0 and p.stdout == "Attribute status=online 0.42... done.\nAttribute status=online 0.44... done.\n"
    assert all(v == "online" for v, _ in states(cssd.sock).values())


def test_the_first_failure_ends_the_run(cssd):
    """0.4e is reserved: configuring it fails as the kernel's write would, and chchp stops
    there, so 0.4f... is never tried; a css other than 0 is written fe.00."""
    p = cssctl(cssd.sock, "chchp", "-c", "0", "0.4d-0.4e,0.4c", "fe.0")
    assert p.returncode == 1
    assert p.stdout.startswith("Configure standby 0.4d... done.\nConfigure standby 0.4e... failed - GenericError: ")
    assert p.stdout.endswith("\n") and "0.4c" not in p.stdout
    now = states(cssd.sock)
    assert now["0.4d"][1] == "standby" and now["0.4c"][1] == "configured" and now["0.4e"][1] == "reserved"
    p = cssctl(cssd.sock, "chchp", "-c", "1", "fe.0", "0.4d")
    assert p.returncode == 0 and p.stdout == "Configure online fe.00... done.\nConfigure online 0.4d... done.\n"
    p = cssctl(cssd.sock, "chchp", "-a", "type=1b", "0.40")
    assert p.returncode == 1 and p.stdout == "Attribute type=1b 0.40... failed - attribute not writable\n"
    p = cssctl(cssd.sock, "chchp", "-a", "speed=1", "0.40")
    assert p.returncode == 1 and p.stdout == "Attribute speed=1 0.40... failed - no such attribute\n"


@pytest.mark.parametrize("args,message", [
    (["-v", "2", "0.40"], "Invalid value for --vary (only 0 or 1 allowed)"),
    (["-c", "on", "0.40"], "Invalid value for --configure (only 0 or 1 allowed)"),
    (["-v", "1", "-c", "1", "0.40"], "Only one of --vary, --configure or --attribute allowed"),
    (["0.40"], "One of --vary, --configure or --attribute required"),
    (["-v", "1"], "Need to specify at least one channel-path ID"),
    # An empty shell variable or a lone comma: chchp exits 0 having done nothing; a script that
    # meant to vary paths learns nothing changed.
    (["-v", "0", ""], "Need to specify at least one channel-path ID"),
    (["-v", "0", ","], "Need to specify at least one channel-path ID"),
    (["-a", "status", "0.40"], "--attribute requires an argument"),
    (["-v", "1", "0.4g"], "Invalid channel-path identifier '0.4g'"),
    (["-v", "1", "0.100"], "Invalid channel-path identifier '0.100'"),
    (["-v", "1", "0.40-"], "Invalid channel-path identifier range 0.40"),
])
def test_usage_errors_carry_chchps_messages(cssd, args, message):
    before = states(cssd.sock)
    p = cssctl(cssd.sock, "chchp", *args)
    assert p.returncode == 64 and message in p.stderr, p.stderr
    assert p.stdout == "" and states(cssd.sock) == before


def test_the_last_path_interlock_and_force(cssd):
    """0.60's OSA devices (in use) have no other path: chchp's standby fails as the server
    refuses it, naming the devices, and --force takes it (cssd's audit line records force)."""
    p = cssctl(cssd.sock, "chchp", "-c", "0", "0.60")
    assert p.returncode == 1
    assert p.stdout.startswith("Configure standby 0.60... failed - GenericError: ")
    assert "last operational path" in p.stdout and "force" in p.stdout
    assert states(cssd.sock)["0.60"][1] == "configured"
    p = cssctl(cssd.sock, "chchp", "--force", "-c", "0", "0.60")
    assert p.returncode == 0 and p.stdout == "Configure standby 0.60... done.\n"
    assert states(cssd.sock)["0.60"][1] == "standby"
    cssd.wait_line("force=true", "configure-chpid")
