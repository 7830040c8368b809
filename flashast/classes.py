"""Class templates and variable templates, as a contract declares what generated definitions use.

A kernel wrapper names its kernel class through a template-id (`AttentionKernel<float, …>::Params`,
`…::kNumThreads`, `…::attention_kernel(p)`). The contract declares that class template with the
members the files use, and kinds build those names through it: `ClassTemplate.template_id` binds the
arguments against its parameters (a wrong arity or kind of argument is a `ModelError` when the node
is made) and `ClassTemplate.member` also refuses a member the class does not declare. What the
contract declares is then checked by libclang against each generated line that uses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeGuard

from flashast.definitions import FunctionDeclaration
from flashast.errors import ModelError
from flashast.expressions import Expression, Name, TemplateId, as_expression
from flashast.fields import as_atom, as_tuple, store_fields
from flashast.names import Identifier, TypeName
from flashast.signatures import (
    TemplateArgumentValue,
    TemplateParameter,
    Type,
    as_type,
    bind_template_arguments,
    is_template_parameter,
)


@dataclass(frozen=True, slots=True, init=False)
class StaticDataMember:
    """`static constexpr int kNumThreads = 128;` — a class's compile-time constant."""

    type: Type
    name: Identifier
    value: Expression

    def __init__(self, type: Type | TypeName | str, name: Identifier | str, value: Expression | int | bool) -> None:
        store_fields(
            self, type=as_type(self, "type", type), name=as_atom(self, "name", name, Identifier),
            value=as_expression(self, "value", value),
        )


def _as_template_parameters(owner: object, parameters: object) -> tuple[TemplateParameter, ...]:
    return as_tuple(owner, "template_parameters", parameters, is_template_parameter, "template parameter")


def _is_member(value: object) -> TypeGuard[Member]:
    return isinstance(value, (ClassDefinition, StaticDataMember, FunctionDeclaration))


def _as_members(owner: object, members: object) -> tuple[Member, ...]:
    what = "ClassDefinition, StaticDataMember or FunctionDeclaration"
    checked = as_tuple(owner, "members", members, _is_member, what)
    names = [member_name(member) for member in checked]
    for name in names:
        if names.count(name) > 1:
            # Overloads would be C++, but no contract here needs them, and a repeated name is more
            # often a copy-paste mistake.
            raise ModelError(type(owner).__name__, "members", name.text, "two members have this name")
    return checked


@dataclass(frozen=True, slots=True, init=False)
class ClassDefinition:
    """`struct Name { members };` — as a member (a kernel's `Params`) or at namespace level."""

    name: Identifier
    members: tuple[Member, ...]

    def __init__(self, name: Identifier | str, members: Iterable[Member] = ()) -> None:
        store_fields(self, name=as_atom(self, "name", name, Identifier), members=_as_members(self, members))


Member = ClassDefinition | StaticDataMember | FunctionDeclaration


def member_name(member: Member) -> Identifier:
    return member.head.name if isinstance(member, FunctionDeclaration) else member.name


@dataclass(frozen=True, slots=True, init=False)
class ClassTemplate:
    """`template <parameters> struct Name { members };` — a primary class template a contract declares."""

    template_parameters: tuple[TemplateParameter, ...]
    name: Identifier
    members: tuple[Member, ...]

    def __init__(
        self, template_parameters: Iterable[TemplateParameter], name: Identifier | str, members: Iterable[Member] = ()
    ) -> None:
        parameters = _as_template_parameters(self, template_parameters)
        if not parameters:
            raise ModelError("ClassTemplate", "template_parameters", parameters, "a class template needs a parameter")
        store_fields(
            self, template_parameters=parameters, name=as_atom(self, "name", name, Identifier),
            members=_as_members(self, members),
        )

    def template_id(self, *arguments: TemplateArgumentValue) -> TemplateId:
        """`Name<arguments>`, the arguments checked against the template's parameters."""
        owner = f"ClassTemplate({self.name})"
        return TemplateId(self.name, bind_template_arguments(owner, self.template_parameters, arguments))

    def member(self, member: Identifier | str, *arguments: TemplateArgumentValue) -> Name:
        """`Name<arguments>::member`, for a member the class declares."""
        checked = as_atom(self, "member", member, Identifier)
        if checked not in {member_name(declared) for declared in self.members}:
            raise ModelError(f"ClassTemplate({self.name})", "member", checked.text, "the class declares no such member")
        return Name(self.template_id(*arguments), checked)


@dataclass(frozen=True, slots=True, init=False)
class VariableTemplate:
    """`template <parameters> constexpr type name = value;` — such as the `std::is_same_v` a contract
    provides where the real headers include `<type_traits>`."""

    template_parameters: tuple[TemplateParameter, ...]
    type: Type
    name: Identifier
    value: Expression

    def __init__(
        self,
        template_parameters: Iterable[TemplateParameter],
        type: Type | TypeName | str,
        name: Identifier | str,
        value: Expression | int | bool,
    ) -> None:
        parameters = _as_template_parameters(self, template_parameters)
        if not parameters:
            problem = "a variable template needs a parameter"
            raise ModelError("VariableTemplate", "template_parameters", parameters, problem)
        store_fields(
            self, template_parameters=parameters, type=as_type(self, "type", type),
            name=as_atom(self, "name", name, Identifier), value=as_expression(self, "value", value),
        )

    def template_id(self, *arguments: TemplateArgumentValue) -> TemplateId:
        """`name<arguments>` (qualify it with its namespace in a `Name`), the arguments checked."""
        return TemplateId(
            self.name, bind_template_arguments(f"VariableTemplate({self.name})", self.template_parameters, arguments)
        )
