"""Building libclang translation units for generated files, and what each parse read.

`Sources` decides what a parse of a file is served from memory (the file's text, its contract's
headers, the generated files it includes, CUDA stand-ins) and names what a parse read for
verification keys. `Parser` owns one libclang index and turns parses into `Diagnostic` records:

- contract mode: each file is parsed on its own, fresh; batches of files that cannot change what
  another means are parsed as one unit first (see `batching`), and a batch that reports nothing
  passes every file in it;
- real-header mode: batches first, as in contract mode but smaller (`verify_batch_on_real_headers`);
  then every other file, and each file of a batch that was not clean: files whose preambles are
  identical (read from the model, see `preamble`) share one translation unit with a precompiled
  preamble, re-parsed per file, so heavy headers are parsed once per group. The includes-alone parse
  that builds the preamble also shows what the headers get wrong by themselves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from flashast.errors import UsageError
from flashast.generated import GeneratedFile
from flashast.names import IncludePath
from flashast.nodes import Include, TranslationUnit
from flashast.printer import render
from flashast.verify.batching import Batch
from flashast.verify.checks import Clash, origin
from flashast.verify.command_line import refused_command_line
from flashast.verify.diagnostics import Diagnostic, Location, Report
from flashast.verify.keys import Reading
from flashast.verify.preamble import INCLUDES_ONLY_BODY, includes_alone_text
from flashast.verify.reading import (
    HEADER_NOTE,
    ParseContext,
    file_diagnostics,
    header_problems,
    message_of,
    reportable,
)
from flashast.verify.setup import parse_setup
from flashast.verify.sources import Sources, switched_on
from flashast.verify.toolchain import (
    NVCC_ACCEPTS_ON_DEVICE,
    VIRTUAL_SOURCE,
    VerifyOptions,
)

# libclang's own option bits (`CXTranslationUnit_*`); the Python binding names only some of them.
PRECOMPILED_PREAMBLE = 0x04
CREATE_PREAMBLE_ON_FIRST_PARSE = 0x100


@dataclass(frozen=True)
class Parsed:
    """One file's verdict as soon as it is known: whether it failed, the seconds its parse took (the
    first file of a preamble group also pays for the preamble), and how many of the files this run
    parses are done."""

    file: GeneratedFile
    failed: bool
    seconds: float
    done: int
    total: int
    # Which parse this was: "" for the host side, the architecture for a device-side parse (a file
    # is parsed once per side, and `--timings` must say which line is which).
    architecture: str = ""


@dataclass(frozen=True)
class _BatchParse:
    """A batch's translation unit, the path its text was served at, and everything else it was served."""

    unit: Any
    main_path: str
    served: list[tuple[str, str]]


# Told about each file parsed (real headers are slow). Files whose verdict is reused are not parsed.
Progress = Callable[[Parsed], None]
class Parser:
    """One libclang index for one run; every parse reports into a `Report` as records."""

    def __init__(self, cindex: ModuleType, files: Sequence[GeneratedFile], options: VerifyOptions) -> None:
        self.cindex = cindex
        self.options = options
        self.index = cindex.Index.create()
        self.setup = parse_setup(options)
        self.arguments = list(self.setup.arguments)
        # libclang builds a preamble only for a main file that exists on disk (an empty placeholder
        # suffices; the text still comes from memory), so real-header mode parses in a scratch folder.
        self.scratch = Path(tempfile.mkdtemp(prefix="flashast-verify-")) if options.real_headers else None
        self.sources = Sources(files, self.setup, str(self.scratch) if self.scratch else VIRTUAL_SOURCE)
        self.placeholders = 0

    def close(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def _context(self, generated: GeneratedFile, main_path: str) -> ParseContext:
        return ParseContext(
            self.cindex, generated, main_path, self.sources.source_root, self.sources.texts, self.options.strict
        )

    def _placeholder(self) -> str:
        if self.scratch is None:
            raise RuntimeError("flashast: a placeholder main file exists only in real-header mode")
        self.placeholders += 1
        path = self.scratch / f".flashast-main-{self.placeholders}.cu"
        path.touch()
        return str(path)

    def parse(self, generated: GeneratedFile) -> Any:
        """A fresh translation unit for one file, as `verify` parses it in contract mode."""
        served = self.sources.served(generated)
        if isinstance(served, str):
            raise UsageError(f"{generated.name}: includes {served}, which this run does not generate")
        main_path = self.sources.source_path(generated.name)
        arguments = self.arguments + switched_on(generated)
        return self.index.parse(main_path, arguments, [(main_path, generated.text), *served], 0)

    def verify_file(self, generated: GeneratedFile, report: Report) -> list[Reading] | None:
        """Parse one file on its own; its readings if nothing at all was reported, else None."""
        served = self.sources.served(generated)
        if isinstance(served, str):
            report.add(_missing_member(generated, served))
            return None
        main_path = self.sources.source_path(generated.name)
        arguments = self.arguments + switched_on(generated)
        unit = self.index.parse(main_path, arguments, [(main_path, generated.text), *served], 0)
        report.parsed += 1
        found = file_diagnostics(self._context(generated, main_path), unit, header_keys=None)
        for diagnostic in found:
            report.add(diagnostic)
        clean = not found and next(reportable(self.cindex, unit), None) is None
        return self.sources.readings(unit, served) if clean else None

    def verify_batch(self, batch: Batch) -> list[Reading] | None:
        """Contract mode: parse a batch as one translation unit; its readings if libclang reported
        nothing at all (then every file of it passes, see `batching`), else None. Reports nothing itself:
        a batch that is not clean goes back to per-file parses, which say what is wrong and where."""
        parsed = self._parse_batch(batch)
        if parsed is None or next(reportable(self.cindex, parsed.unit), None) is not None:
            return None
        return self.sources.readings(parsed.unit, parsed.served)

    def verify_batch_on_real_headers(self, batch: Batch, report: Report) -> list[Reading] | None:
        """Real-header mode: parse a batch as one translation unit; its readings if nothing in it
        fails and nothing is located in a generated line (see `batching`), else None, having reported
        nothing: its files are then parsed one by one, which says what is wrong and where. Warnings
        inside third-party headers are the headers' own either way: a clean batch reports them once,
        as any parse does, and so does the nvcc judgement of the device side (`_as_nvcc_judges`)."""
        parsed = self._parse_batch(batch)
        if parsed is None:
            return None
        context = dataclasses.replace(self._context(batch.files[0], parsed.main_path),
                                      together=tuple(generated.name for generated in batch.files))
        found = [self._as_nvcc_judges(diagnostic)
                 for diagnostic in file_diagnostics(context, parsed.unit, header_keys=None)]
        if any(diagnostic.fails or diagnostic.file is not None for diagnostic in found):
            return None
        report.parsed += len(batch.files)
        for diagnostic in found:
            report.add(diagnostic)
        return self.sources.readings(parsed.unit, parsed.served)

    def _parse_batch(self, batch: Batch) -> _BatchParse | None:
        """A batch's text as one translation unit, served what its first file's parse is (contract
        headers, or CUDA stand-ins) and every member its aggregators include; None when one of those
        is not generated this run."""
        served = self.sources.served(batch.files[0])
        if isinstance(served, str):
            return None
        members = [(self.sources.source_path(member), self.sources.texts[member]) for member in batch.members]
        served += [member for member in members if member not in served]
        main_path = self.sources.source_path(f".flashast-batch-{batch.files[0].name}")
        unit = self.index.parse(main_path, self.arguments + list(batch.defines), [(main_path, batch.text), *served], 0)
        return _BatchParse(unit, main_path, served)

    def verify_group_over_preamble(
        self, first: GeneratedFile, group: Iterable[GeneratedFile], report: Report,
        finished: Callable[[GeneratedFile, bool, float], None], built: Callable[[float], None] = lambda seconds: None,
    ) -> dict[str, list[Reading]]:
        """Real-header mode: one translation unit for files that share `first`'s includes, first the
        includes alone (`built` hears how long that took), then each file of `group`, taken as it
        goes, re-parsed (`finished` hears of each). Returns the readings of each file that passed:
        nothing failed and nothing was charged to it (a warning inside a third-party header is the
        header's, reported once, and does not keep a file's verdict from being remembered)."""
        served = self.sources.served(first)
        if isinstance(served, str):
            for generated in group:
                report.add(_missing_member(generated, served))
                finished(generated, True, 0.0)
            return {}
        main_path = self._placeholder()
        started = time.perf_counter()
        unit = self.index.parse(
            main_path, self.arguments, [(main_path, includes_alone_text(first)), *served],
            PRECOMPILED_PREAMBLE | CREATE_PREAMBLE_ON_FIRST_PARSE,
        )
        built(time.perf_counter() - started)
        problems, header_keys = header_problems(self._context(first, main_path), unit)
        problems = [self._as_nvcc_judges(diagnostic) for diagnostic in problems]
        for diagnostic in problems:
            report.add(diagnostic)
        headers_fail = any(diagnostic.fails for diagnostic in problems)
        clean: dict[str, list[Reading]] = {}
        for generated in group:
            unit.reparse([(main_path, generated.text), *served], PRECOMPILED_PREAMBLE)
            report.parsed += 1
            found = [self._as_nvcc_judges(diagnostic)
                     for diagnostic in file_diagnostics(self._context(generated, main_path), unit, header_keys)]
            for diagnostic in found:
                report.add(diagnostic)
            failed = headers_fail or any(diagnostic.fails or diagnostic.file is not None for diagnostic in found)
            if not failed:
                clean[generated.name] = self.sources.readings(unit, served)
            now = time.perf_counter()
            finished(generated, failed, now - started)
            started = now
        return clean

    def _as_nvcc_judges(self, diagnostic: Diagnostic) -> Diagnostic:
        """On the device side, an error inside a header that nvcc's front end does not make
        (`NVCC_ACCEPTS_ON_DEVICE`) is the header's warning, reported once, not the instantiating
        file's error: a verdict nvcc contradicts on a clean file would make the device side useless."""
        if (self.options.device_arch is None or not diagnostic.fails
                or not diagnostic.message.startswith(NVCC_ACCEPTS_ON_DEVICE)):
            return diagnostic
        if diagnostic.in_header:
            where, notes, seen = diagnostic.location, diagnostic.notes, ""
        elif diagnostic.notes and diagnostic.notes[0].message == HEADER_NOTE:
            where, notes = diagnostic.notes[0].location, diagnostic.notes[1:]
            seen = f"; instantiated for {diagnostic.location}"
        else:
            return diagnostic  # in a generated file's own text
        remark = f"(in a header: nvcc accepts this on the device side, clang does not; not counted as an error{seen})"
        return Diagnostic(where, diagnostic.message, fails=False, notes=notes, remarks=(remark,), in_header=True)

    def check_command_line(self) -> None:
        """Refuse options clang rejects, before any parse that uses a preamble.

        Building a preamble drops clang's complaints about the command line (an unknown argument is
        then silently ignored) and prints its warnings straight to the process's stderr, so they
        are collected here, from a parse of a one-line file without a preamble.
        """
        main_path = self.sources.source_path(".flashast-options.cu")
        with _quiet_stderr():
            try:
                unit = self.index.parse(main_path, self.arguments, [(main_path, INCLUDES_ONLY_BODY)], 0)
            except self.cindex.TranslationUnitLoadError:
                raise refused_command_line(self.cindex, self.index, self.options, main_path) from None
        complaints = [str(diagnostic.spelling) for diagnostic in reportable(self.cindex, unit)
                      if not diagnostic.location.file]
        if complaints:
            raise UsageError(f"clang rejects the verification options: {'; '.join(complaints)}")

    def locate_clashes(self, clashes: Sequence[Clash], report: Report) -> None:
        """Parse two files together (every clash names the same pair) so clang says where the second
        repeats the first's definitions: one parse, each of its reports once."""
        first, second = clashes[0].first, clashes[0].second
        main_path = self.sources.source_path(".flashast-pair.cu")
        if self.scratch is not None:
            Path(main_path).touch()
        text = render(TranslationUnit((Include(IncludePath(first.name)), Include(IncludePath(second.name)))))
        unsaved = [(main_path, text), (self.sources.source_path(first.name), first.text),
                   (self.sources.source_path(second.name), second.text)]
        for generated in (first, second):
            served = self.sources.served(generated)
            if not isinstance(served, str):
                unsaved += served
        unit = self.index.parse(main_path, self.arguments, unsaved, 0)
        second_path, first_path = self.sources.source_path(second.name), self.sources.source_path(first.name)
        context = self._context(second, second_path)
        located = False
        for diagnostic in reportable(self.cindex, unit):
            if _path(diagnostic.location) != second_path:
                continue
            if not any(_path(note.location) == first_path for note in diagnostic.children):
                continue
            where, message = context.location(diagnostic.location), message_of(diagnostic)
            located = True
            if any(known.file == second.name and known.location == where and known.message == message
                   for known in report.diagnostics):
                continue  # the file's own parse said it already (a duplicate inside the file itself)
            notes = [note for note in diagnostic.children if not note.spelling.startswith("in file included from")]
            report.add(Diagnostic(
                where, message, fails=True, file=second.name,
                notes=context.notes(notes),
                remarks=(f"(a duplicate symbol at link time: {first.name} defines it too)",),
                origin=origin(second),
            ))
        if not located:
            for clash in clashes:
                report.add(clash.diagnostic())


def _missing_member(generated: GeneratedFile, member: str) -> Diagnostic:
    return Diagnostic(
        Location(generated.name), f"includes {member}, which this run does not generate", fails=True,
        file=generated.name, origin=origin(generated),
    )


def group_by_preamble(files: Sequence[GeneratedFile]) -> list[list[GeneratedFile]]:
    """Real-header mode: files that can share one preamble (their includes-alone units render alike,
    see `preamble`), groups in order of first appearance; a file that includes generated files (an
    aggregator) stays alone."""
    groups: dict[object, list[GeneratedFile]] = {}
    for generated in files:
        key: object = ("alone", generated.name) if generated.included_files() else includes_alone_text(generated)
        groups.setdefault(key, []).append(generated)
    return list(groups.values())


def _path(location: Any) -> str:
    return str(location.file.name) if location.file else ""


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptors 1 and 2 for a moment: clang's driver prints its complaints about the
    command line on 2 itself (as well as returning them, which is how flashast reports them), and
    what `--version` or `-###` ask for on 1, where it would mix with `--diff`'s output."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
