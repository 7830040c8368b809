"""Verification with libclang: the only module that imports `clang.cindex`.

Every generated file gets its own verdict before anything is written. In contract mode, files whose
text cannot change what another file means are first parsed together in batches (see
`flashast.batching`, which says why a clean batch proves each file clean); a batch that reports
anything at all, and every other file, is parsed file by file, so a reported problem is always the
one a parse of that file alone finds (one file's include can never mask another's omission, nor a
stray brace be blamed on the wrong file). The two modes:

- contract mode (default): the headers a file includes are the kind's `Contract`, printed and served
  from memory under a virtual include directory, parsed as C++17 with no system headers;
- real-header mode (`include_dirs` given): the user's real headers, parsed as CUDA host code. Files
  whose leading comments and `#include`s are identical share one libclang translation unit built
  with a precompiled preamble and re-parsed per file, so heavy headers are parsed once per group,
  not once per file. Headers clang's CUDA wrapper includes but a CUDA 13 toolkit lacks are served
  empty from memory; `find_resource_dirs` finds clang resource headers libclang 18 can use.

A diagnostic is reported in the generated file's own name, line and column, as
`NAME.cu:LINE:COL: error: MESSAGE`, followed by the notes libclang attaches and the preset, kind and
axis values the file came from. Errors anywhere fail the run, and so do warnings located in a
generated file (such a warning is a real defect: "explicit instantiation after specialization has no
effect"). A diagnostic inside a header that a generated line caused (a note points at that line) is
reported at that line; one that no generated line caused is a header problem, reported once for the
whole run, not once per file. Warnings in headers fail only under `strict`.

A model-level pass finds the same specialization or instantiation defined in two files (a link-time
error no single-file parse can see); a parse of just those two files together then lets clang locate
the clash in the second file and point its note at the first.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flashast.batching import Batch, plan_batches, switched_on
from flashast.errors import LibclangUnavailable, UsageError, VerificationError
from flashast.contract import Contract
from flashast.generated import GeneratedFile
from flashast.nodes import (
    ClassDeclaration,
    ExplicitInstantiation,
    ExplicitSpecialization,
    IfDefined,
    IfNotDefined,
    Include,
    LineComment,
    Namespace,
    TranslationUnit,
)
from flashast.printer import render, spell_template_argument

TYPE_CHECKING = False  # `typing` is for annotations only; not importing it keeps runs lean
if TYPE_CHECKING:
    from typing import Any

VIRTUAL_ROOT = "/__flashast__"
VIRTUAL_INCLUDE = f"{VIRTUAL_ROOT}/include"
VIRTUAL_SOURCE = f"{VIRTUAL_ROOT}/src"
INSTALL_HINT = "python -m pip install libclang==18.1.1"

# The body of the includes-alone parse: a declaration, so that libclang's preamble ends exactly where
# it will end in every file of the group (a text of directives only would make a longer preamble,
# which the files could not reuse).
INCLUDES_ONLY_BODY = render(TranslationUnit((ClassDeclaration("flashast_includes_only_"),)))

# libclang's own option bits (`CXTranslationUnit_*`); the Python binding names only some of them.
_PRECOMPILED_PREAMBLE = 0x04
_CREATE_PREAMBLE_ON_FIRST_PARSE = 0x100

# Warnings only the way flashast parses can cause, never a defect of the generated file:
# -Wpragma-once-outside-header: a generated header (a kind may write `.h` files with `#pragma once`)
# is parsed as the main file, where clang warns that `#pragma once` has no effect.
SHARED_WARNING_ARGUMENTS = ("-Wno-pragma-once-outside-header",)

CONTRACT_ARGUMENTS = (
    "-x", "c++", "-std=c++17",
    # Contract headers are self-contained; the libclang wheel ships no resource headers anyway.
    "-nostdinc", "-nostdinc++",
    # -Wall holds what a generated declaration can get wrong without an error; the defect that
    # matters most, "explicit instantiation after specialization has no effect"
    # (-Winstantiation-after-specialization), is on by default and stays on.
    "-Wall",
    *SHARED_WARNING_ARGUMENTS,
    f"-I{VIRTUAL_INCLUDE}",
)
CUDA_HOST_ARGUMENTS = (
    "-x", "cuda", "--cuda-host-only", "-std=c++17",
    "-Wall",
    *SHARED_WARNING_ARGUMENTS,
    # clang finds an installed CUDA toolkit (/usr/local/cuda) even with -nocudainc, and warns when it
    # is newer than libclang 18 knows (12.3). That says nothing about the user's headers or ours.
    "-Wno-unknown-cuda-version",
    # A host-only parse never links device libraries; without this clang looks for libdevice.
    "-nocudalib",
    # The upstream builds undefine these so half/bfloat16 conversions exist; so must we.
    "-U__CUDA_NO_HALF_OPERATORS__", "-U__CUDA_NO_HALF_CONVERSIONS__",
    "-U__CUDA_NO_HALF2_OPERATORS__", "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
)
# clang's CUDA wrapper (`__clang_cuda_runtime_wrapper.h`) includes these; CUDA 13 no longer ships
# them and nothing a generated file declares needs them, so a toolkit that lacks them gets empty
# ones, served from memory after every real include directory.
CUDA_HEADERS_CLANG_EXPECTS = ("texture_fetch_functions.h", "curand_mtgp32_kernel.h")
CUDA_STAND_INS = f"{VIRTUAL_ROOT}/cuda-stand-ins"
# Resource directories whose CUDA wrappers libclang 18 parses: those of clang 16 to 18 (19's use
# builtins libclang 18 does not know). Debian 12 ships clang 16's as `libclang-common-16-dev`.
COMPATIBLE_RESOURCE_MAJORS = (18, 17, 16)
RESOURCE_DIR_HINT = (
    "Debian/Ubuntu: apt-get install libclang-common-16-dev, then --resource-dir /usr/lib/llvm-16/lib/clang/16"
)

# Called after each file is verified: the file, the seconds it took (the first file of a group
# sharing a preamble also pays for building that preamble), and whether it failed.
Progress = Callable[[GeneratedFile, float, bool], None]


def find_cuda_path(environment: Mapping[str, str] | None = None) -> Path | None:
    """The CUDA toolkit to parse against when `--cuda-path` is not given: `CUDA_PATH`, then
    `CUDA_HOME`, then `/usr/local/cuda`, whichever names an existing directory first."""
    environment = os.environ if environment is None else environment
    candidates = [environment.get("CUDA_PATH", ""), environment.get("CUDA_HOME", ""), "/usr/local/cuda"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def find_resource_dirs(roots: Sequence[Path] = (Path("/usr/lib"),)) -> list[Path]:
    """Installed clang resource directories libclang 18 can parse CUDA with, newest first.

    Looks where Debian and Ubuntu put them (`ROOT/llvm-N/lib/clang/N*`, `ROOT/clang/N*`) and keeps
    those that hold clang's CUDA wrapper headers.
    """
    found: list[Path] = []
    seen: set[Path] = set()  # Debian's /usr/lib/clang/16/include and 16.0.6/include link to llvm-16's
    for major in COMPATIBLE_RESOURCE_MAJORS:
        for root in roots:
            for parent in (root / f"llvm-{major}" / "lib" / "clang", root / "clang"):
                for directory in sorted(parent.glob(f"{major}*")):
                    wrapper = directory / "include" / "__clang_cuda_runtime_wrapper.h"
                    if wrapper.is_file() and wrapper.resolve() not in seen:
                        seen.add(wrapper.resolve())
                        found.append(directory)
    return found


def missing_cuda_headers(cuda_path: Path) -> tuple[str, ...]:
    """The headers clang's CUDA wrapper includes that the toolkit at `cuda_path` lacks."""
    return tuple(name for name in CUDA_HEADERS_CLANG_EXPECTS if not (cuda_path / "include" / name).is_file())


@dataclass(frozen=True)
class VerifyOptions:
    """How to verify: against contracts (default) or real headers (`include_dirs` non-empty).

    Real-header mode parses CUDA host code. CUDA's own headers need clang's CUDA wrapper headers,
    which live in a clang resource directory; the libclang wheel ships none. So CUDA's headers
    (`cuda_path`) are used only together with `resource_dir`; without one, clang parses with
    `-nocudainc` and the user's tree must define `__global__` and friends itself (a small tree such
    as the test fixture does; a full PyTorch or cutlass tree needs `resource_dir`).
    """

    include_dirs: tuple[Path, ...] = ()
    defines: tuple[str, ...] = ()
    clang_args: tuple[str, ...] = ()
    cuda_path: Path | None = None
    resource_dir: Path | None = None
    strict: bool = False

    @property
    def real_headers(self) -> bool:
        return bool(self.include_dirs)

    @property
    def cuda_includes(self) -> bool:
        """Whether clang includes CUDA's own headers (only possible with a resource directory)."""
        return self.real_headers and self.resource_dir is not None and self.cuda_path is not None


@dataclass
class Report:
    """What verification found; `failed` decides the exit code.

    `errors` and `warnings` are report blocks (first line `WHERE: error: MESSAGE`, then indented
    notes and the file's origin); `failing_files` names the generated files with an error of their
    own; `header_problems` counts the problems found inside headers, each reported once;
    `translation_units` counts the libclang translation units built (real-header mode builds one
    per group of files sharing a preamble and re-parses it per file); `skipped` counts the files not
    parsed because an earlier run verified the same key.
    """

    files: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failing_files: set[str] = field(default_factory=set)
    header_problems: int = 0
    translation_units: int = 0
    skipped: int = 0

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    def text(self) -> str:
        return "\n".join(self.errors + self.warnings)

    def summary(self) -> str:
        parts = [f"{len(self.errors)} error(s) in {len(self.failing_files)} of {self.files} file(s)"]
        if self.header_problems:
            parts.append(f"{self.header_problems} problem(s) in headers")
        return "verification failed: " + ", ".join(parts) + "; nothing was written"


def load_cindex() -> Any:
    """Import `clang.cindex` and load the shared library, or say in one line how to get it."""
    try:
        from clang import cindex
    except ImportError:
        raise LibclangUnavailable(
            f"libclang: the Python package is not installed; run `{INSTALL_HINT}` (or pass --no-verify)"
        ) from None
    try:
        cindex.Index.create()
    except Exception as error:  # cindex raises its own LibclangError or OSError when the .so is unusable
        reason = " ".join(str(error).split())[:160]
        raise LibclangUnavailable(
            f"libclang: the shared library does not load ({reason}); reinstall with"
            f" `{INSTALL_HINT} --force-reinstall` (or pass --no-verify)"
        ) from None
    return cindex


def header_texts(contract: Contract) -> dict[str, str]:
    """The contract's headers as text, keyed by include path (a copy; rendered once per contract)."""
    return dict(_rendered_headers(contract))


@functools.lru_cache(maxsize=64)
def _rendered_headers(contract: Contract) -> tuple[tuple[str, str], ...]:
    # Keys and parses both need the texts; contracts are frozen and hash by value, so one cache serves.
    return tuple((path, render(unit)) for path, unit in contract.header_units().items())


# Stands for a member file this run does not generate: such a file fails, so its key must match no
# verified one.
_MISSING_MEMBER = "\0flashast: not generated by this run\0"


def verification_keys(files: Sequence[GeneratedFile], options: VerifyOptions) -> dict[str, str] | None:
    """Each file's verification key (see `flashast.cache`): everything its verdict depends on.

    None in real-header mode, whose verdict depends on the user's whole header tree, and with
    `--clang-arg`, which can name files (`-include`, `-I`) whose contents no key would cover.
    """
    if options.real_headers or options.clang_args:
        return None
    from flashast import cache

    # `strict` decides whether a contract header's warning fails the run, so it is part of the verdict.
    common = cache.common_verification_key([*clang_arguments(options), f"flashast-strict={options.strict}"])
    texts = {generated.name: generated.text for generated in files}
    headers: dict[int, dict[str, str]] = {}
    keys = {}
    for generated in files:
        contract_headers = headers.get(id(generated.contract))
        if contract_headers is None:
            contract_headers = headers[id(generated.contract)] = header_texts(generated.contract)
        members = {member: texts.get(member, _MISSING_MEMBER) for member in generated.included_files()}
        keys[generated.name] = cache.verification_key(common, generated.text, contract_headers, members)
    return keys


def clang_arguments(options: VerifyOptions) -> list[str]:
    """The command line libclang parses every file with (the main file aside)."""
    if not options.real_headers:
        return [*CONTRACT_ARGUMENTS, *options.clang_args]
    arguments = [*CUDA_HOST_ARGUMENTS]
    if options.resource_dir is not None:
        arguments += ["-resource-dir", str(options.resource_dir)]
    if options.cuda_includes:
        arguments.append(f"--cuda-path={options.cuda_path}")
        if options.cuda_path is not None and missing_cuda_headers(options.cuda_path):
            arguments.append(f"-idirafter{CUDA_STAND_INS}")
    else:
        arguments.append("-nocudainc")
    arguments += [f"-I{directory}" for directory in options.include_dirs]
    arguments += [f"-D{define}" for define in options.defines]
    arguments += options.clang_args
    return arguments


def verify(
    files: Sequence[GeneratedFile],
    options: VerifyOptions = VerifyOptions(),
    progress: Progress | None = None,
    already_verified: Collection[str] = frozenset(),
) -> Report:
    """Parse every file; raise `VerificationError` (with the full report) if any fails.

    `progress`, if given, hears about each file as soon as it is verified (real headers are slow).
    Files named in `already_verified` are not parsed again (their keys matched an earlier verdict,
    see `verification_keys`), but still take part in the cross-file checks and are served to the
    aggregators that include them. When no file needs parsing, libclang is not even loaded.
    """
    _refuse_guard_defines(files, options)
    report = Report(files=len(files))
    clashes = _find_duplicates(files)
    to_parse = [generated for generated in files if generated.name not in already_verified]
    report.skipped = len(files) - len(to_parse)
    if not to_parse and not clashes:
        return report
    cindex = load_cindex()
    session = _Session(cindex, files, options)
    session.progress = progress
    try:
        if options.real_headers or options.clang_args:
            session.check_command_line()  # only user-supplied options can be ones clang rejects
        if not options.real_headers and not options.clang_args and progress is None:
            # Batches that parse clean need no per-file parse (see `flashast.batching`). Not with
            # `--clang-arg` (a warning it turns on may depend on what else the unit holds), nor with
            # `progress` (`--timings`), which wants each file's own time.
            run = {generated.name: generated for generated in files}
            passed = {
                generated.name
                for batch in plan_batches(to_parse, run) if session.verify_batch(batch, report)
                for generated in batch.files
            }
            # The rest keep the order the per-file path gives them (by preamble group, over all the
            # files), so that their problems are reported in the same order as without batching.
            if len(passed) < len(to_parse):
                to_parse = [
                    generated for group in _group_by_preamble(to_parse, options) for generated in group
                    if generated.name not in passed
                ]
            else:
                to_parse = []
        workers = _worker_count(len(to_parse), options, progress)
        if workers > 1:
            _verify_in_threads(cindex, to_parse, files, options, workers, report)
        else:
            for group in _group_by_preamble(to_parse, options):
                session.verify_group(group, report)
        for first, second, node in clashes:
            session.locate_clash(first, second, node, report)
    finally:
        session.close()
    if report.failed:
        text = report.text()
        if options.real_headers and options.resource_dir is None and "file not found" in text:
            text += "\n" + _resource_dir_hint()
        raise VerificationError(report.summary(), text)
    return report


# Parsing in parallel pays for a second precompiled preamble from a few dozen files on (measured on
# 2 cores: 48 files 36 -> 26 ms; 2,000 files 1.95 -> 1.0 s).
PARALLEL_FROM_FILES = 24


def _worker_count(count: int, options: VerifyOptions, progress: Progress | None) -> int:
    """Threads for contract-mode parses: one per core for all but small runs.

    Threads suffice: ctypes releases the GIL while libclang parses, and each thread owns its own
    index and translation units (libclang allows that). Real-header mode stays on one thread, where
    files share heavy precompiled preambles; `progress` wants files reported in order as they finish.
    """
    if options.real_headers or progress is not None or count < PARALLEL_FROM_FILES:
        return 1
    return min(os.cpu_count() or 1, count // (PARALLEL_FROM_FILES // 2))


def _verify_in_threads(
    cindex: Any, to_parse: Sequence[GeneratedFile], files: Sequence[GeneratedFile], options: VerifyOptions,
    workers: int, report: Report,
) -> None:
    """Verify `to_parse` on `workers` threads, each over a contiguous slice of the files ordered by
    preamble group (so each slice builds few preambles), and merge their reports in order.

    A contract header's own problem may be seen by several threads; it is reported once, as the
    sequential path does.
    """
    import threading

    ordered = [generated for group in _group_by_preamble(to_parse, options) for generated in group]
    size = -(-len(ordered) // workers)
    slices = [ordered[start : start + size] for start in range(0, len(ordered), size)]
    parts = [Report(files=len(part)) for part in slices]
    failures: list[BaseException] = []

    def verify_slice(part_files: list[GeneratedFile], part: Report) -> None:
        session = _Session(cindex, files, options)
        try:
            for group in _group_by_preamble(part_files, options):
                session.verify_group(group, part)
        except BaseException as error:  # re-raised on the calling thread below
            failures.append(error)
        finally:
            session.close()

    threads = [
        threading.Thread(target=verify_slice, args=(part_files, part))
        for part_files, part in zip(slices, parts, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    seen_header_problems: set[str] = set()

    def first_time(block: str) -> bool:
        if "(in a header: reported once" not in block:
            return True
        first_line = block.split("\n", 1)[0]
        if first_line in seen_header_problems:
            return False
        seen_header_problems.add(first_line)
        return True

    for part in parts:
        for block in part.errors:
            if first_time(block):
                report.errors.append(block)
                report.header_problems += "(in a header: reported once" in block
        report.warnings += [block for block in part.warnings if first_time(block)]
        report.failing_files |= part.failing_files
        report.translation_units += part.translation_units


def _resource_dir_hint() -> str:
    """Why a real tree's system or CUDA headers were not found, and where a fix is."""
    found = find_resource_dirs()
    where = f"found here: {', '.join(map(str, found))}" if found else f"none found here; {RESOURCE_DIR_HINT}"
    return (
        "hint: no --resource-dir: the libclang wheel has no clang resource headers (stddef.h, the CUDA"
        f" wrappers), which real trees need; pass a clang 16-18 resource directory ({where})"
    )


def check_duplicates(files: Iterable[GeneratedFile], report: Report) -> None:
    """The same explicit specialization or instantiation definition in two files is a link error.

    Model-level only (no libclang, so no line numbers); `verify` also locates each clash with clang.
    """
    for first, second, node in _find_duplicates(files):
        report.errors.append(_clash_text(first, second, node))
        report.failing_files.add(second.name)


def parse_unit(generated: GeneratedFile, options: VerifyOptions = VerifyOptions(),
               siblings: Sequence[GeneratedFile] = ()) -> Any:
    """The libclang translation unit `verify` builds for one file (`siblings`: the other files of the
    run, which an aggregator includes), for tests and tools that read libclang's cursors."""
    cindex = load_cindex()
    session = _Session(cindex, [generated, *siblings], options)
    try:
        unit, _ = session.parse_alone(generated)
        return unit
    finally:
        session.close()


# Model-level checks -------------------------------------------------------------------------------


def _refuse_guard_defines(files: Sequence[GeneratedFile], options: VerifyOptions) -> None:
    """Defining a macro a file tests with `#ifndef` would skip the guarded code unverified."""
    guards = {
        str(node.macro) for generated in files for node in generated.unit.walk() if isinstance(node, IfNotDefined)
    }
    defined = list(options.defines)
    defined += [argument[2:] for argument in options.clang_args if argument.startswith("-D")]
    for define in defined:
        name = define.split("=", 1)[0]
        if name in guards:
            raise UsageError(
                f"--define {define}: the generated files guard code with `#ifndef {name}`; defining it"
                " would skip that code unverified"
            )


def _find_duplicates(files: Iterable[GeneratedFile]) -> list[tuple[GeneratedFile, GeneratedFile, Any]]:
    """(first file, second file, node) for each definition a second file repeats."""
    seen: dict[tuple[object, ...], GeneratedFile] = {}
    clashes: list[tuple[GeneratedFile, GeneratedFile, Any]] = []
    for generated in files:
        if generated.aggregator:
            continue
        for scope, node in _definitions(generated.unit.declarations, ()):
            key = (scope, node.signature.name, node.signature.template_arguments)
            first = seen.setdefault(key, generated)
            if first.name != generated.name:
                clashes.append((first, generated, node))
    return clashes


def _definitions(declarations: Iterable[object], scope: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    for node in declarations:
        if isinstance(node, Namespace):
            yield from _definitions(node.body, (*scope, str(node.name)))
        elif isinstance(node, ExplicitSpecialization) or (isinstance(node, ExplicitInstantiation) and not node.extern):
            yield scope, node
        elif isinstance(node, (IfNotDefined, IfDefined)):
            yield from _definitions(node.body, scope)


def _clash_text(first: GeneratedFile, second: GeneratedFile, node: Any) -> str:
    arguments = ", ".join(spell_template_argument(argument) for argument in node.signature.template_arguments)
    return (
        f"{second.name}: error: {node.signature.name}<{arguments}> is also defined in {first.name}"
        f" (a duplicate symbol at link time)\n    from: {_origin(second)}"
    )


def _origin(generated: GeneratedFile) -> str:
    return f"preset {generated.preset}, {generated.describe()}"


# Grouping for the precompiled preamble ------------------------------------------------------------


def _preamble_of(text: str) -> str:
    """The text before the first line of code: the leading comments, blank lines and directives,
    roughly what libclang precompiles as the preamble.

    Only a grouping key: two files of one group whose real preambles differ still parse correctly
    (libclang rebuilds the preamble), just more slowly.
    """
    position = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "//")):
            break
        position += len(line)
    return text[:position]


def _group_by_preamble(files: Sequence[GeneratedFile], options: VerifyOptions) -> list[list[GeneratedFile]]:
    """Files that can share one preamble, groups in order of first appearance.

    In contract mode the group also needs the same contract and `#ifdef` macros, and a file that
    includes generated files (an aggregator) stays alone: its members are found next to it.
    """
    groups: dict[object, list[GeneratedFile]] = {}
    for generated in files:
        if options.real_headers:
            key: object = _preamble_of(generated.text)
        elif generated.included_files():
            key = ("alone", generated.name)
        else:
            key = (_preamble_of(generated.text), id(generated.contract), tuple(switched_on(generated)))
        groups.setdefault(key, []).append(generated)
    return list(groups.values())


# Parsing and reporting ----------------------------------------------------------------------------


class _Session:
    """One libclang index, the unsaved files and the reported header problems of one run."""

    def __init__(self, cindex: Any, files: Sequence[GeneratedFile], options: VerifyOptions) -> None:
        self.cindex = cindex
        self.options = options
        self.index = cindex.Index.create()
        self.texts = {generated.name: generated.text for generated in files}
        self.header_cache: dict[int, list[tuple[str, str]]] = {}
        self.reported_header_problems: set[tuple[str, int, int, str]] = set()
        # Real-header mode needs the main file on disk: libclang builds a preamble only for a main
        # file that exists (an empty placeholder suffices; the text comes from memory).
        self.scratch = _scratch_directory() if options.real_headers else None
        self.source_root = str(self.scratch) if self.scratch is not None else VIRTUAL_SOURCE
        self.contract_scratch: Path | None = None
        self.arguments = clang_arguments(options)
        self.placeholders = 0
        self.batches = 0
        self.cuda_stand_ins: list[tuple[str, str]] = []
        if options.cuda_includes and options.cuda_path is not None:
            self.cuda_stand_ins = [
                (
                    f"{CUDA_STAND_INS}/{name}",
                    render(TranslationUnit((LineComment(f"flashast: {options.cuda_path} has no {name}"),))),
                )
                for name in missing_cuda_headers(options.cuda_path)
            ]
        self.progress: Progress | None = None
        self.started = time.perf_counter()

    def _finished(self, generated: GeneratedFile, report: Report) -> None:
        """Tell `progress` that `generated` is done, with the time since the previous file ended."""
        now = time.perf_counter()
        if self.progress is not None:
            self.progress(generated, now - self.started, generated.name in report.failing_files)
        self.started = now

    def close(self) -> None:
        for scratch in (self.scratch, self.contract_scratch):
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

    # Building translation units ------------------------------------------------------------------

    def _source_path(self, name: str) -> str:
        return f"{self.source_root}/{name}"

    def _placeholder(self) -> str:
        self.placeholders += 1
        path = self._source_path(f".flashast-main-{self.placeholders}.cu")
        Path(path).touch()
        return path

    def _contract_headers(self, contract: Contract) -> list[tuple[str, str]]:
        key = id(contract)
        if key not in self.header_cache:
            self.header_cache[key] = [
                (f"{VIRTUAL_INCLUDE}/{path}", text) for path, text in header_texts(contract).items()
            ]
        return self.header_cache[key]

    def _dependencies(self, generated: GeneratedFile) -> list[tuple[str, str]] | str:
        """The unsaved files besides the main one, or the name of a member this run does not make."""
        unsaved = []
        for member in generated.included_files():
            if member not in self.texts:
                return member
            unsaved.append((self._source_path(member), self.texts[member]))
        if not self.options.real_headers:
            unsaved += self._contract_headers(generated.contract)
        else:
            unsaved += self.cuda_stand_ins
        return unsaved

    def parse_alone(self, generated: GeneratedFile) -> tuple[Any, str]:
        """A fresh translation unit for one file (no shared preamble)."""
        dependencies = self._dependencies(generated)
        if isinstance(dependencies, str):
            raise UsageError(f"{generated.name}: includes {dependencies}, which this run does not generate")
        main_path = self._source_path(generated.name)
        unit = self.index.parse(main_path, self.arguments, [(main_path, generated.text), *dependencies], 0)
        return unit, main_path

    def verify_group(self, group: list[GeneratedFile], report: Report) -> None:
        """Parse each file of a group (in real-header mode over one shared preamble)."""
        self.started = time.perf_counter()
        if self.options.real_headers:
            self._verify_group_over_preamble(group, report)
            return
        if len(group) > 1:
            self._verify_contract_group_over_preamble(group, report)
            return
        for generated in group:
            dependencies = self._dependencies(generated)
            if isinstance(dependencies, str):
                self._report_missing_member(generated, dependencies, report)
                continue
            main_path = self._source_path(generated.name)
            arguments = self.arguments + switched_on(generated)
            unit = self.index.parse(main_path, arguments, [(main_path, generated.text), *dependencies], 0)
            report.translation_units += 1
            self._collect(unit, generated, main_path, report, header_keys=None)
            self._finished(generated, report)

    def verify_batch(self, batch: Batch, report: Report) -> bool:
        """Parse a batch as one translation unit; True if libclang reports nothing at all (then every
        file of it passes, see `flashast.batching`). Reports nothing itself: a batch that is not
        clean goes back to per-file parses, which say what is wrong and where."""
        self.batches += 1
        main_path = self._source_path(f".flashast-batch-{self.batches}.cu")
        unsaved = [(main_path, batch.text), *self._contract_headers(batch.files[0].contract)]
        unsaved += [(self._source_path(member), self.texts[member]) for member in batch.members]
        unit = self.index.parse(main_path, self.arguments + list(batch.defines), unsaved, 0)
        report.translation_units += 1
        return next(self._reportable(unit), None) is None

    def _verify_contract_group_over_preamble(self, group: list[GeneratedFile], report: Report) -> None:
        """Contract mode: the first file parsed with a precompiled preamble, the others re-parsed.

        Contract headers are small, but a re-parse still costs half a fresh parse (measured: 0.5 ms
        against 1 ms per file). The group shares headers and arguments (see `_group_by_preamble`),
        so each re-parse sees exactly what a fresh parse of that file would.
        """
        dependencies = self._dependencies(group[0])
        if isinstance(dependencies, str):  # cannot happen: aggregators are never grouped
            raise RuntimeError(f"flashast: grouped file {group[0].name} includes {dependencies}")
        main_path = self._contract_placeholder()
        arguments = self.arguments + switched_on(group[0])
        unit = None
        for generated in group:
            unsaved = [(main_path, generated.text), *dependencies]
            if unit is None:
                unit = self.index.parse(
                    main_path, arguments, unsaved, _PRECOMPILED_PREAMBLE | _CREATE_PREAMBLE_ON_FIRST_PARSE
                )
                report.translation_units += 1
            else:
                unit.reparse(unsaved, _PRECOMPILED_PREAMBLE)
            self._collect(unit, generated, main_path, report, header_keys=None)
            self._finished(generated, report)

    def _contract_placeholder(self) -> str:
        """An empty file on disk to stand for the main file: libclang builds a preamble only for a
        main file that exists (its text still comes from memory)."""
        if self.contract_scratch is None:
            self.contract_scratch = _scratch_directory()
        self.placeholders += 1
        path = self.contract_scratch / f".flashast-main-{self.placeholders}.cu"
        path.touch()
        return str(path)

    def _verify_group_over_preamble(self, group: list[GeneratedFile], report: Report) -> None:
        """One translation unit per group: first its includes alone, then each file re-parsed.

        The includes-alone parse builds the precompiled preamble and shows what the headers get wrong
        by themselves; whatever appears in a header only once a file's own lines follow was caused by
        those lines (an instantiation they request).
        """
        first = group[0]
        dependencies = self._dependencies(first)
        if isinstance(dependencies, str):
            for generated in group:
                self._report_missing_member(generated, dependencies, report)
            return
        main_path = self._placeholder()
        unit = self.index.parse(
            main_path, self.arguments, [(main_path, self._includes_alone(first)), *dependencies],
            _PRECOMPILED_PREAMBLE | _CREATE_PREAMBLE_ON_FIRST_PARSE,
        )
        report.translation_units += 1
        header_keys = self._collect_header_problems(unit, main_path, first, report)
        for generated in group:
            unit.reparse([(main_path, generated.text), *dependencies], _PRECOMPILED_PREAMBLE)
            self._collect(unit, generated, main_path, report, header_keys)
            self._finished(generated, report)

    def check_command_line(self) -> None:
        """Refuse options clang rejects, before any parse that uses a preamble.

        Building a preamble drops clang's complaints about the command line (an unknown argument is
        then silently ignored) and prints its warnings straight to the process's stderr, so they
        are collected here, from a parse of a one-line file without a preamble.
        """
        main_path = self._source_path(".flashast-options.cu")
        with _quiet_stderr():
            unit = self.index.parse(main_path, self.arguments, [(main_path, INCLUDES_ONLY_BODY)], 0)
        complaints = [diagnostic.spelling for diagnostic in self._reportable(unit) if not diagnostic.location.file]
        if complaints:
            raise UsageError(f"clang rejects the verification options: {'; '.join(complaints)}")

    def _includes_alone(self, generated: GeneratedFile) -> str:
        """The text of the includes-alone parse: the file's leading comments and directives (its
        preamble, byte for byte, so the files of the group reuse it) and a declaration. An
        aggregator's includes of generated files are left out: what those files cause is theirs,
        not a header's (an aggregator is alone in its group, so there is no preamble to share)."""
        lines = _preamble_of(generated.text).splitlines(keepends=True)
        members = set(generated.included_files())
        kept = [line for line in lines if _included_path(line) not in members]
        return "".join(kept) + INCLUDES_ONLY_BODY

    def _report_missing_member(self, generated: GeneratedFile, member: str, report: Report) -> None:
        report.errors.append(
            f"{generated.name}: error: includes {member}, which this run does not generate\n"
            f"    from: {_origin(generated)}"
        )
        report.failing_files.add(generated.name)

    def locate_clash(self, first: GeneratedFile, second: GeneratedFile, node: Any, report: Report) -> None:
        """Parse the two files together so clang says where `second` repeats `first`'s definition."""
        main_path = self._source_path(".flashast-pair.cu")
        if self.scratch is not None:
            Path(main_path).touch()
        text = render(TranslationUnit((Include(first.name), Include(second.name))))
        unsaved = [(main_path, text), (self._source_path(first.name), first.text),
                   (self._source_path(second.name), second.text)]
        for generated in (first, second):
            dependencies = self._dependencies(generated)
            if not isinstance(dependencies, str):
                unsaved += dependencies
        unit = self.index.parse(main_path, self.arguments, unsaved, 0)
        report.translation_units += 1
        second_path, first_path = self._source_path(second.name), self._source_path(first.name)
        located = False
        for diagnostic in self._reportable(unit):
            if _path(diagnostic.location) != second_path:
                continue
            if not any(_path(note.location) == first_path for note in diagnostic.children):
                continue
            lines = [f"{self._where(diagnostic.location, second_path, second)}: error: {_message(diagnostic)}"]
            lines += self._notes(_notes_of(diagnostic), second_path, second)
            lines.append(f"    (a duplicate symbol at link time: {first.name} defines it too)")
            lines.append(f"    from: {_origin(second)}")
            report.errors.append("\n".join(lines))
            located = True
        if not located:
            report.errors.append(_clash_text(first, second, node))
        report.failing_files.add(second.name)

    # Reading diagnostics -------------------------------------------------------------------------

    def _reportable(self, unit: Any) -> Iterator[Any]:
        """Warnings and errors, up to and including the first fatal error: clang's own driver stops
        there, and what libclang reports after it (an unknown name the missing header would have
        declared) only follows from it."""
        for diagnostic in unit.diagnostics:
            if diagnostic.severity < self.cindex.Diagnostic.Warning:
                continue
            yield diagnostic
            if diagnostic.severity >= self.cindex.Diagnostic.Fatal:
                return

    def _generated_name(self, path: str, main_path: str, generated: GeneratedFile) -> str | None:
        """The generated file `path` is (the main file or a member it includes), or None."""
        if path == main_path:
            return generated.name
        prefix = self.source_root + "/"
        if path.startswith(prefix) and path[len(prefix):] in self.texts:
            return path[len(prefix):]
        return None

    def _where(self, location: Any, main_path: str, generated: GeneratedFile) -> str:
        path = _path(location)
        name = self._generated_name(path, main_path, generated)
        shown = name if name is not None else _spell_header(path)
        return f"{shown}:{location.line}:{location.column}" if path else shown

    def _notes(self, notes: Iterable[Any], main_path: str, generated: GeneratedFile) -> list[str]:
        lines = []
        for note in notes:
            if _path(note.location):
                lines.append(f"    {self._where(note.location, main_path, generated)}: note: {note.spelling}")
            else:
                lines.append(f"    note: {note.spelling}")
        return lines

    def _collect_header_problems(
        self, unit: Any, main_path: str, generated: GeneratedFile, report: Report
    ) -> set[tuple[str, int, int, str]]:
        """Report what the headers get wrong with only the includes parsed; return those diagnostics."""
        keys = set()
        for diagnostic in self._reportable(unit):
            path = _path(diagnostic.location)
            if path and self._generated_name(path, main_path, generated) is not None:
                continue  # a generated line's own error (a failing `#include`) is reported per file
            keys.add(_key(diagnostic))
            is_error = diagnostic.severity >= self.cindex.Diagnostic.Error
            self._report_header(diagnostic, _notes_of(diagnostic), is_error, generated, main_path, report)
        return keys

    def _collect(
        self, unit: Any, generated: GeneratedFile, main_path: str, report: Report,
        header_keys: set[tuple[str, int, int, str]] | None,
    ) -> None:
        """Report one file's diagnostics. `header_keys`: real-header mode's header-only problems."""
        for diagnostic in self._reportable(unit):
            is_error = diagnostic.severity >= self.cindex.Diagnostic.Error
            path = _path(diagnostic.location)
            notes = _notes_of(diagnostic)
            if path and self._generated_name(path, main_path, generated) is not None:
                self._report_generated(diagnostic, diagnostic.location, notes, is_error, generated, main_path, report)
                continue
            if header_keys is not None and _key(diagnostic) in header_keys:
                continue  # a header's own problem, reported once by the includes-alone parse
            cause = next(
                (note.location for note in notes if _path(note.location)
                 and self._generated_name(_path(note.location), main_path, generated) is not None),
                None,
            )
            if cause is None and header_keys is not None:
                # Not there with the includes alone, so this file's lines caused it; clang names no
                # line of ours when the request was an explicit instantiation, so find that line.
                cause = self._instantiation_cause(unit, diagnostic, notes, generated, main_path)
            if cause is None or not is_error:
                # A warning inside a header does not fail the run even when a file's line led clang
                # there (unless --strict); it is reported once, like any header problem.
                self._report_header(diagnostic, notes, is_error, generated, main_path, report, cause)
                continue
            header_note = (
                f"    {_spell_header(path)}:{diagnostic.location.line}:{diagnostic.location.column}:"
                " note: the error is here, in a header, instantiated for this line"
            )
            remaining = [note for note in notes if note.location != cause]
            self._report_generated(diagnostic, cause, remaining, is_error, generated, main_path, report, header_note)

    def _instantiation_cause(
        self, unit: Any, diagnostic: Any, notes: list[Any], generated: GeneratedFile, main_path: str
    ) -> Any:
        """The explicit instantiation in the main file whose template body the diagnostic came from.

        The outermost "in instantiation of" frame (or the diagnostic itself) sits in the body of the
        template that a line of ours instantiated; its enclosing function names that template.
        """
        instantiations = _explicit_instantiations(unit, main_path, generated.text)
        for member in generated.included_files():  # an aggregator's members hold its instantiations
            instantiations += _explicit_instantiations(unit, self._source_path(member), self.texts[member])
        if not instantiations:
            return None
        frames = [note for note in notes if note.spelling.startswith("in instantiation of")]
        location = frames[-1].location if frames else diagnostic.location
        enclosing = self.cindex.Cursor.from_location(unit, location).semantic_parent
        function_kinds = {
            self.cindex.CursorKind.FUNCTION_DECL, self.cindex.CursorKind.FUNCTION_TEMPLATE,
            self.cindex.CursorKind.CXX_METHOD,
        }
        while enclosing is not None and enclosing.kind not in function_kinds:
            if enclosing.kind == self.cindex.CursorKind.TRANSLATION_UNIT:
                enclosing = None
                break
            enclosing = enclosing.semantic_parent
        name = enclosing.spelling if enclosing is not None else None
        return next((token.location for token in instantiations if token.spelling == name), instantiations[0].location)

    def _report_generated(
        self, diagnostic: Any, location: Any, notes: list[Any], is_error: bool, generated: GeneratedFile,
        main_path: str, report: Report, first_note: str | None = None,
    ) -> None:
        """A diagnostic a generated line is responsible for: always an error, warnings included."""
        where = self._where(location, main_path, generated)
        suffix = "" if is_error else " (a warning; warnings in generated files fail verification)"
        lines = [f"{where}: error: {_message(diagnostic)}{suffix}"]
        if first_note:
            lines.append(first_note)
        lines += self._notes(notes, main_path, generated)
        shown = where.split(":", 1)[0]
        if shown != generated.name:
            lines.append(f"    included from: {generated.name}")
        lines.append(f"    from: {_origin(generated)}")
        report.errors.append("\n".join(lines))
        report.failing_files.add(generated.name)

    def _report_header(
        self, diagnostic: Any, notes: list[Any], is_error: bool, generated: GeneratedFile, main_path: str,
        report: Report, cause: Any = None,
    ) -> None:
        """A problem of a header itself (or of the command line): reported once per run."""
        key = _key(diagnostic)
        if key in self.reported_header_problems:
            return
        self.reported_header_problems.add(key)
        location = diagnostic.location
        where = f"{_spell_header(key[0])}:{location.line}:{location.column}" if key[0] else "<command line>"
        fails = is_error or self.options.strict
        lines = [f"{where}: {'error' if fails else 'warning'}: {_message(diagnostic)}"]
        lines += self._notes(notes, main_path, generated)
        if cause is not None:
            seen = f"instantiated for {self._where(cause, main_path, generated)}"
        else:
            seen = f"first seen verifying {generated.name}"
        strict = "; --strict makes header warnings fail" if not is_error and not self.options.strict else ""
        lines.append(f"    (in a header: reported once; {seen}{strict})")
        if fails:
            report.errors.append("\n".join(lines))
            report.header_problems += 1
        else:
            report.warnings.append("\n".join(lines))


def _scratch_directory() -> Path:
    """A private temporary directory for placeholder main files (removed by `_Session.close`)."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="flashast-verify-"))


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for a moment: clang's driver prints its complaints about the
    command line there itself (as well as returning them, which is how flashast reports them)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _notes_of(diagnostic: Any) -> list[Any]:
    """The notes worth showing: libclang also attaches the include stack as notes, which point at
    `#include` lines (naming a placeholder main file) and never say what went wrong."""
    return [note for note in diagnostic.children if not note.spelling.startswith("in file included from")]


def _included_path(line: str) -> str | None:
    """The path an `#include` line names, or None for any other line."""
    match = re.match(r'\s*#\s*include\s*[<"]([^>"]+)[>"]', line)
    return match.group(1) if match else None


def _key(diagnostic: Any) -> tuple[str, int, int, str]:
    location = diagnostic.location
    return (_path(location), location.line, location.column, diagnostic.spelling)


def _explicit_instantiations(unit: Any, main_path: str, text: str) -> list[Any]:
    """The name token of each explicit instantiation definition in the main file, from its tokens:
    libclang has no cursor for an explicit instantiation."""
    extent = unit.get_extent(main_path, (0, len(text.encode())))
    tokens = list(unit.get_tokens(extent=extent))
    found = []
    for index, token in enumerate(tokens):
        if token.spelling != "template" or index + 1 == len(tokens) or tokens[index + 1].spelling == "<":
            continue
        if index and tokens[index - 1].spelling == "extern":
            continue
        for following in range(index + 1, len(tokens)):
            if tokens[following].spelling in ("<", ";", "{", "("):
                if tokens[following].spelling == "<" and following > index + 1:
                    found.append(tokens[following - 1])
                break
    return found


def _path(location: Any) -> str:
    return location.file.name if location.file else ""


def _message(diagnostic: Any) -> str:
    option = diagnostic.option
    return f"{diagnostic.spelling} [{option}]" if option and option.startswith("-W") else diagnostic.spelling


def _spell_header(path: str) -> str:
    if path.startswith(VIRTUAL_INCLUDE + "/"):
        return "<contract>/" + path[len(VIRTUAL_INCLUDE) + 1:]
    return path
