"""`Style`, the layout policy of a file, and `Layout`, the wrapping of one long declaration.

A style is a small declared policy: typed options (enums, ints, bools), never format strings, so a
style cannot smuggle C++ into the output. Each option is named after the clang-format option that
controls the same thing (`pointer_alignment` is `PointerAlignment`, and so on), so a project's
`.clang-format` reads straight across, and each exists because two generators in the field disagree on
it (the comment on the field names them). Vertical space is not here: it is `BlankLine` nodes in the
tree. `space_before_namespace_brace` has no clang-format counterpart (clang-format always writes the
space); it is here because PyTorch's generator does not.

`Layout` is per declaration, for the long ones some generators wrap: which bracketed lists are broken
one element per line. Where the broken elements go is the style's `align_after_open_bracket`; without
one, each list keeps the shape its `Layout` member names. A layout changes where line breaks and
spaces go, never a token.

The knobs `Style` had in 0.1.0 are still accepted, with a `DeprecationWarning` naming the option that
replaces each (`RENAMED_KNOBS`); 0.3.0 removes them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flashast.compat import warn_deprecated
from flashast.errors import ModelError


class PointerAlignment(enum.Enum):
    """clang-format's `PointerAlignment`: where `*` and `&` sit between a type and the name it declares."""

    # `Flash_fwd_params &params`: flash-attention, PyTorch, llama.cpp.
    RIGHT = "Right"
    # `const Params& params`: ScaleLLM, ONNX Runtime (Google style).
    LEFT = "Left"
    # `Flash_fwd_params & params`.
    MIDDLE = "Middle"


class BracketAlignment(enum.Enum):
    """clang-format's `AlignAfterOpenBracket`: where the elements of a broken bracketed list go."""

    # The first element stays after the bracket, the others line up under it (ScaleLLM).
    ALIGN = "Align"
    # The first element stays after the bracket, the others are indented by the layout's `indent`.
    DONT_ALIGN = "DontAlign"
    # A break right after the bracket; every element on its own line, indented by the layout's `indent`.
    ALWAYS_BREAK = "AlwaysBreak"


class NamespaceIndentation(enum.Enum):
    """clang-format's `NamespaceIndentation`: whether a namespace's body is indented."""

    # No upstream tree indents namespace bodies.
    NONE = "None"
    # Every namespace's body, by `indent_width` per level.
    ALL = "All"


def check_int(owner: str, name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ModelError(owner, name, value, f"must be an int from {low} to {high}")
    return value


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ModelError("Style", name, value, "must be a bool")
    return value


def _check_enum(name: str, value: object, choices: type[enum.Enum]) -> None:
    if not isinstance(value, choices):
        raise ModelError("Style", name, value, f"must be a {choices.__name__}")


@dataclass(frozen=True, slots=True, init=False)
class Style:
    """How the printer lays out the tokens it emits: a file's layout policy.

    The defaults are what flash-attention's own generators write, so `Style()` needs no option for
    them; every other value is some generator's quirk, named on the field.
    """

    # clang-format `PointerAlignment`: LEFT for ScaleLLM's `const Params& params` and ONNX Runtime.
    pointer_alignment: PointerAlignment
    # clang-format `SpacesBeforeTrailingComments`: the least number of spaces between code and a
    # trailing `//` comment, the `}  // namespace llm` of ScaleLLM and ONNX Runtime (Google style: 2).
    # A `TrailingComment` asking for more spaces keeps them (ScaleLLM's aligned include comments).
    spaces_before_trailing_comments: int
    # clang-format `AlignAfterOpenBracket`, for the lists a declaration's `Layout` breaks: ALIGN for
    # ScaleLLM's template arguments under the first one. None: each list as its `Layout` member says.
    align_after_open_bracket: BracketAlignment | None
    # clang-format `IndentWidth`: spaces per level in bodies (ONNX Runtime: 2).
    indent_width: int
    # clang-format `SpaceAfterTemplateKeyword`: `template <>` (ONNX Runtime) or `template<>` (the rest).
    space_after_template_keyword: bool
    # clang-format `FixNamespaceComments`: `} // namespace name` (True), or a bare `}`.
    fix_namespace_comments: bool
    # clang-format `NamespaceIndentation`.
    namespace_indentation: NamespaceIndentation
    # clang-format `InsertNewlineAtEOF`: False for flash-attention 2's files and FA3's aggregators.
    insert_newline_at_eof: bool
    # No clang-format counterpart: `namespace name{` (False) is PyTorch's generator.
    space_before_namespace_brace: bool
    # Deprecated 0.1.0 knob `comment_endif` (`#endif // MACRO`): content, not layout, so no option
    # replaces it; kept working until 0.3.0, set only through the old keyword.
    comment_endif: bool

    def __init__(
        self,
        *,
        pointer_alignment: PointerAlignment = PointerAlignment.RIGHT,
        spaces_before_trailing_comments: int = 1,
        align_after_open_bracket: BracketAlignment | None = None,
        indent_width: int = 4,
        space_after_template_keyword: bool = False,
        fix_namespace_comments: bool = True,
        namespace_indentation: NamespaceIndentation = NamespaceIndentation.NONE,
        insert_newline_at_eof: bool = True,
        space_before_namespace_brace: bool = True,
        **old_knobs: object,
    ) -> None:
        options: dict[str, object] = {
            "pointer_alignment": pointer_alignment,
            "spaces_before_trailing_comments": spaces_before_trailing_comments,
            "align_after_open_bracket": align_after_open_bracket,
            "indent_width": indent_width,
            "space_after_template_keyword": space_after_template_keyword,
            "fix_namespace_comments": fix_namespace_comments,
            "namespace_indentation": namespace_indentation,
            "insert_newline_at_eof": insert_newline_at_eof,
            "space_before_namespace_brace": space_before_namespace_brace,
            "comment_endif": old_knobs.pop("comment_endif", False),
        }
        # `dataclasses.replace` passes every field back by name, `comment_endif` included, silently.
        if options["comment_endif"] is not False:
            _warn_no_replacement("comment_endif")
        for old, value in old_knobs.items():
            if old not in RENAMED_KNOBS:
                raise TypeError(f"Style() got an unexpected keyword argument {old!r}")
            knob = RENAMED_KNOBS[old]
            # Every call comes through `_accept_0_1_positions`: the user's line is three frames up.
            warn_deprecated(f"Style({old}=...)", f"write Style({knob.replacement})", stacklevel=3)
            checked = _check_bool(old, value) if knob.flag else check_int("Style", old, value, 0, 16)
            options[knob.option] = knob.convert(checked)
        _check_enum("pointer_alignment", options["pointer_alignment"], PointerAlignment)
        check_int("Style", "spaces_before_trailing_comments", options["spaces_before_trailing_comments"], 0, 16)
        if options["align_after_open_bracket"] is not None:
            _check_enum("align_after_open_bracket", options["align_after_open_bracket"], BracketAlignment)
        check_int("Style", "indent_width", options["indent_width"], 0, 16)
        _check_enum("namespace_indentation", options["namespace_indentation"], NamespaceIndentation)
        for name in ("space_after_template_keyword", "fix_namespace_comments", "insert_newline_at_eof",
                     "space_before_namespace_brace", "comment_endif"):
            _check_bool(name, options[name])
        for name, value in options.items():
            object.__setattr__(self, name, value)


def _warn_no_replacement(old: str) -> None:
    warn_deprecated(
        f"Style({old}=...)", "no layout option replaces it: a comment is content, so write it in the tree", stacklevel=4
    )


@dataclass(frozen=True)
class RenamedKnob:
    """A `Style` knob of 0.1.0, the policy option that replaced it, and how an old value reads there."""

    option: str
    # The old knob took a bool (True) or a small int (False); its check names the old keyword.
    flag: bool
    convert: Callable[[Any], object]
    # The replacement as the warning spells it.
    replacement: str


def _unchanged(value: Any) -> object:
    return value


RENAMED_KNOBS: dict[str, RenamedKnob] = {
    "final_newline": RenamedKnob("insert_newline_at_eof", True, _unchanged, "insert_newline_at_eof=..."),
    "comment_namespace_close": RenamedKnob("fix_namespace_comments", True, _unchanged, "fix_namespace_comments=..."),
    "space_after_template": RenamedKnob(
        "space_after_template_keyword", True, _unchanged, "space_after_template_keyword=..."
    ),
    "spaces_before_close_comment": RenamedKnob(
        "spaces_before_trailing_comments", False, _unchanged, "spaces_before_trailing_comments=..."
    ),
    "declarator_binds_to_name": RenamedKnob(
        "pointer_alignment",
        True,
        lambda binds: PointerAlignment.RIGHT if binds else PointerAlignment.LEFT,
        "pointer_alignment=PointerAlignment.RIGHT or PointerAlignment.LEFT",
    ),
    "indent_namespace_body": RenamedKnob(
        "namespace_indentation",
        True,
        lambda indented: NamespaceIndentation.ALL if indented else NamespaceIndentation.NONE,
        "namespace_indentation=NamespaceIndentation.ALL or NamespaceIndentation.NONE",
    ),
}


class _OldKnobReading:
    """An old knob read from a `Style` (`style.final_newline`): the replacing option's value in the old
    knob's terms, with the same warning as setting it."""

    def __init__(self, old: str, read: Callable[[Style], object]) -> None:
        self.old, self.read = old, read

    def __get__(self, style: Style | None, owner: type[Style]) -> Any:
        if style is None:
            return self
        option = RENAMED_KNOBS[self.old].option
        warn_deprecated(f"Style.{self.old}", f"read Style.{option}")
        return self.read(style)


_OLD_KNOB_READINGS: dict[str, Callable[[Style], object]] = {
    "final_newline": lambda style: style.insert_newline_at_eof,
    "comment_namespace_close": lambda style: style.fix_namespace_comments,
    "space_after_template": lambda style: style.space_after_template_keyword,
    "spaces_before_close_comment": lambda style: style.spaces_before_trailing_comments,
    "declarator_binds_to_name": lambda style: style.pointer_alignment is PointerAlignment.RIGHT,
    "indent_namespace_body": lambda style: style.namespace_indentation is NamespaceIndentation.ALL,
}
for _old, _read in _OLD_KNOB_READINGS.items():
    setattr(Style, _old, _OldKnobReading(_old, _read))


# The order 0.1.0's generated `Style.__init__` took its knobs in, positionally.
POSITIONS_0_1 = (
    "space_before_namespace_brace", "comment_namespace_close", "final_newline", "indent_width", "indent_namespace_body",
    "space_after_template", "declarator_binds_to_name", "comment_endif", "spaces_before_close_comment",
)
_keyword_only_init = Style.__init__


def _accept_0_1_positions(self: Style, *positional: object, **options: Any) -> None:
    """`Style.__init__` as called: options by keyword; 0.1.0's positional knobs still work, with a
    warning. Type checkers see only the keyword-only signature, so typed code hears of it at check time."""
    if positional:
        if len(positional) > len(POSITIONS_0_1):
            raise TypeError(f"Style() takes no positional arguments ({len(positional)} given)")
        given = POSITIONS_0_1[: len(positional)]
        for name in given:
            if name in options:
                raise TypeError(f"Style() got multiple values for argument {name!r}")
        options.update(zip(given, positional, strict=True))
        warn_deprecated(f"Style({', '.join(given)}) with positional arguments",
                        f"write Style({', '.join(f'{name}=...' for name in given)})")
    _keyword_only_init(self, **options)


_accept_0_1_positions.__doc__ = _keyword_only_init.__doc__
Style.__init__ = _accept_0_1_positions  # type: ignore[method-assign]


class ArgumentLayout(enum.Enum):
    """Whether a signature's template argument list is broken, and its shape when the style names none."""

    # `f<128, true>(…)`
    INLINE = "inline"
    # Broken one per line. Without a style `align_after_open_bracket`: `f<`, then each argument on a
    # line of its own, indented by the layout's `indent`, the last one closing with `>(…)`.
    ONE_PER_LINE = "one per line"


class ParameterLayout(enum.Enum):
    """Whether a signature's function parameter list is broken, and its shape when the style names none."""

    # `(Flash_fwd_params &params, cudaStream_t stream)`
    INLINE = "inline"
    # Broken one per line. Without a style `align_after_open_bracket`: the first parameter after `(`,
    # each next one on a line of its own, aligned under the first.
    ALIGNED = "aligned"


@dataclass(frozen=True, slots=True)
class Layout:
    """How one declaration with a signature (an explicit instantiation or specialization) is wrapped."""

    template_arguments: ArgumentLayout = ArgumentLayout.INLINE
    parameters: ParameterLayout = ParameterLayout.INLINE
    # Spaces before each element of a broken list that is indented rather than aligned
    # (clang-format's `ContinuationIndentWidth`).
    indent: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.template_arguments, ArgumentLayout):
            raise ModelError("Layout", "template_arguments", self.template_arguments, "must be an ArgumentLayout")
        if not isinstance(self.parameters, ParameterLayout):
            raise ModelError("Layout", "parameters", self.parameters, "must be a ParameterLayout")
        check_int("Layout", "indent", self.indent, 0, 32)


DEFAULT_LAYOUT = Layout()
