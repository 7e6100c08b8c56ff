"""Keeping a project's latest refusals on SQLite works in proportion to those added,
not to those kept, where the table holds one project's alone (a shop's store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.store import open_store
from server.store.console import RejectionRow


def _rows(project: str, start: int, count: int) -> list[RejectionRow]:
    return [RejectionRow(project, f"projects/{project}", n, b"%s%d" % (project.encode(), n))
            for n in range(start, start + count)]


@pytest.mark.parametrize("others", [0, 3])
def test_one_projects_refusals_are_trimmed_to_its_count_from_the_oldest_end(
        tmp_path: Path, others: int) -> None:
    """A project's last keep_per_project were found from the newest end, every row of
    it walked for each job of refusals (2,000 rows, ten times a second in a flood);
    with the table holding that project's alone they are counted. (Another project's
    rows beside them: walked as before, and the same rows kept.)"""
    per_project = 2_000
    store = open_store(f"sqlite:///{tmp_path}/events.db")
    try:
        store.add_rejections(_rows("q", 0, others), 10_000, 0, per_project).result()
        store.add_rejections(_rows("p", 0, per_project), 10_000, 0, per_project).result()
        steps = [0]

        def stepped() -> int:
            steps[0] += 1
            return 0  # (go on)

        store._writer_conn.set_progress_handler(stepped, 100)  # each 100 VM instructions
        store.add_rejections(_rows("p", per_project, 10), 10_000, 0, per_project).result()
        store._writer_conn.set_progress_handler(None, 0)
        kept = [r for _, r in store.rejections_newest("p", per_project + 100)]
        assert kept == [b"p%d" % n for n in reversed(range(10, per_project + 10))]
        assert [r for _, r in store.rejections_newest("q", 100)] == \
            [b"q%d" % n for n in reversed(range(others))]
        if not others:
            assert steps[0] * 100 <= 2_000, steps  # (about 400 instructions; they were 6,400)
    finally:
        store.close()


def test_a_trim_alone_of_one_project_keeps_its_latest(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/events.db")
    try:
        store.add_rejections(_rows("p", 0, 8), 100, 0).result()
        store.add_rejections([], 100, 0, keep_per_project=3).result()
        assert [r for _, r in store.rejections_newest(None, 100)] == [b"p7", b"p6", b"p5"]
        store.add_rejections([], 100, 0, keep_per_project=3, projects=["q"]).result()
        assert len(store.rejections_newest(None, 100)) == 3
    finally:
        store.close()
