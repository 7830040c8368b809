"""`--only` / `--exclude` filters: which of a preset's files a run is about.

A filter is `AXIS=VALUE[,VALUE…]` or a glob on the file name. Two axes every preset has: `kind` (the
kind's name) and `aggregator` (`true` for files that only include other generated files, so a build
that compiles the members can say `--exclude aggregator=true`).
`--only` filters on the same axis are alternatives, and so are globs among themselves (like values of
one more axis, the file name); different axes, and the globs as a group, must all match.
A file is dropped if any `--exclude` filter matches it. A filter naming an axis no kind has, a value
no kind has, or matching no file is a `UsageError`, so a typo never silently builds nothing.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from flashast.axes import spell_axis_value
from flashast.errors import UsageError
from flashast.generated import GeneratedFile
from flashast.kinds import Preset


@dataclass(frozen=True, slots=True)
class Filter:
    """One parsed filter: an axis and its accepted values, or a file-name glob (axis None)."""

    text: str
    option: str
    axis: str | None
    values: frozenset[str]

    def matches(self, generated: GeneratedFile) -> bool:
        if self.axis is None:
            return any(fnmatch.fnmatchcase(generated.name, pattern) for pattern in self.values)
        if self.axis == "kind":
            return generated.kind in self.values
        if self.axis == "aggregator":
            return spell_axis_value(generated.aggregator) in self.values
        if self.axis not in generated.axes:
            return False
        return spell_axis_value(generated.axes[self.axis]) in self.values


def parse_filter(text: str, option: str, preset: Preset) -> Filter:
    """Parse and check one filter against the axes and values the preset's kinds really have."""
    if "=" not in text:
        if not text:
            raise UsageError(f"{option} '': empty filter")
        return Filter(text, option, None, frozenset({text}))
    axis, _, raw_values = text.partition("=")
    axis = axis.strip()
    values = [value.strip() for value in raw_values.split(",")]
    if not axis or not all(values):
        raise UsageError(f"{option} {text}: expected AXIS=VALUE[,VALUE...]")
    known = _known_values(preset)
    if axis not in known:
        raise UsageError(f"{option} {text}: unknown axis {axis!r} (axes of {preset.name}: {', '.join(sorted(known))})")
    for value in values:
        if value not in known[axis]:
            choices = ", ".join(sorted(known[axis], key=_natural))
            raise UsageError(f"{option} {text}: {axis} has no value {value!r} (values: {choices})")
    return Filter(text, option, axis, frozenset(values))


def _natural(value: str) -> tuple[int, int | str]:
    return (0, int(value)) if value.isdigit() else (1, value)


def _known_values(preset: Preset) -> dict[str, set[str]]:
    known: dict[str, set[str]] = {
        "kind": {kind.name for kind in preset.kinds},
        "aggregator": {spell_axis_value(kind.aggregator) for kind in preset.kinds},
    }
    for kind in preset.kinds:
        for axis, values in kind.axes.items():
            known.setdefault(axis, set()).update(spell_axis_value(value) for value in values)
    return known


def select(
    files: Sequence[GeneratedFile], preset: Preset, only: Sequence[str], exclude: Sequence[str]
) -> list[GeneratedFile]:
    """The files the filters keep; each filter must match at least one file of the preset."""
    only_filters = [parse_filter(text, "--only", preset) for text in only]
    exclude_filters = [parse_filter(text, "--exclude", preset) for text in exclude]
    for filter_ in (*only_filters, *exclude_filters):
        if not any(filter_.matches(generated) for generated in files):
            raise UsageError(f"{filter_.option} {filter_.text}: matches no file of preset {preset.name}")
    groups: dict[str | None, list[Filter]] = {}
    for filter_ in only_filters:
        groups.setdefault(filter_.axis, []).append(filter_)
    selected = [
        generated
        for generated in files
        if all(any(filter_.matches(generated) for filter_ in group) for group in groups.values())
        and not any(filter_.matches(generated) for filter_ in exclude_filters)
    ]
    if not selected:
        named = " ".join(f"{filter_.option} {filter_.text}" for filter_ in (*only_filters, *exclude_filters))
        raise UsageError(f"{named}: together select no file of preset {preset.name}")
    return selected


def excluding_filter(generated: GeneratedFile, filters: Sequence[Filter]) -> str:
    """The `--exclude` that drops `generated`, else the `--only` group it matches none of."""
    for filter_ in filters:
        if filter_.option == "--exclude" and filter_.matches(generated):
            return f"--exclude {filter_.text}"
    groups: dict[str | None, list[Filter]] = {}
    for filter_ in filters:
        if filter_.option == "--only":
            groups.setdefault(filter_.axis, []).append(filter_)
    for group in groups.values():
        if not any(filter_.matches(generated) for filter_ in group):
            return " ".join(f"--only {filter_.text}" for filter_ in group)
    return "the selection"
