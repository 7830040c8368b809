"""`Contract`: the interface a kind's files rely on, written as declarations.

Contract verification prints each header of a contract and serves it from memory at its include path,
so a generated file is parsed against exactly what its kind says the real header provides. A path may
climb with `..` (`../fattn-vec.cuh`, a header beside the generated files' directory): it is served
as spelled under the virtual include directory, which is a sibling of the generated files' one, so
both clang's lookup beside the including file and its include-path search find it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from flashast.errors import ModelError
from flashast.names import IncludePath
from flashast.nodes import Declaration, FunctionMacro, FunctionTemplate, TranslationUnit


@dataclass(frozen=True, slots=True, init=False)
class Contract:
    """The headers a kind's files include, as declarations: what verification parses against.

    Built from a mapping of include path to declarations. Two contracts merge when every header
    they share is declared identically, so kinds of one preset can share a launch header. A
    function-like macro may only expand to instantiations of templates the contract declares.
    """

    headers: tuple[tuple[IncludePath, tuple[Declaration, ...]], ...]
    # Where the contract was written (`file.py:LINE` of the code that built it), so that a check of
    # it against the real headers can point at the kind's own source. Not part of its value.
    origin: str = field(compare=False, hash=False, repr=False)
    # The hash, computed once: hashing walks every header's tree, and verification keys its batches,
    # rendered headers and conformance parses by contract (many files share one).
    _hash: int | None = field(default=None, compare=False, hash=False, repr=False)

    def __init__(self, headers: Mapping[str, Sequence[Declaration]] | None = None) -> None:
        object.__setattr__(self, "origin", _caller())
        object.__setattr__(self, "_hash", None)
        pairs: list[tuple[IncludePath, tuple[Declaration, ...]]] = []
        for path, given in (headers or {}).items():
            try:
                include_path = IncludePath(path)
            except ModelError as error:
                raise ModelError("Contract", "headers", path, error.problem) from None
            declarations = tuple(given)
            for declaration in declarations:
                if not isinstance(declaration, Declaration):
                    raise ModelError("Contract", f"headers[{include_path}]", declaration, "is not a declaration")
            pairs.append((include_path, declarations))
        object.__setattr__(self, "headers", tuple(sorted(pairs, key=lambda pair: pair[0].text)))
        self._check_macro_templates()

    def _check_macro_templates(self) -> None:
        units = self.header_units()
        declared = {node for unit in units.values() for node in unit.walk() if isinstance(node, FunctionTemplate)}
        for path, unit in units.items():
            for node in unit.walk():
                if not isinstance(node, FunctionMacro):
                    continue
                for step in node.expansion:
                    if step.template not in declared:
                        problem = f"expands to template {step.template.name}, which no header of the contract declares"
                        raise ModelError("Contract", f"headers[{path}]", node.name.text, problem)

    def __hash__(self) -> int:
        cached = self._hash
        if cached is None:
            cached = hash(self.headers)
            object.__setattr__(self, "_hash", cached)
        return cached

    def header_units(self) -> dict[str, TranslationUnit]:
        """Each header's declarations as a unit to print, by include path."""
        return {path.text: TranslationUnit(declarations) for path, declarations in self.headers}

    def merge(self, other: Contract) -> Contract:
        """Both contracts' headers; a header both declare must be declared identically."""
        merged = {path.text: declarations for path, declarations in self.headers}
        for path, declarations in other.headers:
            if merged.get(path.text, declarations) != declarations:
                raise ModelError("Contract", "headers", path.text, "declared differently by two kinds")
            merged[path.text] = declarations
        combined = Contract(merged)
        object.__setattr__(combined, "origin", self.origin)
        return combined


def _caller() -> str:
    """`file.py:LINE` of the first frame outside this module: the code building the contract."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back  # type: ignore[assignment]
    return f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else "<unknown>"

