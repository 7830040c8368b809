"""What a parse is served from memory, and how what it read is named in a verification key.

A generated file's parse is served its own text, the generated files it includes (an aggregator's
members), and in contract mode its contract's headers, printed; in real-header mode, stand-ins for
the headers clang's CUDA wrapper includes that the toolkit lacks. What a parse read is named the same
way on every run and machine (a generated file as `<generated>/NAME`, whatever scratch folder
served it; a header relative to the root it was found through, `setup.ParseSetup.portable`), so a
later run, here or elsewhere, can tell whether every file it read is still the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from flashast.contract import Contract
from flashast.generated import GeneratedFile
from flashast.printer import render
from flashast.verify.keys import DiskContents, Reading, digest_bytes
from flashast.verify.setup import ParseSetup
from flashast.verify.toolchain import VIRTUAL_INCLUDE, VIRTUAL_ROOT

# How a generated file a parse read is named in a key: its served path changes from run to run.
GENERATED_PREFIX = "<generated>/"


def contract_headers(contract: Contract) -> tuple[tuple[str, str], ...]:
    """The contract's headers as (virtual path, text)."""
    return tuple((f"{VIRTUAL_INCLUDE}/{path}", render(unit)) for path, unit in contract.header_units().items())


def switched_on(generated: GeneratedFile) -> list[str]:
    """`-DMACRO` for each macro the file tests with `#ifdef`: contract verification must see the code
    a build can switch on (and never defines what `#ifndef` tests)."""
    return [f"-D{macro}" for macro in generated.ifdef_macros]


def batch_member_readings(batch_readings: list[Reading]) -> list[Reading]:
    """What a parse of one file of a batch alone reads, of what the parse of the batch read: every
    header. A batch of aggregators is served all their members; a file alone reads only its own,
    which its input digest covers (`batching` says why a clean batch means each file is clean)."""
    return [(path, digest) for path, digest in batch_readings if not path.startswith(GENERATED_PREFIX)]


class Sources:
    """What each parse is served from memory, and how what it read is named in a key."""

    def __init__(self, files: Sequence[GeneratedFile], setup: ParseSetup, source_root: str) -> None:
        self.setup = setup
        self.source_root = source_root
        self.files = {generated.name: generated for generated in files}
        self.texts = {generated.name: generated.text for generated in files}
        self.disk = DiskContents()
        self._headers: dict[Contract, tuple[tuple[str, str], ...]] = {}
        self._digests: dict[str, str] = {}  # served text -> digest: many files share a contract header

    def source_path(self, name: str) -> str:
        return f"{self.source_root}/{name}"

    def served(self, generated: GeneratedFile) -> list[tuple[str, str]] | str:
        """The files besides the main one a parse of `generated` is served, or the name of a
        generated file it includes that this run does not make."""
        unsaved = []
        for member in generated.included_files():
            if member not in self.texts:
                return member
            unsaved.append((self.source_path(member), self.texts[member]))
        if self.setup.options.real_headers:
            return unsaved + list(self.setup.stand_ins)
        return unsaved + list(self.contract_headers(generated.contract))

    def contract_headers(self, contract: Contract) -> tuple[tuple[str, str], ...]:
        """`contract_headers`, rendered once per contract per run (many files share one contract,
        which hashes itself once)."""
        headers = self._headers.get(contract)
        if headers is None:
            headers = self._headers[contract] = contract_headers(contract)
        return headers

    def readings(self, unit: Any, served: Sequence[tuple[str, str]]) -> list[Reading]:
        """Every file the parse of `unit` read (its inclusion list), with its content digest."""
        texts = dict(served)
        found = []
        for inclusion in unit.get_includes():
            path = str(inclusion.include.name)
            if path in texts:
                found.append((self._key_name(path), self._digest(texts[path])))
                continue
            path = os.path.abspath(path)  # as `shadowing_candidates` names places: from any working directory
            found.append((self.setup.portable(path), self.disk.digest(path) or ""))
            found += [(self.setup.portable(self._key_name(absent)), "") for absent in shadowing_candidates(
                path, includer(inclusion), self.setup.search_directories, self.disk)]
        return found

    def key(self, generated: GeneratedFile) -> str:
        """`generated`'s input digest: its text, its `-D` macros and the generated files it includes."""
        return self.setup.key(generated.text, switched_on(generated), self.included(generated))

    def current_digest(self, generated: GeneratedFile) -> Callable[[str], str | None]:
        """What a parse of `generated` would read at each path named in a key, now."""
        served = self.served(generated)
        return self.current([] if isinstance(served, str) else served)

    def current(self, served: Sequence[tuple[str, str]]) -> Callable[[str], str | None]:
        """What a parse served `served` would read at each path named in a key, now."""
        now = {self._key_name(path): self._digest(text) for path, text in served}

        def digest(path: str) -> str | None:
            if path in now:
                return now[path]
            if path.startswith((GENERATED_PREFIX, VIRTUAL_ROOT)):
                return ""  # not served by this run: nothing there (what a shadowing place records)
            return self.disk.digest(self.setup.local(path)) or ""  # "" stands for no readable file there

        return digest

    def included(self, generated: GeneratedFile) -> list[tuple[str, str]]:
        """(name, text) of each generated file of the run `generated` includes, in include order:
        what a parse is served of them (`served`) is covered by a key's input digest."""
        return [(name, self.texts[name]) for name in generated.included_files() if name in self.texts]

    def uncovered(self, generated: GeneratedFile, readings: list[Reading]) -> list[Reading]:
        """The readings a key of `generated` keeps: those its input digest (`included`) does not cover."""
        covered = {GENERATED_PREFIX + name for name, _ in self.included(generated)}
        return [(path, digest) for path, digest in readings if path not in covered]

    def _digest(self, text: str) -> str:
        digest = self._digests.get(text)
        if digest is None:
            digest = self._digests[text] = digest_bytes(text.encode())
        return digest

    def _key_name(self, path: str) -> str:
        prefix = self.source_root + "/"
        return GENERATED_PREFIX + path[len(prefix):] if path.startswith(prefix) else path


def shadowing_candidates(path: str, includer: str | None, search_directories: Sequence[str],
                         disk: DiskContents) -> list[str]:
    """Where a new header would be found before `path` (found in one of the absolute
    `search_directories`, else nowhere to shadow): the same name in the including file's directory
    (none for a file the command line includes) and in every include directory searched earlier. A
    key records them as absent, so a header added there later makes the file parse again."""
    path = os.path.abspath(path)
    for position, directory in enumerate(search_directories):
        if path.startswith(directory + "/"):
            name = path[len(directory) + 1:]
            earlier = [*([os.path.dirname(includer)] if includer else []), *search_directories[:position]]
            return [candidate for candidate in (os.path.join(folder, name) for folder in earlier)
                    if candidate != path and disk.digest(candidate) is None]
    return []


def includer(inclusion: Any) -> str | None:
    """The file that includes an inclusion list's entry, or None when the command line does (clang's
    CUDA driver includes `__clang_cuda_runtime_wrapper.h` so: libclang gives it no source file)."""
    return str(inclusion.source.name) if inclusion.source is not None else None
