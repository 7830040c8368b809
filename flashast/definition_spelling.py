"""How a definition found by `flashast.scoped_definitions.definitions` is named, for each reader.

- `dispatch_key`: the template and arguments as libclang reads them back from a dispatcher's call
  (`flashast.verify.indexer`), so the dispatch check compares the model with the dispatcher as plain
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

from flashast.names import FundamentalType
from flashast.nodes import (
    EnumeratorArg,
    ExplicitInstantiation,
    FunctionDefinition,
    FunctionSignature,
    TemplateArgument,
    TypeArg,
)
from flashast.printer import spell_template_argument
from flashast.scoped_definitions import DefinitionNode, TemplateDefinitionNode

# How clang spells fundamental types the model may write another way.
CLANG_SPELLINGS = {"unsigned": "unsigned int"}


def dispatch_key(scope: tuple[str, ...], node: TemplateDefinitionNode) -> tuple[str, tuple[str, ...]]:
    """`("flash::run_mha_fwd_", ("cutlass::half_t", "128", "true"))` for a specialization or
    instantiation found in `scope`."""
    arguments = tuple(map(clang_argument, node.signature.template_arguments))
    return "::".join(_qualified_name(scope, node.signature)), arguments


def duplicate_key(scope: tuple[str, ...], node: DefinitionNode) -> tuple[object, ...] | None:
    """What a definition found in `scope` defines at link time; None for an `extern template`
    declaration (it defines nothing), a function template (a template may be defined in every file
    that uses it) and a `static` function (each file's own)."""
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
    return dispatch_key(scope, node)


def diagnostic_name(node: DefinitionNode) -> str:
    """The definition as a duplicate-symbol report names it, unqualified as the file writes it."""
    if isinstance(node, FunctionDefinition):
        return f"{node.head.name}()"
    arguments = ", ".join(spell_template_argument(argument) for argument in node.signature.template_arguments)
    return f"{node.signature.name}<{arguments}>"


def clang_argument(argument: TemplateArgument) -> str:
    """A template argument as libclang reads it back: a fundamental type as clang spells it, an
    enumerator by its value, anything else as the printer writes it."""
    if isinstance(argument, TypeArg) and isinstance(argument.type, FundamentalType) and not argument.arguments:
        return CLANG_SPELLINGS.get(argument.type.text, argument.type.text)
    if isinstance(argument, EnumeratorArg):
        return str(argument.enumeration.value_of(argument.enumerator))
    return spell_template_argument(argument)


def _qualified_name(scope: tuple[str, ...], signature: FunctionSignature) -> tuple[str, ...]:
    """The template a signature specializes or instantiates, `scope` first unless it is written with a
    leading `::`."""
    return (*(() if signature.name.absolute else scope), *(part.text for part in signature.name.parts))
