"""The run, start to end, as a function of its options: the one place the sequence is written down.

    generate -> select -> verify -> plan -> act (write | check | diff | list)

Nothing touches the output directory until every selected file has been generated and verified, and
every refusal (a bad filter, a foreign file in the way, a listing path inside DIR) comes before the
first change, so a run that fails anywhere leaves DIR as it was. A run builds its model every time;
what it remembers between runs is which exact inputs libclang already passed (`verify.keys`).
"""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass
from pathlib import Path

from flashast.errors import EXIT_DIFFERENCES, EXIT_OK, UsageError, VerificationError, signals_held
from flashast.generated import CompilePolicy, GeneratedFile, compiled_files
from flashast.kinds import Preset
from flashast.manifest import preset_provenance
from flashast.output import (
    Outcome,
    Plan,
    check_directory,
    plan,
    refuse_conflicts,
    write,
    write_atomically,
)
from flashast.ownership import refuse_other_owner
from flashast.registry import Registry
from flashast.selection import parse_filter, select
from flashast.verify import CONTRACT_MODE, Parsed, Progress, Report, VerdictStore, VerifyOptions, verify
from flashast.verify.conformance import check_conformance
from flashast.verify.dispatch import DispatchReport, check_dispatch
from flashast.verify.shards import shard_of
from flashast.version import __version__

DEFAULT_PRESET = "pytorch"


class Action(enum.Enum):
    """What a run does with the directory once every file is verified."""

    WRITE = "write"
    CHECK = "check"  # compare only; a difference is exit 1
    DIFF = "diff"  # compare and show a unified diff
    LIST = "list"  # name the files; neither verify nor touch DIR
    CONFORMANCE = "conformance"  # compare the selected kinds' contracts with the real headers only


@dataclass(frozen=True)
class Options:
    """One run. `verification` None means `--no-verify`; `listing` is `--manifest FILE.json`."""

    output: Path
    preset: str = DEFAULT_PRESET
    only: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    action: Action = Action.WRITE
    listing: Path | None = None
    prune: bool = False
    force: bool = False
    verification: VerifyOptions | None = CONTRACT_MODE
    progress: Progress | None = None
    jobs: int = 1
    # `--dispatcher FILE`: what these hand-written sources call must be what the selected files provide.
    dispatchers: tuple[Path, ...] = ()
    # `--compile`: which side of an aggregator the listing says a build compiles.
    compile: CompilePolicy = CompilePolicy.UPSTREAM
    # `--shard K/N`: verify only the K-th of N parts of the selection into the store; DIR untouched.
    shard: tuple[int, int] | None = None


@dataclass(frozen=True)
class Result:
    """What a run found and did: the preset as asked for (`NAME@REVISION` names a revision other than
    the default), the selected files, the verification report (None when not verified), the plan
    against DIR (None for `--list`) and what was written (None unless written)."""

    preset: str
    files: tuple[GeneratedFile, ...]
    report: Report | None = None
    plan: Plan | None = None
    outcome: Outcome | None = None
    dispatch: DispatchReport | None = None

    @property
    def exit_code(self) -> int:
        """What the command exits with after this run: 1 when DIR differs from what a run would write
        and this run did not write it (`--check`, `--diff`), else 0. A run that fails raises instead
        (its `FlashastError.exit_code`)."""
        differs = self.plan is not None and self.outcome is None and self.plan.differs
        return EXIT_DIFFERENCES if differs else EXIT_OK


def run(registry: Registry, options: Options) -> Result:
    """Run once; raises a `FlashastError` for anything the user can fix, before DIR changes."""
    if options.action is Action.CONFORMANCE:
        return run_conformance(registry, options)
    preset = registry.preset(options.preset)
    all_files = preset.generate()
    files = select(all_files, preset, options.only, options.exclude)
    if options.shard is not None:
        return _verify_shard(options.preset, files, options, *options.shard)
    preset_names = frozenset(generated.name for generated in all_files)
    _refuse_before_any_work(preset, files, preset_names, options)
    if options.action is Action.LIST:
        _write_listing(options, files, preset.name)
        return Result(options.preset, tuple(files))
    verification = options.verification
    report = None if verification is None else _verify_timed(files, verification, VerdictStore.default(), options)
    dispatch = _dispatch(preset, all_files, files, options)
    strict = verification is not None and verification.strict
    found = None
    if options.action is not Action.WRITE or strict or options.listing is not None:
        found = plan(options.output, files, preset.name, preset_names, __version__, preset_provenance(preset))
        _refuse_look_alikes(found, options.output, preset.name, strict)
    if options.action is not Action.WRITE:
        return Result(options.preset, tuple(files), report, found, dispatch=dispatch)
    if options.listing is not None and found is not None:
        # The listing is written once nothing can refuse the run, and before DIR, so that a listing
        # that cannot be written leaves DIR as it was.
        refuse_conflicts(found, options.force)
        _write_listing(options, files, preset.name)
    # A signal waits until DIR is written (well under a second): DIR is then wholly the old run's or
    # wholly this one's, never half of each, and the manifest matches it.
    with signals_held():
        done, outcome = write(
            options.output, files, preset.name, preset_names, __version__, prune=options.prune, force=options.force,
            provenance=preset_provenance(preset),
        )
    return Result(options.preset, tuple(files), report, done, outcome, dispatch)


def run_conformance(registry: Registry, options: Options) -> Result:
    """`--conformance`: the contracts of the kinds the selection keeps, against the real headers
    (`Result.report`); neither generates into nor reads DIR."""
    preset = registry.preset(options.preset)
    files = select(preset.generate(), preset, options.only, options.exclude)
    verification = options.verification
    if verification is None or not verification.real_headers:
        raise UsageError("--conformance: compares contracts with real headers; add --include-dir DIR")
    selected = {generated.kind for generated in files}
    contracts = [kind.contract for kind in preset.kinds if kind.name in selected and kind.contract.headers]
    return Result(options.preset, tuple(files), check_conformance(contracts, verification, VerdictStore.default()))


def _verify_shard(preset: str, files: list[GeneratedFile], options: Options, index: int, count: int) -> Result:
    """`--shard K/N`: verify the K-th of N parts of the selection (`verify.shards`), keeping the
    verdicts under the store's `index-shard-K-of-N` so that shards' stores merge by copying; DIR is
    neither read nor written (the final, unsharded run writes it)."""
    if options.verification is None:
        raise UsageError("--shard: a shard only verifies; drop --no-verify")
    store = VerdictStore.default(writer=f"shard-{index}-of-{count}")
    part = shard_of(files, index, count, store.costs())
    return Result(preset, tuple(part), _verify_timed(part, options.verification, store, options))


def _verify_timed(files: list[GeneratedFile], verification: VerifyOptions, store: VerdictStore,
                  options: Options) -> Report:
    """`verify`, logging the seconds each parsed file took in the store: `--shard` balances by them."""
    costs: dict[str, float] = {}

    def progress(parsed: Parsed) -> None:
        costs[parsed.file.name] = costs.get(parsed.file.name, 0.0) + parsed.seconds
        if options.progress is not None:
            options.progress(parsed)

    try:
        return verify(files, verification, store, progress, options.jobs)
    finally:
        store.remember_costs(costs)


def _refuse_before_any_work(preset: Preset, files: list[GeneratedFile], preset_names: frozenset[str],
                            options: Options) -> None:
    """What the run cannot do, refused before the first parse: a dispatcher without real headers, an
    aggregator without its members, an unusable listing path or DIR, and another preset's DIR."""
    verification = options.verification
    if options.dispatchers and (verification is None or not verification.real_headers):
        raise UsageError("--dispatcher: the dispatcher is read against the real headers; add --include-dir DIR")
    if options.action is not Action.LIST:
        # A listing may name aggregators alone (a build compiles them, the members only need to exist).
        _refuse_aggregators_without_members(files, preset_names)
    _check_listing_path(options)
    check_directory(options.output, writable=options.action is Action.WRITE)
    if options.action is not Action.LIST or options.listing is not None:
        # A forgotten `--preset` must neither replace nor judge another preset's tree.
        refuse_other_owner(options.output, preset.name, options.force, writes=options.action is Action.WRITE)


def _refuse_look_alikes(found: Plan, output: Path, preset: str, strict: bool) -> None:
    """`--strict`: a file in DIR that looks generated but that no kind generates fails the run (it
    would be compiled with the rest); without `--strict` the report warns of it."""
    if found.look_alikes and strict:
        raise UsageError(f"{output / found.look_alikes[0]}: looks like output of preset {preset} but no kind"
                         " generates it (--strict); move it away, or drop --strict to be warned only")


def _dispatch(
    preset: Preset, all_files: list[GeneratedFile], files: list[GeneratedFile], options: Options
) -> DispatchReport | None:
    """`--dispatcher`: what the dispatchers call against what the selected files provide; a missing
    specialization (an `undefined symbol` at import) fails the run before anything is written."""
    verification = options.verification
    if not options.dispatchers or verification is None:
        return None
    filters = [*(parse_filter(text, "--only", preset) for text in options.only),
               *(parse_filter(text, "--exclude", preset) for text in options.exclude)]
    found = check_dispatch(options.dispatchers, files, all_files, verification, filters, VerdictStore.default())
    if found.failed:
        raise VerificationError(found.summary(), found)
    return found


def _refuse_aggregators_without_members(files: list[GeneratedFile], preset_names: frozenset[str]) -> None:
    """An aggregator includes its members: selecting it without them is a selection mistake (the
    user's to fix, exit 2), not a verification failure."""
    selected = {generated.name for generated in files}
    for generated in files:
        missing = [member for member in generated.included_files() if member not in selected]
        if not missing:
            continue
        if all(member in preset_names for member in missing):
            shown = ", ".join(missing[:3]) + (f" (and {len(missing) - 3} more)" if len(missing) > 3 else "")
            raise UsageError(
                f"{generated.name}: includes files the filters leave out: {shown}; select them too,"
                " or leave the aggregator out with --exclude aggregator=true"
            )
        outside = next(member for member in missing if member not in preset_names)
        raise UsageError(
            f"{generated.name}: includes {outside}, which preset {generated.preset} does not generate"
            f" (kind {generated.kind})"
        )


def _write_listing(options: Options, files: list[GeneratedFile], preset: str) -> None:
    """`--manifest FILE.json`: the files with kind and axes, for CMake or setuptools, each saying
    whether a build compiles it (under `--compile`) or it is only included by one that is compiled."""
    if options.listing is None:
        return
    compiled = {generated.name for generated in compiled_files(files, options.compile)}
    listing = {
        "compile": options.compile.value,
        "files": [
            {
                "aggregator": generated.aggregator,
                "axes": generated.axis_values,
                "compile": generated.name in compiled,
                "kind": generated.kind,
                "name": generated.name,
                "path": os.path.join(options.output, generated.name),
            }
            for generated in files
        ],
        "preset": preset,
    }
    text = json.dumps(listing, indent=1, sort_keys=True) + "\n"
    path = options.listing
    try:
        if path.is_file() and path.read_text() == text:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"--manifest {path}: cannot write ({getattr(error, 'strerror', error)})") from None
    try:
        write_atomically(path, text)
    except UsageError as error:
        raise UsageError(f"--manifest {error}") from None


def _check_listing_path(options: Options) -> None:
    """Refuse a `--manifest` path that cannot be written, or that lies in DIR (flashast owns DIR's
    names: the listing would be a foreign file there, or overwrite a generated one), before anything
    is written."""
    if options.listing is None:
        return
    path = options.listing
    if not str(path) or str(path) == ".":
        raise UsageError("--manifest '': needs a file name")
    try:
        if path.is_symlink() or (path.exists() and not path.is_file() and not path.is_dir()):
            raise UsageError(f"--manifest {path}: exists and is not a regular file")
        if path.is_dir():
            raise UsageError(f"--manifest {path}: is a directory")
        inside = Path(os.path.abspath(path)).parent == Path(os.path.abspath(options.output))
    except OSError as error:
        raise UsageError(f"--manifest {path}: cannot use ({error.strerror})") from None
    if inside:
        raise UsageError(f"--manifest {path}: lies in the output directory {options.output}; put it elsewhere")
    try:
        check_directory(path.parent)
    except UsageError as error:
        raise UsageError(f"--manifest {error}") from None
