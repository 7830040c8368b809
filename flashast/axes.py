"""Axes and configurations: the values a kind's files vary over.

A `Configuration` is one point of a kind's axes. Builders, constraints and file-name rules read it,
filters and listings spell its values (`spell_axis_value`), and every generated file carries the one
it came from.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

AxisValue = int | bool | str


def spell_axis_value(value: AxisValue) -> str:
    """How an axis value is written in filters, listings and messages (`true`, `128`, `bf16`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Configuration(Mapping[str, AxisValue]):
    """One point of a kind's axes, read as `config.head_dim` or `config["head_dim"]`."""

    items_: tuple[tuple[str, AxisValue], ...]
    # The same items for lookups: builders and constraints read axes tens of thousands of times.
    _values: dict[str, AxisValue] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        values = dict(self.items_)
        object.__setattr__(self, "_values", values)
        # Axes as plain instance attributes, so `config.head_dim` is an ordinary lookup (the
        # `__getattr__` fallback costs an exception per read); an axis named like a method of the
        # class (`get`, `keys`, ...) stays a key only, as `__getattr__` would leave it.
        if _NOT_ATTRIBUTES.isdisjoint(values):
            self.__dict__.update(values)
        else:
            self.__dict__.update((axis, value) for axis, value in values.items() if axis not in _NOT_ATTRIBUTES)

    def __getitem__(self, axis: str) -> AxisValue:
        return self._values[axis]

    def __getattr__(self, axis: str) -> AxisValue:
        if axis.startswith("__") or axis == "_values":
            raise AttributeError(axis)
        try:
            return self._values[axis]
        except KeyError:
            raise AttributeError(f"configuration has no axis {axis!r}") from None

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self.items_)

    def __len__(self) -> int:
        return len(self.items_)

    def describe(self) -> str:
        return " ".join(f"{name}={spell_axis_value(value)}" for name, value in self.items_)


# Names a Configuration's own attributes (its methods and fields) have: axes so named are keys only.
_NOT_ATTRIBUTES = frozenset(dir(Configuration)) | {"items_", "_values"}
