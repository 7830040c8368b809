"""Reading ninja's build log (`BUILD/.ninja_log`): how long each output's last build step took.

The log starts with `# ninja log vN` and has one line per output of each step ninja ran, appended
run after run: start and end in milliseconds since that build started, the output's mtime as ninja
recorded it, the output path, and a hash of the command, separated by tabs. Versions 5, 6 and 7
share that layout (6 changed the mtime's meaning, 7 the hash function), and this module reads only
the times and the path, so it reads all three. The last line of an output wins, as in ninja.

Anything else is refused in one line naming the file (and the line), never guessed at: a log whose
numbers cannot be read would attribute compile time to the wrong file. The path is the user's, so it
is read as untrusted (`flashast.untrusted`): a regular file of at most `LOG_LIMIT` bytes, numbers in
ASCII digits no longer than ninja writes them (its times and mtimes are 64-bit integers, its hash
64 bits in hex).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from flashast.errors import UsageError
from flashast.untrusted import MEBIBYTE, NotARegularFile, UntrustedFileError, ascii_natural, read_regular_file

SUPPORTED_VERSIONS = range(5, 8)
# A log ninja has not recompacted for a very large build is tens of MiB; more is not a ninja log.
LOG_LIMIT = 256 * MEBIBYTE
_MILLISECONDS_DIGITS = 20  # an unsigned 64-bit integer
_MILLISECONDS_MAXIMUM = (1 << 64) - 1
_HEADER = re.compile(r"# ninja log v([0-9]{1,9})\Z")
_HASH = re.compile(r"[0-9a-fA-F]{1,16}\Z")
_MTIME = re.compile(r"-?[0-9]{1,19}\Z")


@dataclass(frozen=True, slots=True)
class Step:
    """One output's last build step: when it started and ended, in milliseconds since its build began."""

    output: str
    start: int
    end: int

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / 1000

    @property
    def file_name(self) -> str:
        """The output's last path segment (ninja writes `\\` on Windows)."""
        return re.split(r"[/\\]", self.output)[-1]


@dataclass(frozen=True, slots=True)
class NinjaLog:
    """A parsed log: its format version and the last step of every output, in first-seen order."""

    path: Path
    version: int
    steps: tuple[Step, ...]


def read_ninja_log(path: Path) -> NinjaLog:
    """Read `path`; a file that is not a ninja log of a supported version is a `UsageError`."""
    try:
        data = read_regular_file(path, LOG_LIMIT)
    except NotARegularFile as error:
        raise UsageError(f"{path}: {error.reason}; give the .ninja_log file in the build directory") from None
    except UntrustedFileError as error:
        raise UsageError(f"{path}: {error.reason}") from None
    # Output paths are bytes to ninja; keep the undecodable ones as they are rather than fail.
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    header = _HEADER.match(lines[0].rstrip("\r"))
    if header is None:
        raise UsageError(f"{path}: not a ninja log (its first line is not '# ninja log vN')")
    version = int(header.group(1))
    if version not in SUPPORTED_VERSIONS:
        raise UsageError(
            f"{path}: ninja log v{version}; flashast reads v{SUPPORTED_VERSIONS[0]} to v{SUPPORTED_VERSIONS[-1]}"
        )
    steps: dict[str, Step] = {}
    for number, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line:
            continue
        step = _parse_entry(line)
        if step is None:
            raise UsageError(
                f"{path}:{number}: not a ninja log v{version} entry (start, end, mtime, output and hash,"
                " separated by tabs)"
            )
        # The last entry of an output wins; `pop` first keeps the order of the builds that wrote them.
        steps.pop(step.output, None)
        steps[step.output] = step
    return NinjaLog(path, version, tuple(steps.values()))


def _parse_entry(line: str) -> Step | None:
    fields = line.split("\t")
    if len(fields) != 5:
        return None
    start_text, end_text, mtime, output, command_hash = fields
    start = ascii_natural(start_text, _MILLISECONDS_DIGITS, _MILLISECONDS_MAXIMUM)
    end = ascii_natural(end_text, _MILLISECONDS_DIGITS, _MILLISECONDS_MAXIMUM)
    if start is None or end is None or not (_MTIME.match(mtime) and _HASH.match(command_hash)):
        return None
    if not output or end < start:
        return None
    return Step(output, start, end)
