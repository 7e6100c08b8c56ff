"""README.md's contents and its links within the page: every `(#anchor)` names a heading
as GitHub renders its anchor, and the contents' "Every section" line names every
second-level section, so a section added or renamed shows in the contents."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(#([^)\s]+)\)")


def headings() -> list[tuple[int, str]]:
    """(level, text) of each heading outside fenced code blocks."""
    found, fenced = [], False
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"(#{1,6}) (.+)", line)):
            found.append((len(heading[1]), heading[2].strip()))
    return found


def anchor(text: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped but `-` and `_`,
    each space a `-`."""
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def section(name: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {name}\n")
    return text[start:text.index("\n## ", start + 1)]


def test_every_link_within_the_page_names_a_heading():
    anchors = {anchor(text) for _, text in headings()}
    links = LINK.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(links) > 40
    assert sorted({link for link in links if link not in anchors}) == []


def test_the_contents_name_every_section():
    contents = section("Contents")
    every = contents[contents.index("Every section:"):]
    named = set(LINK.findall(every))
    sections = [text for level, text in headings()
                if level == 2 and text not in ("Quick start", "Contents")]
    assert sorted(anchor(text) for text in sections if anchor(text) not in named) == []


def test_the_contents_come_right_after_the_quick_start():
    # (the two commands stay first: README's quick start, then where to read)
    assert [text for level, text in headings() if level == 2][:3] == [
        "Quick start", "Contents", "What it is"]
