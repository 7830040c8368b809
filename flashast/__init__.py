"""flashast: typed C++ for flash-attention kernel instantiation files, verified with libclang.

The public API: nodes to build translation units, `render` to print them, and kinds, presets and a
registry to generate whole trees. Importing flashast loads neither libclang nor any plugin.
`__all__` is the one list of public names; a test checks that each is importable from here.
"""

from __future__ import annotations

from flashast.axes import AxisValue, Configuration
from flashast.contract import Contract
from flashast.errors import FlashastError, ModelError, PluginError, UsageError, VerificationError
from flashast.generated import GeneratedFile
from flashast.kinds import Kind, Preset
from flashast.names import FileName, FundamentalType, Identifier, IncludePath, MacroName, QualifiedName
from flashast.nodes import (
    BlankLine,
    BoolArg,
    CallStatement,
    ClassDeclaration,
    Declaration,
    Declarator,
    ExplicitInstantiation,
    ExplicitSpecialization,
    FunctionSignature,
    FunctionTemplate,
    IfDefined,
    IfNotDefined,
    Include,
    IntArg,
    LineComment,
    MacroDefinition,
    Namespace,
    Parameter,
    PragmaOnce,
    TemplateArgument,
    TranslationUnit,
    Type,
    TypeAlias,
    TypeArg,
    TypeParameter,
    ValueKind,
    ValueParameter,
    Verbatim,
)
from flashast.printer import render
from flashast.registry import Registry, default_registry
from flashast.style import Style

__version__ = "0.1.0"

__all__ = [
    "AxisValue",
    "BlankLine",
    "BoolArg",
    "CallStatement",
    "ClassDeclaration",
    "Configuration",
    "Contract",
    "Declaration",
    "Declarator",
    "ExplicitInstantiation",
    "ExplicitSpecialization",
    "FileName",
    "FlashastError",
    "FunctionSignature",
    "FunctionTemplate",
    "FundamentalType",
    "GeneratedFile",
    "Identifier",
    "IfDefined",
    "IfNotDefined",
    "Include",
    "IncludePath",
    "IntArg",
    "Kind",
    "LineComment",
    "MacroDefinition",
    "MacroName",
    "ModelError",
    "Namespace",
    "Parameter",
    "PluginError",
    "PragmaOnce",
    "Preset",
    "QualifiedName",
    "Registry",
    "Style",
    "TemplateArgument",
    "TranslationUnit",
    "Type",
    "TypeAlias",
    "TypeArg",
    "TypeParameter",
    "UsageError",
    "ValueKind",
    "ValueParameter",
    "Verbatim",
    "VerificationError",
    "__version__",
    "default_registry",
    "render",
]
