"""QEMU, the oracle: qemu-system-s390x processes with a QMP monitor, and the comparison of
cssd's replies with QEMU's (values that legitimately differ masked; the recording of QEMU 7.2's
replies loaded and written).

- QEMU_BIN overrides qemu-system-s390x (default: looked up on PATH).
- QMP_TEST_STRICT_NUMBERS=1: 1500 (int) and 1500.0 (float) compare unequal.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterable, List, Optional

from .paths import RECORD_FILE
from .process import Server, ServerStartError

QEMU_BINARY = "qemu-system-s390x"
QEMU_ARGS = ["-machine", "s390-ccw-virtio", "-nodefaults", "-display", "none", "-S"]

PLACEHOLDER = "<version>"
LIST_PLACEHOLDER = "<list>"


def qemu_binary() -> Optional[str]:
    """Path of qemu-system-s390x, or None (env QEMU_BIN overrides)."""
    env = os.environ.get("QEMU_BIN")
    if env:
        return env if os.access(env, os.X_OK) else None
    return shutil.which(QEMU_BINARY)


def qemu_server(workdir: str, sock: Optional[str] = None) -> Server:
    binary = qemu_binary()
    if not binary:
        raise ServerStartError(f"{QEMU_BINARY} not found on PATH")
    sock = sock or os.path.join(workdir, "qemu.sock")
    argv = [binary, *QEMU_ARGS, "-qmp", f"unix:{sock},server=on,wait=off"]
    return Server("qemu", argv, sock, workdir)


def normalize(replies: Iterable[Any], case_id: str = "") -> List[Any]:
    """Mask values that legitimately differ between QEMU and cssd.

    - query-version returns (recognised by shape) -> PLACEHOLDER
    - greeting objects -> version/package masked
    - list returns (query-commands / query-qmp-schema) -> LIST_PLACEHOLDER
    """
    out = []
    for r in replies:
        if isinstance(r, dict):
            r = dict(r)
            if "QMP" in r:
                r["QMP"] = mask_greeting(r["QMP"])
            if "return" in r:
                ret = r["return"]
                if _is_version(ret):
                    r["return"] = PLACEHOLDER
                elif isinstance(ret, list):
                    r["return"] = LIST_PLACEHOLDER
        out.append(r)
    return out


#: QEMU's version object exactly as QEMU 7.2 writes it (member order and spacing included):
#: only a reply written byte for byte like QEMU's gets its numbers masked.
_VERSION_TEXT = re.compile(
    rb'\{"qemu": \{"micro": -?\d+, "minor": -?\d+, "major": -?\d+\}, "package": "(?:[^"\\\\]|\\\\.)*"\}')
_LIST_RETURN = b'{"return": ['


def mask_line(line: bytes) -> bytes:
    """One raw reply line with what legitimately differs between QEMU and cssd masked, for a
    byte-for-byte comparison: the version object (numbers and package) and the list a
    query-commands / query-qmp-schema reply returns. Everything else, spacing and member
    order included, stays."""
    line = _VERSION_TEXT.sub(PLACEHOLDER.encode(), line)
    if line.startswith(_LIST_RETURN):
        text = line.decode("latin-1")
        try:
            _, end = json.JSONDecoder().raw_decode(text, len(_LIST_RETURN) - 1)
        except ValueError:
            return line
        line = line[: len(_LIST_RETURN) - 1] + LIST_PLACEHOLDER.encode() + line[end:]
    return line


def _is_version(v: Any) -> bool:
    return (isinstance(v, dict) and set(v) == {"qemu", "package"}
            and isinstance(v["qemu"], dict)
            and set(v["qemu"]) == {"major", "minor", "micro"})


def mask_greeting(qmp: Any) -> Any:
    if isinstance(qmp, dict) and _is_version(qmp.get("version")):
        qmp = dict(qmp)
        qmp["version"] = PLACEHOLDER
    return qmp


#: QMP_TEST_STRICT_NUMBERS=1: 1500 (int) and 1500.0 (float) compare unequal.
#: Default: numbers compare by value, like the parsed JSON values they are
#: (QEMU prints every double with %.17g, so 1.5e3 comes back as 1500).
STRICT_NUMBERS = os.environ.get("QMP_TEST_STRICT_NUMBERS") == "1"


def canonical(v: Any, strict_numbers: Optional[bool] = None) -> Any:
    """Comparable form: booleans are tagged (so true != 1), numbers compare
    by value (exactly: Python compares int and float without rounding), or
    by type and value when strict_numbers."""
    strict = STRICT_NUMBERS if strict_numbers is None else strict_numbers
    if isinstance(v, bool):
        return ["bool", v]
    if isinstance(v, (int, float)):
        if strict:
            return ["float", repr(v)] if isinstance(v, float) else ["int", v]
        return ["num", v]
    if isinstance(v, list):
        return ["list", [canonical(x, strict) for x in v]]
    if isinstance(v, dict):
        return ["dict", {k: canonical(x, strict) for k, x in sorted(v.items())}]
    return v


def load_records(path: Path = RECORD_FILE) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def raw_sha256(raw: bytes) -> str:
    import hashlib
    return hashlib.sha256(raw).hexdigest()


def raw_to_record(raw: bytes) -> str:
    """Identity of a case input as stored in the recording."""
    return raw_sha256(raw)


def raw_preview(raw: bytes, limit: int = 300) -> str:
    """Human-readable (latin-1, Python-escaped) excerpt of raw input."""
    r = raw if len(raw) <= limit else raw[: limit - 60] + b"..." + raw[-40:]
    return repr(r)[2:-1]


def dump_records(records: dict, path: Path = RECORD_FILE) -> None:
    """Write the recording: one case per block, one reply per line (ASCII)."""
    def compact(v: Any) -> str:
        return json.dumps(v, ensure_ascii=True, separators=(", ", ": "))

    parts = []
    for key, rec in records.items():
        if isinstance(rec, dict) and "replies" in rec:
            fields = [f"  {json.dumps(k)}: {compact(v)}" for k, v in rec.items() if k != "replies"]
            fields = [f for f in fields if not f.startswith('  "lines"')]
            replies = rec["replies"]
            body = ",\n".join("   " + compact(r) for r in replies)
            fields.append('  "replies": [' + ("\n" + body + "\n  ]" if replies else "]"))
            if "lines" in rec:
                lines = rec["lines"]
                body = ",\n".join("   " + compact(r) for r in lines)
                fields.append('  "lines": [' + ("\n" + body + "\n  ]" if lines else "]"))
            parts.append(f" {json.dumps(key)}: {{\n" + ",\n".join(fields) + "\n }")
        else:
            parts.append(f" {json.dumps(key)}: {compact(rec)}")
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(parts) + "\n}\n")
