"""The one walk over a unit's declarations, with the namespaces and guards each one sits in.

Two readers of the model need "what does this file define, and where": the duplicate-symbol check
(`flashast.verify.checks`) and the dispatch check's reading of what files provide
(`flashast.verify.dispatch.provided`). They read it through `definitions` so that both see the same nodes in
the same scopes; what each does with a definition (ignore its guards, skip an `extern template`) is
its own business, and how each names it is `flashast.definition_spelling`. The same walk finds
the function templates a contract's header declares (`declared_templates`), whose default arguments
name a specialization that leaves them out.

A namespace is seen as the compiler sees it: every identifier in its name that names a macro in
effect is that macro's expansion, and `namespace a::b` is `a`, then `b`. `#ifdef`/`#ifndef` sections
are walked into and recorded as guards; an `#if` section (`IfSection`) is not walked, since no reader
evaluates its condition.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

from flashast.names import Identifier, MacroName, QualifiedName
from flashast.nodes import (
    Declaration,
    ExplicitInstantiation,
    ExplicitSpecialization,
    FunctionDefinition,
    FunctionTemplate,
    IfDefined,
    IfNotDefined,
    MacroInvocation,
    Namespace,
    TranslationUnit,
)

# What a file may define at namespace level that other files can clash with or a dispatcher can need;
# a dispatcher needs templates' specializations and instantiations only.
TemplateDefinitionNode = ExplicitSpecialization | ExplicitInstantiation
DefinitionNode = TemplateDefinitionNode | FunctionDefinition


@dataclass(frozen=True)
class Guard:
    """A conditional around a definition: compiled when `macro` is defined (`#ifdef`) or not (`#ifndef`)."""

    macro: str
    defined: bool

    def holds(self, macros: Collection[str]) -> bool:
        return (self.macro in macros) == self.defined


@dataclass(frozen=True)
class ScopedDefinition:
    """One definition (or `extern template` declaration) of a unit: the namespaces it sits in (macros
    expanded), the guards around it (outermost first), the node, and the function-like macro's
    invocation that wrote it when it is part of an expansion (else None)."""

    scope: tuple[str, ...]
    guards: tuple[Guard, ...]
    node: DefinitionNode
    written: MacroInvocation | None = None


def definitions(unit: TranslationUnit, macros: Mapping[str, str]) -> Iterator[ScopedDefinition]:
    """Every explicit specialization, explicit instantiation (an `extern` one included) and function
    definition of `unit`, in file order, the expansion of each function-like macro's invocation
    included; `macros` (name to replacement) are the object-like macros in effect for the file."""
    for scope, guards, node in _scoped(unit, macros):
        if isinstance(node, (ExplicitSpecialization, ExplicitInstantiation, FunctionDefinition)):
            yield ScopedDefinition(scope, guards, node)
        elif isinstance(node, MacroInvocation):
            for instantiation in node.expansion():
                yield ScopedDefinition(scope, guards, instantiation, written=node)


def declared_templates(unit: TranslationUnit, macros: Mapping[str, str]) -> Iterator[tuple[str, FunctionTemplate]]:
    """Each primary function template `unit` (a contract's header) declares, by its qualified name."""
    for scope, _, node in _scoped(unit, macros):
        if isinstance(node, FunctionTemplate):
            yield "::".join((*scope, node.name.text)), node


def _scoped(
    unit: TranslationUnit, macros: Mapping[str, str]
) -> Iterator[tuple[tuple[str, ...], tuple[Guard, ...], Declaration]]:
    """Every declaration that is not a namespace or a guard, with the namespaces and guards it sits in."""
    stack: list[tuple[Declaration, tuple[str, ...], tuple[Guard, ...]]] = [
        (node, (), ()) for node in reversed(unit.declarations)]
    while stack:
        node, scope, guards = stack.pop()
        if isinstance(node, Namespace):
            inner = (*scope, *namespace_parts(node.name, macros))
            stack.extend((child, inner, guards) for child in reversed(node.body))
        elif isinstance(node, (IfNotDefined, IfDefined)):
            guard = Guard(node.macro.text, isinstance(node, IfDefined))
            stack.extend((child, scope, (*guards, guard)) for child in reversed(node.body))
        else:
            yield scope, guards, node


def namespace_parts(name: Identifier | QualifiedName | MacroName, macros: Mapping[str, str]) -> tuple[str, ...]:
    """A namespace's name as the compiler sees it: every identifier that names a macro is that
    macro's expansion (a `MacroName` is spelled so on purpose, but a plain identifier expands too),
    and `a::b` is `a`, then `b`."""
    written = [part.text for part in name.parts] if isinstance(name, QualifiedName) else [name.text]
    return tuple(component for part in written for component in macros.get(part, part).split("::"))
