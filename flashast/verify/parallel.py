"""Real-header parses on several threads: batches (`verify_batches_in_parallel`), then files one by one.

A real-header parse takes seconds (FA2's `bwd` files about 9 s each to re-parse, its `fwd` files
about 2 s), and libclang releases the GIL while it parses (ctypes calls), so threads use every core;
each thread owns its own libclang index and translation units, which libclang allows. Files whose
includes are the same form a preamble group: they share one precompiled preamble (about 7 s for an
FA2 file), built once per thread that works on the group.

Threads take work as they go, because what a group costs is only known once it is parsing. A free
thread starts a group no thread has started, the largest first. Once every group has a thread, a free
thread joins the group where its share of the files left outweighs building that group's preamble
again, judged from what the group's preamble and re-parses have cost so far (it waits for the first
figures if they are not in yet), and stops when no group is worth joining. So one costly group keeps
every core busy, and a preamble is built again only where that pays. Memory grows with the threads
(a host-side parse of an FA2 file peaks near 0.7 GB), so `--jobs` bounds it.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType

from flashast.errors import signals_held
from flashast.generated import GeneratedFile
from flashast.verify.batching import Batch
from flashast.verify.diagnostics import Diagnostic, Report
from flashast.verify.keys import Reading
from flashast.verify.parsing import Parsed, Parser, Progress, group_by_preamble
from flashast.verify.sources import batch_member_readings
from flashast.verify.toolchain import VerifyOptions


class _Group:
    """A preamble group's files not yet taken, how many threads work on it, and what it has cost."""

    def __init__(self, files: Sequence[GeneratedFile]) -> None:
        self.first = files[0]
        self.left = deque(files)
        self.threads = 0
        self.preamble: float | None = None  # seconds, the first time it was built
        self.reparses: list[float] = []  # seconds per file

    @property
    def measured(self) -> bool:
        """Whether its preamble and a re-parse have been timed (by the first thread on it)."""
        return self.preamble is not None and bool(self.reparses)

    def work_left(self) -> float:
        """Seconds of re-parses left, at the mean so far (measured groups only)."""
        return len(self.left) * sum(self.reparses) / len(self.reparses)

    def worth_joining(self) -> bool:
        """Whether one more thread ends this (measured) group sooner: its share of the re-parses left
        takes longer than the preamble it must build first."""
        return self.preamble is not None and self.work_left() / (self.threads + 1) > self.preamble


class _Schedule:
    """The groups, shared by the threads under one lock; `changed` wakes threads waiting for figures."""

    def __init__(self, groups: Sequence[Sequence[GeneratedFile]]) -> None:
        self.groups = [_Group(group) for group in groups]
        self.changed = threading.Condition()
        self.stopped = False

    def take(self) -> _Group | None:
        """The group a free thread works on next, or None when it should stop."""
        with self.changed:
            while True:
                open_groups = [group for group in self.groups if group.left]
                if not open_groups:
                    return None
                unstarted = [group for group in open_groups if group.threads == 0]
                measured = [group for group in open_groups if group.measured]
                joinable = [group for group in measured if group.worth_joining()]
                if unstarted or joinable:
                    chosen = max(unstarted, key=lambda group: len(group.left)) if unstarted else max(
                        joinable, key=_Group.work_left)
                    chosen.threads += 1
                    return chosen
                if len(measured) == len(open_groups):
                    return None
                self.changed.wait()  # a group's first figures are not in yet

    def files(self, group: _Group) -> Iterator[GeneratedFile]:
        """`group`'s files, each taken by exactly one thread as that thread gets to it."""
        while True:
            with self.changed:
                if not group.left:
                    return
                generated = group.left.popleft()
            yield generated

    def built(self, group: _Group, seconds: float) -> None:
        with self.changed:
            if group.preamble is None:
                group.preamble = seconds
            self.changed.notify_all()

    def parsed(self, group: _Group, seconds: float) -> None:
        with self.changed:
            group.reparses.append(seconds)
            self.changed.notify_all()

    def stop(self) -> None:
        """No thread takes another file: each ends after the parse it is in, and tells no one."""
        with self.changed:
            self.stopped = True
            for group in self.groups:
                group.left.clear()
            self.changed.notify_all()

    def leave(self, group: _Group) -> None:
        with self.changed:
            group.threads -= 1
            self.changed.notify_all()


class _Ended(threading.Condition):
    """How many worker threads have ended, and a wait for all of them."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def wait_for_count(self, threads: int) -> None:
        with self:
            self.wait_for(lambda: self.count >= threads)


class _Visit:
    """One thread's turn on a group: passes what it costs on to the schedule (a file's re-parse alone:
    the first file's seconds include the preamble) and each parsed file on to `told`."""

    def __init__(self, schedule: _Schedule, group: _Group,
                 told: Callable[[GeneratedFile, bool, float], None]) -> None:
        self.schedule = schedule
        self.group = group
        self.told = told
        self.preamble = 0.0

    def built(self, seconds: float) -> None:
        self.preamble = seconds
        self.schedule.built(self.group, seconds)

    def finished(self, generated: GeneratedFile, failed: bool, seconds: float) -> None:
        self.schedule.parsed(self.group, seconds - self.preamble)
        self.preamble = 0.0
        self.told(generated, failed, seconds)


def verify_in_parallel(
    cindex: ModuleType, files: Sequence[GeneratedFile], to_parse: Sequence[GeneratedFile], options: VerifyOptions,
    report: Report, progress: Progress | None, jobs: int, done: int = 0, total: int | None = None,
) -> dict[str, list[Reading]]:
    """Verify `to_parse` against real headers on up to `jobs` threads, reporting into `report` in
    the order of the files whichever thread parsed them; returns the readings of every file that passed.
    `done` and `total` count for `progress` when other parses of this side came first (batches)."""
    schedule = _Schedule(group_by_preamble(to_parse))
    total = len(to_parse) + done if total is None else total
    parts: list[Report] = []
    passed: dict[str, list[Reading]] = {}
    lock = threading.Lock()

    def told(generated: GeneratedFile, failed: bool, seconds: float) -> None:
        nonlocal done
        with lock:
            done += 1
            if progress is not None and not schedule.stopped:
                progress(Parsed(generated, failed, seconds, done, total))

    def work() -> None:
        parser = Parser(cindex, files, options)
        try:
            while (group := schedule.take()) is not None:
                visit = _Visit(schedule, group, told)
                part = Report(files=0)
                try:
                    clean = parser.verify_group_over_preamble(group.first, schedule.files(group), part,
                                                              visit.finished, visit.built)
                finally:
                    schedule.leave(group)
                with lock:
                    parts.append(part)
                    passed.update(clean)
        finally:
            parser.close()

    _on_threads(max(1, min(jobs, len(to_parse))), work, schedule.stop)
    _merge(parts, to_parse, report)
    return passed


def verify_batches_in_parallel(
    cindex: ModuleType, files: Sequence[GeneratedFile], batches: Sequence[Batch], options: VerifyOptions,
    report: Report, progress: Progress | None, jobs: int, total: int,
) -> dict[str, list[Reading]]:
    """Real-header mode: parse each batch as one translation unit (`batching`), the most files first,
    on up to `jobs` threads; returns the readings of every file of each batch that was clean. The
    files of any other batch are left to their own parses, which report what is wrong; `total` is
    how many files this side parses in all (for `progress`)."""
    queue = deque(sorted(batches, key=lambda batch: len(batch.files), reverse=True))
    parts: list[Report] = []
    passed: dict[str, list[Reading]] = {}
    lock = threading.Lock()
    stopping = threading.Event()
    done = 0

    def take() -> Batch | None:
        with lock:
            return queue.popleft() if queue and not stopping.is_set() else None

    def work() -> None:
        nonlocal done
        parser = Parser(cindex, files, options)
        try:
            while (batch := take()) is not None:
                started = time.perf_counter()
                part = Report(files=0)
                readings = parser.verify_batch_on_real_headers(batch, part)
                if readings is None:
                    continue
                seconds = (time.perf_counter() - started) / len(batch.files)
                alone = batch_member_readings(readings)  # the files of a batch read the same headers
                with lock:
                    parts.append(part)
                    passed.update((generated.name, alone) for generated in batch.files)
                    for generated in batch.files:
                        done += 1
                        if progress is not None and not stopping.is_set():
                            progress(Parsed(generated, False, seconds, done, total))
        finally:
            parser.close()

    _on_threads(max(1, min(jobs, len(batches))), work, stopping.set)
    _merge(parts, [generated for batch in batches for generated in batch.files], report)
    return passed


def _on_threads(count: int, work: Callable[[], None], stop: Callable[[], None]) -> None:
    """Run `work` on `count` threads and wait for all of them; re-raise the first exception one raised.

    Ctrl-C and SIGTERM are the main thread's to hear: the kernel hands a signal to any thread not
    blocking it, and a worker inside libclang would leave the main thread asleep until the end. On
    either, `stop` tells the workers to take no more work; they finish only the parse they are in (a
    thread cannot be stopped inside libclang), and the run ends once they have cleaned up. Each
    thread counts itself in `ended` when `work` returns; the main thread waits on that count rather
    than in `Thread.join`, which an interrupt can leave believing a running thread stopped (Python 3.11).
    """
    failures: list[BaseException] = []
    ended = _Ended()

    def run() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            work()
        except BaseException as error:  # re-raised on the calling thread
            failures.append(error)
        finally:
            with ended:
                ended.count += 1
                ended.notify_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        ended.wait_for_count(len(threads))
    except BaseException:
        stop()
        with signals_held():
            ended.wait_for_count(len(threads))
        raise
    if failures:
        raise failures[0]


def _merge(parts: Sequence[Report], order: Sequence[GeneratedFile], report: Report) -> None:
    """The threads' reports into `report`, in the order of `order` whichever thread parsed a file."""
    position = {generated.name: index for index, generated in enumerate(order)}

    def in_file_order(diagnostic: Diagnostic) -> int:
        return -1 if diagnostic.file is None else position.get(diagnostic.file, len(position))

    found = [diagnostic for part in parts for diagnostic in part.diagnostics]
    for diagnostic in sorted(found, key=in_file_order):
        report.add(diagnostic)
    report.parsed += sum(part.parsed for part in parts)
