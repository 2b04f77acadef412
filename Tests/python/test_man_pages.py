"""The man pages Scripts/package-deb generates (swift-argument-parser's generate-manual) keep the
help's examples whole: mdoc fills text lines into the paragraph before them, so prose that
follows an indented example line without a blank line is glued to the example
(`cssctl bench --socket ... Exit status: 0 success, ...`). Checked on the generated source and
on what man renders."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from harness.cssd import cssctl_binary, cssd_binary


def generate(tmp_path) -> list:
    tool = os.path.join(os.path.dirname(cssctl_binary()), "generate-manual")
    if not os.path.exists(tool):
        pytest.skip("generate-manual not built (swift build --product generate-manual)")
    subprocess.run([tool, cssd_binary(), "--section", "8", "-o", str(tmp_path)], check=True, timeout=120,
                   capture_output=True)
    subprocess.run([tool, cssctl_binary(), "--multi-page", "--section", "1", "-o", str(tmp_path)], check=True,
                   timeout=120, capture_output=True)
    pages = sorted(p for p in tmp_path.iterdir() if p.suffix in (".1", ".8"))
    assert len(pages) >= 10, pages
    return pages


def test_no_prose_is_glued_to_an_example(tmp_path):
    glued = []
    for page in generate(tmp_path):
        lines = page.read_text().split("\n")
        for line, following in zip(lines, lines[1:]):
            # An indented line is kept as typed; a text line right after it is filled into it.
            if line.startswith(" ") and following and not following.startswith((" ", ".")):
                glued.append((page.name, line, following))
    assert not glued, glued


def test_rendered_examples_end_where_they_end_in_the_help(tmp_path):
    if shutil.which("man") is None:
        pytest.skip("man is not installed")
    pages = {p.name: p for p in generate(tmp_path)}
    rendered = subprocess.run(["man", "-l", str(pages["cssctl.1"])], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "MANWIDTH": "120", "MAN_KEEP_FORMATTING": ""}).stdout
    example = next(line for line in rendered.splitlines() if "cssctl bench --socket /tmp/cssd.sock" in line)
    assert example.strip() == "cssctl bench --socket /tmp/cssd.sock --socket /tmp/qemu.sock", example
