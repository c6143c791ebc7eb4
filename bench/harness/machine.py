"""The machine a run measures on: its cores (kept with every figure, as every process of a run
shares them) and the line each script prints of it first."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from typing import Any

CORES = os.cpu_count() or 1
CLK_TCK = os.sysconf("SC_CLK_TCK")


def describe() -> str:
    """``os.cpu_count() = 2; Python 3.11.7``, for the first line a script prints."""
    return f"os.cpu_count() = {CORES}; Python {platform.python_version()}"


def run_params(quick: bool | None = None, **extra: Any) -> dict[str, Any]:
    """The parameters every figure of a run carries: the cores, whether the run is --quick
    (for the scripts that have the flag), when it began; then `extra`."""
    params: dict[str, Any] = {"cores": CORES}
    if quick is not None:
        params["quick"] = quick
    params["run_at"] = datetime.now(UTC).isoformat()
    return params | extra
