"""`flashast cost`: what a build spent compiling the files flashast wrote, by file, kind and axis value.

The join: ninja's log (`ninja_log`) gives each object file's last compile step; DIR's ownership
manifest gives each generated file's kind and axis values. A step belongs to a generated file when
its output is that file's object: `NAME.o`/`NAME.obj` (CMake: `flash_fwd_hdim128_fp16_sm80.cu.o`) or
the name with its source suffix replaced (setuptools: `flash_fwd_hdim128_fp16_sm80.o`), in any
directory. Steps of other objects are counted, as "other compile steps", and steps that write no
object (links, flashast's own run, the `.cu` files it lists as byproducts) are not compile steps.

An aggregator is compiled instead of the files it includes, so its time is attributed to its members
in equal parts: the tables then say what `head_dim=256` costs even when it is compiled inside a
`*_hdimall_*` file. Which files an aggregator includes comes from the model (`GeneratedFile.
included_files`), generated again only when the log holds an aggregator's step.

Seconds are the sum of the steps' durations (compiler time as ninja measured it, not wall time of a
parallel build); shares are of the generated files' total.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from flashast.axes import AxisValue, spell_axis_value
from flashast.errors import UsageError
from flashast.generated import SOURCE_SUFFIXES
from flashast.manifest import MANIFEST_NAME, Entry, read_manifest
from flashast.ninja_log import NinjaLog, Step
from flashast.ownership import bare_preset
from flashast.registry import Registry

OBJECT_SUFFIXES = (".o", ".obj")
# The axis every preset has that a cheaper build never excludes: excluding aggregators compiles their members.
NOT_SAVINGS = frozenset({"aggregator"})

Members = Callable[[str], Mapping[str, tuple[str, ...]]]


@dataclass(frozen=True)
class FileCost:
    """One generated file: its own compile steps, and the time counted for it once aggregators'
    steps are attributed to their members (an aggregator whose members are known counts none)."""

    name: str
    kind: str
    axes: dict[str, AxisValue]
    aggregator: bool
    outputs: tuple[str, ...]
    compiled: float | None
    attributed: float
    through: tuple[str, ...]


@dataclass(frozen=True)
class Share:
    """The attributed seconds of the files with one value of one axis (`head_dim=256`)."""

    axis: str
    value: AxisValue
    seconds: float
    share: float
    files: int
    # For an `--exclude` candidate: aggregators that include files it drops but that it keeps itself,
    # so a run with it alone refuses the selection (add `--exclude aggregator=true`, or exclude them).
    kept_aggregators: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.axis}={spell_axis_value(self.value)}"


@dataclass(frozen=True)
class Cost:
    """The report: every file of DIR (of the preset asked for), the totals, and the shares."""

    log: NinjaLog
    directory: Path
    presets: tuple[str, ...]
    files: tuple[FileCost, ...]
    total: float
    other_steps: int
    other_seconds: float
    by_axis: dict[str, tuple[Share, ...]]
    excludes: tuple[Share, ...]

    @property
    def compiled(self) -> list[FileCost]:
        """The files with a compile step of their own, slowest first."""
        return sorted((file for file in self.files if file.compiled is not None),
                      key=lambda file: (-(file.compiled or 0.0), file.name))

    @property
    def missing(self) -> list[str]:
        """Files of DIR that no step compiled, directly or inside an aggregator."""
        return [file.name for file in self.files if file.compiled is None and not file.through]


def object_source(step: Step, names: frozenset[str]) -> str | None:
    """The generated file whose object `step` wrote, if any."""
    base = step.file_name
    stem = next((base[: -len(suffix)] for suffix in OBJECT_SUFFIXES if base.endswith(suffix)), None)
    if stem is None:
        return None
    if stem in names:
        return stem
    return next((stem + suffix for suffix in SOURCE_SUFFIXES if stem + suffix in names), None)


def aggregator_members(registry: Registry, preset: str) -> dict[str, tuple[str, ...]]:
    """Each aggregator of `preset` with the generated files it includes, from the model."""
    if preset not in registry.preset_names():
        raise UsageError(f"preset {preset}: not registered, so what its aggregators include is unknown;"
                         " add the --plugin that registers it")
    return {file.name: file.included_files() for file in registry.preset(preset).generate() if file.aggregator}


def measure(log: NinjaLog, directory: Path, preset: str | None, members: Members) -> Cost:
    """Join `log` with DIR's manifest; `members(preset)` names each aggregator's members."""
    manifest = read_manifest(directory)
    if manifest is None:
        raise UsageError(f"{directory}: no flashast manifest ({MANIFEST_NAME}): not a directory flashast wrote")
    entries: dict[str, Entry] = dict(manifest.files)
    if preset is not None:
        held = sorted({str(entry.preset) for entry in entries.values()})
        # The manifest records the bare name (`revision` beside it): `NAME@REVISION` selects that preset.
        entries = {name: entry for name, entry in entries.items() if entry.preset == bare_preset(preset)}
        if not entries:
            raise UsageError(f"--preset {preset}: {directory} holds no file of it (it holds: {', '.join(held)})")
    names = frozenset(entries)
    steps: dict[str, list[Step]] = {}
    other_steps, other_seconds = 0, 0.0
    for step in log.steps:
        source = object_source(step, names)
        if source is not None:
            steps.setdefault(source, []).append(step)
        elif step.file_name.endswith(OBJECT_SUFFIXES):
            other_steps += 1
            other_seconds += step.seconds
    if not steps:
        raise UsageError(
            f"{log.path}: no compile step of a file in {directory} ({len(log.steps)} outputs logged, none the"
            f" object of one of its {len(entries)} files); is it the log of the build that compiles them?"
        )
    attributed = dict.fromkeys(entries, 0.0)
    through: dict[str, list[str]] = {name: [] for name in entries}
    for name, own in steps.items():
        seconds = sum(step.seconds for step in own)
        entry = entries[name]
        included = [member for member in _members_of(entry, name, members) if member in names]
        if not included:
            attributed[name] += seconds
            continue
        for member in included:
            attributed[member] += seconds / len(included)
            through[member].append(name)
    files = tuple(
        FileCost(
            name=name,
            kind=entry.kind or "",
            axes=dict(entry.axes or {}),
            aggregator=bool(entry.aggregator),
            outputs=tuple(step.output for step in steps.get(name, ())),
            compiled=sum(step.seconds for step in steps[name]) if name in steps else None,
            attributed=attributed[name],
            through=tuple(through[name]),
        )
        for name, entry in sorted(entries.items())
    )
    total = sum(file.attributed for file in files)
    by_axis = _shares(files, total)
    presets = tuple(sorted({str(entry.preset) for entry in entries.values()}))
    return Cost(log, directory, presets, files, total, other_steps, other_seconds, by_axis,
                _savings(files, by_axis))


def _members_of(entry: Entry, name: str, members: Members) -> tuple[str, ...]:
    if not entry.aggregator:
        return ()
    return members(str(entry.preset)).get(name, ())


def _shares(files: tuple[FileCost, ...], total: float) -> dict[str, tuple[Share, ...]]:
    """Per axis (`kind` first), each value's attributed seconds, most expensive first."""
    counted = [file for file in files if file.attributed > 0]
    tables: dict[str, dict[AxisValue, list[FileCost]]] = {"kind": {}}
    for file in counted:
        tables["kind"].setdefault(file.kind, []).append(file)
        for axis, value in file.axes.items():
            tables.setdefault(axis, {}).setdefault(value, []).append(file)
    by_axis: dict[str, tuple[Share, ...]] = {}
    for axis in ["kind", *sorted(axis for axis in tables if axis != "kind")]:
        shares = [_share(axis, value, group, total) for value, group in tables[axis].items()]
        by_axis[axis] = tuple(sorted(shares, key=lambda share: (-share.seconds, share.label)))
    return by_axis


def _share(axis: str, value: AxisValue, group: list[FileCost], total: float) -> Share:
    seconds = sum(file.attributed for file in group)
    return Share(axis, value, seconds, seconds / total if total else 0.0, len(group))


def _savings(files: tuple[FileCost, ...], by_axis: dict[str, tuple[Share, ...]]) -> tuple[Share, ...]:
    """`--exclude AXIS=VALUE` candidates by the time they save, leaving out those that would exclude
    every compiled file (a run refuses a selection of nothing). Each names the aggregators that
    include files it drops but would be kept themselves."""
    counted = [file for file in files if file.attributed > 0]
    by_name = {file.name: file for file in files}
    candidates: list[Share] = []
    for axis, shares in by_axis.items():
        if axis in NOT_SAVINGS:
            continue
        for share in shares:
            if share.files == len(counted):
                continue
            dropped = [file for file in counted if _has(file, axis, share.value)]
            kept = sorted({aggregator for file in dropped for aggregator in file.through
                           if not _has(by_name[aggregator], axis, share.value)})
            candidates.append(replace(share, kept_aggregators=tuple(kept)))
    return tuple(sorted(candidates, key=lambda share: (-share.seconds, share.label)))


def _has(file: FileCost, axis: str, value: AxisValue) -> bool:
    """Whether `--exclude axis=value` matches the file (its kind, or one of its axis values)."""
    if axis == "kind":
        return file.kind == value
    return axis in file.axes and spell_axis_value(file.axes[axis]) == spell_axis_value(value)


# Printing --------------------------------------------------------------------------------------------


def render_table(cost: Cost, top: int) -> str:
    """The plain report: totals, a table per axis, the slowest files, the best `--exclude`s."""
    compiled = cost.compiled
    lines = [
        f"{cost.log.path} (ninja log v{cost.log.version}) against {cost.directory}"
        f" ({', '.join(cost.presets)}): {len(compiled)} compile steps of generated files, {cost.total:.1f} s",
    ]
    if cost.other_steps:
        lines.append(f"other compile steps: {cost.other_steps}, {cost.other_seconds:.1f} s")
    if cost.missing:
        lines.append(f"not compiled in this log: {len(cost.missing)} of {len(cost.files)} files")
    rows: list[tuple[str, ...]] = []
    for axis, shares in cost.by_axis.items():
        rows.append(("", "", "", ""))
        rows.append((axis, "seconds", "share", "files"))
        rows += [(share.label, f"{share.seconds:.1f}", _percent(share.share), str(share.files)) for share in shares]
    rows.append(("", "", "", ""))
    rows.append(("slowest files", "seconds", "share", ""))
    for file in compiled[:top]:
        seconds = file.compiled or 0.0
        included = sum(1 for other in cost.files if file.name in other.through)
        label = f"{file.name} (aggregator of {included})" if included else file.name
        rows.append((label, f"{seconds:.1f}", _percent(seconds / cost.total if cost.total else 0.0), ""))
    shown = cost.excludes[:top]
    if shown:
        rows.append(("", "", "", ""))
        rows.append(("--exclude that saves the most", "seconds", "share", "files"))
        rows += [(f"--exclude {share.label}{' (*)' if share.kept_aggregators else ''}", f"{share.seconds:.1f}",
                  _percent(share.share), str(share.files)) for share in shown]
    width = max(len(row[0]) for row in rows)
    for row in rows:
        if not row[0]:
            lines.append("")
            continue
        lines.append(f"{row[0]:<{width}}  {row[1]:>8}  {row[2]:>5}  {row[3]:>5}".rstrip())
    if any(share.kept_aggregators for share in shown):
        lines.append("(*) drops files that aggregators it keeps include: add --exclude aggregator=true to"
                     " compile the rest one by one")
    return "\n".join(lines) + "\n"


def _percent(share: float) -> str:
    return f"{share * 100:.0f} %"


def render_json(cost: Cost) -> str:
    """The report for tools: every file, every share, every candidate `--exclude`."""

    def share(item: Share) -> dict[str, Any]:
        return {"filter": item.label, "value": item.value, "seconds": round(item.seconds, 3),
                "share": round(item.share, 4), "files": item.files}

    def saving(item: Share) -> dict[str, Any]:
        return {**share(item), "kept_aggregators": list(item.kept_aggregators)}

    document = {
        "log": str(cost.log.path),
        "ninja_log_version": cost.log.version,
        "directory": str(cost.directory),
        "presets": list(cost.presets),
        "total_seconds": round(cost.total, 3),
        "other_compile_steps": {"steps": cost.other_steps, "seconds": round(cost.other_seconds, 3)},
        "files": [
            {
                "name": file.name,
                "kind": file.kind,
                "axes": file.axes,
                "aggregator": file.aggregator,
                "outputs": list(file.outputs),
                "compiled_seconds": None if file.compiled is None else round(file.compiled, 3),
                "attributed_seconds": round(file.attributed, 3),
                "through_aggregators": list(file.through),
            }
            for file in cost.files
        ],
        "by_axis": {axis: [share(item) for item in shares] for axis, shares in cost.by_axis.items()},
        "excludes": [saving(item) for item in cost.excludes],
    }
    return json.dumps(document, indent=1, sort_keys=True) + "\n"
