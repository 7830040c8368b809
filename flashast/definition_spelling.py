"""How a definition found by `flashast.scoped_definitions.definitions` is named, for each reader.

- `dispatch_key`: the template and arguments as libclang reads them back from a dispatcher's call
  (`flashast.verify.dispatch.indexer`), so the dispatch check compares the model with the dispatcher as plain
  values: a fully qualified template name, fundamental types as clang spells them, an enumerator by
  its value (libclang reports an enumerator argument as an integer).
- `duplicate_key`: the entity a definition defines at link time, or None for one that no other file's
  definition can clash with. An explicit specialization or instantiation is its `dispatch_key` (one
  name for one specialization in both checks); a plain function is its name and parameter types.
- `diagnostic_name`: how a duplicate-symbol report names a definition (`run_mha_fwd_<half_t, 64>`,
  `kernel()`), as the file writes it.

The three live together so that what the two checks call one entity cannot drift apart; the table in
`tests/test_definition_spelling.py` pins them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from flashast.names import FundamentalType
from flashast.nodes import (
    EnumeratorArg,
    ExplicitInstantiation,
    FunctionDefinition,
    FunctionSignature,
    FunctionTemplate,
    TemplateArgument,
    TypeArg,
    ValueParameter,
)
from flashast.printer import spell_template_argument
from flashast.scoped_definitions import DefinitionNode, TemplateDefinitionNode

# How clang spells fundamental types the model may write another way.
CLANG_SPELLINGS = {"unsigned": "unsigned int"}


# Each template's parameters' default arguments (None: no default), by the template's qualified name.
ParameterDefaults = tuple[TemplateArgument | None, ...]
Defaults = Mapping[str, ParameterDefaults]


def template_defaults(declared: Iterable[tuple[str, FunctionTemplate]]) -> dict[str, ParameterDefaults]:
    """The defaults of the templates a contract declares (`flashast.scoped_definitions.declared_templates`);
    a name declared twice with other defaults (an overload) is left out, since which one a
    specialization names is overload resolution's business."""
    found: dict[str, ParameterDefaults | None] = {}
    for name, template in declared:
        defaults = tuple(parameter.default if isinstance(parameter, ValueParameter) else None
                         for parameter in template.template_parameters)
        found[name] = defaults if found.get(name, defaults) == defaults else None
    return {name: defaults for name, defaults in found.items() if defaults is not None}


def dispatch_key(
    scope: tuple[str, ...], node: TemplateDefinitionNode, defaults: Defaults = MappingProxyType({})
) -> tuple[str, tuple[str, ...]]:
    """`("flash::run_mha_fwd_", ("cutlass::half_t", "128", "true"))` for a specialization or
    instantiation found in `scope`. Trailing arguments the node leaves to their defaults are filled
    in from `defaults`, as clang names the specialization a call makes (`mul_mat_q_case<2, 30>` for
    `mul_mat_q_case<GGML_TYPE_Q4_0>`)."""
    template = "::".join(_qualified_name(scope, node.signature))
    written = node.signature.template_arguments
    left_out = defaults.get(template, ())[len(written):]
    known = tuple(default for default in left_out if default is not None)
    # A parameter left out without a default is not this template's (an overload's, or not C++).
    filled = (*written, *known) if len(known) == len(left_out) else written
    return template, tuple(map(clang_argument, filled))


def duplicate_key(
    scope: tuple[str, ...], node: DefinitionNode, defaults: Defaults = MappingProxyType({})
) -> tuple[object, ...] | None:
    """What a definition found in `scope` defines at link time; None for an `extern template`
    declaration (it defines nothing), a function template (a template may be defined in every file
    that uses it) and a `static` function (each file's own). `defaults` as for `dispatch_key`."""
    if isinstance(node, FunctionDefinition):
        if node.head.template_parameters or node.head.static:
            return None
        # An overload with another parameter list is another function.
        parameters = tuple(repr(parameter.type) for parameter in node.head.parameters)
        return (*scope, node.head.name.text), parameters
    if isinstance(node, ExplicitInstantiation) and node.extern:
        return None
    # The specialization a dispatcher would call: arguments compared as clang reads them, so
    # `f<unsigned>` and `f<unsigned int>` in two files are one symbol defined twice.
    return dispatch_key(scope, node, defaults)


def diagnostic_name(node: DefinitionNode) -> str:
    """The definition as a duplicate-symbol report names it, unqualified as the file writes it."""
    if isinstance(node, FunctionDefinition):
        return f"{node.head.name}()"
    arguments = ", ".join(spell_template_argument(argument) for argument in node.signature.template_arguments)
    return f"{node.signature.name}<{arguments}>"


def clang_argument(argument: TemplateArgument) -> str:
    """A template argument as libclang reads it back from a call: a fundamental type as clang spells
    it (also inside a template-id: `Tile<unsigned int>`), an enumerator by its value (libclang reports
    an enumerator argument as an integer, but spells one inside a template-id by its name), anything
    else as the printer writes it."""
    if isinstance(argument, EnumeratorArg):
        return str(argument.enumeration.value_of(argument.enumerator))
    return _clang_type_argument(argument)


def _clang_type_argument(argument: TemplateArgument) -> str:
    if isinstance(argument, TypeArg) and isinstance(argument.type, FundamentalType):
        return CLANG_SPELLINGS.get(argument.type.text, argument.type.text)
    if isinstance(argument, TypeArg) and argument.arguments:
        # `>>` closes two lists, as clang prints it (C++11).
        return f"{argument.type}<{', '.join(map(_clang_type_argument, argument.arguments))}>"
    return spell_template_argument(argument)


def _qualified_name(scope: tuple[str, ...], signature: FunctionSignature) -> tuple[str, ...]:
    """The template a signature specializes or instantiates, `scope` first unless it is written with a
    leading `::`."""
    return (*(() if signature.name.absolute else scope), *(part.text for part in signature.name.parts))
