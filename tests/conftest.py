"""Shared test helpers: run the real CLI in a subprocess, snapshot a directory, read golden manifests.

`run_cli` runs `python -m flashast` with this interpreter, exactly as a user or a build system would,
so tests cover argument parsing, exit codes and what reaches stderr, not a shortcut. `run_in_process`
is its twin through `cli.main`, for the many variants of a behaviour whose family keeps a case or
more through `run_cli`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(autouse=True)
def isolated_verification_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own user-level verification store (`FLASHAST_CACHE_DIR`), inherited by the
    CLI subprocesses it starts: a test must not pass because another one verified the same file."""
    directory = tmp_path_factory.mktemp("verification-cache")
    monkeypatch.setenv("FLASHAST_CACHE_DIR", str(directory))
    return directory

Snapshot = dict[str, tuple[bytes, int]]


def cli_command(*args: str | os.PathLike[str]) -> list[str]:
    """The argv of `python -m flashast ARGS…` with the interpreter running the tests."""
    return [sys.executable, "-m", "flashast", *(os.fspath(arg) for arg in args)]


def cli_environment(discover_plugins: bool = False, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a CLI subprocess.

    Installed entry-point plugins are off unless asked for: a plugin some other package installed
    into the virtual environment would otherwise add kinds to the built-in presets and break parity.
    """
    environment = dict(os.environ)
    environment.pop("FLASHAST_NO_PLUGINS", None)
    if not discover_plugins:
        environment["FLASHAST_NO_PLUGINS"] = "1"
    environment.update(extra or {})
    return environment


def run_cli(
    *args: str | os.PathLike[str],
    cwd: str | os.PathLike[str] | None = None,
    discover_plugins: bool = False,
    env: Mapping[str, str] | None = None,
) -> tuple[int, str, str]:
    """Run `python -m flashast ARGS…` to completion; returns (returncode, stdout, stderr)."""
    completed = subprocess.run(
        cli_command(*args),
        cwd=cwd,
        env=cli_environment(discover_plugins, env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return completed.returncode, completed.stdout, completed.stderr


@pytest.fixture
def run_in_process(capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    """`run_cli`'s twin through `flashast.cli.main` in this process: the same (exit code, stdout,
    stderr) without starting an interpreter and importing flashast again (most of a CLI run's time).

    For the many variants of one behaviour (each malformed manifest, each contradictory option); a
    family keeps a case or more through `run_cli`, which is what proves `python -m flashast` exits with
    what `main` returns and prints what it prints. Standard output and error are captured at the file
    descriptors, so what libclang might write there is seen too.
    """

    from flashast import cli

    def run(*args: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None,
            env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
        with monkeypatch.context() as patch:
            patch.setenv("FLASHAST_NO_PLUGINS", "1")
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            if cwd is not None:
                patch.chdir(cwd)
            capfd.readouterr()
            code = cli.main([os.fspath(arg) for arg in args])
            captured = capfd.readouterr()
        return code, captured.out, captured.err

    return run


def snapshot(directory: str | os.PathLike[str]) -> Snapshot:
    """Every file under `directory` (hidden ones too) as {relative name: (bytes, st_mtime_ns)}.

    Two equal snapshots mean nothing was written, deleted, created or even re-written with the same
    bytes. A directory that does not exist snapshots as empty.
    """
    root = Path(directory)
    result: Snapshot = {}
    if not root.is_dir():
        return result
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            result[path.relative_to(root).as_posix()] = (path.read_bytes(), path.stat().st_mtime_ns)
    return result


def read_golden(preset: str) -> dict[str, str]:
    """A golden `sha256sum` manifest (`<digest>  <name>` per line) as {name: digest}."""
    manifest: dict[str, str] = {}
    for line in (GOLDEN / f"{preset}.sha256").read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            manifest[name.lstrip("*")] = digest
    return manifest


def digest_files(directory: str | os.PathLike[str]) -> dict[str, str]:
    """{name: sha256} of the non-hidden regular files directly in `directory`."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(Path(directory).iterdir())
        if path.is_file() and not path.name.startswith(".")
    }


def write_extra_kind_plugin(path: Path, preset: str = "pytorch", kind: str = "extra", head_dims: str = "(128,)") -> Path:
    """A `--plugin FILE.py` adding kind `kind` to `preset`: one `{kind}_hdim{D}.cu` per head dim.

    Running with it and then without it is how a test makes owned files stale for real: they were
    written by flashast and the preset no longer generates them.
    """
    path.write_text(
        "from flashast import Kind, LineComment, TranslationUnit\n"
        "\n"
        "\n"
        "def build(config):\n"
        f"    return TranslationUnit((LineComment('{kind} ' + str(config.head_dim)),))\n"
        "\n"
        "\n"
        "def register(registry):\n"
        f"    registry.add_kind({preset!r}, Kind({kind!r}, axes={{'head_dim': {head_dims}}}, build=build,"
        f" file_name='{kind}_hdim{{head_dim}}.cu'))\n"
    )
    return path


def write_distribution(site: Path, name: str, version: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """Install a distribution into `site` by hand: its modules and a `.dist-info` with its entry points."""
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[flashast.plugins]\n{lines}")
