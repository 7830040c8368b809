"""Enumerations and the integers C++ holds: an enumeration a contract declares, a template argument
naming one of its enumerators, and the range an `int` template argument may take.

Split from `flashast.signatures`, which builds template parameters and arguments on these; like every
node, each checks its values once, on construction (see `flashast.nodes`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeGuard

from flashast.errors import ModelError
from flashast.fields import as_atom, as_flag, as_tuple, store_fields
from flashast.names import Identifier

INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def _abbreviated(value: int) -> str:
    """A huge int as a short text for an error message (`str()` refuses past 4,300 digits)."""
    return f"an int of {value.bit_length()} bits" if value.bit_length() > 64 else str(value)


def check_int(owner: str, field: str, value: object) -> int:
    """`value` if it is an int (not a bool) that a 32-bit `int` holds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelError(owner, field, value, "must be an int (use BoolArg for a bool)")
    if not INT_MIN <= value <= INT_MAX:
        # The parameters these files instantiate are `int`: a wider value would not even print
        # (Python refuses to spell ints of thousands of digits) and C++ would narrow it.
        raise ModelError(owner, field, _abbreviated(value), "is outside the range of a 32-bit int")
    return value


# Enumerations ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class Enumerator:
    """One enumerator, `GGML_TYPE_F16 = 1`, or without a value (the previous one's plus one, or 0)."""

    name: Identifier
    value: int | None

    def __init__(self, name: Identifier | str, value: int | None = None) -> None:
        checked = None if value is None else check_int("Enumerator", "value", value)
        store_fields(self, name=as_atom(self, "name", name, Identifier), value=checked)


def _is_enumerator_or_text(value: object) -> TypeGuard[Enumerator | str]:
    return isinstance(value, (Enumerator, str))


@dataclass(frozen=True, slots=True, init=False)
class EnumDeclaration:
    """`enum name { … };` (`enum class` when `scoped`), as a contract declares it.

    An enumeration is also the kind of a `ValueParameter` (`template <int D, ggml_type type_K>`), so
    an argument for it is checked to name one of these enumerators. A str stands for an enumerator
    without a value.
    """

    name: Identifier
    enumerators: tuple[Enumerator, ...]
    scoped: bool

    def __init__(
        self, name: Identifier | str, enumerators: Iterable[Enumerator | str] = (), scoped: bool = False
    ) -> None:
        given = as_tuple(self, "enumerators", enumerators, _is_enumerator_or_text, "Enumerator")
        checked = tuple(item if isinstance(item, Enumerator) else Enumerator(item) for item in given)
        names = [enumerator.name for enumerator in checked]
        for enumerator in names:
            if names.count(enumerator) > 1:
                raise ModelError("EnumDeclaration", "enumerators", enumerator.text, "enumerator names must be unique")
        store_fields(
            self, name=as_atom(self, "name", name, Identifier), enumerators=checked,
            scoped=as_flag(self, "scoped", scoped),
        )

    def value_of(self, enumerator: Identifier) -> int:
        """The enumerator's value, as the compiler counts it."""
        value = -1
        for candidate in self.enumerators:
            value = value + 1 if candidate.value is None else candidate.value
            if candidate.name == enumerator:
                return value
        raise ModelError(f"EnumDeclaration({self.name})", "enumerators", enumerator.text, "is not an enumerator")

    def __getitem__(self, enumerator: str) -> EnumeratorArg:
        """`ggml_type["GGML_TYPE_F16"]`: the template argument naming that enumerator."""
        return EnumeratorArg(self, enumerator)


@dataclass(frozen=True, slots=True, init=False)
class EnumeratorArg:
    """A template argument naming an enumerator of `enumeration`: `GGML_TYPE_F16` (`E::X` when the
    enumeration is scoped). The enumerator must be one the enumeration declares."""

    enumeration: EnumDeclaration
    enumerator: Identifier

    def __init__(self, enumeration: EnumDeclaration, enumerator: Identifier | str) -> None:
        if not isinstance(enumeration, EnumDeclaration):
            raise ModelError("EnumeratorArg", "enumeration", enumeration, "must be an EnumDeclaration")
        name = as_atom(self, "enumerator", enumerator, Identifier)
        if all(candidate.name != name for candidate in enumeration.enumerators):
            raise ModelError("EnumeratorArg", "enumerator", name.text, f"is not an enumerator of {enumeration.name}")
        store_fields(self, enumeration=enumeration, enumerator=name)
