"""What a run prints: its verdict as it goes (progress), and what it found and did at the end.

`report(result, options, display)` prints a `pipeline.Result` (writes, checks, the listing, the
dispatch and conformance verdicts) and returns the command's exit code; `report_error` prints a
failure, a verification's findings first. Everything goes to stderr but the `--diff` text and the
`--list` paths, which go to stdout. A path or a culprit is printed through `printable`, so an error
stays one line in any locale.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import TextIO

from flashast.axes import spell_axis_value
from flashast.errors import FlashastError, VerificationError
from flashast.generated import compiled_files
from flashast.output import Plan, unified_diff
from flashast.pipeline import Action, Options, Result
from flashast.registry import Registry
from flashast.verify import Parsed, Report


def printable(text: str) -> str:
    """`text` on one line whatever it holds: a newline, a control character or an undecodable byte
    in a culprit (a path, a plugin's message) is shown escaped, so an error stays one line and
    printing it cannot fail in any locale."""
    return "".join(
        character if character.isprintable() else character.encode("unicode_escape", "backslashreplace").decode()
        for character in text
    )


@dataclass(frozen=True)
class Display:
    """How a run is shown, which never changes what it does: `-q`, `--header-warnings`, `--timings`,
    `--list=written` (every file a run writes rather than those a build compiles), and DIR as the user
    spelled it (`-o ./kernels`), under which `--list` prints the paths (None: `Options.output`)."""

    quiet: bool = False
    header_warnings: bool = False
    timings: bool = False
    list_written: bool = False
    directory: str | None = None


def report(result: Result, options: Options, display: Display) -> int:
    """Print what the run found and did; returns the command's exit code (`Result.exit_code`)."""
    if result.dispatch is not None and not display.quiet:
        details = result.dispatch.text()
        if details:
            print(details, file=sys.stderr)
        print(f"flashast: {result.dispatch.summary()}", file=sys.stderr)
    if result.report is not None:
        report_verification(result.report, display.header_warnings, display.timings, display.quiet)
    if options.action is Action.LIST:
        _list_paths(result, options, display)
    elif options.action is Action.CONFORMANCE:
        if not display.quiet and result.report is not None:
            state = "unchanged since they last conformed" if result.report.reused else "conform"
            print(f"flashast: the contracts of {result.preset} {state} to the real headers", file=sys.stderr)
    elif options.shard is not None:
        if not display.quiet and result.report is not None:
            index, count = options.shard
            print(f"flashast: shard {index}/{count}: {len(result.files)} file(s) verified"
                  f" ({result.report.reused} unchanged since they last passed); nothing written", file=sys.stderr)
    elif options.action is not Action.WRITE:
        report_check(result, options, display.quiet)
    elif not display.quiet:
        report_write(result, options)
    return result.exit_code


def report_start(options: Options, display: Display) -> None:
    """Before the run: a run that verifies nothing says so (a listing never verifies)."""
    if options.verification is None and not display.quiet and options.action is not Action.LIST:
        print("flashast: verification skipped (--no-verify)", file=sys.stderr)


def report_error(error: FlashastError, header_warnings: bool = False) -> int:
    """A failure the user can act on: what failed verification (rendered here, once), then the one
    line `flashast: error: ...`; returns its exit code."""
    if isinstance(error, VerificationError):
        print(error.text(header_warnings), file=sys.stderr)
    print(f"flashast: error: {printable(str(error))}", file=sys.stderr)
    return error.exit_code


def _list_paths(result: Result, options: Options, display: Display) -> None:
    """`--list`: the paths as the file system spells them (an output path given in undecodable bytes
    stays those bytes), whatever the locale."""
    sys.stdout.flush()
    shown = result.files if display.list_written else compiled_files(result.files, options.compile)
    directory = options.output if display.directory is None else display.directory
    sys.stdout.buffer.write(b"".join(os.fsencode(os.path.join(directory, generated.name)) + b"\n"
                                     for generated in shown))
    sys.stdout.flush()


class ProgressDisplay:
    """How parsed files are shown while verification runs (real headers take seconds per file).

    `timings`: one line per file with its seconds. Else, on a terminal, one line rewritten in place
    (files done of total, elapsed, an estimate of what is left); not on a terminal, one plain line
    per file. Files whose verdict is reused are not parsed and not shown.
    """

    def __init__(self, timings: bool, stream: TextIO | None = None) -> None:
        self.timings = timings
        self.stream = stream or sys.stderr
        self.in_place = not timings and self.stream.isatty()
        self.started = time.perf_counter()
        self.shown = False

    def __call__(self, parsed: Parsed) -> None:
        outcome = "failed" if parsed.failed else "verified"
        if parsed.architecture:
            outcome += f" (device, {parsed.architecture})"
        if self.timings:
            print(f"flashast: {outcome} {parsed.file.name} in {parsed.seconds:.1f} s", file=self.stream, flush=True)
            return
        if not self.in_place:
            print(f"flashast: {outcome} {parsed.done}/{parsed.total} {parsed.file.name}", file=self.stream, flush=True)
            return
        elapsed = time.perf_counter() - self.started
        left = elapsed / parsed.done * (parsed.total - parsed.done)
        line = (f"flashast: verified {parsed.done}/{parsed.total} files, {_clock(elapsed)} elapsed,"
                f" about {_clock(left)} left")
        self.stream.write(f"\r{line}\x1b[K")
        self.stream.flush()
        self.shown = True

    def end(self) -> None:
        """Finish the line rewritten in place, so what follows starts on a line of its own."""
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds + 0.5), 60)
    return f"{minutes}:{seconds:02d}"


def report_verification(report: Report, header_warnings: bool, timings: bool, quiet: bool) -> None:
    """Warnings that did not fail the run: those inside third-party headers are many and never the
    generated files' fault, so they are counted in one line unless asked for. `-q` silences them;
    `--timings` (asked for explicitly) still says how many files were not parsed again."""
    if timings:
        print(f"flashast: {report.reused} file(s) not parsed again: their inputs passed before", file=sys.stderr)
    if quiet:
        return
    in_headers = [warning for warning in report.warnings if warning.in_header]
    for warning in report.warnings:
        if header_warnings or not warning.in_header:
            print(warning.render(), file=sys.stderr)
    if in_headers and not header_warnings:
        print(f"flashast: {len(in_headers)} warning(s) inside headers, none in generated files"
              " (--header-warnings lists them)", file=sys.stderr)


def report_check(result: Result, options: Options, quiet: bool) -> None:
    found = result.plan
    if found is None:
        raise RuntimeError("flashast: a check run always plans")
    directory = options.output
    if not os.path.lexists(directory):
        # One line, not one "missing" line per file: the directory is what is missing (exit 1 still,
        # since a run would write it: a CI check on a path that was never generated must fail).
        print(f"flashast: {printable(str(directory))} does not exist; a run would write {len(found.new)} files"
              f" into it ({result.preset})", file=sys.stderr)
        _diff_to_stdout(found, options)
        return
    for generated in found.new:
        print(f"flashast: missing {directory / generated.name}", file=sys.stderr)
    for generated in found.changed:
        print(f"flashast: changed {directory / generated.name}", file=sys.stderr)
    for generated in found.conflicts:
        print(f"flashast: changed {directory / generated.name} (not written by flashast)", file=sys.stderr)
    for generated in found.edited:
        print(f"flashast: edited {directory / generated.name} (since flashast wrote it)", file=sys.stderr)
    report_look_alikes(found, result.preset)
    for name in found.stale:
        print(f"flashast: stale {directory / name}", file=sys.stderr)
    _diff_to_stdout(found, options)
    if not quiet:
        state = "differs" if found.differs else "up to date"
        counts = (
            f"{len(found.new)} missing, {len(found.changed) + len(found.conflicts) + len(found.edited)} changed,"
            f" {len(found.unchanged) + len(found.adopted)} unchanged, {len(found.stale)} stale"
        )
        print(f"flashast: {directory} {state} ({counts}, {result.preset})", file=sys.stderr)


def _diff_to_stdout(found: Plan, options: Options) -> None:
    if options.action is Action.DIFF:
        # Files are UTF-8 whatever the locale; bytes that did not decode go out as they came in.
        sys.stdout.flush()
        sys.stdout.buffer.write(unified_diff(found).encode("utf-8", "surrogateescape"))
        sys.stdout.flush()


def report_write(result: Result, options: Options) -> None:
    found, outcome = result.plan, result.outcome
    if found is None or outcome is None:
        raise RuntimeError("flashast: a write run always plans and writes")
    report_look_alikes(found, result.preset)
    stale = [name for name in found.stale if name not in outcome.pruned]
    if found.previous_owner is not None:
        pruned_others = sum(1 for name in found.other_presets if name in outcome.pruned)
        kept_others = len(found.other_presets) - pruned_others
        print(f"flashast: {found.directory}: handed over from preset {found.previous_owner} to {result.preset}"
              f" (--force); of {found.previous_owner}'s other files, {kept_others} kept as stale"
              f" (--prune --force deletes them), {pruned_others} pruned", file=sys.stderr)
    for name in stale:
        if name in found.other_presets:
            why = "written for another preset, so kept; --prune --force deletes it"
        elif name in outcome.kept:
            why = "edited since flashast wrote it, so kept; --prune --force deletes it"
        else:
            why = "no longer generated; --prune deletes it"
        print(f"flashast: stale {found.directory / name} ({why})", file=sys.stderr)
    unchanged = len(found.unchanged) + len(found.adopted)
    pruned = f", {len(outcome.pruned)} pruned" if options.prune else ""
    print(
        f"flashast: {len(outcome.written)} written, {unchanged} unchanged, {len(stale)} stale{pruned}"
        f" ({result.preset})",
        file=sys.stderr,
    )


def report_look_alikes(found: Plan, preset: str) -> None:
    for name in found.look_alikes:
        print(f"flashast: warning: {printable(str(found.directory / name))}: looks like output of preset {preset}"
              " but no kind generates it; it would be compiled with the rest", file=sys.stderr)


# `--list-kinds` names this many skip reasons of a kind, most frequent first, and counts the rest.
SHOWN_SKIP_REASONS = 5


def list_kinds(registry: Registry) -> None:
    """Every preset and kind: counts, origin, description, then each kind's axes with their values and
    why the configurations it skips are skipped (how many per reason), since those decide which
    `--only`/`--exclude` filters exist and why a file a user expected is not generated."""
    for name in registry.preset_choices():  # each preset's default revision, then its others as NAME@REVISION
        preset = registry.preset(name)
        total = sum(kind.count() for kind in preset.kinds)
        print(f"{name}  ({total} files, {registry.origin_of(name).description}) {preset.description}".rstrip())
        if preset.upstream:
            print(f"  byte-identical to {preset.describe_upstream()}")
        for kind in preset.kinds:
            origin = registry.origin_of(name, kind.name).description
            role = ", aggregator" if kind.aggregator else ""
            skipped = len(kind.skipped())
            skipped_text = f", {skipped} skipped" if skipped else ""
            print(f"  {kind.name}  ({kind.count()} files{skipped_text}{role}, {origin}) {kind.description}".rstrip())
            for axis, values in kind.axes.items():
                print(f"    {axis}: {printable(', '.join(spell_axis_value(value) for value in values))}")
            reasons = Counter(reason for _, reason in kind.skipped()).most_common()
            for reason, count in reasons[:SHOWN_SKIP_REASONS]:
                print(f"    skipped {count}: {printable(reason)}")
            if len(reasons) > SHOWN_SKIP_REASONS:
                rest = sum(count for _, count in reasons[SHOWN_SKIP_REASONS:])
                print(f"    skipped {rest}: for {len(reasons) - SHOWN_SKIP_REASONS} other reasons"
                      " (Kind.skipped() lists each configuration)")
