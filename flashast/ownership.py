"""Which preset owns an output directory: the one its manifest (`DIR/.flashast.json`) names.

A run of another preset is refused before it does any work, so a script, hook or CMake call that
forgets `--preset` cannot replace (or judge) another preset's tree. `--force` hands the directory
over deliberately; `output` then keeps the previous preset's files as stale files that only
`--prune --force` deletes, since they are that preset's work, not this one's leftovers.
"""

from __future__ import annotations

from pathlib import Path

from flashast.errors import UsageError
from flashast.manifest import Manifest, read_manifest


def bare_preset(name: str) -> str:
    """A preset's name without its revision (`flash-attn-2@v2.8.3` -> `flash-attn-2`): revisions of
    one preset own a directory alike, so moving to another revision is no change of owner."""
    return name.partition("@")[0]


def owner_of(manifest: Manifest | None) -> str | None:
    """The preset a directory's manifest says owns it (bare name), None for a directory no run owns."""
    return bare_preset(manifest.preset) if manifest is not None and manifest.preset else None


def refuse_other_owner(directory: Path, preset: str, force: bool, writes: bool = True) -> None:
    """Refuse, in one line, a run of `preset` on a directory another preset owns, unless `force`.

    Called before a run does any work, so a forgotten `--preset` costs nothing; a write refuses again
    from the plan it makes under the directory lock (`output.refuse_conflicts`). `writes`: whether
    this run could take `--force` (a check cannot)."""
    try:
        is_directory = directory.is_dir()
    except OSError:
        return  # `check_directory` names the path's problem
    owner = owner_of(read_manifest(directory)) if is_directory else None
    if owner is not None and owner != bare_preset(preset) and not force:
        raise owned_by(directory, owner, preset, writes)


def owned_by(directory: Path, owner: str, preset: str, writes: bool) -> UsageError:
    """The one-line refusal: both presets, and the two ways out."""
    handing = "--force to hand it over" if writes else "a write with --force to hand it over"
    return UsageError(
        f"{directory}: belongs to preset {owner}, not {preset}; pass --preset {owner},"
        f" or {handing} to {preset} deliberately"
    )
