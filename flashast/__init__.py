"""flashast: typed C++ for flash-attention kernel instantiation files, verified with libclang.

The public API: nodes to build translation units, `render` to print them, and kinds, presets and a
registry to generate whole trees. Importing flashast loads neither libclang nor any plugin, and the
public names are resolved on first use (PEP 562), so `python -m flashast` on an up-to-date directory
does not pay for building classes it never touches.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # importing `typing` would cost every run, and a no-op run needs none of it

__version__ = "0.1.0"

_PUBLIC_NAMES: dict[str, str] = {
    "BlankLine": "flashast.nodes",
    "BoolArg": "flashast.nodes",
    "CallStatement": "flashast.nodes",
    "ClassDeclaration": "flashast.nodes",
    "Configuration": "flashast.kinds",
    "Contract": "flashast.kinds",
    "Declaration": "flashast.nodes",
    "Declarator": "flashast.nodes",
    "ExplicitInstantiation": "flashast.nodes",
    "ExplicitSpecialization": "flashast.nodes",
    "FileName": "flashast.names",
    "FlashastError": "flashast.errors",
    "FunctionSignature": "flashast.nodes",
    "FunctionTemplate": "flashast.nodes",
    "FundamentalType": "flashast.names",
    "GeneratedFile": "flashast.kinds",
    "Identifier": "flashast.names",
    "IfDefined": "flashast.nodes",
    "IfNotDefined": "flashast.nodes",
    "Include": "flashast.nodes",
    "IncludePath": "flashast.names",
    "IntArg": "flashast.nodes",
    "Kind": "flashast.kinds",
    "LineComment": "flashast.nodes",
    "MacroDefinition": "flashast.nodes",
    "MacroName": "flashast.names",
    "ModelError": "flashast.errors",
    "Namespace": "flashast.nodes",
    "Parameter": "flashast.nodes",
    "PluginError": "flashast.errors",
    "PragmaOnce": "flashast.nodes",
    "Preset": "flashast.kinds",
    "QualifiedName": "flashast.names",
    "Registry": "flashast.kinds",
    "Style": "flashast.style",
    "TemplateArgument": "flashast.nodes",
    "TranslationUnit": "flashast.nodes",
    "Type": "flashast.nodes",
    "TypeAlias": "flashast.nodes",
    "TypeArg": "flashast.nodes",
    "TypeParameter": "flashast.nodes",
    "UsageError": "flashast.errors",
    "ValueKind": "flashast.nodes",
    "ValueParameter": "flashast.nodes",
    "Verbatim": "flashast.nodes",
    "VerificationError": "flashast.errors",
    "default_registry": "flashast.kinds",
    "render": "flashast.printer",
}

__all__ = [
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


def __getattr__(name: str) -> object:
    module = _PUBLIC_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'flashast' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from flashast.errors import FlashastError, ModelError, PluginError, UsageError, VerificationError
    from flashast.kinds import (
        Configuration,
        Contract,
        GeneratedFile,
        Kind,
        Preset,
        Registry,
        default_registry,
    )
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
    from flashast.style import Style
