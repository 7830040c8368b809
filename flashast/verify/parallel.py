"""Real-header parses on several threads.

A real-header parse takes seconds (FA2's `bwd` files 10-20 s each), and libclang releases the GIL
while it parses (ctypes calls), so threads use every core; each thread owns its own libclang index
and translation units, which libclang allows. Files are ordered by preamble group and cut into
contiguous slices, one per thread, so each slice builds few precompiled preambles. Memory grows with
the threads: a host-side parse of an FA2 file peaks near 0.7 GB, so `--jobs` bounds it.
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


def verify_in_parallel(
    cindex: ModuleType, files: Sequence[GeneratedFile], to_parse: Sequence[GeneratedFile], options: VerifyOptions,
    report: Report, progress: Progress | None, jobs: int,
) -> dict[str, list[Reading]]:
    """Verify `to_parse` against real headers on up to `jobs` threads, reporting into `report` in
    file order; returns the readings of every file that passed."""
    ordered = [generated for group in group_by_preamble(to_parse) for generated in group]
    workers = max(1, min(jobs, len(ordered)))
    size = -(-len(ordered) // workers) if ordered else 0
    slices = [ordered[start:start + size] for start in range(0, len(ordered), size)] if size else []
    parts = [Report(files=len(part)) for part in slices]
    passed: dict[str, list[Reading]] = {}
    failures: list[BaseException] = []
    lock = threading.Lock()
    done = 0

    def finished(generated: GeneratedFile, failed: bool, seconds: float) -> None:
        nonlocal done
        with lock:
            done += 1
            if progress is not None:
                progress(Parsed(generated, failed, seconds, done, len(ordered)))

    def work(part_files: list[GeneratedFile], part: Report) -> None:
        parser = Parser(cindex, files, options)
        try:
            for group in group_by_preamble(part_files):
                clean = parser.verify_group_over_preamble(group, part, finished)
                with lock:
                    passed.update(clean)
        except BaseException as error:  # re-raised on the calling thread
            failures.append(error)
        finally:
            parser.close()

    threads = [
        threading.Thread(target=work, args=(part_files, part)) for part_files, part in zip(slices, parts, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    for part in parts:
        report.parsed += part.parsed
        for diagnostic in part.diagnostics:
            report.add(diagnostic)
    return passed
