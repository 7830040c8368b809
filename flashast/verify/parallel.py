"""Real-header parses on several threads.

A real-header parse takes seconds (FA2's `bwd` files 10-20 s each), and libclang releases the GIL
while it parses (ctypes calls), so threads use every core; each thread owns its own libclang index
and translation units, which libclang allows. The unit of work is a preamble group (files whose
includes are the same share one precompiled preamble, the expensive part of a `fwd` file): a small
group goes whole to the least loaded thread; a large one is cut into a piece per thread, at the price
of a preamble per piece. Memory grows with the threads: a host-side parse of an FA2 file peaks near
0.7 GB, so `--jobs` bounds it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import ModuleType

from flashast.generated import GeneratedFile
from flashast.verify.diagnostics import Report
from flashast.verify.keys import Reading
from flashast.verify.parsing import Parsed, Parser, Progress, group_by_preamble
from flashast.verify.toolchain import VerifyOptions

# A group is cut across threads from this many files: below it, another preamble costs more than the
# re-parses it spreads (an FA2 `fwd` preamble takes about as long as eight of its re-parses).
SPLIT_FROM_FILES = 8
# What building a preamble weighs, in re-parses, when spreading groups over threads.
PREAMBLE_WEIGHT = 4


def plan_work(groups: Sequence[list[GeneratedFile]], workers: int) -> list[list[list[GeneratedFile]]]:
    """The groups each thread parses. A large group is cut into one piece per thread: its files'
    own parses can cost far more than its preamble (an FA2 `bwd` file re-parses in ~10 s, its
    preamble ~8 s), and nothing tells one group's files' cost from another's. A small group stays
    whole. Pieces go, largest first, to the least loaded thread."""
    units: list[list[GeneratedFile]] = []
    for group in groups:
        pieces = workers if len(group) >= SPLIT_FROM_FILES else 1
        size = -(-len(group) // pieces)
        units += [group[start:start + size] for start in range(0, len(group), size)]
    plans: list[list[list[GeneratedFile]]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for unit in sorted(units, key=len, reverse=True):
        lightest = loads.index(min(loads))
        plans[lightest].append(unit)
        loads[lightest] += len(unit) + PREAMBLE_WEIGHT
    return [plan for plan in plans if plan]


def verify_in_parallel(
    cindex: ModuleType, files: Sequence[GeneratedFile], to_parse: Sequence[GeneratedFile], options: VerifyOptions,
    report: Report, progress: Progress | None, jobs: int,
) -> dict[str, list[Reading]]:
    """Verify `to_parse` against real headers on up to `jobs` threads, reporting into `report` in
    the order of the groups; returns the readings of every file that passed."""
    groups = group_by_preamble(to_parse)
    plans = plan_work(groups, max(1, jobs))
    total = len(to_parse)
    # One report per unit of work, merged in file order whichever thread finished first.
    parts: dict[str, Report] = {}
    passed: dict[str, list[Reading]] = {}
    failures: list[BaseException] = []
    lock = threading.Lock()
    done = 0

    def finished(generated: GeneratedFile, failed: bool, seconds: float) -> None:
        nonlocal done
        with lock:
            done += 1
            if progress is not None:
                progress(Parsed(generated, failed, seconds, done, total))

    def work(plan: list[list[GeneratedFile]]) -> None:
        parser = Parser(cindex, files, options)
        try:
            for unit in plan:
                part = parts[unit[0].name] = Report(files=len(unit))
                clean = parser.verify_group_over_preamble(unit, part, finished)
                with lock:
                    passed.update(clean)
        except BaseException as error:  # re-raised on the calling thread
            failures.append(error)
        finally:
            parser.close()

    threads = [threading.Thread(target=work, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    for generated in to_parse:
        part = parts.get(generated.name)
        if part is None:
            continue
        report.parsed += part.parsed
        for diagnostic in part.diagnostics:
            report.add(diagnostic)
    return passed
