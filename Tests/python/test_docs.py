"""The documents' links: every relative link in README.md, API/*.md and docs/*.md names a file
of the repository, and a `#fragment` a heading of that file (GitHub's anchors: lower case,
punctuation but `-` and `_` dropped, spaces as `-`). README keeps the test command CI runs.

Links to other sites are not fetched (the tests run offline)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.paths import REPO_ROOT

DOCUMENTS = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "API").glob("*.md"), *(REPO_ROOT / "docs").glob("*.md")])

# [text](target) outside code; images too. The target ends at the first space or ')'.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*```")


def prose(path: Path) -> str:
    """The file without fenced code blocks and inline code spans, where brackets are not links."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(re.sub(r"`[^`]*`", "``", line))
    return "\n".join(lines)


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of `path` (duplicates get -1, -2, ...)."""
    seen: dict[str, int] = {}
    result = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).replace("`", "").lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def test_there_are_documents_to_check():
    names = {path.relative_to(REPO_ROOT).as_posix() for path in DOCUMENTS}
    assert {"README.md", "API/architecture.md", "docs/running.md"} <= names


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.relative_to(REPO_ROOT).as_posix())
def test_every_relative_link_resolves(document):
    broken = []
    for target in LINK.findall(prose(document)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:, ...: another site
        file_part, _, fragment = target.partition("#")
        resolved = (document.parent / file_part).resolve() if file_part else document
        if not resolved.exists():
            broken.append(f"{target}: no {resolved.relative_to(REPO_ROOT) if resolved.is_relative_to(REPO_ROOT) else resolved}")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target}: no heading '#{fragment}' in {resolved.relative_to(REPO_ROOT)}")
    assert not broken, f"{document.relative_to(REPO_ROOT)}: " + "; ".join(broken)


def test_readme_keeps_the_ci_test_command():
    """.ci/run runs Scripts/test, "the README's test command": the README must still name it."""
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "Scripts/test" in ci
    assert re.search(r"^Scripts/test\b", (REPO_ROOT / "README.md").read_text(), re.MULTILINE)


def test_the_checker_finds_a_broken_link(tmp_path):
    """The checker itself: a missing file and a missing heading are both found."""
    (tmp_path / "a.md").write_text("# Title\n\nSee [b](b.md), [here](#nowhere), [ok](#title), `[not](x.md)`.\n")
    found = [target for target in LINK.findall(prose(tmp_path / "a.md"))]
    assert found == ["b.md", "#nowhere", "#title"]
    assert "title" in anchors(tmp_path / "a.md") and "nowhere" not in anchors(tmp_path / "a.md")
