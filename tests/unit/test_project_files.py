"""What the repository says about itself: its licence and its package metadata."""

from __future__ import annotations

import hashlib
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# SHA-256 of the Apache License 2.0 as the ASF publishes it
# (https://www.apache.org/licenses/LICENSE-2.0.txt).
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def test_the_licence_is_the_apache_2_text() -> None:
    text = (ROOT / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_SHA256


def test_the_package_declares_its_licence() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]


def test_the_readme_names_the_licence() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "## Licence" in readme and "Apache License 2.0" in readme


def _make_dry_run(target: str, venv: Path) -> str:
    out = subprocess.run(["make", "-n", target, f"VENV={venv}"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    return out.stdout


def test_make_run_installs_only_what_serving_needs(tmp_path: Path) -> None:
    run = _make_dry_run("run", tmp_path / "venv")
    assert "pip install --quiet --disable-pip-version-check -e .\n" in run
    assert "[test" not in run and "dev]" not in run
    # the test and dev extras come with the targets that test and check
    assert "-e '.[test,dev]'" in _make_dry_run("setup", tmp_path / "venv")
