"""`BlankLine`, the one node allowed both among declarations and among a body's statements.

It lives apart from `flashast.nodes` (which re-exports it) so that the statement nodes can hold it
without importing the declarations that in turn hold function definitions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BlankLine:
    """One empty line. Vertical space is structure here, so parity quirks need no strings."""
