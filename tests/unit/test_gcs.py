"""The emulated Cloud Storage on its own: what a gs:// URI names, what may be opened,
and how lines are read."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from server.errors import InvalidArgument
from server.retail import gcs, ndjson

FIELD = "input_config.gcs_source.input_uris[0]"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "gcs"
    for name in ("bkt/d/a.json", "bkt/d/b.json", "bkt/d/.hidden.json", "bkt/d/sub/c.json",
                 "bkt/x/d/e.json", "bkt/y/d/f.json"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}\n")
    return root


def names(root: Path, files: list[Path]) -> list[str]:
    return [gcs.name_of(root, f) for f in files]


@pytest.mark.parametrize(("uri", "expected"), [
    ("gs://bkt/d/a.json", ["gs://bkt/d/a.json"]),
    ("gs://bkt/d/*", ["gs://bkt/d/a.json", "gs://bkt/d/b.json"]),  # not folders, not dot files
    ("gs://bkt/d/.*", ["gs://bkt/d/.hidden.json"]),
    ("gs://bkt/*/d/*.json", ["gs://bkt/x/d/e.json", "gs://bkt/y/d/f.json"]),
    ("gs://bkt/d/*/c.json", ["gs://bkt/d/sub/c.json"]),
    ("gs://bkt/d/[ab].json", []),  # only * is a wildcard
])
def test_wildcards_match_within_one_segment(root: Path, uri: str, expected: list[str]) -> None:
    if expected:
        assert names(root, gcs.input_files(root, uri, FIELD)) == expected
    else:
        with pytest.raises(InvalidArgument, match="no file matches"):
            gcs.input_files(root, uri, FIELD)


def test_a_uri_matching_nothing_says_where_such_files_are_read(root: Path) -> None:
    # "no file matches 'gs://bkt/none.json'" left a new user guessing which folder
    # stands for the bucket.
    with pytest.raises(InvalidArgument) as refused:
        gcs.input_files(root, "gs://bkt/none.json", FIELD)
    assert str(refused.value.violations[0].description) == (
        "no file matches 'gs://bkt/none.json' (gs://BUCKET/PATH is the file BUCKET/PATH "
        "under the server's --gcs-root, which its ready line names)")


@pytest.mark.timeout(10)
def test_a_segment_of_many_wildcards_matches_in_linear_time(root: Path) -> None:
    # As a regular expression (.*a.*a...b) a name of 200 a's held the thread, and
    # with it the GIL (every call of the server), for hours.
    (root / "bkt" / "d" / ("a" * 200)).write_text("{}\n")
    with pytest.raises(InvalidArgument, match="no file matches"):
        gcs.input_files(root, "gs://bkt/d/" + "*a" * 25 + "*b", FIELD)
    many = "gs://bkt/d/" + "*a" * 25 + "*"
    assert names(root, gcs.input_files(root, many, FIELD)) == ["gs://bkt/d/" + "a" * 200]


def test_listing_stops_one_past_the_limit(root: Path) -> None:
    assert len(gcs.input_files(root, "gs://bkt/*/*/*.json", FIELD, limit=1)) == 2
    assert len(gcs.input_files(root, "gs://bkt/d/*", FIELD, limit=0)) == 1


@pytest.mark.parametrize(("uri", "words"), [
    ("gs://bkt/../etc/passwd", "'..'"),
    ("gs://bkt/d/./a.json", "'.'"),
    ("gs://BKT/a.json", "not a valid bucket name"),
    ("s3://b/a.json", "gs://bucket/path"),
    ("gs://bkt/d/", "names a folder"),
    # (a folder without its slash said "no file matches"; a bucket alone was told to
    # name files under gs://events.json/events/)
    ("gs://bkt/d", r"names a folder; name files, e.g. gs://bkt/d/\*\.json"),
    ("gs://events.json", r"names only a bucket; a file is gs://BUCKET/PATH, e.g. "
                         r"gs://events\.json/events\.json"),
    ("gs://bkt/" + "x" * 2000, "at most 2000 characters"),
])
def test_malformed_uris_are_refused(root: Path, uri: str, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words) as refused:
        gcs.input_files(root, uri, FIELD)
    assert refused.value.violations[0].field == FIELD


def test_links_leaving_the_root_and_fifos_are_named(root: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.json").write_text("{}\n")
    os.symlink(tmp_path / "secret.json", root / "bkt/d/link.json")
    with pytest.raises(InvalidArgument, match="gs://bkt/d/link.json is a link that leaves"):
        gcs.input_files(root, "gs://bkt/d/*.json", FIELD)
    os.unlink(root / "bkt/d/link.json")
    os.mkfifo(root / "bkt/d/pipe.json")
    with pytest.raises(InvalidArgument, match="gs://bkt/d/pipe.json is not a regular file"):
        gcs.input_files(root, "gs://bkt/d/pipe.json", FIELD)


def test_a_folder_linked_outside_is_never_listed(root: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/f.json").write_text("{}\n")
    os.symlink(tmp_path / "elsewhere", root / "bkt/out")
    with pytest.raises(InvalidArgument, match="no file matches"):
        gcs.input_files(root, "gs://bkt/out/*", FIELD)


def test_a_link_into_another_bucket_is_refused_naming_the_field(root: Path) -> None:
    """A key may be limited to some buckets (by name): a link in one of them to
    another bucket's files would hand it those files."""
    (root / "other/d").mkdir(parents=True)
    (root / "other/d/secret.json").write_text("{}\n")
    os.symlink(root / "other/d", root / "bkt/linked")
    os.symlink(root / "other/d/secret.json", root / "bkt/d/secret.json")
    os.symlink(root / "bkt/d/a.json", root / "bkt/near.json")  # within its bucket: followed
    assert names(root, gcs.input_files(root, "gs://bkt/near.json", FIELD)) == [
        "gs://bkt/near.json"]
    for uri, named in [("gs://bkt/linked/secret.json", "gs://bkt/linked/secret.json"),
                       ("gs://bkt/*/secret.json", "gs://bkt/linked/secret.json"),
                       ("gs://bkt/d/secret.json", "gs://bkt/d/secret.json")]:
        with pytest.raises(InvalidArgument) as refused:
            gcs.input_files(root, uri, FIELD)
        [violation] = refused.value.violations
        assert violation.field == FIELD
        assert violation.description == (f"{named}: a link leads out of bucket 'bkt'; links "
                                          "are followed only within their bucket")
    with pytest.raises(InvalidArgument, match="no file matches"):
        gcs.input_files(root, "gs://bkt/linked/*", FIELD)  # a linked folder is not listed
    # A file found when the call was made and linked away before the job reads it:
    os.unlink(root / "bkt/near.json")
    os.symlink(root / "other/d/secret.json", root / "bkt/near.json")
    with pytest.raises(InvalidArgument, match="out of bucket 'bkt'") as refused:
        gcs.open_input(root, root / "bkt/near.json", FIELD)
    assert refused.value.violations[0].field == FIELD


def test_a_bucket_linked_to_another_is_refused(root: Path) -> None:
    (root / "other").mkdir()
    (root / "other/e.json").write_text("{}\n")
    os.symlink(root / "other", root / "alias")
    with pytest.raises(InvalidArgument, match="out of bucket 'alias'"):
        gcs.input_files(root, "gs://alias/e.json", FIELD)
    field = "errors_config.gcs_prefix"
    with pytest.raises(InvalidArgument, match="out of bucket 'alias'") as refused:
        gcs.check_output_folder(root, "gs://alias/errors/", field)
    assert refused.value.violations[0].field == field
    os.symlink(root / "other", root / "bkt/away")
    with pytest.raises(InvalidArgument, match="out of bucket 'bkt'"):
        gcs.make_output_folder(root, "gs://bkt/away/errors/", field)
    assert not (root / "other/errors").exists()


def test_output_folders_are_checked_without_being_made(root: Path, tmp_path: Path) -> None:
    folder = gcs.check_output_folder(root, "gs://bkt/new/errors/", "errors_config.gcs_prefix")
    assert folder == root / "bkt/new/errors" and not (root / "bkt/new").exists()
    made = gcs.make_output_folder(root, "gs://bkt/new/errors/", "errors_config.gcs_prefix")
    assert made.is_dir() and made == (root / "bkt/new/errors").resolve()
    with pytest.raises(InvalidArgument, match="is a file, not a folder"):
        gcs.check_output_folder(root, "gs://bkt/d/a.json/errors", "errors_config.gcs_prefix")
    os.symlink(tmp_path, root / "bkt/away")
    with pytest.raises(InvalidArgument, match="inside the emulated storage root"):
        gcs.check_output_folder(root, "gs://bkt/away/errors", "errors_config.gcs_prefix")


def test_a_root_not_made_yet_is_made_by_the_first_output_alone(tmp_path: Path) -> None:
    """The root was made at every start, so a memory:// server in a test suite left
    ./data/gcs in whatever folder it started in. Now reading or checking makes nothing,
    and what is missing reads as any missing file."""
    root = tmp_path / "not-yet" / "gcs"
    assert gcs.root_problem(root) is None
    with pytest.raises(InvalidArgument) as refused:
        gcs.input_files(root, "gs://bkt/d/a.json", FIELD)
    assert refused.value.violations[0].field == FIELD
    assert "no file matches 'gs://bkt/d/a.json'" in refused.value.violations[0].description
    with pytest.raises(InvalidArgument, match="no file matches"):
        gcs.input_files(root, "gs://bkt/*/a.json", FIELD)
    prefix = "gs://bkt/errors/"
    assert gcs.check_output_folder(root, prefix, "errors_config.gcs_prefix") \
        == root / "bkt/errors"
    assert not (tmp_path / "not-yet").exists()
    made = gcs.make_output_folder(root, prefix, "errors_config.gcs_prefix")
    assert made == (root / "bkt/errors").resolve() and made.is_dir()
    assert gcs.write_output(root, made / "e.json", b"{}\n", "f", at=0) == 3


def test_a_root_that_cannot_be_made_is_said_at_start_and_on_output(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    root = tmp_path / "a-file" / "gcs"
    assert gcs.root_problem(root) == f"{tmp_path / 'a-file'} is not a folder"
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    assert gcs.root_problem(tmp_path / "dangling") == f"{tmp_path / 'dangling'} is not a folder"
    with pytest.raises(InvalidArgument, match="--gcs-root cannot be made") as refused:
        gcs.make_output_folder(tmp_path / "dangling", "gs://bkt/e/", "errors_config.gcs_prefix")
    assert [v.field for v in refused.value.violations] == ["errors_config.gcs_prefix"]
    assert not (tmp_path / "nowhere").exists()


def test_an_output_under_a_root_not_made_yet_is_still_checked(tmp_path: Path) -> None:
    root = tmp_path / "gcs"
    for prefix in ("gs://bkt/" + "x" * 300, "gs://bkt/d/" + "x" * 300 + "/e"):
        with pytest.raises(InvalidArgument, match="too long"):
            gcs.check_output_folder(root, prefix, "errors_config.gcs_prefix")
        with pytest.raises(InvalidArgument, match="too long"):
            gcs.make_output_folder(root, prefix, "errors_config.gcs_prefix")
    with pytest.raises(InvalidArgument, match="'..'"):
        gcs.check_output_folder(root, "gs://bkt/../../e/", "errors_config.gcs_prefix")
    assert list(tmp_path.iterdir()) == []  # refused before anything was made


@pytest.mark.parametrize("prefix", ["gs://bkt/" + "x" * 300, "gs://bkt/d/" + "x" * 300 + "/e"])
def test_an_output_folder_named_longer_than_the_file_system_takes_is_refused(
        root: Path, prefix: str) -> None:
    # os.stat's ENAMETOOLONG went up through Path.exists: the import was INTERNAL
    with pytest.raises(InvalidArgument, match="too long") as caught:
        gcs.check_output_folder(root, prefix, "errors_config.gcs_prefix")
    assert [v.field for v in caught.value.violations] == ["errors_config.gcs_prefix"]


def test_an_output_is_written_where_its_last_step_left_it(root: Path) -> None:
    """A run that lost its job to another process may still append a batch's lines
    before it learns so: the new holder's next write goes where its own last step
    ended, over them, so what it records counts none of them."""
    target = root / "bkt/d/op-errors.json"
    assert gcs.write_output(root, target, b"committed\n", "f", at=0) == 10
    with target.open("ab") as stale:  # the run that lost the job
        stale.write(b"stray from the old run\n")
    assert gcs.write_output(root, target, b"next\n", "f", at=10) == 15
    assert target.read_bytes() == b"committed\nnext\n"
    target.write_bytes(b"cut")  # shorter than recorded (cut by hand): written at its end
    assert gcs.write_output(root, target, b"!\n", "f", at=10) == 5
    assert target.read_bytes() == b"cut!\n"


def test_outputs_are_written_and_truncated_but_never_through_a_link(
        root: Path, tmp_path: Path) -> None:
    target = root / "bkt/d/op-errors.json"
    assert gcs.write_output(root, target, b"one\n", "f", at=0) == 4
    assert gcs.write_output(root, target, b"two\n", "f", at=4) == 8
    gcs.truncate_output(root, target, 4, "f")
    assert target.read_bytes() == b"one\n"
    gcs.truncate_output(root, root / "bkt/d/none.json", 0, "f")  # nothing to cut
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep")
    link = root / "bkt/d/link-errors.json"
    os.symlink(outside, link)
    for act in (lambda: gcs.write_output(root, link, b"x", "f", at=0),
                lambda: gcs.truncate_output(root, link, 0, "f")):
        with pytest.raises(InvalidArgument, match="gs://bkt/d/link-errors.json: it is a link"):
            act()
    assert outside.read_bytes() == b"keep"


def test_outputs_are_named_and_removed_in_their_folder_never_through_a_link(
        root: Path, tmp_path: Path) -> None:
    part = root / "bkt/d/out.json.part"
    gcs.write_output(root, part, b"whole\n", "f", at=0)
    gcs.rename_output(root, part, "out.json", "f")
    assert not part.exists() and (root / "bkt/d/out.json").read_bytes() == b"whole\n"
    gcs.remove_output(root, root / "bkt/d/out.json", "f")
    gcs.remove_output(root, root / "bkt/d/out.json", "f")  # gone already: nothing
    gcs.remove_output(root, root / "bkt/gone/out.json", "f")  # its folder too
    assert not (root / "bkt/d/out.json").exists()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/out.json.part").write_bytes(b"keep")
    os.symlink(tmp_path / "elsewhere", root / "bkt/linked")
    for act in (lambda: gcs.rename_output(root, root / "bkt/linked/out.json.part", "out.json",
                                          "f"),
                lambda: gcs.remove_output(root, root / "bkt/linked/out.json.part", "f")):
        with pytest.raises(InvalidArgument, match="gs://bkt/linked: a link leads outside"):
            act()
    assert (tmp_path / "elsewhere/out.json.part").read_bytes() == b"keep"


def test_the_walk_from_the_root_meets_a_link_and_stops(root: Path, tmp_path: Path) -> None:
    # What guards the moment between resolving a path and opening it: if a folder on
    # the way has become a link since, opening fails rather than following it.
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/f.json").write_text("{}\n")
    (root / "bkt/e").mkdir()
    os.symlink(tmp_path / "elsewhere", root / "bkt/e/inner")
    with pytest.raises(OSError):  # ELOOP
        gcs._open_file(os.path.realpath(root), ["bkt", "e", "inner", "f.json"], os.O_RDONLY)


def test_inputs_open_only_regular_files_inside_the_root(root: Path, tmp_path: Path) -> None:
    with gcs.open_input(root, root / "bkt/d/a.json", FIELD) as handle:
        assert handle.read() == b"{}\n"
    os.mkfifo(root / "bkt/d/pipe.json")  # no writer: a blocking open would wait forever
    with pytest.raises(InvalidArgument, match="pipe.json: not a regular file"):
        gcs.open_input(root, root / "bkt/d/pipe.json", FIELD)
    with pytest.raises(InvalidArgument, match="gone.json: no such file"):
        gcs.open_input(root, root / "bkt/d/gone.json", FIELD)


def test_an_input_found_under_another_root_says_the_root_changed(root: Path,
                                                                  tmp_path: Path) -> None:
    # An import keeps the paths of its files in its checkpoint; resumed by a server
    # with another --gcs-root (a data folder moved at an upgrade), they are outside it.
    # It said "cannot read gs://../../gcs/bkt/d/a.json: a link leads outside the
    # storage root", though there was no link.
    moved = tmp_path / "moved"
    moved.mkdir()
    with pytest.raises(InvalidArgument) as caught:
        gcs.open_input(moved, root / "bkt/d/a.json", FIELD)
    assert caught.value.violations[0].description == (
        "cannot read a.json: it was found under another --gcs-root than the server's "
        "(changed since this import began): import it again")
    # ... while a root reached through a link reads the same files
    (tmp_path / "link").symlink_to(root)
    with gcs.open_input(tmp_path / "link", root / "bkt/d/a.json", FIELD) as handle:
        assert handle.read() == b"{}\n"


# -- skipping an over-long line ----------------------------------------------------------


def test_skip_rest_reads_to_the_newline_in_bounded_chunks() -> None:
    calls: list[int] = []
    handle = io.BytesIO(b"x" * (3 * ndjson.SKIP_CHUNK + 5) + b"\nnext\n")
    assert ndjson.skip_rest(handle, lambda: calls.append(1)) == 3 * ndjson.SKIP_CHUNK + 6
    assert handle.readline() == b"next\n"
    assert len(calls) == 4  # before each read: a stop can land while skipping
    assert ndjson.skip_rest(io.BytesIO(b"no newline"), lambda: None) == 10


def test_skip_rest_stops_when_asked() -> None:
    class Stop(Exception):
        pass

    def stop() -> None:
        raise Stop

    with pytest.raises(Stop):
        ndjson.skip_rest(io.BytesIO(b"x" * ndjson.SKIP_CHUNK * 2), stop)
