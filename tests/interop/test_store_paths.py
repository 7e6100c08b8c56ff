"""Every command's --store takes a SQLite file's path as well as a store URL.

`footfall backup`, `restore` and `copy` took `./x.db`; `serve`, `events`, `catalogs`
and the other read commands refused it (`unknown store URL './x.db'`), so a user
had to know which command wanted which."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from google.cloud import retail_v2

from .support import ServerProcess, count_events, retail_client

CATALOG = "projects/paths/locations/global/catalogs/default_catalog"


def test_serve_and_the_read_commands_take_the_path_of_a_sqlite_file(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = server_factory(store="data/events.db")  # relative: the server's folder
    retail_client(server.address).write_user_event(retail_v2.WriteUserEventRequest(
        parent=CATALOG, user_event=retail_v2.UserEvent(event_type="home-page-view",
                                                       visitor_id="visitor-1")))
    stored = tmp_path / "data" / "events.db"
    assert f"store sqlite:///{stored}" in server.log_text()
    for given in ("data/events.db", "./data/events.db", str(stored),
                  f"sqlite:///{stored}"):
        assert count_events(given, CATALOG, cwd=tmp_path) == 1, given


@pytest.mark.parametrize("command", [["events", "count", "--parent", CATALOG], ["catalogs"],
                                     ["serve"], ["backup", "copy.db"], ["restore", "copy.db"],
                                     ["copy", "copy.db"]])
def test_help_says_store_takes_a_path_or_a_url(command: list[str], tmp_path: Path) -> None:
    said = subprocess.run([sys.executable, "-m", "server", *command, "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert said.returncode == 0, said.stderr
    assert "a SQLite file's path" in " ".join(said.stdout.split())


@pytest.mark.parametrize("given", ["localhost:5432", "db.internal:5432", "127.0.0.1:5432",
                                   "[::1]:5432"])
@pytest.mark.parametrize("command", [["serve", "--port", "0", "--http-port", "0"],
                                     ["events", "count", "--parent", CATALOG],
                                     ["copy", "copy.db"]])
def test_a_servers_address_given_as_the_store_is_refused_not_made_a_file(
        command: list[str], given: str, tmp_path: Path) -> None:
    """`serve --store db.internal:5432`, a PostgreSQL server meant, made a SQLite file
    of that name and served on it, empty, since every --store takes a path."""
    said = subprocess.run([sys.executable, "-m", "server", *command, "--store", given],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert said.returncode != 0, said.stderr
    assert f"{given!r}: that is a server's address; a PostgreSQL database there is " \
           f"postgresql://USER@{given}/DB" in said.stderr, said.stderr
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())


@pytest.mark.parametrize(("given", "meant"), [
    ("localhost:5432/footfall", "postgresql://USER@localhost:5432/footfall"),
    ("postgres@db.internal:5432/footfall", "postgresql://postgres@db.internal:5432/footfall"),
    ("postgres@127.0.0.1:5432", "postgresql://postgres@127.0.0.1:5432/DB"),
    ("shop_db_1:5432", "postgresql://USER@shop_db_1:5432/DB"),  # (a compose service's name)
])
def test_a_servers_address_with_a_user_or_database_is_refused_too(
        given: str, meant: str, tmp_path: Path) -> None:
    """A server's address with its database after it, or its user before it (a URL
    without its postgresql://), or a host named with an underscore, made a SQLite file
    (and its folders) of that name and served on it, empty."""
    said = subprocess.run([sys.executable, "-m", "server", "serve", "--port", "0",
                           "--http-port", "0", "--store", given],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert said.returncode == 2, said.stderr
    assert f"{given!r}: that is a server's address; a PostgreSQL database there is " \
           f"{meant}" in said.stderr, said.stderr
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())


def test_a_file_named_like_an_address_is_still_a_path_away(
        server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = server_factory(store="./db:5432")
    retail_client(server.address).write_user_event(retail_v2.WriteUserEventRequest(
        parent=CATALOG, user_event=retail_v2.UserEvent(event_type="home-page-view",
                                                       visitor_id="visitor-1")))
    assert count_events("./db:5432", CATALOG, cwd=tmp_path) == 1


def test_a_password_in_a_servers_address_given_as_the_store_is_not_said(
        tmp_path: Path) -> None:
    """`--store me:PASSWORD@db.internal:5432/footfall` (a URL without its
    postgresql://) was refused quoting the password three times, in a line logged at
    ERROR."""
    said = subprocess.run([sys.executable, "-m", "server", "serve", "--port", "0",
                           "--http-port", "0", "--store", "me:s3cret@db.internal:5432/footfall"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert said.returncode == 2, said.stderr
    assert "s3cret" not in said.stderr, said.stderr
    assert "'me:***@db.internal:5432/footfall': that is a server's address; a PostgreSQL " \
           "database there is postgresql://me:***@db.internal:5432/footfall" in said.stderr, \
        said.stderr
