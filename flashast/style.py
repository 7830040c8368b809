"""`Style` and `Layout`: the horizontal-spacing choices on which the upstream generators disagree.

Each knob is a typed field, never a format string, so a style cannot smuggle C++ into the output.
Vertical space is not here: it is `BlankLine` nodes in the tree. A knob exists only because a
built-in preset needs a value other than the default; spacing on which every upstream tree agrees
(`template<>`, `Flash_fwd_params &params`, four-space bodies, `} // namespace name`, a bare
`#endif`) is fixed in the printer.

`Style` is per file (a preset's, or a kind's); `Layout` is per declaration, for the long ones some
generators wrap: one template argument per line, a parameter list aligned under its opening
parenthesis. A layout changes where line breaks and spaces go, never a token.
"""

from __future__ import annotations

import enum
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


class ArgumentLayout(enum.Enum):
    """Where a signature's template arguments go."""

    # `f<128, true>(…)`
    INLINE = "inline"
    # `f<` then each argument on a line of its own, indented, the last one closing with `>(…)`.
    ONE_PER_LINE = "one per line"


class ParameterLayout(enum.Enum):
    """Where a signature's function parameters go."""

    # `(Flash_fwd_params &params, cudaStream_t stream)`
    INLINE = "inline"
    # The first parameter after `(`, each next one on a line of its own, aligned under the first.
    ALIGNED = "aligned"


@dataclass(frozen=True, slots=True)
class Layout:
    """How one declaration with a signature (an explicit instantiation or specialization) is wrapped."""

    template_arguments: ArgumentLayout = ArgumentLayout.INLINE
    parameters: ParameterLayout = ParameterLayout.INLINE
    # Spaces before each template argument laid out one per line.
    indent: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.template_arguments, ArgumentLayout):
            raise ModelError("Layout", "template_arguments", self.template_arguments, "must be an ArgumentLayout")
        if not isinstance(self.parameters, ParameterLayout):
            raise ModelError("Layout", "parameters", self.parameters, "must be a ParameterLayout")
        if isinstance(self.indent, bool) or not isinstance(self.indent, int) or not 0 <= self.indent <= 32:
            raise ModelError("Layout", "indent", self.indent, "must be an int from 0 to 32")


DEFAULT_LAYOUT = Layout()
