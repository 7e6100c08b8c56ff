"""A real small file system for tests: a tmpfs mounted for one test, and a ballast
file that fills it. Mounting needs root; without it the test skips, loudly."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


class SmallDisk:
    """A mounted tmpfs and a ballast file that can fill it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ballast = path / "ballast"

    def fill(self) -> None:
        """Write ballast until the file system says ENOSPC."""
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for chunk in (2**20, 4096):
                while True:
                    try:
                        os.write(fd, b"\xff" * chunk)
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC, exc
                        break
        finally:
            os.close(fd)

    def make_room(self, size: int) -> None:
        os.truncate(self.ballast, max(self.ballast.stat().st_size - size, 0))

    def empty(self) -> None:
        self.ballast.unlink()

    def remount(self, *options: str) -> None:
        """Mount it again with `options` (e.g. "ro")."""
        _run("mount", "-o", ",".join(("remount", *options)), str(self.path))


@contextlib.contextmanager
def mounted(path: Path, size: int) -> Iterator[SmallDisk]:
    """A tmpfs of `size` bytes on `path` (made if missing), unmounted however the
    block ends; skips the test when mounting is not permitted."""
    path.mkdir(exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip("!!!!!!!! SKIPPED: cannot mount a tmpfs for a full or read-only disk "
                    f"(needs root): {done.stderr.strip()} !!!!!!!!")
    try:
        yield SmallDisk(path)
    finally:
        _run("umount", str(path))


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, f"{command}: {done.stderr}"


class ThinVolume:
    """A file system whose disk fails its writes while `backing` is full: an ext2 file
    system on a loop device over a sparse file on a small tmpfs. Its free space is the
    loop device's, larger than the tmpfs, so once `backing` (the tmpfs) is filled its
    writes fail with EIO, as a thin-provisioned or network volume's do, while the file
    system itself still says it has room; emptied, they succeed again."""

    def __init__(self, path: Path, backing: SmallDisk) -> None:
        self.path = path
        self.backing = backing


@contextlib.contextmanager
def thin_volume(path: Path, size: int, backing_size: int) -> Iterator[ThinVolume]:
    """A ThinVolume of `size` bytes on `path` over a tmpfs of `backing_size` bytes
    (beside it); skips the test without root, a loop device or mkfs.ext2."""
    with loop_ext2(path, size, backing_size, "a disk whose writes fail") as (_, backing):
        yield ThinVolume(path, backing)


@contextlib.contextmanager
def loop_ext2(path: Path, size: int, backing_size: int, what: str,
              *mount_options: str) -> Iterator[tuple[str, SmallDisk]]:
    """An ext2 file system of `size` bytes mounted on `path` (with `mount_options`), on a
    loop device over a sparse file on a tmpfs of `backing_size` bytes beside it: the
    device and the tmpfs. Skips the test, naming `what` it wanted, without root, a loop
    device or mkfs.ext2."""
    missing = [tool for tool in ("losetup", "mkfs.ext2") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"!!!!!!!! SKIPPED: no {' or '.join(missing)} for {what} !!!!!!!!")
    with mounted(path.with_name(f"{path.name}-backing"), backing_size) as backing:
        image = backing.path / "image"
        with open(image, "wb") as sparse:
            sparse.truncate(size)
        done = subprocess.run(["losetup", "--find", "--show", str(image)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"!!!!!!!! SKIPPED: cannot attach a loop device for {what}: "
                        f"{done.stderr.strip()} !!!!!!!!")
        device = done.stdout.strip()
        try:
            _run("mkfs.ext2", "-q", device)
            path.mkdir(exist_ok=True)
            _run("mount", *mount_options, device, str(path))
            try:
                yield device, backing
            finally:
                _run("umount", str(path))
        finally:
            _run("losetup", "--detach", device)
