"""The goals service under cProfile, every thread included: `bench_goals.py --profile` starts
this instead of the uvicorn command line, drives the same load, and stops it with SIGINT.

uvicorn runs in-process (`okr_goals.main:create_app`, the store from the GOALS_* environment).
Each thread (the event loop, anyio's worker threads running the sync routes, the views runner,
the connection pools' threads) gets its own profiler; on shutdown they are merged and written
as pstats data (--output) and as a text report of the top functions (--output + ".txt").
cProfile slows calls down, small ones most: read its proportions, not its absolute times.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import threading
import time
from pathlib import Path

import uvicorn

_profiles: list[tuple[str, cProfile.Profile]] = []
_timer = time.thread_time  # CPU time of the running thread: waits for I/O, locks, the GIL excluded
_lock = threading.Lock()


def _profile_new_thread(*_: object) -> None:
    """threading.setprofile hook: the first event in a new thread starts its own profiler,
    which replaces this hook for that thread."""
    profile = cProfile.Profile(timer=_timer)
    with _lock:
        _profiles.append((threading.current_thread().name, profile))
    profile.enable()


def group_of(thread_name: str) -> str:
    """Threads by role: the event loop, the request workers, the views, the rest."""
    if thread_name == "MainThread":
        return "event-loop"
    if thread_name.startswith("AnyIO worker"):
        return "request-workers"
    if thread_name == "goals-views":
        return "views"
    return "other"


def total_seconds(stats: pstats.Stats) -> float:
    return sum(entry[2] for entry in stats.stats.values())  # type: ignore[attr-defined]


def report(groups: dict[str, list[cProfile.Profile]], top: int, timer: str) -> str:
    out = io.StringIO()
    merged = pstats.Stats(*(p for ps in groups.values() for p in ps), stream=out)
    totals = {name: total_seconds(pstats.Stats(*ps)) for name, ps in groups.items()}
    overall = total_seconds(merged) or 1.0
    out.write(f"profiled {timer} seconds by thread group (cProfile inflates small calls):\n")
    for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        out.write(f"  {name:<16} {seconds:8.2f} s  {100 * seconds / overall:5.1f} %\n")
    for name, profiles in sorted(groups.items(), key=lambda kv: -totals[kv[0]]):
        stats = pstats.Stats(*profiles, stream=out).strip_dirs()
        out.write(f"\n==== {name}: top {top} by own time (tottime) ====\n")
        stats.sort_stats("tottime").print_stats(top)
    merged.strip_dirs()
    out.write(f"\n==== all threads: top {top} by cumulative time ====\n")
    merged.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--output", type=Path, required=True, help="pstats file")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--timer",
        choices=["cpu", "wall"],
        default="cpu",
        help="cpu: each thread's CPU time (where the cores go); wall: also time spent waiting",
    )
    args = parser.parse_args()
    global _timer
    _timer = time.thread_time if args.timer == "cpu" else time.perf_counter

    threading.setprofile(_profile_new_thread)
    main_profile = cProfile.Profile(timer=_timer)
    main_profile.enable()
    config = uvicorn.Config(
        "okr_goals.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        access_log=False,
        log_level="warning",
    )
    # uvicorn shuts down gracefully on SIGINT (the lifespan stops the service), then re-raises it.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()
    main_profile.disable()
    threading.setprofile(None)  # type: ignore[arg-type]
    with _lock:
        threads = list(_profiles)
    groups: dict[str, list[cProfile.Profile]] = {"event-loop": [main_profile]}
    for name, profile in threads:
        groups.setdefault(group_of(name), []).append(profile)
    pstats.Stats(main_profile, *(p for _, p in threads)).dump_stats(args.output)
    Path(f"{args.output}.txt").write_text(report(groups, args.top, args.timer))


if __name__ == "__main__":
    main()
