"""Start-up hook for running the tests under libfaketime (docs/testing.md#time): `run` (beside
this file) puts this folder on PYTHONPATH, so every Python process of the run (pytest, the
processes the tests spawn) imports it first.

Debian's libfaketime (0.9.10) and Python 3.11 disagree:
- with the monotonic clock faked (its default), Python's timed waits (Event.wait, Lock.acquire
  with a timeout, Queue.get) call sem_clockwait, which libfaketime does not intercept: the
  deadline is computed on the faked clock and the kernel waits on the real one, forever. Hence
  FAKETIME_DONT_FAKE_MONOTONIC=1 (and FAKETIME_FORCE_MONOTONIC_FIX=0, see `run`);
- with the monotonic clock real, its clock_nanosleep wrapper shifts the absolute monotonic
  deadline of time.sleep by the fake offset and the kernel answers EINVAL
  (github.com/wolfcw/libfaketime/issues/426).
So, only where libfaketime is preloaded, time.sleep becomes a relative wait that libfaketime
passes through untouched. Nothing else changes: the wall clock (time.time, datetime.now) is the
faked one, the monotonic clock is the real one."""

from __future__ import annotations

import os
import select
import time

if "faketime" in os.environ.get("LD_PRELOAD", ""):

    def _sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        select.select([], [], [], seconds)  # a relative timeout; retried on EINTR (PEP 475)

    time.sleep = _sleep
