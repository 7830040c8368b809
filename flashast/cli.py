"""The command line: argparse front end, exit codes, one-line errors.

The run is one direction: load presets and plugins, generate, filter, verify every selected file,
and only then plan against and act on the output directory. A plugin-free write run with inputs
seen before takes one of two shortcuts (see `cache`): nothing to do when the directory's stamp
matches, or the files of the run record written without building the model. A `FlashastError` becomes one line,
`flashast: error: <culprit>: <problem>`, and its exit code; anything else is a flashast bug and
is shown with its traceback (exit 123).

Exit codes: 0 ok; 1 `--check`/`--diff` found differences; 2 user error; 3 the generated C++ failed
verification (nothing written); 123 internal error.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from flashast import __version__
from flashast.errors import FlashastError, UsageError, VerificationError

TYPE_CHECKING = False  # `typing` costs a no-op run more than everything else it does
if TYPE_CHECKING:
    from flashast.generated import GeneratedFile
    from flashast.kinds import Preset
    from flashast.registry import Registry
    from flashast.output import Outcome, Plan

# Modules a run needs are imported when it needs them: a no-op run (see `_unchanged_since_stamp`)
# imports none of the model, which is most of what such a run would otherwise cost.

EXIT_OK = 0
EXIT_DIFFERENCES = 1
EXIT_USAGE = 2
EXIT_VERIFICATION = 3
EXIT_INTERNAL = 123
DEFAULT_PRESET = "pytorch"

EPILOG = """\
exit codes:
  0    success (or --check/--diff: the directory is up to date)
  1    --check/--diff: the directory differs from what a run would write
  2    user error (bad option, filter, plugin or output directory); nothing written
  3    the generated C++ failed verification; nothing written
  123  internal error in flashast (a traceback follows; please report it)
"""


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, but its errors follow flashast's one-line format (usage first, as argparse does)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise UsageError(message)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse makes a formatter for every `add_argument`, and each one asks `shutil` for the
    terminal width: importing `shutil` (with its compression modules) was a tenth of a replayed run.
    The width is read the same way (COLUMNS, else the terminal, else 80), without `shutil`."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_terminal_columns() - 2)


def _terminal_columns() -> int:
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="flashast",
        description="Write flash-attention kernel instantiation files, verified with libclang before any write.",
        epilog=EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("-o", "--output", metavar="DIR", help="output directory (created, parents too)")
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"preset to generate (default: {DEFAULT_PRESET})")
    parser.add_argument("--version", action="version", version=f"flashast {__version__}")
    selection = parser.add_argument_group("selection")
    selection.add_argument("--only", action="append", default=[], metavar="AXIS=V[,V]|GLOB",
                           help="keep only matching files (repeatable; same axis or globs: any, across axes: all)")
    selection.add_argument("--exclude", action="append", default=[], metavar="AXIS=V[,V]|GLOB",
                           help="drop matching files (repeatable)")
    modes = parser.add_argument_group("modes (write nothing)")
    exclusive = modes.add_mutually_exclusive_group()
    exclusive.add_argument("--check", action="store_true", help="exit 1 if DIR differs from what a run would write")
    exclusive.add_argument("--diff", action="store_true", help="like --check, and print a unified diff on stdout")
    exclusive.add_argument("--list", action="store_true", help="print the path of every file a run would write")
    exclusive.add_argument("--list-kinds", action="store_true", help="print presets and kinds with their origin")
    writing = parser.add_argument_group("writing")
    writing.add_argument("--manifest", metavar="FILE.json", help="also write a JSON listing of the files, kinds, axes")
    writing.add_argument("--prune", action="store_true", help="delete stale files flashast wrote earlier")
    writing.add_argument("--force", action="store_true", help="overwrite files flashast did not write")
    writing.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    verification = parser.add_argument_group("verification")
    verification.add_argument("--no-verify", action="store_true", help="skip libclang verification")
    verification.add_argument("--include-dir", action="append", default=[], metavar="DIR",
                              help="verify against real headers in DIR (repeatable) instead of the contract")
    verification.add_argument("--define", action="append", default=[], metavar="NAME[=VALUE]",
                              help="define a macro for real-header verification (repeatable)")
    verification.add_argument("--clang-arg", action="append", default=[], metavar="ARG",
                              help="pass ARG to libclang (repeatable)")
    verification.add_argument("--cuda-path", metavar="DIR", help="CUDA toolkit for real-header verification")
    verification.add_argument("--resource-dir", metavar="DIR", help="clang resource directory (real headers)")
    verification.add_argument("--strict", action="store_true", help="warnings in real headers fail the run too")
    verification.add_argument("--timings", action="store_true",
                              help="print each file's verification time as it finishes (stderr)")
    plugins = parser.add_argument_group("plugins")
    plugins.add_argument("--plugin", action="append", default=[], metavar="MODULE|FILE.py",
                         help="load a plugin that registers kinds or presets (repeatable)")
    plugins.add_argument("--no-plugins", action="store_true",
                         help="do not load installed plugins (also FLASHAST_NO_PLUGINS=1)")
    return parser


def main(argv: Sequence[str] | None = None, registry: Registry | None = None) -> int:
    """Run the CLI in-process and return its exit code.

    The cyclic garbage collector is off for the run: a run builds tens of thousands of acyclic
    nodes, and each full collection walks all of them again (10,000 files: planning took 96 ms with
    it, 18 ms without). A cycle a plugin makes lives until the run ends, which is soon.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _main(argv, registry)
    finally:
        if collecting:
            gc.enable()


def _main(argv: Sequence[str] | None, registry: Registry | None) -> int:
    try:
        return _run(list(sys.argv[1:] if argv is None else argv), registry)
    except VerificationError as error:
        print(error.report, file=sys.stderr)
        print(f"flashast: error: {error}", file=sys.stderr)
        return EXIT_VERIFICATION
    except FlashastError as error:
        print(f"flashast: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("flashast: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `--list | head`: the reader stopped early, which is its choice, not a flashast error. Point
        # stdout at /dev/null so the interpreter's final flush does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_OK
    except Exception:
        import traceback

        traceback.print_exc()
        print("flashast: internal error: this is a bug in flashast, please report it", file=sys.stderr)
        return EXIT_INTERNAL


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


def _run(argv: list[str], registry: Registry | None) -> int:
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exit_:
        # `--help` and `--version` end argparse with SystemExit; `main` returns codes, it does not exit.
        return exit_.code if isinstance(exit_.code, int) else EXIT_OK
    stamp_eligible = registry is None and _stamp_eligible(arguments)
    # Only a run no plugin can shape has inputs the fingerprint sees: it may take a shortcut, and it
    # stamps its directory and keeps its record. Asked once, before plugins load: an entry point
    # can be added to a distribution's metadata in place (`setup.py develop`), which changes no
    # directory the fingerprint watches.
    fingerprint = _fingerprint(arguments) if stamp_eligible and _no_plugin_can_shape_this_run(arguments) else None
    if fingerprint is not None and (
        _unchanged_since_stamp(arguments, fingerprint) or _replay_recorded_run(arguments, fingerprint)
    ):
        return EXIT_OK
    from flashast.registry import Registry
    from flashast.output import check_directory, plan, refuse_conflicts, write
    from flashast.selection import select

    registry = registry or Registry()
    _load_plugins(registry, arguments)
    if arguments.list_kinds:
        _list_kinds(registry)
        return EXIT_OK
    if not arguments.output:
        parser.print_usage(sys.stderr)
        raise UsageError("-o/--output DIR is required")
    directory = Path(arguments.output)
    preset = registry.preset(arguments.preset)
    all_files = preset.generate()
    files = select(all_files, preset, arguments.only, arguments.exclude)
    preset_names = frozenset(generated.name for generated in all_files)
    _check_listing_path(arguments)
    if arguments.list:
        for generated in files:
            print(os.path.join(arguments.output, generated.name))
        _write_listing(arguments, files)
        return EXIT_OK
    if arguments.check or arguments.diff:
        check_directory(directory, writable=False)
        verified = _verify(arguments, files, directory)
        return _check(arguments, directory, files, preset, preset_names, verified)
    check_directory(directory)
    verified = _verify(arguments, files, directory)
    if arguments.manifest is not None:
        # The listing is written first, once nothing can refuse the run, so that a listing that
        # cannot be written leaves DIR as it was.
        refuse_conflicts(plan(directory, files, preset.name, preset_names, __version__, verified), arguments.force)
        _write_listing(arguments, files)
    result, outcome = write(
        directory, files, preset.name, preset_names, __version__, verified, arguments.prune, arguments.force,
        fingerprint,
    )
    if fingerprint is not None and (arguments.no_verify or all(key is not None for key in verified.values())):
        # Remembered for any directory; not a pass with warnings (every file's key is None then),
        # which the next run must show again.
        from flashast import cache

        cache.remember_run(cache.store_path(), fingerprint, preset.name, preset_names, files, verified)
    if not arguments.quiet:
        _report(result, outcome, preset.name, arguments.prune)
    return EXIT_OK


def _discovery_off(arguments: argparse.Namespace) -> bool:
    return bool(arguments.no_plugins) or os.environ.get("FLASHAST_NO_PLUGINS", "") not in ("", "0")


def _load_plugins(registry: Registry, arguments: argparse.Namespace) -> None:
    from flashast.plugins import load_entry_points, load_plugin

    if not _discovery_off(arguments):
        load_entry_points(registry)
    for spec in arguments.plugin:
        load_plugin(registry, spec)


def _stamp_eligible(arguments: argparse.Namespace) -> bool:
    """Whether this run's output can be a function of inputs `cache.input_fingerprint` sees: a plain
    write, verified against built-in contracts or not at all, with no `--plugin`. Installed plugins
    are ruled out in `_run` (`_no_plugin_can_shape_this_run`); the fingerprint covers the
    directories distributions live in (installing one invalidates the stamp) and whether discovery
    is on."""
    if not arguments.output or arguments.list_kinds or arguments.list or arguments.check or arguments.diff:
        return False
    if arguments.prune or arguments.force or arguments.manifest is not None or arguments.timings:
        return False
    # Real headers and `--clang-arg` bring in files the fingerprint does not read; `--define`,
    # `--cuda-path` and `--resource-dir` go with real headers (and are errors without them).
    verification_inputs = (arguments.include_dir, arguments.clang_arg, arguments.define, arguments.cuda_path,
                           arguments.resource_dir)
    return not arguments.plugin and not any(verification_inputs)


def _no_plugin_can_shape_this_run(arguments: argparse.Namespace) -> bool:
    """Discovery is off, or no installed distribution declares a `flashast.plugins` entry point."""
    from flashast import cache

    return _discovery_off(arguments) or not cache.plugins_installed()


def _fingerprint(arguments: argparse.Namespace) -> str:
    from flashast import cache

    options: dict[str, object] = {
        name: getattr(arguments, name) for name in ("preset", "only", "exclude", "no_verify", "strict")
    }
    options["plugin_discovery"] = not _discovery_off(arguments)
    if not arguments.no_verify:
        options["libclang"] = cache.libclang_identity()
        options["environment"] = {name: os.environ.get(name) for name in cache.CLANG_ENVIRONMENT}
    return cache.input_fingerprint(options)


def _unchanged_since_stamp(arguments: argparse.Namespace, fingerprint: str) -> bool:
    """The no-op fast path: the last run had these inputs and its files still hold its bytes."""
    from flashast import cache

    try:
        with open(os.path.join(arguments.output, ".flashast.json")) as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):
        return False
    count = cache.unchanged_since_stamp(Path(arguments.output), manifest, fingerprint)
    if count is None:
        return False
    if not arguments.quiet:
        if arguments.no_verify:
            print("flashast: verification skipped (--no-verify)", file=sys.stderr)
        print(f"flashast: 0 written, {count} unchanged, 0 stale ({manifest.get('preset')})", file=sys.stderr)
    return True


def _replay_recorded_run(arguments: argparse.Namespace, fingerprint: str) -> bool:
    """A new (or changed) directory, for inputs an earlier run already generated and verified:
    write the recorded files without building the model or loading libclang (see `cache`)."""
    from flashast import cache

    record = cache.load_run(cache.store_path(), fingerprint)
    if record is None:
        return False
    from flashast.output import write

    if arguments.no_verify and not arguments.quiet:
        print("flashast: verification skipped (--no-verify)", file=sys.stderr)
    result, outcome = write(
        Path(arguments.output), record.files, record.preset, record.preset_names, __version__, record.verified,
        fingerprint=fingerprint,
    )
    if not arguments.quiet:
        _report(result, outcome, record.preset, prune=False)
    return True


def _verify(arguments: argparse.Namespace, files: list[GeneratedFile], directory: Path) -> dict[str, str | None]:
    """Verify every selected file; returns the key each was verified under (None when unverified, or
    verified against real headers, whose verdict is never reused). Files whose key an earlier run
    verified (this directory's manifest, then the user's cache) are not parsed again."""
    if arguments.no_verify:
        if not arguments.quiet:
            print("flashast: verification skipped (--no-verify)", file=sys.stderr)
        return {generated.name: None for generated in files}
    from flashast.verify import VerifyOptions, find_cuda_path, verification_keys, verify

    if not arguments.include_dir:
        for option, value in (("--define", arguments.define), ("--cuda-path", arguments.cuda_path),
                              ("--resource-dir", arguments.resource_dir)):
            if value:
                raise UsageError(f"{option}: applies only to real-header verification (add --include-dir DIR)")
    if arguments.cuda_path and not arguments.resource_dir:
        # CUDA's headers parse only through clang's CUDA wrapper headers, which live in a resource
        # directory; the libclang wheel ships none (see VerifyOptions).
        raise UsageError("--cuda-path: CUDA's headers need clang's resource headers; add --resource-dir DIR")
    options = VerifyOptions(
        include_dirs=tuple(Path(directory) for directory in arguments.include_dir),
        defines=tuple(arguments.define),
        clang_args=tuple(arguments.clang_arg),
        cuda_path=Path(arguments.cuda_path) if arguments.cuda_path else find_cuda_path(),
        resource_dir=Path(arguments.resource_dir) if arguments.resource_dir else None,
        strict=arguments.strict,
    )
    named_directories = [("--include-dir", directory) for directory in options.include_dirs]
    named_directories += [("--cuda-path", options.cuda_path)] if arguments.cuda_path else []
    named_directories += [("--resource-dir", options.resource_dir)] if options.resource_dir else []
    for option, directory in named_directories:
        if directory is not None and not directory.is_dir():
            raise UsageError(f"{option} {directory}: not a directory")
    keys = verification_keys(files, options)
    if keys is None:
        report = verify(files, options, _print_timing if arguments.timings else None)
        verified: dict[str, str | None] = {generated.name: None for generated in files}
    else:
        from flashast import cache
        from flashast.output import read_manifest

        manifest = read_manifest(directory) if directory.is_dir() else None
        known = {entry.get("verified") for entry in manifest["files"].values()} if manifest else set()
        store = cache.store_path()
        if not set(keys.values()) <= known:
            known |= cache.load_store(store)
        done = {name for name, key in keys.items() if key in known}
        report = verify(files, options, _print_timing if arguments.timings else None, done)
        if report.warnings:
            # A pass with warnings is not remembered: the next run shows them again.
            verified = {generated.name: None for generated in files}
        else:
            cache.remember(store, sorted({key for name, key in keys.items() if name not in done}))
            verified = dict(keys)
    for warning in report.warnings:
        print(warning, file=sys.stderr)
    return verified


def _print_timing(generated: GeneratedFile, seconds: float, failed: bool) -> None:
    """`--timings`: one line per file as soon as it is verified, so a slow real-header run shows progress."""
    outcome = "failed" if failed else "verified"
    print(f"flashast: {outcome} {generated.name} in {seconds:.1f} s", file=sys.stderr, flush=True)


def _check(
    arguments: argparse.Namespace,
    directory: Path,
    files: list[GeneratedFile],
    preset: Preset,
    preset_names: frozenset[str],
    verified: dict[str, str | None],
) -> int:
    from flashast.output import plan, unified_diff

    result = plan(directory, files, preset.name, preset_names, __version__, verified)
    for generated in result.new:
        print(f"flashast: missing {directory / generated.name}", file=sys.stderr)
    for generated in result.changed:
        print(f"flashast: changed {directory / generated.name}", file=sys.stderr)
    for generated in result.conflicts:
        print(f"flashast: changed {directory / generated.name} (not written by flashast)", file=sys.stderr)
    for name in result.stale:
        print(f"flashast: stale {directory / name}", file=sys.stderr)
    if arguments.diff:
        sys.stdout.write(unified_diff(result))
    if not arguments.quiet:
        state = "differs" if result.differs else "up to date"
        print(f"flashast: {directory} {state} ({_counts(result)}, {preset.name})", file=sys.stderr)
    return EXIT_DIFFERENCES if result.differs else EXIT_OK


def _counts(result: Plan) -> str:
    return (
        f"{len(result.new)} missing, {len(result.changed) + len(result.conflicts)} changed,"
        f" {len(result.unchanged) + len(result.adopted)} unchanged, {len(result.stale)} stale"
    )


def _report(result: Plan, outcome: Outcome, preset: str, prune: bool) -> None:
    written = len(outcome.written)
    pruned = outcome.pruned
    stale = [name for name in result.stale if name not in pruned]
    for name in stale:
        if name in outcome.kept:
            why = "edited since flashast wrote it, so kept; --prune --force deletes it"
        else:
            why = "no longer generated; --prune deletes it"
        print(f"flashast: stale {result.directory / name} ({why})", file=sys.stderr)
    unchanged = len(result.unchanged) + len(result.adopted)
    pruned_text = f", {len(pruned)} pruned" if prune else ""
    print(
        f"flashast: {written} written, {unchanged} unchanged, {len(stale)} stale{pruned_text} ({preset})",
        file=sys.stderr,
    )


def _write_listing(arguments: argparse.Namespace, files: list[GeneratedFile]) -> None:
    """`--manifest FILE.json`: the files with kind and axes, for CMake or setuptools."""
    if arguments.manifest is None:
        return
    listing = {
        "files": [
            {
                "aggregator": generated.aggregator,
                "axes": generated.axis_values,
                "kind": generated.kind,
                "name": generated.name,
                "path": os.path.join(arguments.output, generated.name),
            }
            for generated in files
        ],
        "preset": files[0].preset if files else arguments.preset,
    }
    text = json.dumps(listing, indent=1, sort_keys=True) + "\n"
    path = Path(arguments.manifest)
    try:
        if path.exists() and path.read_text() == text:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--manifest {path}: cannot write ({error.strerror})") from None
    from flashast.output import write_atomically

    try:
        write_atomically(path, text)
    except UsageError as error:
        raise UsageError(f"--manifest {error}") from None


def _check_listing_path(arguments: argparse.Namespace) -> None:
    """Refuse a `--manifest` path that cannot be written before anything is, so DIR stays as it was."""
    if arguments.manifest is None:
        return
    if not arguments.manifest:
        raise UsageError("--manifest '': needs a file name")
    path = Path(arguments.manifest)
    if path.is_symlink() or (path.exists() and not path.is_file() and not path.is_dir()):
        raise UsageError(f"--manifest {path}: exists and is not a regular file")
    if path.is_dir():
        raise UsageError(f"--manifest {path}: is a directory")
    from flashast.output import check_directory

    try:
        check_directory(path.parent)
    except UsageError as error:
        raise UsageError(f"--manifest {error}") from None


def _list_kinds(registry: Registry) -> None:
    for name in registry.preset_names():
        preset = registry.preset(name)
        total = sum(kind.count() for kind in preset.kinds)
        print(f"{name}  ({total} files, {registry.origin_of(name).description}) {preset.description}".rstrip())
        for kind in preset.kinds:
            origin = registry.origin_of(name, kind.name).description
            role = ", aggregator" if kind.aggregator else ""
            # How many configurations the kind's constraint skips: `Kind.skipped()` says why.
            skipped = len(kind.skipped())
            skipped_text = f", {skipped} skipped" if skipped else ""
            print(f"  {kind.name}  ({kind.count()} files{skipped_text}{role}, {origin}) {kind.description}".rstrip())
