"""Template declarations and what instantiates them: primary function templates, explicit
specializations and instantiations (function-like macros that expand to instantiations are in
`flashast.macros`).

These are nodes like those in `flashast.nodes`, which re-exports every name here and holds the
closed `Declaration` union they belong to; they live apart only to keep each module readable. A
template is where arguments are checked: every specialization, instantiation, call and macro
invocation a kind builds goes through the template (or the macro) it names, so a wrong arity or a
wrong kind of argument is a `ModelError` when the node is made.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flashast.errors import ModelError
from flashast.fields import (
    as_atom,
    as_flag,
    as_layout,
    as_trailing_comment,
    as_tuple,
    store_fields,
)
from flashast.names import Identifier, InlineComment, QualifiedName, TrailingComment, TypeName
from flashast.signatures import (
    CallStatement,
    FunctionSignature,
    Parameter,
    TemplateArgument,
    TemplateArgumentValue,
    TemplateParameter,
    Type,
    TypeArg,
    as_type,
    bind_template_arguments,
    is_call,
    is_parameter,
    is_template_parameter,
    substitute_parameters,
)
from flashast.style import DEFAULT_LAYOUT, Layout


@dataclass(frozen=True, slots=True, init=False)
class ExplicitSpecialization:
    """`template<> signature { calls }` — a full specialization with a body of forwarding calls."""

    signature: FunctionSignature
    body: tuple[CallStatement, ...]
    layout: Layout

    def __init__(
        self, signature: FunctionSignature, body: Iterable[CallStatement] = (), layout: Layout = DEFAULT_LAYOUT
    ) -> None:
        if not isinstance(signature, FunctionSignature):
            raise ModelError("ExplicitSpecialization", "signature", signature, "must be a FunctionSignature")
        calls = as_tuple(self, "body", body, is_call, "CallStatement")
        known = {parameter.name for parameter in signature.parameters}
        for statement in calls:
            for argument in statement.arguments:
                if argument not in known:
                    problem = f"is not a parameter of {signature.name}"
                    raise ModelError("ExplicitSpecialization", "body", argument.text, problem)
        store_fields(self, signature=signature, body=calls, layout=as_layout(self, layout))


@dataclass(frozen=True, slots=True, init=False)
class ExplicitInstantiation:
    """`template signature;`, or with `extern=True` the explicit instantiation declaration;
    `comment` trails it on its (last) line."""

    signature: FunctionSignature
    extern: bool
    layout: Layout
    comment: TrailingComment | None

    def __init__(
        self,
        signature: FunctionSignature,
        extern: bool = False,
        layout: Layout = DEFAULT_LAYOUT,
        comment: TrailingComment | str | None = None,
    ) -> None:
        if not isinstance(signature, FunctionSignature):
            raise ModelError("ExplicitInstantiation", "signature", signature, "must be a FunctionSignature")
        store_fields(
            self, signature=signature, extern=as_flag(self, "extern", extern), layout=as_layout(self, layout),
            comment=as_trailing_comment(self, comment),
        )


@dataclass(frozen=True, slots=True, init=False)
class FunctionTemplate:
    """A primary function template, as a contract declares it; `defined` adds an empty body.

    Kinds build their specializations, instantiations and calls through `specialize`, `instantiate`
    and `call`, so the template arguments are checked against these parameters when the node is
    made and the parameter list cannot drift from the contract.
    """

    template_parameters: tuple[TemplateParameter, ...]
    return_type: Type
    name: Identifier
    parameters: tuple[Parameter, ...]
    defined: bool

    def __init__(
        self,
        template_parameters: Iterable[TemplateParameter],
        return_type: Type | TypeName | str,
        name: Identifier | str,
        parameters: Iterable[Parameter] = (),
        defined: bool = False,
    ) -> None:
        store_fields(
            self,
            template_parameters=as_tuple(
                self, "template_parameters", template_parameters, is_template_parameter, "template parameter"
            ),
            return_type=as_type(self, "return_type", return_type),
            name=as_atom(self, "name", name, Identifier),
            parameters=as_tuple(self, "parameters", parameters, is_parameter, "Parameter"),
            defined=as_flag(self, "defined", defined),
        )

    def _bind(self, template_arguments: Iterable[TemplateArgumentValue]) -> tuple[TemplateArgument, ...]:
        return bind_template_arguments(f"FunctionTemplate({self.name})", self.template_parameters, template_arguments)

    def signature(self, *template_arguments: TemplateArgumentValue, labelled: bool = False) -> FunctionSignature:
        """This template's declarator with the given template arguments, checked against its parameters.

        A function parameter whose type is a template type parameter is spelled with its argument.
        `labelled` puts each template parameter's name before its argument: `/*Headdim=*/128`.
        """
        arguments = self._bind(template_arguments)
        return FunctionSignature(
            self.return_type, QualifiedName((self.name,)), arguments, self.declarator_parameters(arguments),
            self.labels()[: len(arguments)] if labelled else (),
        )

    def declarator_parameters(self, arguments: tuple[TemplateArgument | MacroParameter, ...]) -> tuple[Parameter, ...]:
        """The function parameters as a declarator with these template arguments spells them."""
        bindings: dict[Identifier, TypeName | None] = {}
        for parameter, argument in zip(self.template_parameters, arguments, strict=False):
            if isinstance(argument, MacroParameter):
                bindings[parameter.name] = QualifiedName((argument.name,))
            elif isinstance(argument, TypeArg):
                bindings[parameter.name] = None if argument.arguments else argument.type
        return substitute_parameters(f"FunctionTemplate({self.name})", self.parameters, bindings)

    def labels(self) -> tuple[InlineComment, ...]:
        """`/*Name=*/` for each template parameter: the comments a `labelled` signature carries."""
        return tuple(InlineComment(f"{parameter.name}=") for parameter in self.template_parameters)

    def specialize(
        self, *template_arguments: TemplateArgumentValue, body: Iterable[CallStatement] = (),
        layout: Layout = DEFAULT_LAYOUT, labelled: bool = False,
    ) -> ExplicitSpecialization:
        return ExplicitSpecialization(self.signature(*template_arguments, labelled=labelled), body, layout)

    def instantiate(
        self, *template_arguments: TemplateArgumentValue, extern: bool = False, layout: Layout = DEFAULT_LAYOUT,
        labelled: bool = False, comment: TrailingComment | str | None = None,
    ) -> ExplicitInstantiation:
        return ExplicitInstantiation(self.signature(*template_arguments, labelled=labelled), extern, layout, comment)

    def call(
        self, *template_arguments: TemplateArgumentValue, arguments: Iterable[Identifier | str] | None = None
    ) -> CallStatement:
        """A call forwarding `arguments` (by default every parameter of this template, in order)."""
        names = tuple(parameter.name for parameter in self.parameters) if arguments is None else tuple(arguments)
        return CallStatement(QualifiedName((self.name,)), self._bind(template_arguments), names)


# Function-like macros ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class MacroParameter:
    """Where a function-like macro's expansion takes the argument of its parameter `name`."""

    name: Identifier

    def __init__(self, name: Identifier | str) -> None:
        store_fields(self, name=as_atom(self, "name", name, Identifier))
