"""Verification with libclang: the only package that imports `clang.cindex`.

Every generated file gets its own verdict before anything is written:
1. model-level checks (`checks`): a definition repeated in two files, a `--define` that would skip
   guarded code;
2. verdicts reused from the store (`keys`): a file whose exact inputs, and every file its earlier
   parse read, are unchanged is not parsed again;
3. parses (`parsing`): in contract mode, batches first (`batching`), then each remaining file on its
   own; in real-header mode, groups sharing a precompiled preamble;
4. records (`diagnostics`), rendered once: any error, or any warning in a generated file, fails
   the run with `VerificationError`;
5. with `--device-arch`, every file that passed on the host side parsed again for the device, per
   architecture (`device_targets`), where kernel bodies are instantiated, whatever other files did:
   one run reports both levels' errors, and the summary says how many files failed at which;
6. with `--conformance` (`conformance`): each kind's contract compared with the real declarations
   of the same names, in one parse of the real headers, so contract mode stays honest;
7. with `--dispatcher` (`dispatch`): what the dispatchers call (read by `indexer`, with libclang's
   indexing API where the calls sit inside templates) against what the selected files provide, read
   from the model (`provided`): a missing specialization fails the run, a file nothing calls is a
   warning (an error with `--strict`).

Where to look: **how a parse is set up** is `setup` (the one `ParseSetup` per side: command line,
search directories, stand-ins, the digest every key shares), `toolchain`, `command_line`, `sources`
(what a parse is served, and how what it read is named) and `preamble` (a file's prelude and
preamble, from its model); **what is remembered** is `keys` (the one verdict store) and `shards`
(how a CI matrix splits the work); **parsing and judging** is `parsing`, `parallel`, `batching`,
`reading`, `diagnostics`, `checks` and `conformance`; **who calls what** is the `dispatch` package
(`dispatch`, `provided`, `indexer`, `libclang_ctypes`, `spans`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from flashast.errors import VerificationError
from flashast.generated import GeneratedFile
from flashast.verify.batching import batch_limit, plan_batches
from flashast.verify.checks import Clash, find_clashes, refuse_guard_defines
from flashast.verify.diagnostics import Diagnostic, Location, Note, Report
from flashast.verify.keys import Reading, Verdict, VerdictStore
from flashast.verify.parallel import verify_batches_in_parallel, verify_in_parallel
from flashast.verify.parsing import Parsed, Parser, Progress
from flashast.verify.setup import parse_setup
from flashast.verify.sources import Sources, batch_member_readings
from flashast.verify.toolchain import (
    COMPATIBLE_RESOURCE_MAJORS,
    CONTRACT_MODE,
    VIRTUAL_SOURCE,
    VerifyOptions,
    clang_arguments,
    device_parse_bound,
    find_cuda_path,
    find_resource_dirs,
    load_cindex,
    resource_dir_hint,
)

__all__ = [
    "COMPATIBLE_RESOURCE_MAJORS",
    "CONTRACT_MODE",
    "Diagnostic",
    "Location",
    "Note",
    "Parsed",
    "Progress",
    "Report",
    "VerdictStore",
    "VerifyOptions",
    "clang_arguments",
    "device_targets",
    "find_cuda_path",
    "find_resource_dirs",
    "load_cindex",
    "parse_unit",
    "verify",
]


def verify(
    files: Sequence[GeneratedFile],
    options: VerifyOptions = CONTRACT_MODE,
    store: VerdictStore | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
) -> Report:
    """Verify every file; return the report, or raise `VerificationError` carrying it.

    `store` (default: none) holds the verdicts of earlier runs; a file whose key it holds is not
    parsed again, and every file that passes is remembered in it. When no file needs a parse,
    libclang is not even loaded. `jobs`: real-header parses run on this many threads. With
    `options.device_architectures` or `device_declared`, every file that passes on the host side is
    then parsed for the device, even when other files failed, per architecture (`device_targets`),
    at most as many at once as memory holds.
    """
    refuse_guard_defines(files, options)
    store = store or VerdictStore(None)
    report = Report(files=len(files))
    clashes = find_clashes(files, options.effective_defines)
    passed = _verify_side(files, files, options, store, progress, jobs, report, clashes)
    # A file that failed on the host side is not parsed for the device (its device errors would
    # mostly repeat the host's); every other file is, whatever the others did, so one run reports
    # every level's errors.
    host_passed = passed - report.failing_files
    levels = [f"{len(files) - len(host_passed)} on the host side"] if len(host_passed) < len(files) else []
    devices = device_targets(files, options) if options.real_headers else {}
    for architecture, targets in devices.items():
        targets = [generated for generated in targets if generated.name in host_passed]
        if not targets:
            continue
        device = dataclasses.replace(options, device_arch=architecture)
        side = Report(files=len(targets))
        told = None if progress is None else _on_device(progress, architecture)
        device_passed = _verify_side(files, targets, device, store, told, device_parse_bound(jobs), side, [])
        report.parsed += side.parsed
        report.reused += side.reused
        remark = f"(device side, --cuda-gpu-arch={architecture})"
        for diagnostic in side.diagnostics:
            report.add(dataclasses.replace(diagnostic, remarks=(*diagnostic.remarks, remark)))
        device_failed = len(targets) - len(device_passed - side.failing_files)
        if device_failed:
            levels.append(f"{device_failed} on the device side for {architecture}")
    if report.failed:
        hint = ""
        if options.real_headers and options.resource_dir is None and "file not found" in report.text():
            hint = resource_dir_hint()
        raise VerificationError(report.summary(levels if devices else ()), report, hint=hint)
    return report


def device_targets(files: Sequence[GeneratedFile], options: VerifyOptions) -> dict[str, list[GeneratedFile]]:
    """Which files each device-side architecture parses: a file whose kind declares architectures
    only for those (its own guards would skip the rest), any other for every architecture named."""
    targets: dict[str, list[GeneratedFile]] = {}
    for generated in files:
        wanted = set(generated.architectures) if options.device_declared else set()
        named = options.device_architectures
        wanted |= {name for name in named if not generated.architectures or name in generated.architectures}
        for architecture in sorted(wanted):
            targets.setdefault(architecture, []).append(generated)
    return targets


def _verify_side(
    files: Sequence[GeneratedFile], targets: Sequence[GeneratedFile], options: VerifyOptions, store: VerdictStore,
    progress: Progress | None, jobs: int, report: Report, clashes: list[Clash],
) -> set[str]:
    """One side's verdicts (the host, or the device for one architecture) of `targets` into `report`;
    `files` is the whole run (aggregators read their members). Returns the names of the files whose
    parse was clean or whose verdict was reused (a clash found later may still fail one of them)."""
    # Naming what an earlier parse read needs no libclang: the sources are named the same way.
    lookup = Sources(files, parse_setup(options), source_root=VIRTUAL_SOURCE)
    keys = {generated.name: lookup.key(generated) for generated in targets}
    to_parse = []
    reused = set()
    for generated in targets:
        if store.lookup(keys[generated.name], lookup.current_digest(generated)) is not None:
            report.reused += 1
            reused.add(generated.name)
        else:
            to_parse.append(generated)
    if not to_parse and not clashes:
        return reused
    cindex = load_cindex()
    parser = Parser(cindex, files, options)
    passed: dict[str, list[Reading]] = {}
    try:
        if options.real_headers or options.clang_args:
            parser.check_command_line()  # only user-supplied options can be ones clang rejects
        if options.real_headers:
            _verify_real_headers(cindex, files, to_parse, options, report, passed, progress, jobs)
        else:
            _verify_contract_mode(parser, files, to_parse, report, passed, progress)
        pairs: dict[tuple[str, str], list[Clash]] = {}
        for clash in clashes:
            pairs.setdefault((clash.first.name, clash.second.name), []).append(clash)
        for pair in pairs.values():
            parser.locate_clashes(pair, report)
    finally:
        parser.close()
    # Each file's verdict is its own: a clean parse is remembered even when another file failed.
    store.remember(Verdict(keys[name], tuple(lookup.uncovered(lookup.files[name], readings)))
                   for name, readings in passed.items())
    return reused | set(passed)


def _verify_real_headers(
    cindex: ModuleType, files: Sequence[GeneratedFile], to_parse: list[GeneratedFile], options: VerifyOptions,
    report: Report, passed: dict[str, list[Reading]], progress: Progress | None, jobs: int,
) -> None:
    """Batches first, as in contract mode but smaller (`batch_limit`): files that share a prelude
    share most of what a real-header parse costs (FA2's headers and the templates their kernels
    instantiate), so one parse of several costs little more than one of them. Every other file,
    and each file of a batch that was not clean, is parsed on its own over its group's preamble."""
    run = {generated.name: generated for generated in files}
    batches = plan_batches(to_parse, run, most=batch_limit(len(to_parse), jobs, options.device_arch is not None))
    if batches:
        passed.update(verify_batches_in_parallel(cindex, files, batches, options, report, progress, jobs,
                                                 total=len(to_parse)))
    rest = [generated for generated in to_parse if generated.name not in passed]
    if rest:
        passed.update(verify_in_parallel(cindex, files, rest, options, report, progress, jobs,
                                         done=len(to_parse) - len(rest), total=len(to_parse)))


def _verify_contract_mode(
    parser: Parser, files: Sequence[GeneratedFile], to_parse: list[GeneratedFile], report: Report,
    passed: dict[str, list[Reading]], progress: Progress | None,
) -> None:
    """Batches first: one that parses clean passes all its files (see `batching`). Every other file
    is parsed on its own, in the order of `files`, so problems are reported as a parse of that file
    alone finds them."""
    run = {generated.name: generated for generated in files}
    for batch in plan_batches(to_parse, run):
        started = time.perf_counter()
        readings = parser.verify_batch(batch)
        if readings is not None:
            alone = batch_member_readings(readings)  # one list for the batch: the files read the same headers
            for generated in batch.files:
                passed[generated.name] = alone
                report.parsed += 1
            _tell(progress, batch.files, report, time.perf_counter() - started)
    for generated in to_parse:
        if generated.name not in passed:
            started = time.perf_counter()
            readings = parser.verify_file(generated, report)
            if readings is not None:
                passed[generated.name] = readings
            _tell(progress, [generated], report, time.perf_counter() - started)


def _on_device(progress: Progress, architecture: str) -> Progress:
    """`progress`, told which architecture a device-side parse was for."""
    return lambda parsed: progress(dataclasses.replace(parsed, architecture=architecture))


def _tell(progress: Progress | None, files: Sequence[GeneratedFile], report: Report, seconds: float) -> None:
    if progress is not None:
        failing = report.failing_files
        for generated in files:
            progress(Parsed(generated, generated.name in failing, seconds / len(files), report.parsed,
                            report.files - report.reused))


def parse_unit(generated: GeneratedFile, options: VerifyOptions = CONTRACT_MODE,
               siblings: Sequence[GeneratedFile] = ()) -> Any:
    """The libclang translation unit contract verification builds for one file (`siblings`: the
    other files of the run, which an aggregator includes), for tests and tools that read cursors."""
    parser = Parser(load_cindex(), [generated, *siblings], options)
    try:
        return parser.parse(generated)
    finally:
        parser.close()
