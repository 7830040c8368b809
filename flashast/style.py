"""`Style`: the few horizontal-spacing choices on which the upstream generators disagree.

Each knob is a typed field, never a format string, so a style cannot smuggle C++ into the output.
Vertical space is not here: it is `BlankLine` nodes in the tree. Each non-default value a preset sets
is a parity quirk of that preset's upstream generator.
"""

from __future__ import annotations

from dataclasses import dataclass

from flashast.errors import ModelError


@dataclass(frozen=True, slots=True)
class Style:
    """How the printer spaces the tokens it emits."""

    # `namespace name {` (True) or `namespace name{` (False: PyTorch's generator).
    space_before_namespace_brace: bool = True
    # `} // namespace name` (True) or a bare `}`.
    comment_namespace_close: bool = True
    # Whether the file ends with a newline (FA2's files and FA3's aggregators do not).
    final_newline: bool = True
    # Spaces per level inside function bodies.
    indent_width: int = 4
    # Whether declarations inside a namespace are indented (none of the upstream trees does).
    indent_namespace_body: bool = False
    # `template <>` (True) or `template<>` (False: every upstream tree).
    space_after_template: bool = False
    # `Flash_fwd_params &params` (True: every upstream tree) or `Flash_fwd_params& params`.
    declarator_binds_to_name: bool = True
    # `#endif // MACRO` (True) or a bare `#endif` (False: every upstream tree).
    comment_endif: bool = False
    # Spaces between `}` and `// namespace name` (Google style uses two).
    spaces_before_close_comment: int = 1

    def __post_init__(self) -> None:
        for name in (
            "space_before_namespace_brace",
            "comment_namespace_close",
            "final_newline",
            "indent_namespace_body",
            "space_after_template",
            "declarator_binds_to_name",
            "comment_endif",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ModelError("Style", name, getattr(self, name), "must be a bool")
        for name in ("indent_width", "spaces_before_close_comment"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 16:
                raise ModelError("Style", name, value, "must be an int from 0 to 16")
