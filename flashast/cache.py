"""What earlier runs proved, so a run does not prove it again.

Two records, both keyed so that a hit means the work would give the same answer again:

- **verification keys.** A file's key is a hash over everything a contract-mode verdict depends on:
  the file's text, the texts of the contract headers it is parsed against, the texts of the generated
  files it includes (aggregators), the exact clang arguments and `--strict`, the environment
  variables clang reads for include paths, the identity of the libclang library (its path, size and
  mtime), and flashast's own code. libclang parses exactly those inputs, so the same key cannot
  give another verdict. Runs with `--clang-arg` are not keyed (an argument can name a file), nor
  passes with warnings (they must show again), nor real-header mode (its verdict depends on
  thousands of header files a key would have to hash on every run). Keys are kept in the output
  directory's manifest (per file) and, across directories, in `verified-v1` under the user's cache
  directory (`$FLASHAST_CACHE_DIR`, else `$XDG_CACHE_HOME/flashast`, else `~/.cache/flashast`;
  `FLASHAST_NO_CACHE=1` turns it off).
- **run records.** A run that may stamp its directory also keeps, under the user's cache directory
  (`runs-v1/`), what it generated: every selected file's name, text, kind, axes and verification key,
  keyed by the same input fingerprint. A later run with that fingerprint writes into any directory
  from the record, without building, rendering or parsing anything: the fingerprint covers every
  input of generation and of the contract-mode verdict, so the record is what the full path would
  produce again. The directory itself is still planned and written for real (foreign files are still
  refused, unchanged files still left alone).
- **the no-op stamp.** A run records in the manifest a fingerprint of its inputs (flashast's own
  sources, the Python version, the directories distributions live in, the options, whether plugin
  discovery is on, libclang's identity), a digest of the rest of the manifest, and the digest of
  every file it left. A later run with the same fingerprint, an untouched manifest and files that
  are still those regular files with those bytes has nothing to do, and can say so without building
  a node. Runs that load plugins (`--plugin` or installed entry points) never take this path: a
  plugin's code, and what it imports, cannot be fingerprinted without importing it.

This module imports only the standard library, and only light parts of it: the fast path runs
before anything else is imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: this module stays standard-library-only at run time
    from flashast.generated import GeneratedFile

STORE_NAME = "verified-v1"
# Past this size the store is cut to its newer half (keys are appended as files are verified).
STORE_LIMIT_BYTES = 8 << 20
# Environment variables clang consults for include paths: they can change a verdict.
CLANG_ENVIRONMENT = ("CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "OBJC_INCLUDE_PATH")
PACKAGE_DIRECTORY = Path(__file__).resolve().parent

try:  # BLAKE2 without `hashlib`, whose OpenSSL start-up costs a no-op run more than its hashing
    from _blake2 import blake2b as _blake2b
except ImportError:  # an interpreter built without the module: hashlib has it too
    from hashlib import blake2b as _blake2b


try:  # SHA-256 likewise (the module is `_sha256` up to Python 3.11, `_sha2` from 3.12)
    from _sha256 import sha256 as _sha256
except ImportError:
    try:
        from _sha2 import sha256 as _sha256  # type: ignore[no-redef]
    except ImportError:
        from hashlib import sha256 as _sha256  # type: ignore[assignment]


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of `data` as hex, what the ownership manifest records for each file."""
    return _sha256(data).hexdigest()


def content_digest(data: bytes) -> str:
    """The digest the stamp records for a file's bytes (BLAKE2b, 256 bits)."""
    return _blake2b(data, digest_size=32).hexdigest()


def json_identity(value: object) -> str:
    """A spelling of `value` to compare or digest, never to show: compact, so that `json` encodes
    it in C (an indented dump runs its pure-Python encoder, ten times slower on a big manifest)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _digest(*parts: str) -> str:
    hasher = _blake2b(digest_size=32)
    for part in parts:
        data = part.encode("utf-8", errors="surrogateescape")
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()


def libclang_identity() -> str:
    """Which libclang would parse: the shared library's path, size and mtime (no loading it)."""
    from importlib.util import find_spec

    try:
        spec = find_spec("clang")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return "libclang:absent"
    native = os.path.join(os.path.dirname(spec.origin), "native")
    parts = [spec.origin]
    for name in sorted(os.listdir(native)) if os.path.isdir(native) else []:
        if name.startswith("libclang"):
            status = os.stat(os.path.join(native, name))
            parts.append(f"{name}:{status.st_size}:{status.st_mtime_ns}")
    return "|".join(parts)


def verifier_identity() -> str:
    """flashast's own code: a change to how it judges files (in `verify.py`, or in what decides
    which files an aggregator includes, ...) invalidates every key. Any reinstall does, too."""
    return sources_identity()


def common_verification_key(arguments: Sequence[str], environment: Mapping[str, str] | None = None) -> str:
    """The part of every file's key that does not depend on the file."""
    environment = os.environ if environment is None else environment
    return _digest(
        "flashast-verified-1",
        verifier_identity(),
        libclang_identity(),
        json.dumps(list(arguments)),
        json.dumps({name: environment.get(name) for name in CLANG_ENVIRONMENT}, sort_keys=True),
    )


def verification_key(common: str, text: str, headers: Mapping[str, str], members: Mapping[str, str]) -> str:
    """One file's key: `common`, its text, its contract headers and included generated files, by path."""
    parts = [common, text]
    for path in sorted(headers):
        parts += [path, headers[path]]
    parts.append("--members--")
    for name in sorted(members):
        parts += [name, members[name]]
    return _digest(*parts)


# The user-level store -----------------------------------------------------------------------------


def store_path(environment: Mapping[str, str] | None = None) -> Path | None:
    """Where verified keys are kept across output directories, or None when caching is off."""
    environment = os.environ if environment is None else environment
    if environment.get("FLASHAST_NO_CACHE", "") not in ("", "0"):
        return None
    if environment.get("FLASHAST_CACHE_DIR"):
        return Path(environment["FLASHAST_CACHE_DIR"]) / STORE_NAME
    base = environment.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "flashast" / STORE_NAME


def load_store(path: Path | None) -> set[str]:
    if path is None:
        return set()
    try:
        return set(path.read_text().split())
    except (OSError, UnicodeDecodeError):
        return set()  # a cache that cannot be read is a cache miss, never an error


def remember(path: Path | None, keys: Iterable[str]) -> None:
    """Append newly verified keys (whole lines, one `write` per batch, so concurrent runs interleave
    lines, never characters). Failing to write the cache never fails a run."""
    if path is None:
        return
    lines = "".join(f"{key}\n" for key in keys)
    if not lines:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > STORE_LIMIT_BYTES:
            kept = path.read_text().splitlines()[-(STORE_LIMIT_BYTES // 130) :]
            temporary = path.with_name(f"{path.name}.{os.getpid()}")
            temporary.write_text("".join(f"{key}\n" for key in kept))
            os.replace(temporary, path)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            os.write(descriptor, lines.encode())
        finally:
            os.close(descriptor)
    except OSError:
        pass


# Run records --------------------------------------------------------------------------------------

RUNS_NAME = "runs-v1"
# Records kept; the least recently used go first (a record is about as big as its preset's files).
RUNS_KEPT = 16


class RecordedFile:
    """A generated file as a run record keeps it: what planning and writing read, and no tree."""

    __slots__ = ("aggregator", "axis_values", "kind", "name", "preset", "text")

    def __init__(self, name: str, text: str, kind: str, preset: str, aggregator: bool,
                 axis_values: dict[str, object]) -> None:
        self.name, self.text, self.kind, self.preset = name, text, kind, preset
        self.aggregator, self.axis_values = aggregator, axis_values


class RunRecord:
    """What a plugin-free run generated and verified, for the inputs its fingerprint names."""

    __slots__ = ("files", "preset", "preset_names", "verified")

    def __init__(self, preset: str, preset_names: frozenset[str], files: list[RecordedFile],
                 verified: dict[str, str | None]) -> None:
        self.preset, self.preset_names, self.files, self.verified = preset, preset_names, files, verified


def _run_path(store: Path, fingerprint: str) -> Path:
    return store.parent / RUNS_NAME / f"{fingerprint[:40]}.json"


def load_run(store: Path | None, fingerprint: str) -> RunRecord | None:
    """The record of an earlier run with exactly these inputs, or None (no record, caching off, or a
    record that does not read back whole and unchanged: any doubt is a miss, and the full path runs)."""
    if store is None:
        return None
    path = _run_path(store, fingerprint)
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read())
        if data["fingerprint"] != fingerprint or data["digest"] != _record_digest(data):
            return None
        files = [
            RecordedFile(entry["name"], entry["text"], entry["kind"], data["preset"], entry["aggregator"],
                         entry["axes"])
            for entry in data["files"]
        ]
        verified = {entry["name"]: entry["verified"] for entry in data["files"]}
        record = RunRecord(data["preset"], frozenset(data["preset_names"]), files, verified)
        well_formed = (
            isinstance(record.preset, str)
            # Plain names only, as the stamp requires: a record must never make a run write outside DIR.
            and all(_plain_name(name) for name in record.preset_names)
            and all(
                isinstance(recorded.name, str) and isinstance(recorded.text, str) and isinstance(recorded.kind, str)
                and isinstance(recorded.aggregator, bool) and isinstance(recorded.axis_values, dict)
                and recorded.name in record.preset_names
                for recorded in files
            )
            and all(isinstance(key, (str, type(None))) for key in verified.values())
        )
        for recorded in files:
            recorded.text.encode("utf-8")  # a lone surrogate could not be written: a miss
    except Exception:  # whatever a damaged file makes json or the checks raise (deep nesting too): a miss
        return None
    if not well_formed:
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: kept longest
    return record


def _record_digest(record: Mapping[str, object]) -> str:
    """A digest of everything a record holds but itself: a record damaged on disk (a flipped bit
    that still parses) is a miss, not a file written with the wrong bytes."""
    return content_digest(json_identity({key: value for key, value in record.items() if key != "digest"}).encode())


def remember_run(store: Path | None, fingerprint: str, preset: str, preset_names: Iterable[str],
                 files: Sequence[GeneratedFile | RecordedFile], verified: Mapping[str, str | None]) -> None:
    """Keep this run's files for `load_run` (atomically: a concurrent reader sees a whole record or
    none). Failing to write the cache never fails a run."""
    if store is None:
        return
    path = _run_path(store, fingerprint)
    record: dict[str, object] = {
        "fingerprint": fingerprint,
        "preset": preset,
        "preset_names": sorted(preset_names),
        "files": [
            {"name": generated.name, "text": generated.text, "kind": generated.kind,
             "aggregator": generated.aggregator, "axes": generated.axis_values,
             "verified": verified.get(generated.name)}
            for generated in files
        ],
    }
    record["digest"] = _record_digest(record)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(record, separators=(",", ":")))
        os.replace(temporary, path)
        _forget_old_runs(path.parent)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()  # a full cache disk keeps no half-written record


def _forget_old_runs(directory: Path) -> None:
    records = []
    for entry in os.scandir(directory):
        if entry.name.endswith(".json") and not entry.name.startswith("."):
            with contextlib.suppress(OSError):
                records.append((entry.stat().st_mtime_ns, entry.path))
    for _, path in sorted(records, reverse=True)[RUNS_KEPT:]:
        with contextlib.suppress(OSError):
            os.unlink(path)


# The no-op stamp ----------------------------------------------------------------------------------


def sources_identity() -> str:
    """flashast's own code as installed: every module's path, size and mtime."""
    entries = []
    for root, directories, names in os.walk(PACKAGE_DIRECTORY):
        directories[:] = sorted(name for name in directories if name != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                status = os.stat(path)
                entries.append(f"{os.path.relpath(path, PACKAGE_DIRECTORY)}:{status.st_size}:{status.st_mtime_ns}")
    return "|".join(entries)


DISTRIBUTION_SUFFIXES = (".dist-info", ".egg-info", ".egg-link", ".pth")


def import_path_identity() -> str:
    """Where distributions (plugins among them) can be installed: each directory on `sys.path` that
    holds any, with its mtime. Installing or removing one adds or removes an entry in such a
    directory (or makes a directory hold one), which changes this; other files appearing in, say,
    the current directory do not."""
    entries = []
    for entry in sys.path:
        directory = entry or "."
        try:
            if any(name.endswith(DISTRIBUTION_SUFFIXES) for name in os.listdir(directory)):
                entries.append(f"{entry}:{os.stat(directory).st_mtime_ns}")
            else:
                entries.append(f"{entry}:none")
        except OSError:
            entries.append(f"{entry}:absent")
    return "|".join(entries)


def input_fingerprint(options: Mapping[str, object]) -> str:
    """Everything a plugin-free run's output depends on, besides the output directory itself."""
    return _digest(
        "flashast-stamp-1",
        sys.version,
        sources_identity(),
        import_path_identity(),
        json.dumps(options, sort_keys=True, default=str),
    )


def plugins_installed() -> bool:
    """Whether any installed distribution declares a `flashast.plugins` entry point.

    Reads the `entry_points.txt` of each distribution on `sys.path` directly: importing
    `importlib.metadata` alone costs more than the whole no-op run this protects.
    """
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                try:
                    with open(os.path.join(entry or ".", name, "entry_points.txt")) as handle:
                        if "[flashast.plugins]" in handle.read():
                            return True
                except OSError:
                    continue
    return False


def _plain_name(name: object) -> bool:
    """A name a record or stamp may hold: a plain, visible file name in DIR (never a path out of it)."""
    return isinstance(name, str) and bool(name) and "/" not in name and "\0" not in name and not name.startswith(".")


def unchanged_since_stamp(directory: Path, manifest: Mapping[str, object], fingerprint: str) -> int | None:
    """If the manifest's stamp matches `fingerprint` and every stamped file still holds its bytes,
    the number of files; otherwise None (the run must do the full work)."""
    stamp = manifest.get("stamp")
    if not isinstance(stamp, dict) or stamp.get("inputs") != fingerprint:
        return None
    files = stamp.get("files")
    if not isinstance(files, dict) or not files:
        return None
    rest = {key: value for key, value in manifest.items() if key != "stamp"}
    if stamp.get("manifest") != content_digest(json_identity(rest).encode()):
        return None
    for name, digest in files.items():
        if not _plain_name(name):
            return None
        try:
            # Only the regular file flashast wrote counts: not a symlink, even to the same bytes.
            descriptor = os.open(directory / name, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                return None
            with os.fdopen(descriptor, "rb", closefd=False) as handle:
                if content_digest(handle.read()) != digest:
                    return None
        finally:
            os.close(descriptor)
    return len(files)
