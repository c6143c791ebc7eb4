"""Where the time goes, with pyinstrument: a profiler started around a measured call, and its
report (the call tree to a file; printed, the top functions by own and by total time)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any


def start_profiler() -> Any:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    profiler.start()
    return profiler


def report_profile(profiler: Any, path: Path, events: int, top: int = 20) -> None:
    """The call tree to `path`; printed: the top functions by own time and by total time."""
    path.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    root = profiler.last_session.root_frame()
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()

    def walk(frame: Any, stack: frozenset[str]) -> None:
        if frame.is_synthetic:  # "[self]" and the like: counted in their parent's own time
            return
        name = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
        own[name] += frame.total_self_time
        if name not in stack:  # recursion counts once
            total[name] += frame.time
        for child in frame.children:
            walk(child, stack | {name})

    walk(root, frozenset())
    whole = root.time or 1.0
    print(f"[profile] {whole:.2f} s sampled in the rebuilding thread, {events:,} events")
    for title, counter in (("own time", own), ("total time (incl. callees)", total)):
        print(f"[profile] top functions by {title}:")
        for name, seconds in counter.most_common(top):
            print(
                f"  {100 * seconds / whole:5.1f} %  {seconds * 1e6 / events:7.1f} us/event  {name}"
            )
