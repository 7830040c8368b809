"""Function definitions and declarations with CUDA specifiers: `__global__ void __launch_bounds__(…) k(…) {…}`.

A `FunctionHead` is everything before the body: template parameters (none for a plain function), CUDA
specifiers, `static`, the return type, `__launch_bounds__(…)`, the name and the parameters (with
default arguments, and types reached through a template-id with `typename`). A `FunctionDefinition`
is a head and a body of statements; a `FunctionDeclaration` is the head alone, ended by `;` (what a
generated header declares for the `.cu` files that define it). `UsingDirective` is
`using namespace X;`. What a constructor can tell is refused there: a `__global__` function that
returns a value or is also `__host__`/`__device__`, launch bounds on anything but a kernel, a
parameter without a default after one with it, two parameters of one name.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeGuard

from flashast.errors import ModelError
from flashast.expressions import Expression, Name, StringLiteral, as_expression, subexpressions
from flashast.fields import as_atom, as_flag, as_qualified_name, as_tuple, store_fields
from flashast.names import FundamentalType, Identifier, QualifiedName, TypeName
from flashast.signatures import TemplateParameter, Type, as_type, is_template_parameter
from flashast.statements import (
    Block,
    ConditionalStatements,
    IfStatement,
    ReturnStatement,
    Statement,
    as_statements,
)
from flashast.style import check_int


@dataclass(frozen=True, slots=True, init=False)
class TypenameSpecifier:
    """`typename Kernel<…>::Params`: a type named through a scope (usually a template-id). The name
    must be qualified; `typename` before a plain name is not C++."""

    name: Name

    def __init__(self, name: Name) -> None:
        if not isinstance(name, Name):
            raise ModelError("TypenameSpecifier", "name", name, "must be a Name")
        if not name.qualified:
            raise ModelError("TypenameSpecifier", "name", name, "typename needs a qualified name (scope::member)")
        store_fields(self, name=name)


ParameterType = Type | TypenameSpecifier


@dataclass(frozen=True, slots=True, init=False)
class ParameterDeclaration:
    """One parameter of a function definition or declaration: `T cb`, `int cc = 0`,
    `typename Kernel<…>::Params p`."""

    type: ParameterType
    name: Identifier
    default: Expression | None

    def __init__(
        self,
        type: ParameterType | TypeName | str,
        name: Identifier | str,
        default: Expression | int | bool | str | None = None,
    ) -> None:
        checked = type if isinstance(type, TypenameSpecifier) else as_type(self, "type", type)
        store_fields(
            self, type=checked, name=as_atom(self, "name", name, Identifier),
            default=None if default is None else as_expression(self, "default", default),
        )


class CudaSpecifier(enum.Enum):
    """CUDA's function execution-space specifiers (and `__forceinline__`), in the order they print."""

    GLOBAL = "__global__"
    HOST = "__host__"
    DEVICE = "__device__"
    FORCEINLINE = "__forceinline__"


@dataclass(frozen=True, slots=True, init=False)
class LaunchBounds:
    """`__launch_bounds__(max_threads_per_block, min_blocks_per_multiprocessor)`; the second is optional.
    Each is a constant expression (`Kernel<…>::kNumThreads`), never a string."""

    max_threads_per_block: Expression
    min_blocks_per_multiprocessor: Expression | None

    def __init__(
        self, max_threads_per_block: Expression | int, min_blocks_per_multiprocessor: Expression | int | None = None
    ) -> None:
        store_fields(
            self, max_threads_per_block=_bound(self, "max_threads_per_block", max_threads_per_block),
            min_blocks_per_multiprocessor=None if min_blocks_per_multiprocessor is None
            else _bound(self, "min_blocks_per_multiprocessor", min_blocks_per_multiprocessor),
        )

    @property
    def arguments(self) -> tuple[Expression, ...]:
        second = () if self.min_blocks_per_multiprocessor is None else (self.min_blocks_per_multiprocessor,)
        return (self.max_threads_per_block, *second)


def _bound(owner: object, field: str, value: object) -> Expression:
    bound = as_expression(owner, field, value)
    if any(isinstance(part, StringLiteral) for part in subexpressions(bound)):
        raise ModelError("LaunchBounds", field, value, "a launch bound is an integer expression, not a string")
    return bound


@dataclass(frozen=True, slots=True)
class DefinitionLayout:
    """How one function definition or declaration is laid out, each option named after clang-format's.

    - `indent_width` (IndentWidth): columns per body level; None (the default) takes the file's
      `Style.indent_width`, a number overrides it for this definition;
    - `break_template_declarations` (BreakTemplateDeclarations: Yes / No): `template <…>` on a line of
      its own, or followed by the declaration on the same line;
    - `space_after_template_keyword` (SpaceAfterTemplateKeyword): `template <` or `template<`; None
      takes the file's `Style.space_after_template_keyword`;
    - `launch_bounds_one_per_line`: `__launch_bounds__(` then each bound on a line of its own,
      `continuation_indent_width` (ContinuationIndentWidth) in, and the declarator on the next line,
      as PyTorch's memory-efficient kernels are written.
    """

    indent_width: int | None = None
    break_template_declarations: bool = True
    space_after_template_keyword: bool | None = None
    launch_bounds_one_per_line: bool = False
    continuation_indent_width: int = 4

    def __post_init__(self) -> None:
        if self.indent_width is not None:
            check_int("DefinitionLayout", "indent_width", self.indent_width, 0, 32)
        check_int("DefinitionLayout", "continuation_indent_width", self.continuation_indent_width, 0, 32)
        for flag in ("break_template_declarations", "launch_bounds_one_per_line"):
            as_flag(self, flag, getattr(self, flag))
        if self.space_after_template_keyword is not None:
            as_flag(self, "space_after_template_keyword", self.space_after_template_keyword)


DEFAULT_DEFINITION_LAYOUT = DefinitionLayout()


def _is_parameter_declaration(value: object) -> TypeGuard[ParameterDeclaration]:
    return isinstance(value, ParameterDeclaration)


def _as_specifiers(values: Iterable[CudaSpecifier | str]) -> tuple[CudaSpecifier, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ModelError("FunctionHead", "specifiers", values, "must be a sequence of CudaSpecifier")
    specifiers: list[CudaSpecifier] = []
    for value in values:
        try:
            specifiers.append(value if isinstance(value, CudaSpecifier) else CudaSpecifier(value))
        except ValueError:
            raise ModelError("FunctionHead", "specifiers", value, "is not a CUDA function specifier") from None
    return tuple(specifiers)


@dataclass(frozen=True, slots=True, init=False)
class FunctionHead:
    """A function's declarator and everything before it (see the module docstring)."""

    template_parameters: tuple[TemplateParameter, ...]
    specifiers: tuple[CudaSpecifier, ...]
    static: bool
    return_type: Type
    launch_bounds: LaunchBounds | None
    name: Identifier
    parameters: tuple[ParameterDeclaration, ...]
    layout: DefinitionLayout

    def __init__(
        self,
        return_type: Type | TypeName | str,
        name: Identifier | str,
        parameters: Iterable[ParameterDeclaration] = (),
        *,
        template_parameters: Iterable[TemplateParameter] = (),
        specifiers: Iterable[CudaSpecifier | str] = (),
        static: bool = False,
        launch_bounds: LaunchBounds | None = None,
        layout: DefinitionLayout = DEFAULT_DEFINITION_LAYOUT,
    ) -> None:
        checked_parameters = as_tuple(self, "parameters", parameters, _is_parameter_declaration, "ParameterDeclaration")
        checked_template_parameters = as_tuple(
            self, "template_parameters", template_parameters, is_template_parameter, "template parameter"
        )
        checked_specifiers = _as_specifiers(specifiers)
        returned = as_type(self, "return_type", return_type)
        _check_specifiers(checked_specifiers, returned)
        if launch_bounds is not None and not isinstance(launch_bounds, LaunchBounds):
            raise ModelError("FunctionHead", "launch_bounds", launch_bounds, "must be a LaunchBounds or None")
        if launch_bounds is not None and CudaSpecifier.GLOBAL not in checked_specifiers:
            problem = "launch bounds apply to __global__ kernels only"
            raise ModelError("FunctionHead", "launch_bounds", launch_bounds, problem)
        _check_unique("parameters", [parameter.name for parameter in checked_parameters])
        _check_unique("template_parameters", [parameter.name for parameter in checked_template_parameters])
        _check_defaults(checked_parameters)
        if not isinstance(layout, DefinitionLayout):
            raise ModelError("FunctionHead", "layout", layout, "must be a DefinitionLayout")
        store_fields(
            self, template_parameters=checked_template_parameters, specifiers=checked_specifiers,
            static=as_flag(self, "static", static), return_type=returned, launch_bounds=launch_bounds,
            name=as_atom(self, "name", name, Identifier), parameters=checked_parameters, layout=layout,
        )

    def reference(self) -> Name:
        """The function's name as an expression (`cb(Kernel<…>(), fmha_kernel_name)` passes it)."""
        return Name(self.name)


def _check_specifiers(specifiers: tuple[CudaSpecifier, ...], return_type: Type) -> None:
    if len(set(specifiers)) != len(specifiers):
        raise ModelError("FunctionHead", "specifiers", specifiers, "a specifier is repeated")
    if list(specifiers) != sorted(specifiers, key=list(CudaSpecifier).index):
        order = ", ".join(specifier.value for specifier in CudaSpecifier)
        raise ModelError("FunctionHead", "specifiers", specifiers, f"specifiers go in the order {order}")
    if CudaSpecifier.GLOBAL in specifiers:
        if CudaSpecifier.HOST in specifiers or CudaSpecifier.DEVICE in specifiers:
            problem = "a __global__ kernel cannot be __host__ or __device__"
            raise ModelError("FunctionHead", "specifiers", specifiers, problem)
        if return_type != Type(FundamentalType("void")):
            raise ModelError("FunctionHead", "return_type", str(return_type.name), "a __global__ kernel returns void")


def _check_unique(field: str, names: list[Identifier]) -> None:
    for name in names:
        if names.count(name) > 1:
            raise ModelError("FunctionHead", field, name.text, "names must be unique")


def _check_defaults(parameters: tuple[ParameterDeclaration, ...]) -> None:
    seen_default = False
    for parameter in parameters:
        if parameter.default is not None:
            seen_default = True
        elif seen_default:
            problem = "a parameter without a default argument cannot follow one with it"
            raise ModelError("FunctionHead", "parameters", parameter.name.text, problem)


@dataclass(frozen=True, slots=True, init=False)
class FunctionDefinition:
    """`head { body }`: a kernel, a kernel wrapper or a dispatch function template."""

    head: FunctionHead
    body: tuple[Statement, ...]

    def __init__(self, head: FunctionHead, body: Iterable[Statement] = ()) -> None:
        if not isinstance(head, FunctionHead):
            raise ModelError("FunctionDefinition", "head", head, "must be a FunctionHead")
        statements = as_statements(self, "body", body)
        returns_void = head.return_type == Type(FundamentalType("void"))
        for statement in _returns(statements):
            if returns_void and statement.value is not None:
                raise ModelError("FunctionDefinition", "body", statement, f"{head.name} returns void")
            if not returns_void and statement.value is None:
                raise ModelError("FunctionDefinition", "body", statement, f"{head.name} must return a value")
        store_fields(self, head=head, body=statements)

    def declaration(self) -> FunctionDeclaration:
        """The same head, declared: what a header says about a function a source file defines."""
        return FunctionDeclaration(self.head)


def _returns(statements: Iterable[Statement]) -> Iterator[ReturnStatement]:
    """Every `return` of a body, in nested blocks, `if`s and preprocessor sections too."""
    for statement in statements:
        match statement:
            case ReturnStatement():
                yield statement
            case Block(statements=inner) | ConditionalStatements(body=inner):
                yield from _returns(inner)
            case IfStatement(body=body, else_body=else_body):
                yield from _returns((body,) if else_body is None else (body, else_body))
            case _:
                pass


@dataclass(frozen=True, slots=True, init=False)
class FunctionDeclaration:
    """`head;`: a function declared (in a generated header, or a contract's class)."""

    head: FunctionHead

    def __init__(self, head: FunctionHead) -> None:
        if not isinstance(head, FunctionHead):
            raise ModelError("FunctionDeclaration", "head", head, "must be a FunctionHead")
        store_fields(self, head=head)


@dataclass(frozen=True, slots=True, init=False)
class UsingDirective:
    """`using namespace name;`."""

    namespace: QualifiedName

    def __init__(self, namespace: QualifiedName | Identifier | str) -> None:
        store_fields(self, namespace=as_qualified_name(self, "namespace", namespace))
