"""Crash-safe file replacement: write a temporary file, fsync it, rename it over the target,
fsync the directory. After a crash the target holds either the old or the new bytes, never a mix;
a leftover `*.tmp` is garbage that openers delete."""
from __future__ import annotations

import os


def fsync_directory(directory: str) -> None:
    fd = os.open(directory or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_directory(os.path.dirname(path))
