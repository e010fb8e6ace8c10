"""Writing files without ever leaving a half-written one: write a temporary file beside the target,
flush it to disk, then rename it over the target (atomic on POSIX and Windows)."""
from __future__ import annotations

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb"):
    """A file object to write `path`'s new contents to; the target changes only if the block
    completes (on an error the temporary file is removed and the old contents stay)."""
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".partial")
    try:
        with os.fdopen(handle, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp makes the file private (0600); give it the target's mode, or rw-r--r-- when new
        os.chmod(temporary, os.stat(path).st_mode & 0o7777 if os.path.exists(path) else 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def atomic_write(path, data) -> None:
    """Write `data` (bytes, or str as UTF-8) to `path` atomically."""
    with atomic_open(path, "w" if isinstance(data, str) else "wb") as stream:
        stream.write(data)
