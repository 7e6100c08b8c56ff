"""A disk that fails its reads and writes with EIO for a while, and then works again,
for real: an ext2 file system on a loop device (over a sparse file on a tmpfs) whose
size limit is cut to its first blocks, so that every read or write past them meets
"attempt to access beyond end of device"; the limit lifted, it reads as before.
Needs root and a loop device: else the test skips, loudly."""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from collections.abc import Iterator
from pathlib import Path

from .tmpfs import loop_ext2

_LOOP_SET_STATUS64, _LOOP_GET_STATUS64 = 0x4C04, 0x4C05
# Linux's struct loop_info64: device, inode, rdevice, offset, sizelimit, number,
# encrypt type and key size, flags, file name, crypt name, key, init[2].
_LOOP_INFO64 = struct.Struct("=QQQQQIIII64s64s32sQQ")
_SIZELIMIT = 4
FAILING_LIMIT = 64 * 2**10  # the superblock and little else: the files' blocks lie past it


class FailingDisk:
    """A mounted file system (`path`) whose disk fails (`fail`) and works again (`heal`)."""

    def __init__(self, path: Path, device: str) -> None:
        self.path = path
        self._device = device

    def fail(self) -> None:
        """From now on every read of a block not cached, and every write, fails (EIO):
        the files' pages are written out, then dropped from the page cache."""
        files = [name for name in self.path.iterdir() if name.is_file()]
        for name in files:
            fd = os.open(name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self._limit(FAILING_LIMIT)
        for name in files:
            fd = os.open(name, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)

    def heal(self) -> None:
        self._limit(0)

    def _limit(self, size: int) -> None:
        fd = os.open(self._device, os.O_RDONLY)
        try:
            info = list(_LOOP_INFO64.unpack(
                fcntl.ioctl(fd, _LOOP_GET_STATUS64, bytes(_LOOP_INFO64.size))))
            info[_SIZELIMIT] = size
            fcntl.ioctl(fd, _LOOP_SET_STATUS64, _LOOP_INFO64.pack(*info))
        finally:
            os.close(fd)


@contextlib.contextmanager
def failing_disk(path: Path, size: int) -> Iterator[FailingDisk]:
    """A FailingDisk of `size` bytes on `path`, working (healed again however the
    block ends, so that it unmounts); skips the test without root, a loop device or
    mkfs.ext2."""
    with loop_ext2(path, size, size + 2**20, "a failing disk", "-o", "noatime") as (device, _):
        disk = FailingDisk(path, device)
        try:
            yield disk
        finally:
            disk.heal()  # (before it is unmounted)
