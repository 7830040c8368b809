"""`Style`: the horizontal-spacing choices on which the upstream generators disagree.

Each knob is a typed field, never a format string, so a style cannot smuggle C++ into the output.
Vertical space is not here: it is `BlankLine` nodes in the tree. A knob exists only because a
built-in preset needs a value other than the default; spacing on which every upstream tree agrees
(`template<>`, `Flash_fwd_params &params`, four-space bodies, `} // namespace name`, a bare
`#endif`) is fixed in the printer.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from flashast.errors import ModelError


@dataclass(frozen=True, slots=True)
class Style:
    """How the printer spaces the tokens it emits."""

    # `namespace name {` (True) or `namespace name{` (False: PyTorch's generator).
    space_before_namespace_brace: bool = True
    # Whether the file ends with a newline (False: flash-attention 2's files, flash-attention 3's aggregators).
    final_newline: bool = True

    def __post_init__(self) -> None:
        for knob in fields(self):
            value = getattr(self, knob.name)
            if not isinstance(value, bool):
                raise ModelError("Style", knob.name, value, "must be a bool")
