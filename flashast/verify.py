"""Verification with libclang: the only module that imports `clang.cindex`.

Every generated file is parsed on its own (never several in one translation unit, which would let one
file's include mask another's omission), from memory, before anything is written:

- contract mode (default): the headers a file includes are the kind's `Contract`, printed and served
  as unsaved files under a virtual include directory, parsed as C++17 with no system headers;
- real-header mode (`include_dirs` given): the user's real headers, parsed as CUDA host code.

A diagnostic is reported in the generated file's own name, line and column, followed by the notes
libclang attaches and the kind and axis values the file came from. Errors anywhere, and warnings in a
generated file, fail the run; warnings inside real headers fail only under `strict`. A model-level
pass also refuses the same specialization or instantiation defined in two files (a link-time error
no single-file parse can see).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flashast.errors import LibclangUnavailable, VerificationError
from flashast.kinds import Contract, GeneratedFile
from flashast.nodes import ExplicitInstantiation, ExplicitSpecialization, IfNotDefined, Namespace
from flashast.printer import render, spell_template_argument

if TYPE_CHECKING:
    from clang import cindex

VIRTUAL_ROOT = "/__flashast__"
VIRTUAL_INCLUDE = f"{VIRTUAL_ROOT}/include"
VIRTUAL_SOURCE = f"{VIRTUAL_ROOT}/src"

CONTRACT_ARGUMENTS = (
    "-x", "c++", "-std=c++17",
    # Contract headers are self-contained; the libclang wheel ships no resource headers anyway.
    "-nostdinc", "-nostdinc++",
    "-Wall",
    f"-I{VIRTUAL_INCLUDE}",
)
CUDA_HOST_ARGUMENTS = (
    "-x", "cuda", "--cuda-host-only", "-std=c++17",
    # flashast's own flags name a CUDA release newer than libclang 18 knows; that says nothing
    # about the generated files.
    "-Wno-unknown-cuda-version",
    # The upstream builds undefine these so half/bfloat16 conversions exist; so must we.
    "-U__CUDA_NO_HALF_OPERATORS__", "-U__CUDA_NO_HALF_CONVERSIONS__",
    "-U__CUDA_NO_HALF2_OPERATORS__", "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
)


@dataclass(frozen=True)
class VerifyOptions:
    """How to verify: against contracts (default) or real headers (`include_dirs` non-empty)."""

    include_dirs: tuple[Path, ...] = ()
    defines: tuple[str, ...] = ()
    clang_args: tuple[str, ...] = ()
    cuda_path: Path | None = None
    resource_dir: Path | None = None
    strict: bool = False

    @property
    def real_headers(self) -> bool:
        return bool(self.include_dirs)


@dataclass
class Report:
    """What verification found; `failed` decides the exit code."""

    files: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failing_files: set[str] = field(default_factory=set)

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    def text(self) -> str:
        return "\n".join(self.errors + self.warnings)


def load_cindex() -> Any:
    """Import `clang.cindex` and load the shared library, or say in one line how to get it."""
    try:
        from clang import cindex
    except ImportError:
        raise LibclangUnavailable(
            "libclang: the Python package is not installed; run `python -m pip install libclang==18.1.1`"
            " (or pass --no-verify)"
        ) from None
    try:
        cindex.Index.create()
    except Exception as error:  # cindex raises its own LibclangError or OSError when the .so is unusable
        raise LibclangUnavailable(
            f"libclang: the shared library does not load ({error}); reinstall with"
            " `python -m pip install --force-reinstall libclang==18.1.1` (or pass --no-verify)"
        ) from None
    return cindex


def header_texts(contract: Contract) -> dict[str, str]:
    """The contract's headers as text, keyed by include path."""
    return {path: render(unit) for path, unit in contract.header_units().items()}


def verify(files: Sequence[GeneratedFile], options: VerifyOptions = VerifyOptions()) -> Report:
    """Parse every file; raise `VerificationError` (with the full report) if any fails."""
    report = Report(files=len(files))
    check_duplicates(files, report)
    cindex = load_cindex()
    session = _Session(cindex, files, options)
    try:
        for generated in files:
            session.verify_file(generated, report)
    finally:
        session.close()
    if report.failed:
        failing = len(report.failing_files)
        summary = (
            f"verification failed: {len(report.errors)} error(s) in {failing} of {len(files)} file(s);"
            " nothing was written"
        )
        raise VerificationError(summary, report.text())
    return report


def check_duplicates(files: Iterable[GeneratedFile], report: Report) -> None:
    """The same explicit specialization or instantiation definition in two files is a link error."""
    seen: dict[tuple[object, ...], str] = {}
    for generated in files:
        if generated.aggregator:
            continue
        for scope, node in _definitions(generated.unit.declarations, ()):
            key = (scope, node.signature.name, node.signature.template_arguments)
            if key in seen and seen[key] != generated.name:
                arguments = ", ".join(spell_template_argument(argument) for argument in key[2])
                report.errors.append(
                    f"{generated.name}: error: {node.signature.name}<{arguments}> is also defined in {seen[key]}"
                    f" (a duplicate symbol at link time)\n    from: {_origin(generated)}"
                )
                report.failing_files.add(generated.name)
            seen.setdefault(key, generated.name)


def _definitions(declarations: Iterable[object], scope: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    for node in declarations:
        if isinstance(node, Namespace):
            yield from _definitions(node.body, (*scope, str(node.name)))
        elif isinstance(node, ExplicitSpecialization) or (isinstance(node, ExplicitInstantiation) and not node.extern):
            yield scope, node
        elif isinstance(node, IfNotDefined):
            yield from _definitions(node.body, scope)


def _origin(generated: GeneratedFile) -> str:
    return f"preset {generated.preset}, {generated.describe()}"


class _Session:
    """One libclang index and the unsaved files shared by every parse of a run."""

    def __init__(self, cindex: Any, files: Sequence[GeneratedFile], options: VerifyOptions) -> None:
        self.cindex = cindex
        self.options = options
        self.index = cindex.Index.create()
        self.texts = {generated.name: generated.text for generated in files}
        self.header_cache: dict[int, list[tuple[str, str]]] = {}
        self.reported_header_problems: set[str] = set()
        self.scratch = Path(tempfile.mkdtemp(prefix="flashast-verify-")) if options.real_headers else None
        self.arguments = self._arguments()

    def close(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def _arguments(self) -> list[str]:
        options = self.options
        if not options.real_headers:
            return [*CONTRACT_ARGUMENTS, *options.clang_args]
        arguments = [*CUDA_HOST_ARGUMENTS]
        if options.cuda_path is not None:
            arguments.append(f"--cuda-path={options.cuda_path}")
        if options.resource_dir is not None:
            arguments += ["-resource-dir", str(options.resource_dir)]
        arguments += [f"-I{directory}" for directory in options.include_dirs]
        arguments += [f"-D{define}" for define in options.defines]
        arguments += options.clang_args
        return arguments

    def _source_path(self, name: str) -> str:
        if self.scratch is not None:
            return str(self.scratch / name)
        return f"{VIRTUAL_SOURCE}/{name}"

    def _contract_headers(self, contract: Contract) -> list[tuple[str, str]]:
        key = id(contract)
        if key not in self.header_cache:
            self.header_cache[key] = [
                (f"{VIRTUAL_INCLUDE}/{path}", text) for path, text in header_texts(contract).items()
            ]
        return self.header_cache[key]

    def verify_file(self, generated: GeneratedFile, report: Report) -> None:
        main_path = self._source_path(generated.name)
        unsaved = [(main_path, generated.text)]
        for member in generated.included_files():
            if member not in self.texts:
                report.errors.append(
                    f"{generated.name}: error: includes {member}, which this run does not generate\n"
                    f"    from: {_origin(generated)}"
                )
                report.failing_files.add(generated.name)
                return
            unsaved.append((self._source_path(member), self.texts[member]))
        if not self.options.real_headers:
            unsaved += self._contract_headers(generated.contract)
        unit = self.index.parse(main_path, self.arguments, unsaved_files=unsaved, options=0)
        self._collect(unit, generated, main_path, report)

    def _collect(self, unit: cindex.TranslationUnit, generated: GeneratedFile, main_path: str, report: Report) -> None:
        severity = self.cindex.Diagnostic
        for diagnostic in unit.diagnostics:
            if diagnostic.severity < severity.Warning:
                continue
            location = diagnostic.location
            path = location.file.name if location.file else ""
            in_generated = path == main_path or path.startswith(VIRTUAL_SOURCE) or (
                self.scratch is not None and path.startswith(str(self.scratch))
            )
            is_error = diagnostic.severity >= severity.Error
            label = "error" if is_error else "warning"
            if in_generated:
                where = f"{os.path.basename(path)}:{location.line}:{location.column}"
                lines = [f"{where}: {label}: {diagnostic.spelling}"]
                lines += [f"    note: {self._spell_note(note, main_path)}" for note in diagnostic.children]
                if os.path.basename(path) != generated.name:
                    lines.append(f"    included from: {generated.name}")
                lines.append(f"    from: {_origin(generated)}")
                report.errors.append("\n".join(lines))
                report.failing_files.add(generated.name)
                continue
            where = f"{self._spell_header(path)}:{location.line}:{location.column}"
            text = f"{where}: {label}: {diagnostic.spelling}"
            if text in self.reported_header_problems:
                continue
            self.reported_header_problems.add(text)
            header_text = f"{text}\n    (in a header, first seen while verifying {generated.name})"
            if is_error or self.options.strict:
                report.errors.append(header_text)
                report.failing_files.add(generated.name)
            else:
                report.warnings.append(header_text)

    def _spell_header(self, path: str) -> str:
        if path.startswith(VIRTUAL_INCLUDE + "/"):
            return "contract header " + path[len(VIRTUAL_INCLUDE) + 1:]
        return path or "<command line>"

    def _spell_note(self, note: Any, main_path: str) -> str:
        location = note.location
        path = location.file.name if location.file else ""
        if not path:
            return note.spelling
        shown = os.path.basename(path) if path == main_path else self._spell_header(path)
        return f"{note.spelling} ({shown}:{location.line}:{location.column})"
