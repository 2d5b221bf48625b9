"""The capturing machine's clock as the operating system reports it: synchronised (NTP/PTP) or not.

Read with adjtimex(2) in read-only mode (``modes = 0``, no privilege needed) through ctypes, the same call
``timedatectl``'s NTPSynchronized and ``ntptime`` rest on: the kernel clears ``STA_UNSYNC`` and returns a clock
state other than ``TIME_ERROR`` while a time daemon disciplines the clock, and reports its own bound of the error
(``maxerror``, microseconds). Where the call does not exist (not Linux) the state is "unknown", never guessed.
The manifest records this at capture time (``capture.clock``) and each ``timestamped`` custody event records it
beside the offset measured against the authority, so a reader can weigh the capture times.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache
from typing import Any

STA_UNSYNC = 0x0040
TIME_ERROR = 5


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """struct timex from <sys/timex.h> (glibc and musl agree on the layout)."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


@cache
def _adjtimex() -> Any:
    """libc's adjtimex, looked up once per process: ``find_library`` runs ``ldconfig -p`` in a subprocess, which
    cost every capture about 5 ms of CPU; None where the call does not exist."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).adjtimex
    except (OSError, AttributeError):
        return None


def clock_state() -> dict[str, Any]:
    """``{"source", "synchronized", "max_error_us", "estimated_error_us"}`` (integers: custody events hold no floats,
    so ``jq -cS`` reproduces their signed bytes); synchronized None when unknown."""
    adjtimex = _adjtimex()
    if adjtimex is None:
        return {"source": "unavailable", "synchronized": None}
    timex = _Timex()
    timex.modes = 0
    state = adjtimex(ctypes.byref(timex))
    if state < 0:
        return {"source": "adjtimex", "synchronized": None, "error": f"errno {ctypes.get_errno()}"}
    synchronized = not (timex.status & STA_UNSYNC) and state != TIME_ERROR
    return {
        "source": "adjtimex",
        "synchronized": synchronized,
        "max_error_us": int(timex.maxerror),
        "estimated_error_us": int(timex.esterror),
    }
