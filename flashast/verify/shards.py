"""`--shard K/N`: the K-th of N parts of a run's files, for a CI job matrix to verify side by side.

A whole tree's truth (flash-attn-3: 450 files, host side and each declared device architecture) is
hours of CPU; users already have a distributed engine, their CI's job matrix. Each job verifies one
shard into its own verdict store; the stores, merged by copying (keys are portable, see `setup`),
make the final unsharded run parse nothing. The cut is:

- **deterministic**: a function of the selected files (their names, models and the costs given),
  never of the machine, the order of arguments or the time;
- **disjoint and covering**: every selected file is in exactly one shard;
- **whole**: an aggregator and every member it includes are in one shard (its parse reads them);
- **by preamble**: files whose real-header preambles are identical (`preamble.includes_alone_text`)
  are next to each other, and shards are contiguous runs of that order, so a preamble group is split
  only where a shard boundary falls inside it;
- **balanced** by `costs` (seconds per file name, as measured) when given, else by file count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flashast.generated import GeneratedFile
from flashast.verify.preamble import includes_alone_text


def shard_of(files: Sequence[GeneratedFile], index: int, count: int,
             costs: Mapping[str, float] | None = None) -> list[GeneratedFile]:
    """The files of shard `index` (1 to `count`), in the order of `files`."""
    if not 1 <= index <= count:
        raise ValueError(f"shard {index} of {count}: the shard must be between 1 and {count}")
    chosen = {generated.name for unit in shards(files, count, costs)[index - 1] for generated in unit}
    return [generated for generated in files if generated.name in chosen]


def shards(files: Sequence[GeneratedFile], count: int,
           costs: Mapping[str, float] | None = None) -> list[list[list[GeneratedFile]]]:
    """Every shard, each a list of units (an aggregator with its members, or one file)."""
    units = sorted(_units(files), key=_unit_order)
    weights = [sum(_cost(generated, costs) for generated in unit) for unit in units]
    total = sum(weights) or 1.0
    parts: list[list[list[GeneratedFile]]] = [[] for _ in range(count)]
    done = 0.0
    for unit, weight in zip(units, weights, strict=True):
        # The unit's middle decides its shard: contiguous runs, each about total / count heavy.
        parts[min(count - 1, int(count * (done + weight / 2) / total))].append(unit)
        done += weight
    return parts


def _cost(generated: GeneratedFile, costs: Mapping[str, float] | None) -> float:
    """A file's measured cost; one not measured costs the mean of those that were."""
    if not costs:
        return 1.0
    known = costs.get(generated.name)
    return known if known is not None and known > 0 else sum(costs.values()) / len(costs)


def _units(files: Sequence[GeneratedFile]) -> list[list[GeneratedFile]]:
    """The files grouped so that an aggregator and the members it includes stay together (members
    several aggregators share join them all into one unit)."""
    by_name = {generated.name: generated for generated in files}
    parent = {name: name for name in by_name}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for generated in files:
        for member in generated.included_files():
            if member in by_name:
                first, second = sorted((root(generated.name), root(member)))
                parent[second] = first
    grouped: dict[str, list[GeneratedFile]] = {}
    for generated in files:
        grouped.setdefault(root(generated.name), []).append(generated)
    return list(grouped.values())


def _unit_order(unit: list[GeneratedFile]) -> tuple[str, str]:
    """Plain files by preamble, then name; a unit with an aggregator by its members' preamble."""
    plain = sorted((generated for generated in unit if not generated.included_files()), key=lambda file: file.name)
    preamble = includes_alone_text(plain[0]) if plain else ""
    return preamble, min(generated.name for generated in unit)
