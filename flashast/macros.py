"""Function-like macros whose replacement is explicit instantiations
(`#define DECL_X_CASE(D, T) template void f<D, T>(…)`), and their invocations.

Nodes like those in `flashast.nodes`, which re-exports every name here. A macro is checked against
the function template its replacement instantiates when it is made, and an invocation against the
macro, so a drifted arity or a wrong kind of argument is a `ModelError` when a kind builds the file,
not an nvcc error an hour into a build.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeGuard

from flashast.enumerations import EnumeratorArg
from flashast.errors import ModelError
from flashast.fields import (
    as_atom,
    as_trailing_comment,
    as_tuple,
    store_fields,
)
from flashast.names import Identifier, MacroName, QualifiedName, TrailingComment
from flashast.signatures import (
    BoolArg,
    IntArg,
    TemplateArgument,
    TemplateArgumentValue,
    TemplateParameter,
    Type,
    TypeArg,
    TypeParameter,
    bind_template_argument,
    check_arity,
)
from flashast.templates import ExplicitInstantiation, FunctionTemplate, MacroParameter


def _is_pattern_argument(value: object) -> TypeGuard[TemplateArgumentValue | MacroParameter]:
    return isinstance(value, (MacroParameter, TypeArg, IntArg, BoolArg, EnumeratorArg, QualifiedName, str, int))


@dataclass(frozen=True, slots=True, init=False)
class MacroInstantiation:
    """One explicit instantiation definition a function-like macro expands to: `template` with these
    arguments, each a fixed template argument or a `MacroParameter` (`f<D, GGML_PREC_Q4>(…)`).

    Fixed arguments are checked against the template's parameters here; a macro parameter's argument
    is checked when the macro is invoked (`FunctionMacro.invoke`).
    """

    template: FunctionTemplate
    arguments: tuple[TemplateArgument | MacroParameter, ...]

    def __init__(
        self, template: FunctionTemplate, arguments: Iterable[TemplateArgumentValue | MacroParameter]
    ) -> None:
        if not isinstance(template, FunctionTemplate):
            raise ModelError("MacroInstantiation", "template", template, "must be a FunctionTemplate")
        given = as_tuple(self, "arguments", arguments, _is_pattern_argument, "template argument or MacroParameter")
        owner = f"MacroInstantiation({template.name})"
        check_arity(owner, template.template_parameters, given)
        bound = tuple(
            value if isinstance(value, MacroParameter) else bind_template_argument(owner, parameter, value)
            for parameter, value in zip(template.template_parameters, given, strict=False)
        )
        store_fields(self, template=template, arguments=bound)

    def parameter_fed(self, name: Identifier) -> TemplateParameter | None:
        """The first template parameter the macro parameter `name` is the argument of here, if any."""
        fed = self.parameters_fed(name)
        return fed[0] if fed else None

    def parameters_fed(self, name: Identifier) -> tuple[TemplateParameter, ...]:
        """Every template parameter the macro parameter `name` is the argument of here (`f<P, P>`
        feeds two), so a macro can check that they all take the same kind of argument."""
        return tuple(
            parameter for parameter, argument in zip(self.template.template_parameters, self.arguments, strict=False)
            if isinstance(argument, MacroParameter) and argument.name == name
        )

    def fixed_names(self) -> set[Identifier]:
        """Every identifier the expansion spells outside a macro parameter's places (a template
        argument, or a function parameter's type that is a template type parameter it binds)."""
        template = self.template
        by_macro = {parameter.name for parameter, argument in zip(template.template_parameters, self.arguments,
                                                                  strict=False) if isinstance(argument, MacroParameter)}
        names = {template.name, *_type_names(template.return_type)}
        for declared, spelled in zip(template.parameters, template.declarator_parameters(self.arguments), strict=True):
            names.add(spelled.name)
            declared_name = declared.type.name
            if not (isinstance(declared_name, QualifiedName) and not declared_name.absolute
                    and len(declared_name.parts) == 1 and declared_name.last in by_macro):
                names |= _type_names(spelled.type)
        for argument in self.arguments:
            if not isinstance(argument, MacroParameter):
                names |= _argument_names(argument)
        return names


def _type_names(type_: Type) -> set[Identifier]:
    return set(type_.name.parts) if isinstance(type_.name, QualifiedName) else set()


def _argument_names(argument: TemplateArgument) -> set[Identifier]:
    match argument:
        case TypeArg(type=name, arguments=arguments):
            inner = set().union(*(_argument_names(item) for item in arguments)) if arguments else set()
            return (set(name.parts) if isinstance(name, QualifiedName) else set()) | inner
        case EnumeratorArg(enumeration=enumeration, enumerator=enumerator):
            return {enumerator, enumeration.name} if enumeration.scoped else {enumerator}
        case _:
            return set()


def _is_instantiation(value: object) -> TypeGuard[MacroInstantiation]:
    return isinstance(value, MacroInstantiation)


@dataclass(frozen=True, slots=True, init=False)
class FunctionMacro:
    """`#define NAME(P, …) template R f<P, …>(parameters)`: a function-like macro as a contract defines it.

    Its replacement is typed: one or more explicit instantiations (`MacroInstantiation`) of templates
    the contract declares, taking the macro's parameters as template arguments, several joined by `;`
    (an invocation `NAME(…);` supplies the last one). So the model knows what an invocation means
    (`expand`) and checks its arguments on construction, and verification parses the very text this
    prints: clang reports a missing macro, a wrong arity and an expansion that does not instantiate
    the declared template at the invocation's line. Every parameter must be used, always as the
    argument of template parameters of one kind, and no other identifier of the replacement may be
    spelled like a parameter (the preprocessor would replace it too).
    """

    name: MacroName
    parameters: tuple[Identifier, ...]
    expansion: tuple[MacroInstantiation, ...]

    def __init__(
        self,
        name: MacroName | str,
        parameters: Iterable[Identifier | str],
        expansion: MacroInstantiation | Iterable[MacroInstantiation],
    ) -> None:
        names = as_tuple(self, "parameters", parameters, _is_identifier_or_text, "parameter name")
        checked = tuple(as_atom(self, "parameters", parameter, Identifier) for parameter in names)
        for parameter in checked:
            if checked.count(parameter) > 1:
                raise ModelError("FunctionMacro", "parameters", parameter.text, "macro parameter names must be unique")
        steps = (expansion,) if isinstance(expansion, MacroInstantiation) else expansion
        instantiations = as_tuple(self, "expansion", steps, _is_instantiation, "MacroInstantiation")
        if not instantiations:
            raise ModelError("FunctionMacro", "expansion", instantiations, "needs at least one MacroInstantiation")
        for instantiation in instantiations:
            for argument in instantiation.arguments:
                if isinstance(argument, MacroParameter) and argument.name not in checked:
                    problem = "is not a parameter of the macro"
                    raise ModelError("FunctionMacro", "expansion", argument.name.text, problem)
            clashes = sorted(name.text for name in instantiation.fixed_names() & set(checked))
            if clashes:
                problem = "the replacement spells it elsewhere too, where the preprocessor would replace it"
                raise ModelError("FunctionMacro", "parameters", clashes[0], problem)
        store_fields(self, name=as_atom(self, "name", name, MacroName), parameters=checked, expansion=instantiations)
        for parameter in checked:
            # Every place counts, within one instantiation too (`f<P, P>` with an int and a type
            # parameter): an invocation's argument is bound by the first, so it must suit them all.
            fed = [found for step in instantiations for found in step.parameters_fed(parameter)]
            if not fed:
                raise ModelError("FunctionMacro", "parameters", parameter.text, "is not used in the expansion")
            if any(_kind_of(other) != _kind_of(fed[0]) for other in fed):
                problem = "feeds template parameters of different kinds"
                raise ModelError("FunctionMacro", "parameters", parameter.text, problem)

    def _first_fed(self, parameter: Identifier) -> TemplateParameter:
        return next(found for step in self.expansion if (found := step.parameter_fed(parameter)) is not None)

    def invoke(
        self, *arguments: TemplateArgumentValue, widths: Iterable[int] = (),
        comment: TrailingComment | str | None = None,
    ) -> MacroInvocation:
        """`NAME(arguments);`, each argument checked against the template parameter it feeds."""
        return MacroInvocation(self, arguments, widths=widths, comment=comment)

    def bind(self, arguments: Iterable[TemplateArgumentValue]) -> tuple[TemplateArgument, ...]:
        """The invocation's arguments, typed by the template parameters they feed."""
        values = tuple(arguments)
        owner = f"FunctionMacro({self.name})"
        if len(values) != len(self.parameters):
            problem = f"expects {len(self.parameters)} macro arguments, got {len(values)}"
            raise ModelError(owner, "arguments", values, problem)
        return tuple(
            bind_template_argument(owner, self._first_fed(parameter), value)
            for parameter, value in zip(self.parameters, values, strict=True)
        )

    def expand(self, arguments: Iterable[TemplateArgumentValue]) -> tuple[ExplicitInstantiation, ...]:
        """What an invocation with `arguments` declares: its explicit instantiation definitions."""
        given = dict(zip(self.parameters, self.bind(arguments), strict=True))
        return tuple(
            step.template.instantiate(*(given[argument.name] if isinstance(argument, MacroParameter) else argument
                                        for argument in step.arguments))
            for step in self.expansion
        )


def _kind_of(parameter: TemplateParameter) -> object:
    return "type" if isinstance(parameter, TypeParameter) else parameter.kind


@dataclass(frozen=True, slots=True, init=False)
class MacroInvocation:
    """`NAME(128, GGML_TYPE_F16);` at file scope: an invocation of a `FunctionMacro`.

    The arguments are checked on construction against the template parameters each macro parameter
    feeds (an int, a type, an enumerator of the right enumeration), so `expansion()` is what the
    invocation declares. A template-id argument is refused: the comma inside `<…>` would split it into
    two macro arguments. `widths` right-aligns the first arguments to those widths (`( 64,` beside
    `(128,`, 0: no padding). The invocation always ends with `;`: a `FunctionMacro`'s replacement
    leaves its last instantiation for the invocation to end, so one without would not compile.
    """

    macro: FunctionMacro
    arguments: tuple[TemplateArgument, ...]
    widths: tuple[int, ...]
    comment: TrailingComment | None

    def __init__(
        self,
        macro: FunctionMacro,
        arguments: Iterable[TemplateArgumentValue],
        widths: Iterable[int] = (),
        comment: TrailingComment | str | None = None,
    ) -> None:
        if not isinstance(macro, FunctionMacro):
            raise ModelError("MacroInvocation", "macro", macro, "must be a FunctionMacro")
        if isinstance(arguments, (str, bytes)) or not isinstance(arguments, Iterable):
            raise ModelError("MacroInvocation", "arguments", arguments, "must be a sequence of template arguments")
        bound = macro.bind(arguments)
        for argument in bound:
            if isinstance(argument, TypeArg) and argument.arguments:
                problem = "a template-id's ',' would split it into two macro arguments"
                raise ModelError("MacroInvocation", "arguments", argument, problem)
        padding = as_tuple(self, "widths", widths, _is_width, "width (an int from 0 to 80)")
        if len(padding) > len(bound):
            raise ModelError("MacroInvocation", "widths", padding, f"more widths than the {len(bound)} arguments")
        store_fields(
            self, macro=macro, arguments=bound, widths=padding, comment=as_trailing_comment(self, comment),
        )

    def expansion(self) -> tuple[ExplicitInstantiation, ...]:
        """The explicit instantiation definitions this invocation declares."""
        return self.macro.expand(self.arguments)


def _is_width(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 80


def _is_identifier_or_text(value: object) -> TypeGuard[Identifier | str]:
    return isinstance(value, (Identifier, str))
