"""Opt-in overflow/underflow logging and the data-type override (MATLAB's `fipref`, spec A.13).

Both settings are session-wide values held in context variables, so a setting made inside one thread
or asyncio task does not leak into another. Each setter changes the value at once (like `fipref`)
and returns a restorer, so the same call also works as a `with` block that undoes it on exit.

The fi core calls `record` after every quantising operation and `datatype_override()` at
construction; both cost one context-variable read when logging is off.
"""
from __future__ import annotations

import contextvars
import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = [
    "FiLoggingWarning", "logging_mode", "datatype_override", "record", "noverflows", "nunderflows",
    "minlog", "maxlog", "resetlog", "logreport",
]

_OVERRIDE_MODES = {name.lower(): name for name in ("ForceOff", "ScaledDoubles", "TrueDoubles")}

_logging_on = contextvars.ContextVar("fixedpoint_fi_logging", default=False)
_override = contextvars.ContextVar("fixedpoint_datatype_override", default="ForceOff")


class FiLoggingWarning(UserWarning):
    """Issued, while logging is on, for every operation that overflowed or underflowed."""


class _Restorer:
    """Undo one setting on leaving a `with` block; harmless when not used as one."""

    def __init__(self, var: contextvars.ContextVar, token: contextvars.Token):
        self._var, self._token = var, token

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._var.reset(self._token)
        return False


def logging_mode(on: Optional[bool] = None):
    """`logging_mode()` tells whether logging is on; `logging_mode(True)` turns it on for the session
    and returns a restorer, so `with fp.logging_mode(True): ...` logs only inside the block."""
    if on is None:
        return _logging_on.get()
    if not isinstance(on, (bool, np.bool_)):
        raise TypeError(f"logging_mode(on={on!r}): on must be True or False")
    return _Restorer(_logging_on, _logging_on.set(bool(on)))


def datatype_override(mode: Optional[str] = None):
    """`datatype_override()` returns the active mode ("ForceOff", "ScaledDoubles" or "TrueDoubles");
    `datatype_override(mode)` sets it (case-insensitive) and returns a restorer usable with `with`.

    The override applies only when a fi is constructed; objects keep their type afterwards.
    """
    if mode is None:
        return _override.get()
    canonical = _OVERRIDE_MODES.get(str(mode).lower()) if isinstance(mode, str) else None
    if canonical is None:
        raise ValueError(f"datatype_override: unknown mode {mode!r}; expected one of "
                         f"{', '.join(_OVERRIDE_MODES.values())} (TrueSingles is not supported)")
    return _Restorer(_override, _override.set(canonical))


@dataclass
class _Log:
    noverflows: int = 0
    nunderflows: int = 0
    minlog: Optional[float] = None
    maxlog: Optional[float] = None


def _extremes(result):
    """Minimum and maximum real-world value held by a fi (None, None when it is empty)."""
    q = np.asarray(result._q)
    if q.size == 0:
        return None, None
    lo, hi = q.min(), q.max()
    if getattr(result._nt, "data_type", "Fixed") != "Fixed":  # doubles hold real values already
        return float(lo), float(hi)
    from .ranges import real_value  # ranges builds fi, which itself imports this module

    return real_value(result._nt, lo), real_value(result._nt, hi)


def record(result, n_overflow: int, n_underflow: int, operation: Optional[str] = None) -> None:
    """Accumulate one quantising operation into `result`'s log and warn about its overflows.

    Called by the fi core with the quantised result (for an assignment, the target array), the
    number of values that overflowed, and the number of non-zero values that quantised to zero.
    `operation` names the operation in the warning ("assignment", "plus", ...).
    """
    if not _logging_on.get():
        return
    log = getattr(result, "_log", None)
    if log is None:
        log = _Log()
        result._log = log
    log.noverflows += int(n_overflow)
    log.nunderflows += int(n_underflow)
    lo, hi = _extremes(result)
    if lo is not None:
        log.minlog = lo if log.minlog is None else min(log.minlog, lo)
        log.maxlog = hi if log.maxlog is None else max(log.maxlog, hi)
    where = f"the fi {operation} operation" if operation else "a fi operation"
    for count, what in ((n_overflow, "overflow"), (n_underflow, "underflow")):
        if count:
            warnings.warn(f"{int(count)} {what}(s) occurred in {where}.", FiLoggingWarning,
                          stacklevel=3)


def _log_of(a) -> _Log:
    if not hasattr(a, "_q"):
        raise TypeError(f"expected a fi, got {type(a).__name__}")
    return getattr(a, "_log", None) or _Log()


def noverflows(a) -> int:
    """Number of overflows logged for `a` since its creation or the last `resetlog`."""
    return _log_of(a).noverflows


def nunderflows(a) -> int:
    """Number of underflows (non-zero values quantised to zero) logged for `a`."""
    return _log_of(a).nunderflows


def minlog(a) -> Optional[float]:
    """Smallest quantised value written to `a` while logging was on (None if nothing was logged)."""
    return _log_of(a).minlog


def maxlog(a) -> Optional[float]:
    """Largest quantised value written to `a` while logging was on (None if nothing was logged)."""
    return _log_of(a).maxlog


def resetlog(a) -> None:
    """Clear `a`'s log."""
    _log_of(a)
    a._log = None


def logreport(*arrays, **named_arrays) -> str:
    """Print and return a table of minlog, maxlog, lowerbound, upperbound, noverflows, nunderflows.

    Positional arrays are labelled by position (`arg0`, ...); keyword arrays by their keyword.
    """
    from .ranges import real_bounds  # ranges builds fi, which itself imports this module

    rows = [(f"arg{i}", a) for i, a in enumerate(arrays)] + list(named_arrays.items())
    header = ("", "minlog", "maxlog", "lowerbound", "upperbound", "noverflows", "nunderflows")
    table = [header]
    for name, a in rows:
        log = _log_of(a)
        lower, upper = real_bounds(a)
        table.append((name, _fmt(log.minlog), _fmt(log.maxlog), _fmt(lower), _fmt(upper),
                      str(log.noverflows), str(log.nunderflows)))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    text = "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths))
                     for row in table)
    print(text)
    return text


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.10g}"
