"""What verification found, as frozen records, rendered to text once at the end of a run.

A `Diagnostic` says where (a generated file's own name, line and column; a header's path; or the
command line), whether it fails the run, clang's message and notes, and the configuration the
generated file came from. Parsing code builds records and never text, so the same problem seen by
two parses is the same record (compared by value), and reports are de-duplicated as data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

# What clang says, with no location, once it reaches its error limit (`-ferror-limit`, 20 by default
# through libclang's driver): not a problem of its own, but the end of what that parse reports.
ERROR_LIMIT_MESSAGE = "too many errors emitted"


@dataclass(frozen=True)
class Location:
    """A place in a file as the user knows it: a generated file's name, a header's path, or
    `<contract>/NAME` for a contract's virtual header."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file


@dataclass(frozen=True)
class Note:
    """A note clang attached (a candidate it rejected, an instantiation frame)."""

    message: str
    location: Location | None = None

    def render(self) -> str:
        return f"    {self.location}: note: {self.message}" if self.location else f"    note: {self.message}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem, located where the user can act on it.

    `file` names the generated file the problem is charged to (None for a header's own problem);
    `fails` decides whether it fails the run (an error, a warning in a generated file, a header
    warning under `--strict`); `remarks` are the lines flashast adds to explain it; `origin` is the
    preset, kind and axis values of the generated file, so the user knows which configuration to fix.
    """

    location: Location | None
    message: str
    fails: bool
    file: str | None = None
    notes: tuple[Note, ...] = ()
    remarks: tuple[str, ...] = ()
    origin: str | None = None
    in_header: bool = False

    @property
    def at_error_limit(self) -> bool:
        """Whether this is clang giving up after too many errors (so errors after it went unreported)."""
        return self.location is None and self.message.startswith(ERROR_LIMIT_MESSAGE)

    @property
    def identity(self) -> tuple[object, ...]:
        """What makes two diagnostics the same problem: the same message at the same place, charged to
        the same file. Their notes may differ (each template instantiation that hit a `static_assert`
        brings its own frames), and are not part of it."""
        return (self.location, self.message, self.fails, self.file, self.in_header)

    def render(self, times: int = 1) -> str:
        """The diagnostic as text; `times`: how often it was reported at this place (shown once)."""
        where = str(self.location) if self.location else ("clang" if self.at_error_limit else "<command line>")
        lines = [f"{where}: {'error' if self.fails else 'warning'}: {self.message}"]
        lines += [note.render() for note in self.notes]
        if times > 1:
            lines.append(f"    (reported {times} times here, each time for another instantiation; the first one's"
                         " notes are shown)")
        lines += [f"    {remark}" for remark in self.remarks]
        if self.origin:
            lines.append(f"    from: {self.origin}")
        return "\n".join(lines)


@dataclass
class Report:
    """Everything one verification found, in the order it was found.

    `parsed` counts the files libclang parsed this run and `reused` those whose verdict an earlier
    run proved for exactly these inputs (see `flashast.verify.keys`).
    """

    files: int = 0
    diagnostics: list[Diagnostic] = field(default_factory=list)
    parsed: int = 0
    reused: int = 0

    def add(self, diagnostic: Diagnostic) -> None:
        """Record a diagnostic; a header's own problem seen again (by another parse) is not repeated."""
        if diagnostic.in_header and any(
            known.in_header and known.location == diagnostic.location and known.message == diagnostic.message
            for known in self.diagnostics
        ):
            return
        self.diagnostics.append(diagnostic)

    @property
    def errors(self) -> list[Diagnostic]:
        return [diagnostic for diagnostic in self.diagnostics if diagnostic.fails]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [diagnostic for diagnostic in self.diagnostics if not diagnostic.fails]

    @property
    def failing_files(self) -> set[str]:
        return {diagnostic.file for diagnostic in self.errors if diagnostic.file is not None}

    @property
    def header_problems(self) -> int:
        return len({diagnostic.identity for diagnostic in self.errors
                    if diagnostic.in_header and not diagnostic.at_error_limit})

    @property
    def failed(self) -> bool:
        return any(diagnostic.fails for diagnostic in self.diagnostics)

    def text(self, header_warnings: bool = True) -> str:
        """Every diagnostic, errors first, each rendered once; without `header_warnings`, the warnings
        inside headers (third-party ones are many, and never a generated file's fault) are counted."""
        shown = [*self.errors, *(warning for warning in self.warnings if header_warnings or not warning.in_header)]
        lines = [diagnostic.render(times) for diagnostic, times in _counted(shown)]
        hidden = len(self.errors) + len(self.warnings) - len(shown)
        if hidden:
            lines.append(f"({hidden} warning(s) inside headers not shown; --header-warnings lists them)")
        return "\n".join(lines)

    def summary(self, levels: Sequence[str] = ()) -> str:
        """`levels`: how many files failed at which level ("1 on the host side", ...), when there are several."""
        errors = [diagnostic for diagnostic, _ in _counted(self.errors) if not diagnostic.at_error_limit]
        parts = [f"{len(errors)} error(s) in {len(self.failing_files)} of {self.files} file(s)"]
        if levels:
            parts[0] += f" ({', '.join(levels)})"
        if self.header_problems:
            parts.append(f"{self.header_problems} problem(s) in headers")
        if any(diagnostic.at_error_limit for diagnostic in self.errors):
            parts.append("clang stopped at its error limit, so there may be more (--clang-arg=-ferror-limit=0)")
        return "verification failed: " + ", ".join(parts) + "; nothing was written"


def _counted(diagnostics: Sequence[Diagnostic]) -> list[tuple[Diagnostic, int]]:
    """Each distinct diagnostic (`Diagnostic.identity`) once, in the order first seen, with how many
    times it was reported."""
    first: dict[tuple[object, ...], Diagnostic] = {}
    times: Counter[tuple[object, ...]] = Counter()
    for diagnostic in diagnostics:
        first.setdefault(diagnostic.identity, diagnostic)
        times[diagnostic.identity] += 1
    return [(diagnostic, times[identity]) for identity, diagnostic in first.items()]
