"""README.md's flag table is the one the declarations in server/config.py render, and it
names every flag `footfall serve --help` shows. On a failure, paste the output of
`python -m server.config --readme-table` over the table in README.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from server.__main__ import main
from server.config import readme_table

ROOT = Path(__file__).resolve().parents[2]
HEADER = "| flag | variable | default | meaning |"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def readme_flag_table() -> str:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(HEADER)  # ValueError if the table's header changed
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join(lines[start:end])


def test_the_readme_table_is_the_declared_one() -> None:
    assert readme_flag_table() == readme_table(), \
        "README.md's flag table is stale: paste `python -m server.config --readme-table`"


def test_every_flag_of_serve_help_is_in_the_readme_table(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["serve", "--help"])
    assert done.value.code == 0
    shown = set(FLAG.findall(capsys.readouterr().out)) - {"--help"}
    first_column = {row.split("|")[1].strip() for row in readme_flag_table().splitlines()[2:]}
    in_readme = {flag for cell in first_column for flag in FLAG.findall(cell)}
    assert len(shown) >= 19 and shown <= in_readme, sorted(shown - in_readme)


def test_the_tool_prints_the_table() -> None:
    out = subprocess.run([sys.executable, "-m", "server.config", "--readme-table"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout == readme_table() + "\n"
