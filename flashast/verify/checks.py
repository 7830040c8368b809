"""Checks made on the model, before and beside libclang.

- A definition (explicit specialization or explicit instantiation, written out or as the expansion of
  a function-like macro's invocation, or a function definition that is neither a template nor
  `static`, such as a `__global__` kernel) repeated in a second file is a link-time error no
  single-file parse can see; the model finds it, and a parse of the two files together then lets clang point at
  both places.
- Defining, for verification, a macro that a file tests with `#ifndef` would skip the guarded code
  unverified; that is refused before any parse.

Both, and the dispatch check's reading of the model (`provided`), see a file's namespaces as the
compiler does: the macros in effect for a file (`FileMacros`) are its contract's `#define`s, overridden
by the run's defines, and `namespace_parts` expands them in a namespace's name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from flashast.contract import Contract
from flashast.errors import UsageError
from flashast.generated import GeneratedFile
from flashast.names import Identifier, MacroName, QualifiedName
from flashast.nodes import (
    Declaration,
    ExplicitInstantiation,
    ExplicitSpecialization,
    FunctionDefinition,
    IfDefined,
    IfNotDefined,
    MacroDefinition,
    MacroInvocation,
    Namespace,
)
from flashast.printer import spell_template_argument
from flashast.verify.diagnostics import Diagnostic, Location
from flashast.verify.toolchain import VerifyOptions

Definition = ExplicitSpecialization | ExplicitInstantiation | FunctionDefinition


@dataclass(frozen=True)
class Clash:
    """`second` defines what `first` already defines (`definition`, as `second` spells it)."""

    first: GeneratedFile
    second: GeneratedFile
    definition: Definition

    def diagnostic(self) -> Diagnostic:
        """The model-level report, used when clang cannot locate the clash itself."""
        return Diagnostic(
            Location(self.second.name),
            f"{_spelled(self.definition)} is also defined in {self.first.name} (a duplicate symbol at link time)",
            fails=True,
            file=self.second.name,
            origin=origin(self.second),
        )


def _spelled(definition: Definition) -> str:
    if isinstance(definition, FunctionDefinition):
        return f"{definition.head.name}()"
    signature = definition.signature
    arguments = ", ".join(spell_template_argument(argument) for argument in signature.template_arguments)
    return f"{signature.name}<{arguments}>"


def _key(scope: tuple[str, ...], definition: Definition) -> tuple[object, ...]:
    """What a definition defines: its entity and template arguments, or for a plain function its name
    and parameter types (an overload of another parameter list is another function)."""
    if isinstance(definition, FunctionDefinition):
        parameters = tuple(repr(parameter.type) for parameter in definition.head.parameters)
        return ((*scope, definition.head.name.text), parameters)
    signature = definition.signature
    name = tuple(part.text for part in signature.name.parts)
    return ((*(() if signature.name.absolute else scope), *name), signature.template_arguments)


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
    for generated in files:
        if generated.aggregator:
            continue  # an aggregator's definitions are its members'
        for scope, definition in _definitions(generated.unit.declarations, (), macros_of(generated)):
            first = seen.setdefault(_key(scope, definition), generated)
            if first.name != generated.name:
                clashes.append(Clash(first, generated, definition))
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
    the run's `defines` (`NAME` or `NAME=VALUE`). Read once per contract, keyed by identity, because
    hashing a contract walks its whole tree and many files share one."""

    def __init__(self, defines: Sequence[str] = ()) -> None:
        self.given = dict(map(split_define, defines))
        self._by_contract: dict[int, dict[str, str]] = {}

    def __call__(self, generated: GeneratedFile) -> dict[str, str]:
        contract = generated.contract
        if id(contract) not in self._by_contract:
            self._by_contract[id(contract)] = {**contract_macros(contract), **self.given}
        return self._by_contract[id(contract)]


def namespace_parts(name: Identifier | QualifiedName | MacroName, macros: Mapping[str, str]) -> tuple[str, ...]:
    """A namespace's name as the compiler sees it: every identifier that names a macro is that
    macro's expansion (a `MacroName` is spelled so on purpose, but a plain identifier expands too),
    and `a::b` is `a`, then `b`."""
    written = [part.text for part in name.parts] if isinstance(name, QualifiedName) else [name.text]
    return tuple(component for part in written for component in macros.get(part, part).split("::"))


def _definitions(
    declarations: Iterable[Declaration], scope: tuple[str, ...], macros: Mapping[str, str]
) -> Iterator[tuple[tuple[str, ...], Definition]]:
    for node in declarations:
        if isinstance(node, Namespace):
            yield from _definitions(node.body, (*scope, *namespace_parts(node.name, macros)), macros)
        elif isinstance(node, ExplicitSpecialization) or (isinstance(node, ExplicitInstantiation) and not node.extern):
            yield scope, node
        elif isinstance(node, FunctionDefinition) and not node.head.template_parameters and not node.head.static:
            # A template may be defined in every file that uses it, and a `static` function is each
            # file's own; any other function defined twice is two definitions of one symbol.
            yield scope, node
        elif isinstance(node, MacroInvocation):
            # A function-like macro's invocation defines what its expansion instantiates.
            yield from _definitions(node.expansion(), scope, macros)
        elif isinstance(node, (IfNotDefined, IfDefined)):
            yield from _definitions(node.body, scope, macros)


def refuse_guard_defines(files: Sequence[GeneratedFile], options: VerifyOptions) -> None:
    """Refuse a `--define` (or `--clang-arg -D`) of a macro a file tests with `#ifndef`."""
    guards = {
        str(node.macro) for generated in files for node in generated.unit.walk() if isinstance(node, IfNotDefined)
    }
    for define in options.effective_defines:
        name = define.split("=", 1)[0]
        if name in guards:
            raise UsageError(
                f"--define {define}: the generated files guard code with `#ifndef {name}`; defining it"
                " would skip that code unverified"
            )
