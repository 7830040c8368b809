"""The command line: argparse front end, printing, exit codes, one-line errors.

`cli` parses the arguments, turns them into `pipeline.Options` (`command_options`), runs the pipeline,
and hands its `Result` to `report`, which prints it and returns the exit code. A `FlashastError`
becomes one line, `flashast: error: <culprit>: <problem>` (a verification's findings before it), and
its exit code; anything else is a flashast bug and is shown with its traceback (exit 123).

Exit codes (`EPILOG`, which `--help` prints): 0 ok; 1 `--check`/`--diff` found differences; 2 user
error; 3 the generated C++ failed verification (nothing written); 123 internal error; 130 and 143
interrupted and terminated.

Two more forms share the parser: `--cmake-dir` prints where `flashast-config.cmake` is (for
`find_package(flashast CONFIG)`), and the `cost` command (`flashast cost LOG -o DIR`) reports a build's
compile time per generated file and axis value (`flashast.cost`).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import NoReturn

from flashast.command_options import (
    DECLARED,
    architectures_without_files,
    display_from,
    named_architectures,
    options_from,
    refuse_before_any_work,
)
from flashast.compat import deprecations_reported
from flashast.cost import aggregator_members, measure, render_json, render_table
from flashast.errors import (
    EXIT_DIFFERENCES,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VERIFICATION,
    FlashastError,
    PluginError,
    Terminated,
    UsageError,
    VerificationError,
    signals_raise,
)
from flashast.generated import CompilePolicy
from flashast.ninja_log import read_ninja_log
from flashast.ownership import bare_preset
from flashast.pipeline import DEFAULT_PRESET, Options, Result, run
from flashast.plugins import load_plugins
from flashast.process import checked_output, point_at_devnull, scratch_folder
from flashast.registry import BUILTIN_PRESETS, BUILTIN_REVISIONS, Registry
from flashast.report import ProgressDisplay, list_kinds, report, report_error, report_start
from flashast.version import __version__

# Exit codes by name (`flashast.errors` defines them), as `cli` has always exported them.
__all__ = ["EXIT_DIFFERENCES", "EXIT_INTERNAL", "EXIT_OK", "EXIT_USAGE", "EXIT_VERIFICATION", "build_parser", "main"]

EPILOG = """\
build cost:
  flashast cost BUILD/.ninja_log -o DIR [--preset NAME] [--json] [--top N]
       compile time per generated file, kind and axis value (flashast cost --help)

exit codes:
  0    success (or --check/--diff: the directory is up to date)
  1    --check/--diff: the directory differs from what a run would write (or does not exist)
  2    user error (bad option, filter, plugin or output directory, a directory another preset
       owns); nothing written
  3    the generated C++ failed verification, --conformance found a contract the headers
       contradict, or --dispatcher found a call no selected file provides; nothing written
  123  internal error in flashast (a traceback follows; please report it)
  130  interrupted (Ctrl-C)
  143  terminated (SIGTERM)
"""


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, but its errors follow flashast's one-line format (usage first, as argparse does)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise UsageError(message)

# The directory of `flashast-config.cmake`, shipped inside the package.
CMAKE_DIR = Path(__file__).resolve().parent / "cmake"


class _PrintCMakeDir(argparse.Action):
    """`--cmake-dir`: print the directory and stop, as `--version` does (like `pybind11 --cmakedir`)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(CMAKE_DIR)
        parser.exit()


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of jobs")
    return value


def _shard(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    if not (index.isascii() and index.isdigit() and count.isascii() and count.isdigit()
            and 1 <= int(index) <= int(count)):
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N with 1 <= K <= N (shard K of N)")
    return int(index), int(count)


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="flashast",
        description="Write flash-attention kernel instantiation files, verified with libclang before any write.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-o", "--output", metavar="DIR", help="output directory (created, parents too); required,"
                        " except with --list-kinds, --conformance, --version and --cmake-dir")
    presets = ", ".join(dict.fromkeys(bare_preset(preset.name) for preset in BUILTIN_PRESETS))
    revisions = ", ".join(preset.name_with_revision for preset in BUILTIN_REVISIONS)
    parser.add_argument("--preset", default=DEFAULT_PRESET, metavar="NAME", help=f"preset to generate: {presets},"
                        f" or one a plugin registers (default: {DEFAULT_PRESET}; --list-kinds lists them);"
                        f" NAME@REVISION is another upstream revision of one: {revisions}")
    parser.add_argument("--version", action="version", version=f"flashast {__version__}")
    parser.add_argument("--cmake-dir", action=_PrintCMakeDir,
                        help="print the directory of flashast-config.cmake (for -Dflashast_DIR=...) and exit")
    selection = parser.add_argument_group("selection")
    selection.add_argument("--only", action="append", default=[], metavar="AXIS=V[,V]|GLOB",
                           help="keep only matching files (repeatable; same axis or globs: any, across axes: all)")
    selection.add_argument("--exclude", action="append", default=[], metavar="AXIS=V[,V]|GLOB",
                           help="drop matching files (repeatable)")
    selection.add_argument("--compile", choices=[policy.value for policy in CompilePolicy], help="what --list and"
                           " --manifest say a build compiles: an aggregator or its members (default: as upstream)")
    modes = parser.add_argument_group("modes (write nothing)")
    exclusive = modes.add_mutually_exclusive_group()
    exclusive.add_argument("--check", action="store_true", help="exit 1 if DIR differs from what a run would write")
    exclusive.add_argument("--diff", action="store_true", help="like --check, and print a unified diff on stdout")
    exclusive.add_argument("--list", nargs="?", const="compiled", choices=("compiled", "written"), help="print the"
                           " path of every file a build compiles, or (--list=written) of every file a run writes")
    exclusive.add_argument("--conformance", action="store_true",
                           help="compare the kinds' contracts with the real headers (--include-dir); write nothing")
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
    verification.add_argument("--jobs", "-j", type=_positive, default=None, metavar="N",
                              help="real-header parses in parallel (default: the number of cores)")
    verification.add_argument("--dispatcher", action="append", default=[], metavar="FILE",
                              help="check that what FILE calls is what the selected files provide (repeatable;"
                              " real headers)")
    verification.add_argument("--device-arch", action="append", nargs="?", const=DECLARED, default=[],
                              metavar="ARCH", help="also parse each file for the device (sm_80, sm_90a, ...;"
                              " repeatable; without a value: the architectures each kind declares)")
    verification.add_argument("--header-warnings", action="store_true",
                              help="list each warning inside headers (by default they are counted in one line)")
    verification.add_argument("--timings", action="store_true",
                              help="print each file's verification time as it finishes (stderr)")
    verification.add_argument("--shard", type=_shard, default=None, metavar="K/N",
                              help="verify only the K-th of N parts of the selection into the verdict store,"
                              " writing nothing to DIR (a CI matrix; the final run writes)")
    plugins = parser.add_argument_group("plugins")
    plugins.add_argument("--plugin", action="append", default=[], metavar="MODULE|FILE.py",
                         help="load a plugin that registers kinds or presets (repeatable)")
    plugins.add_argument("--no-plugins", action="store_true",
                         help="do not load installed plugins (also FLASHAST_NO_PLUGINS=1)")
    # `cost` is a command of its own; the epilog's "build cost" section introduces it.
    commands = parser.add_subparsers(dest="command", help=argparse.SUPPRESS)
    _add_cost_command(commands)
    return parser


def main(argv: Sequence[str] | None = None, registry: Registry | None = None) -> int:
    """Run the CLI in-process and return its exit code."""
    try:
        return _main(argv, registry)
    except (KeyboardInterrupt, Terminated) as error:
        # A signal while the run's streams and handlers are being put back: the run is over, the
        # signal still ends it as asked.
        return _ended_by_signal(error)


def _ended_by_signal(error: KeyboardInterrupt | Terminated) -> int:
    """Say that a signal ended the run (SIGINT: interrupted, 130; SIGTERM: terminated, 143)."""
    terminated = isinstance(error, Terminated)
    with contextlib.suppress(OSError, ValueError):  # a standard error that is gone loses the line only
        print(f"flashast: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
    return 143 if terminated else 130


def exit_with(code: int) -> NoReturn:
    """End the process with `code`. A signal from now on comes after the run and its report: it is
    held back (and dropped at exit) rather than killing the process, which would lose the exit code."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(code)


def _main(argv: Sequence[str] | None, registry: Registry | None) -> int:
    # Plugins' uses of deprecated API are printed once each, whatever the run's outcome.
    with signals_raise(), checked_output() as output, deprecations_reported():
        try:
            code = _run(list(sys.argv[1:] if argv is None else argv), registry)
            output.flush()
            if output.failure is not None:  # a write argparse swallowed (`--version > /dev/full`)
                raise output.failure
            return code
        except FlashastError as error:
            return report_error(error)
        except (KeyboardInterrupt, Terminated) as error:
            return _ended_by_signal(error)
        except BrokenPipeError:
            # `--list | head`: the reader stopped early, which is its choice, not a flashast error. Point
            # stdout at /dev/null so the interpreter's final flush does not complain again.
            point_at_devnull(1)
            return EXIT_OK
        except Exception:
            traceback.print_exc()
            print("flashast: internal error: this is a bug in flashast, please report it", file=sys.stderr)
            return EXIT_INTERNAL


def run_console_script() -> None:
    """Console-script entry point: the same program as `python -m flashast`, which searches the current
    directory for modules (`--plugin my_kinds`). A console script's `sys.path` starts at its own bin
    directory instead, so the current directory is put first here too (not under `-P`/`PYTHONSAFEPATH`,
    which keep `python -m` from adding it as well)."""
    if not getattr(sys.flags, "safe_path", False):  # Python 3.11's -P; before it, always searched
        with contextlib.suppress(OSError):  # a current directory deleted under us: nothing to search
            sys.path.insert(0, os.getcwd())
    exit_with(main())


def _run(argv: list[str], registry: Registry | None) -> int:
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exit_:
        # `--help` and `--version` end argparse with SystemExit; `main` returns codes, it does not exit.
        return exit_.code if isinstance(exit_.code, int) else EXIT_OK
    if arguments.command == "cost":
        return _cost(arguments, registry)
    registry = registry or Registry()
    refuse_before_any_work(arguments)
    load_plugins(registry, arguments.plugin, arguments.no_plugins)
    if arguments.list_kinds:
        with contextlib.redirect_stdout(sys.stderr):
            # Plugin code (a constraint) runs when a kind first counts its files; its prints belong
            # on stderr. A kind enumerates its configurations once, so the listing runs none again.
            for name in registry.preset_choices():  # every revision, as the listing shows them
                _ = [kind.count() for kind in registry.preset(name).kinds]
        list_kinds(registry)
        return EXIT_OK
    if not arguments.output and not arguments.conformance:
        parser.print_usage(sys.stderr)
        raise UsageError("-o/--output DIR is required")
    _refuse_unknown_preset(registry, arguments)
    options, display = options_from(arguments), display_from(arguments)
    report_start(options, display)
    try:
        result = _run_pipeline(registry, options, arguments)
    except VerificationError as error:
        return report_error(error, display.header_warnings)
    return report(result, options, display)


def _run_pipeline(registry: Registry, options: Options, arguments: argparse.Namespace) -> Result:
    """`pipeline.run`, with what code inside it prints (plugins, libclang) on stderr, a failing
    kind's error naming the plugin that registered it, and the progress line ended before any report."""
    try:
        with contextlib.redirect_stdout(sys.stderr), scratch_folder() if arguments.include_dir else nullcontext():
            named = named_architectures(arguments)
            for warning in architectures_without_files(registry, options, named, arguments.strict):
                print(f"flashast: warning: {warning}", file=sys.stderr)
            return run(registry, options)
    except PluginError as error:
        if error.kind is None:
            raise
        origin = registry.origin_of(options.preset, error.kind).description
        raise PluginError(f"plugin {origin}: {error}") from None
    finally:
        if isinstance(options.progress, ProgressDisplay):
            options.progress.end()


def _add_cost_command(commands: argparse._SubParsersAction[_ArgumentParser]) -> None:
    """`flashast cost LOG -o DIR`: a build's compile time per generated file, kind and axis value."""
    cost = commands.add_parser(
        "cost",
        help="compile time per generated file, kind and axis value (flashast cost --help)",
        description="Compile time per generated file, kind and axis value, from ninja's log of the build"
        " and the manifest flashast keeps in DIR.",
        epilog="exit codes:\n  0    the report was printed\n  2    user error (not a ninja log, no manifest in"
        " DIR, no compile step of DIR's files)\n  123  internal error in flashast\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cost.add_argument("log", metavar="BUILD/.ninja_log", help="ninja's log of the build (format v5 to v7)")
    cost.add_argument("-o", "--output", metavar="DIR", required=True,
                      help="the directory flashast wrote the files to (its .flashast.json names them)")
    cost.add_argument("--preset", metavar="NAME", help="only the files of preset NAME (default: every file of DIR)")
    cost.add_argument("--json", action="store_true", help="print the whole report as JSON, for tools")
    cost.add_argument("--top", type=_positive_count, default=10, metavar="N",
                      help="rows of slowest files and of --exclude savings (default: 10)")
    cost.add_argument("--plugin", action="append", default=[], metavar="MODULE|FILE.py",
                      help="load a plugin (repeatable): its aggregators' members come from its kinds")
    cost.add_argument("--no-plugins", action="store_true", help="do not load installed plugins")


def _positive_count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of rows")
    return int(text)


def _cost(arguments: argparse.Namespace, registry: Registry | None) -> int:
    """`flashast cost`: join the log with DIR's manifest and print the report on stdout."""
    log = read_ninja_log(Path(arguments.log))
    loaded: list[Registry] = []

    @functools.cache  # one generation of each preset, however many of its aggregators were compiled
    def members(preset: str) -> dict[str, tuple[str, ...]]:
        # Only a log holding an aggregator's step needs the model (and so the plugins).
        if not loaded:
            loaded.append(registry or Registry())
            load_plugins(loaded[0], arguments.plugin, arguments.no_plugins)
        with contextlib.redirect_stdout(sys.stderr):
            return aggregator_members(loaded[0], preset)

    cost = measure(log, Path(arguments.output), arguments.preset, members)
    sys.stdout.write(render_json(cost) if arguments.json else render_table(cost, arguments.top))
    return EXIT_OK


def _refuse_unknown_preset(registry: Registry, arguments: argparse.Namespace) -> None:
    """An unknown `--preset` names the known ones, and, since a preset that only a plugin registers is
    the usual cause, how a plugin's presets become known."""
    if bare_preset(arguments.preset) in registry.preset_names():
        return
    off = arguments.no_plugins or os.environ.get("FLASHAST_NO_PLUGINS", "") not in ("", "0")
    if off:
        hint = "installed plugins are off (--no-plugins or FLASHAST_NO_PLUGINS); --plugin MODULE still loads one"
    else:
        hint = "a plugin's preset needs --plugin MODULE|FILE.py or its plugin package installed"
    try:
        registry.preset(arguments.preset)
    except FlashastError as error:
        raise PluginError(f"{error}; {hint}") from None
