"""A tiny progress bar on stderr: silent when stderr is not a terminal or when disabled, so logs and
test output stay clean."""
from __future__ import annotations

import sys
import time


class ProgressBar:
    """``with ProgressBar(total, "predict") as bar: ... bar.update(n)``."""

    def __init__(self, total: int, description: str = "", enabled: bool = True, stream=None,
                 width: int = 30):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = bool(enabled) and getattr(self.stream, "isatty", lambda: False)()
        self.total = max(int(total), 0)
        self.description = description
        self.width = width
        self.done = 0
        self._start = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.done = min(self.done + n, self.total)
        if self.enabled:
            self._draw()

    def _draw(self) -> None:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(round(fraction * self.width))
        elapsed = time.perf_counter() - self._start
        self.stream.write(f"\r{self.description} [{'#' * filled}{'.' * (self.width - filled)}] "
                          f"{self.done}/{self.total} {elapsed:6.1f}s")
        self.stream.flush()

    def __enter__(self) -> "ProgressBar":
        if self.enabled:
            self._draw()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
