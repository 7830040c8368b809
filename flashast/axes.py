"""Axes and configurations: the values a kind's files vary over.

A `Configuration` is one point of a kind's axes. Builders, constraints and file-name rules read it,
filters and listings spell its values (`spell_axis_value`), and every generated file carries the one
it came from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from flashast.errors import ModelError

AxisValue = int | bool | str
Default = TypeVar("Default")


def spell_axis_value(value: AxisValue) -> str:
    """How an axis value is written in filters, listings, messages and file-name patterns
    (`true`, `128`, `bf16`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
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

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for axis, _ in self.pairs:
            if axis in seen:
                raise ModelError("Configuration", "pairs", axis, "an axis appears twice")
            seen.add(axis)

    def __getattr__(self, axis: str) -> Any:
        # Only called when ordinary lookup fails. Dunder probes (copy, pickle) and a half-built
        # instance must get a plain AttributeError rather than recurse into `pairs`.
        if axis.startswith("__") or axis == "pairs":
            raise AttributeError(axis)
        for name, value in self.pairs:
            if name == axis:
                return value
        raise AttributeError(self._missing(axis), name=axis, obj=self)

    def __getitem__(self, axis: str) -> AxisValue:
        for name, value in self.pairs:
            if name == axis:
                return value
        raise KeyError(self._missing(axis))

    def get(self, axis: str, default: Default) -> AxisValue | Default:
        """The axis's value, or `default` when this configuration has no such axis."""
        for name, value in self.pairs:
            if name == axis:
                return value
        return default

    def __contains__(self, axis: object) -> bool:
        return any(name == axis for name, _ in self.pairs)

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
