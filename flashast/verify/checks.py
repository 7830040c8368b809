"""Checks made on the model, before and beside libclang.

- A definition (explicit specialization or explicit instantiation, written out or as the expansion of
  a function-like macro's invocation, or a function definition that is neither a template nor
  `static`, such as a `__global__` kernel) repeated in a second file is a link-time error no
  single-file parse can see; the model finds it, and a parse of the two files together then lets clang point at
  both places.
- Defining, for verification, a macro that a file tests with `#ifndef` would skip the guarded code
  unverified; that is refused before any parse.

The duplicate check and the dispatch check's reading of the model (`provided`) walk a file with the
same `flashast.scoped_definitions.definitions` and name what they find with
`flashast.definition_spelling`. Both see a file's namespaces as the compiler does: the macros in effect
for a file (`FileMacros`) are its contract's `#define`s, overridden by the run's defines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flashast.contract import Contract
from flashast.definition_spelling import Defaults, diagnostic_name, duplicate_key, template_defaults
from flashast.errors import UsageError
from flashast.generated import GeneratedFile
from flashast.nodes import IfNotDefined, MacroDefinition
from flashast.scoped_definitions import DefinitionNode, declared_templates, definitions
from flashast.verify.diagnostics import Diagnostic, Location
from flashast.verify.toolchain import VerifyOptions


@dataclass(frozen=True)
class Clash:
    """`second` defines what `first` already defines (`definition`, as `second` spells it)."""

    first: GeneratedFile
    second: GeneratedFile
    definition: DefinitionNode

    def diagnostic(self) -> Diagnostic:
        """The model-level report, used when clang cannot locate the clash itself."""
        return Diagnostic(
            Location(self.second.name),
            f"{diagnostic_name(self.definition)} is also defined in {self.first.name}"
            " (a duplicate symbol at link time)",
            fails=True,
            file=self.second.name,
            origin=origin(self.second),
        )


def origin(generated: GeneratedFile) -> str:
    """Where a generated file came from, as diagnostics say it."""
    return f"preset {generated.preset}, {generated.describe()}"


def find_clashes(files: Iterable[GeneratedFile], defines: Sequence[str] = ()) -> list[Clash]:
    """Each definition a later file repeats, with the first file that made it.

    Definitions are compared as entities, not spellings: `namespace FLASH_NAMESPACE` is the namespace
    its macro expands to (a `--define`, else the file's contract's `#define`), `namespace a::b` is
    `namespace a { namespace b`, and a qualified function name continues its scope.
    """
    seen: dict[tuple[object, ...], GeneratedFile] = {}
    clashes: list[Clash] = []
    macros_of = FileMacros(defines)
    defaults_of = FileTemplateDefaults(macros_of)
    for generated in files:
        if generated.aggregator:
            continue  # an aggregator's definitions are its members'
        # Guards are not evaluated: a definition any build of the file can compile is one that can clash.
        for found in definitions(generated.unit, macros_of(generated)):
            key = duplicate_key(found.scope, found.node, defaults_of(generated))
            if key is None:
                continue
            first = seen.setdefault(key, generated)
            if first.name != generated.name:
                clashes.append(Clash(first, generated, found.node))
    return clashes


def split_define(define: str) -> tuple[str, str]:
    """A `--define` as (name, value): `NAME=VALUE`, or `NAME` defined as `1`, as the compiler's `-D` does."""
    name, _, value = define.partition("=")
    return name, value or "1"


def contract_macros(contract: Contract) -> dict[str, str]:
    """The object-like macros a contract defines (`#define FLASH_NAMESPACE flash`)."""
    return {
        str(node.name): str(node.replacement) if node.replacement is not None else ""
        for unit in contract.header_units().values() for node in unit.walk() if isinstance(node, MacroDefinition)
    }


class FileMacros:
    """The object-like macros in effect for a generated file: its contract's `#define`s, overridden by
    the run's `defines` (`NAME` or `NAME=VALUE`). Read once per contract: many files share one."""

    def __init__(self, defines: Sequence[str] = ()) -> None:
        self.given = dict(map(split_define, defines))
        self._by_contract: dict[Contract, dict[str, str]] = {}

    def __call__(self, generated: GeneratedFile) -> dict[str, str]:
        contract = generated.contract
        if contract not in self._by_contract:
            self._by_contract[contract] = {**contract_macros(contract), **self.given}
        return self._by_contract[contract]


def ifndef_macros(files: Iterable[GeneratedFile]) -> frozenset[str]:
    """The macros `files` test with `#ifndef`: the switches a build can turn their code off with."""
    return frozenset(
        node.macro.text for generated in files for node in generated.unit.walk() if isinstance(node, IfNotDefined)
    )


class FileTemplateDefaults:
    """The default template arguments of the function templates a generated file's contract declares
    (`flashast.definition_spelling.template_defaults`), their namespaces read with the file's macros;
    read once per contract, as `FileMacros` is."""

    def __init__(self, macros_of: FileMacros) -> None:
        self.macros_of = macros_of
        self._by_contract: dict[Contract, Defaults] = {}

    def __call__(self, generated: GeneratedFile) -> Defaults:
        contract = generated.contract
        if contract not in self._by_contract:
            macros = self.macros_of(generated)
            self._by_contract[contract] = template_defaults(
                declared for unit in contract.header_units().values() for declared in declared_templates(unit, macros)
            )
        return self._by_contract[contract]


def refuse_guard_defines(files: Sequence[GeneratedFile], options: VerifyOptions) -> None:
    """Refuse a `--define` (or `--clang-arg -D`) of a macro a file tests with `#ifndef`."""
    guards = ifndef_macros(files)
    for define in options.effective_defines:
        name = split_define(define)[0]
        if name in guards:
            raise UsageError(
                f"--define {define}: the generated files guard code with `#ifndef {name}`; defining it"
                " would skip that code unverified"
            )
