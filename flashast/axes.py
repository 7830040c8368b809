"""Axes and configurations: the values a kind's files vary over.

A `Configuration` is one point of a kind's axes. Builders, constraints and file-name rules read it,
filters and listings spell its values (`spell_axis_value`), and every generated file carries the one
it came from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from flashast.compat import warn_deprecated
from flashast.errors import ModelError

AxisValue = int | bool | str
Default = TypeVar("Default")


class _NoDefault:
    """The type of `NO_DEFAULT`: `get(axis)` called without a default, which 0.1.0 allowed."""


NO_DEFAULT = _NoDefault()


def spell_axis_value(value: AxisValue) -> str:
    """How an axis value is written in filters, listings, messages and file-name patterns
    (`true`, `128`, `bf16`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Configuration:
    """One point of a kind's axes: `pairs` is `(axis, value)` for every axis of the kind, in order.

    Read an axis as `config.head_dim` or `config["head_dim"]`. The class's own attributes come
    first, so an axis named like one of them (`get`, `items`, `pairs`) is read with `config["get"]`,
    and `config.get` stays the method. Reading an axis the configuration does not have is an error
    naming the axes it has; `config.get(axis, default)` is the one way to read an axis that may be
    absent, and its default is required, so a missing axis is never silently `None`.

    Axis values are known only when the kind runs, so attribute reads are typed `Any`; `config[axis]`
    and `get` are typed `AxisValue`.
    """

    pairs: tuple[tuple[str, AxisValue], ...]
    # The pairs by axis name, for reads: derived from `pairs`, so no part of equality or of `replace`.
    by_axis: dict[str, AxisValue] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_axis = dict(self.pairs)
        if len(by_axis) != len(self.pairs):
            names = [axis for axis, _ in self.pairs]
            repeated = next(axis for axis in names if names.count(axis) > 1)
            raise ModelError("Configuration", "pairs", repeated, "an axis appears twice")
        object.__setattr__(self, "by_axis", by_axis)

    def __getattr__(self, axis: str) -> Any:
        # Python calls this only when ordinary lookup fails, which is what lets the class's own
        # attributes come first. Dunder probes (copy, pickle) and a half-built instance get a plain
        # AttributeError rather than recurse into `by_axis`.
        if axis.startswith("__") or axis in ("pairs", "by_axis"):
            raise AttributeError(axis)
        try:
            return self.by_axis[axis]
        except KeyError:
            raise AttributeError(self._missing(axis), name=axis, obj=self) from None

    def __getitem__(self, axis: str) -> AxisValue:
        try:
            return self.by_axis[axis]
        except KeyError:
            raise KeyError(self._missing(axis)) from None

    @overload
    def get(self, axis: str) -> AxisValue | None: ...

    @overload
    def get(self, axis: str, default: Default) -> AxisValue | Default: ...

    def get(self, axis: str, default: object = NO_DEFAULT) -> object:
        """The axis's value, or `default` when this configuration has no such axis.

        Without a default (0.1.0's `Mapping.get`) it still returns None for a missing axis, with a
        deprecation warning: since 0.2.0 the default is required, so that a typo is never read as a
        silent None. Removed in 0.3.0.
        """
        if isinstance(default, _NoDefault):
            warn_deprecated("Configuration.get(axis) without a default",
                            "write config.get(axis, None), or config[axis] for an axis the kind always has")
            return self.by_axis.get(axis)
        return self.by_axis.get(axis, default)

    def __contains__(self, axis: object) -> bool:
        return axis in self.by_axis

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def keys(self) -> tuple[str, ...]:
        """The axis names, in order (so `{**config}` and `dict(config)` work)."""
        return tuple(name for name, _ in self.pairs)

    def values(self) -> tuple[AxisValue, ...]:
        return tuple(value for _, value in self.pairs)

    def items(self) -> tuple[tuple[str, AxisValue], ...]:
        return self.pairs

    def describe(self) -> str:
        """`dtype=fp16 head_dim=128 is_causal=true`, for listings and messages."""
        return " ".join(f"{name}={spell_axis_value(value)}" for name, value in self.pairs)

    def _missing(self, axis: str) -> str:
        return f"configuration has no axis {axis!r} (its axes: {', '.join(self.keys()) or 'none'})"

