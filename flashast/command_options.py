"""From a parsed command line to a run: refusing it before any work, then its `pipeline.Options` and
how it is shown (`report.Display`).

Refusals are options that cannot take effect together, values libclang cannot take, and paths that
are not what the option needs. Each is one `UsageError` naming the option, raised before anything is
parsed, so that a run which cannot do what was asked never spends minutes first. All but one come
before the preset is even generated; `architectures_without_files` needs the selected files, so it
generates them once.
"""

from __future__ import annotations

import argparse
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from flashast.errors import UsageError
from flashast.generated import CompilePolicy
from flashast.pipeline import Action, Options
from flashast.registry import Registry
from flashast.report import Display, ProgressDisplay
from flashast.selection import select
from flashast.verify import VerifyOptions, find_cuda_path
from flashast.verify.command_line import CLANG_CUDA_ARCHITECTURES

# `--device-arch` given without a value: each kind's declared architectures.
DECLARED = "declared"

# clang driver options that print something and parse nothing (libclang then gives no translation unit).
_PRINT_AND_STOP = ("--version", "-###", "--help", "-help", "--help-hidden", "-dumpversion", "-dumpmachine",
                   "-print-", "--print-")


def refuse_before_any_work(arguments: argparse.Namespace, declared: str = DECLARED) -> None:
    """Every check on the parsed command line that needs neither plugins nor generated files;
    `declared` is the value `--device-arch` has when given without one."""
    _refuse_contradictions(arguments)
    _refuse_options_without_effect(arguments)
    if arguments.no_verify or arguments.list or arguments.list_kinds:
        return
    _refuse_bytes_libclang_cannot_take(arguments)
    for name in arguments.device_arch:
        if name != declared and name not in CLANG_CUDA_ARCHITECTURES:
            raise UsageError(f"--device-arch {name}: not a GPU architecture libclang knows"
                             f" ({', '.join(CLANG_CUDA_ARCHITECTURES)})")
    for argument in arguments.clang_arg:
        if argument.startswith(_PRINT_AND_STOP):
            raise UsageError(f"--clang-arg={argument}: asks clang to print something and stop, not to parse")
    if arguments.dispatcher and not arguments.include_dir:
        raise UsageError("--dispatcher: the dispatcher is read against the real headers; add --include-dir DIR")
    for path in arguments.dispatcher:
        _check_readable_file("--dispatcher", path)


def _refuse_contradictions(arguments: argparse.Namespace) -> None:
    """Options that ask for opposite things are a usage error, never a guess."""
    modes = (("--check", arguments.check), ("--diff", arguments.diff), ("--list", arguments.list),
             ("--conformance", arguments.conformance))
    comparing = next((name for name, given in modes if given), None)
    if comparing is not None:
        for option, given in (("--prune", arguments.prune), ("--force", arguments.force)):
            if given:
                raise UsageError(f"{option}: {comparing} writes nothing, so there is nothing to {option[2:]}")
        if arguments.manifest is not None and comparing != "--list":
            raise UsageError(f"--manifest: {comparing} writes nothing; use --list --manifest FILE.json for the listing")
    if arguments.shard is not None:
        for option, given in (("--check", arguments.check), ("--diff", arguments.diff), ("--list", arguments.list),
                              ("--conformance", arguments.conformance), ("--dispatcher", arguments.dispatcher),
                              ("--prune", arguments.prune), ("--manifest", arguments.manifest),
                              ("--no-verify", arguments.no_verify)):
            if given:
                raise UsageError(f"{option}: --shard only verifies its part of the files; run {option} in the"
                                 " final, unsharded run")
    if arguments.compile is not None and arguments.manifest is None and arguments.list != "compiled":
        raise UsageError("--compile: says which files --list and --manifest name as compiled; add one of them")
    writing = ("--prune", arguments.prune), ("--force", arguments.force), ("--manifest", arguments.manifest)
    if arguments.list_kinds and (arguments.output or any(value for _, value in writing)):
        raise UsageError("--list-kinds: lists presets and kinds only; drop -o and the writing options")


def _refuse_options_without_effect(arguments: argparse.Namespace) -> None:
    """Pairs that cannot both take effect: a mode that does not verify (or verifies only contracts)
    and an option that configures what it skips."""
    configuring = [name for name, value in _verification_options(arguments) if value]
    if arguments.no_verify and configuring:
        raise UsageError(f"{configuring[0]}: configures verification, which --no-verify skips")
    if arguments.list and configuring:
        raise UsageError(f"{configuring[0]}: configures verification; --list names files without verifying them")
    if arguments.list_kinds:
        given = [name for name, value in [("--only", arguments.only), ("--exclude", arguments.exclude),
                                          *_verification_options(arguments)] if value]
        if given:
            raise UsageError(f"{given[0]}: --list-kinds lists every preset and kind, selecting and verifying none")
    if arguments.conformance:
        for option, given in (("--dispatcher", arguments.dispatcher), ("--device-arch", arguments.device_arch),
                              ("--jobs", arguments.jobs), ("--timings", arguments.timings)):
            if given:
                raise UsageError(f"{option}: --conformance compares the contracts with the headers only;"
                                 f" run {option} without --conformance")


def _verification_options(arguments: argparse.Namespace) -> list[tuple[str, object]]:
    return [
        ("--include-dir", arguments.include_dir), ("--define", arguments.define), ("--clang-arg", arguments.clang_arg),
        ("--cuda-path", arguments.cuda_path), ("--resource-dir", arguments.resource_dir),
        ("--strict", arguments.strict), ("--timings", arguments.timings), ("--device-arch", arguments.device_arch),
        ("--dispatcher", arguments.dispatcher), ("--header-warnings", arguments.header_warnings),
        ("--jobs", arguments.jobs),
    ]


def _refuse_bytes_libclang_cannot_take(arguments: argparse.Namespace) -> None:
    """libclang takes its command line and paths as UTF-8; a value the command line gave in other
    bytes (kept by Python as surrogates) is refused here, not half-way through a parse."""
    named = [("--include-dir", value) for value in arguments.include_dir]
    named += [("--define", value) for value in arguments.define]
    named += [("--clang-arg", value) for value in arguments.clang_arg]
    named += [("--dispatcher", value) for value in arguments.dispatcher]
    named += [(option, value) for option, value in (("--cuda-path", arguments.cuda_path),
                                                    ("--resource-dir", arguments.resource_dir)) if value]
    for option, value in named:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            shown = value.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
            raise UsageError(f"{option} {shown}: not valid UTF-8, which is all libclang takes") from None


def _check_readable_file(option: str, path: str) -> None:
    """A file the run reads must be a regular file it can read; the reason names what is wrong."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise UsageError(f"{option} {path}: no such file") from None
    except OSError as error:
        raise UsageError(f"{option} {path}: cannot use ({error.strerror})") from None
    if stat.S_ISDIR(status.st_mode):
        raise UsageError(f"{option} {path}: is a directory, not a source file")
    if not stat.S_ISREG(status.st_mode):
        raise UsageError(f"{option} {path}: not a regular file (a FIFO, socket or device)")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{option} {path}: cannot read (permission denied)")


def architectures_without_files(registry: Registry, options: Options, named: Sequence[str], strict: bool) -> list[str]:
    """A `--device-arch` no selected file is parsed for (every selected file's kind declares other
    architectures) verifies nothing: an error with `--strict`, else returned as a warning. Costs one
    generation of the preset, next to minutes of device-side parses."""
    if not named or options.verification is None:
        return []
    preset = registry.preset(options.preset)
    files = select(preset.generate(), preset, options.only, options.exclude)
    warnings = []
    for name in named:
        if any(not generated.architectures or name in generated.architectures for generated in files):
            continue
        problem = f"--device-arch {name}: no selected file is for {name} (their kinds declare other architectures)"
        if strict:
            raise UsageError(f"{problem}; --strict")
        warnings.append(problem)
    return warnings


def options_from(arguments: argparse.Namespace) -> Options:
    """The run the command line asks for (`refuse_before_any_work` has passed)."""
    if arguments.check:
        action = Action.CHECK
    elif arguments.diff:
        action = Action.DIFF
    elif arguments.list:
        action = Action.LIST
    elif arguments.conformance:
        action = Action.CONFORMANCE
    else:
        action = Action.WRITE
    return Options(
        output=Path(arguments.output or "."),
        preset=arguments.preset,
        only=tuple(arguments.only),
        exclude=tuple(arguments.exclude),
        action=action,
        listing=Path(arguments.manifest) if arguments.manifest is not None else None,
        prune=arguments.prune,
        force=arguments.force,
        verification=None if arguments.no_verify else _verify_options(arguments),
        progress=_progress(arguments),
        jobs=arguments.jobs or os.cpu_count() or 1,
        dispatchers=tuple(Path(path) for path in arguments.dispatcher),
        compile=CompilePolicy(arguments.compile or CompilePolicy.UPSTREAM.value),
        shard=arguments.shard,
    )


def display_from(arguments: argparse.Namespace) -> Display:
    """How the command shows the run."""
    return Display(quiet=arguments.quiet, header_warnings=arguments.header_warnings, timings=arguments.timings,
                   list_written=arguments.list == "written", directory=arguments.output)


def named_architectures(arguments: argparse.Namespace) -> list[str]:
    """The `--device-arch` values given by name (not the declared ones)."""
    return [name for name in arguments.device_arch if name != DECLARED]


def _progress(arguments: argparse.Namespace) -> ProgressDisplay | None:
    """Per-file lines with `--timings`; otherwise progress only where parses are slow (real headers),
    and never with `-q`."""
    if arguments.timings:
        return ProgressDisplay(timings=True)
    if arguments.include_dir and not arguments.quiet and not arguments.no_verify:
        return ProgressDisplay(timings=False)
    return None


def _verify_options(arguments: argparse.Namespace) -> VerifyOptions:
    if not arguments.include_dir:
        for option, value in (("--define", arguments.define), ("--cuda-path", arguments.cuda_path),
                              ("--resource-dir", arguments.resource_dir)):
            if value:
                raise UsageError(f"{option}: applies only to real-header verification (add --include-dir DIR)")
    if arguments.cuda_path and not arguments.resource_dir:
        # CUDA's headers parse only through clang's CUDA wrapper headers, which live in a resource
        # directory; the libclang wheel ships none (see VerifyOptions).
        raise UsageError("--cuda-path: CUDA's headers need clang's resource headers; add --resource-dir DIR")
    named = [("--include-dir", directory) for directory in arguments.include_dir]
    named += [("--cuda-path", arguments.cuda_path)] if arguments.cuda_path else []
    named += [("--resource-dir", arguments.resource_dir)] if arguments.resource_dir else []
    for option, directory in named:
        try:
            is_directory = Path(directory).is_dir()
        except OSError as error:
            raise UsageError(f"{option} {directory}: cannot use ({error.strerror})") from None
        if not is_directory:
            raise UsageError(f"{option} {directory}: not a directory")
    architectures = named_architectures(arguments)  # each one libclang knows (`refuse_before_any_work`)
    if arguments.device_arch and not arguments.include_dir:
        raise UsageError("--device-arch: the device side is parsed against real headers; add --include-dir DIR")
    return VerifyOptions(
        device_architectures=tuple(dict.fromkeys(architectures)),
        device_declared=DECLARED in arguments.device_arch,
        include_dirs=tuple(Path(directory) for directory in arguments.include_dir),
        defines=tuple(arguments.define),
        clang_args=tuple(arguments.clang_arg),
        cuda_path=Path(arguments.cuda_path) if arguments.cuda_path else find_cuda_path(),
        resource_dir=Path(arguments.resource_dir) if arguments.resource_dir else None,
        strict=arguments.strict,
    )
