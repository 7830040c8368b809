"""What every benchmark row is made of: fresh processes, paired timings, rows, and the work directory.

One owner for how a flashast or baseline process is started and timed (`run_process`: a fresh
process, its own peak RSS, the disk flushed outside the timed part), how two sides are compared
(`paired`: A, B, A, B, ..., the median of the per-pair ratios), what environment each run gets
(`BASE_ENVIRONMENT`, and `with_cache` for a user cache of its own), and what a row is (`Row`, with
`failed_row` for a measurement that failed, so the other rows still run). `Workspace` hands out
paths in the work directory that no earlier run has used.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PYTHON = sys.executable
# Installed packages run from cached bytecode (pip compiles it at install; an editable checkout
# writes it on first import). Some shells set PYTHONDONTWRITEBYTECODE, which would make every run
# pay for compiling flashast while a baseline script compiles the same either way. The user-cache
# variables are dropped too: every flashast run below is given its own cache directory.
DROPPED_VARIABLES = ("PYTHONDONTWRITEBYTECODE", "FLASHAST_CACHE_DIR", "FLASHAST_NO_CACHE")
BASE_ENVIRONMENT = {name: value for name, value in os.environ.items() if name not in DROPPED_VARIABLES}
ROOT = Path(__file__).resolve().parent.parent
# flashast's default `--jobs`; every real-header anchor runs as many processes at a time.
CORES = os.cpu_count() or 1


@dataclass
class Row:
    name: str
    measured: str
    goal: str = "-"
    met: bool | None = None
    previous: str = "-"
    note: str = ""  # appended to the verdict
    data: dict[str, object] = field(default_factory=dict)  # the figures, for --json

    @property
    def verdict(self) -> str:
        if "error" in self.data:
            return "FAILED (no figure)"
        verdict = "n/a" if self.met is None else ("met" if self.met else "MISSED")
        return f"{verdict}; {self.note}" if self.note else verdict

    def cells(self) -> tuple[str, str, str, str, str]:
        return self.name, self.measured, self.previous, self.goal, self.verdict


@dataclass
class Run:
    seconds: float
    max_rss_kib: int


class RunFailed(Exception):
    """A process the benchmark started exited non-zero; the row says so and the others still run."""


def run_process(command: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Run a fresh process; wall time and its own peak RSS (from wait4, not the whole tree's max).

    The disk is flushed first, outside the timed part: otherwise flashast's flushes to disk would
    also wait for the baseline's unflushed files written just before it in the pair, and the ratio
    would measure the pairing order. Each side pays for its own writes only.
    """
    os.sync()
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=BASE_ENVIRONMENT if env is None else env
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    process.returncode = returncode
    if returncode != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        raise RunFailed(f"exit {returncode}: {lines[-1].strip() if lines else '(no output)'}")
    return Run(seconds, usage.ru_maxrss)


@dataclass
class Pairing:
    """Medians of each side and of the per-pair ratios first/second, with the ratios' range."""

    first: float
    second: float
    ratio: float
    lowest: float
    highest: float

    def cell(self) -> str:
        return (f"{self.ratio:.2f}× [{self.lowest:.2f}–{self.highest:.2f}]; "
                f"{self.first * 1000:.0f} ÷ {self.second * 1000:.0f} ms")

    def data(self) -> dict[str, object]:
        return {"ratio": self.ratio, "pair_ratio_min": self.lowest, "pair_ratio_max": self.highest,
                "flashast_median_s": self.first, "baseline_median_s": self.second}


def paired(first: Callable[[], float], second: Callable[[], float], pairs: int) -> Pairing:
    firsts, seconds, ratios = [], [], []
    for _ in range(pairs):
        a = first()
        b = second()
        firsts.append(a)
        seconds.append(b)
        ratios.append(a / b)
    return Pairing(statistics.median(firsts), statistics.median(seconds), statistics.median(ratios), min(ratios),
                   max(ratios))


def flashast_command(output: Path, *extra: str) -> list[str]:
    return [PYTHON, "-m", "flashast", "-o", str(output), "-q", *extra]


def with_cache(cache: Path) -> dict[str, str]:
    """The environment of a flashast run whose user cache is `cache` (created, possibly empty)."""
    cache.mkdir(parents=True, exist_ok=True)
    return {**BASE_ENVIRONMENT, "FLASHAST_CACHE_DIR": str(cache)}


def failed_row(name: str, error: Exception, goal: str = "-", previous: str = "-") -> Row:
    return Row(name, f"failed: {error}", goal, None, previous, data={"error": str(error)})


class Workspace:
    """The benchmark's work directory and the paths in it, each new: no run sees another's output."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.counter: Iterator[int] = iter(range(10**9))

    def fresh(self, prefix: str) -> Path:
        return self.work / f"{prefix}{next(self.counter)}"
