"""`Contract`: the interface a kind's files rely on, written as declarations.

Contract verification prints each header of a contract and serves it from memory at its include path,
so a generated file is parsed against exactly what its kind says the real header provides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flashast.errors import ModelError
from flashast.names import IncludePath
from flashast.nodes import DECLARATION_TYPES, Declaration, TranslationUnit

@dataclass(frozen=True, slots=True)
class Contract:
    """The headers a kind's files include, as declarations: what verification parses against.

    Built from a mapping of include path to declarations. Two contracts merge when every header
    they share is declared identically, so kinds of one preset can share a launch header.
    """

    headers: tuple[tuple[IncludePath, tuple[Declaration, ...]], ...] = ()

    def __init__(self, headers: Mapping[str | IncludePath, Sequence[Declaration]] | None = None) -> None:
        pairs: list[tuple[IncludePath, tuple[Declaration, ...]]] = []
        for path, declarations in (headers or {}).items():
            include_path = path if isinstance(path, IncludePath) else IncludePath(path)
            declarations = tuple(declarations)
            for declaration in declarations:
                if not isinstance(declaration, DECLARATION_TYPES):
                    raise ModelError("Contract", f"headers[{include_path}]", declaration, "is not a declaration")
            pairs.append((include_path, declarations))
        object.__setattr__(self, "headers", tuple(sorted(pairs, key=lambda pair: pair[0].text)))

    def header_units(self) -> dict[str, TranslationUnit]:
        return {path.text: TranslationUnit(declarations) for path, declarations in self.headers}

    def merge(self, other: Contract) -> Contract:
        merged = dict(self.headers)
        for path, declarations in other.headers:
            if path in merged and merged[path] != declarations:
                raise ModelError("Contract", "headers", path.text, "declared differently by two kinds")
            merged[path] = declarations
        return Contract(merged)

