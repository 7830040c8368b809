"""Generated file names under subdirectories of DIR (`sm80/fwd.cu`): written (the directories made
only once every file is whole), owned, left alone when unchanged, pruned, and refused where a
subdirectory is a symbolic link or a file, with DIR untouched."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from flashast.cli import main
from flashast.errors import ModelError
from flashast.names import FileName

PLUGIN = """\
from flashast import Configuration, LineComment, Preset, Registry, TranslationUnit


def register(registry: Registry) -> None:
    registry.add_preset(Preset("nested", description="files under subdirectories"))

    @registry.kind("nested", axes={{"arch": {arches!r}}}, file_name="{{arch}}/kernels/fwd.cu")
    def fwd(config: Configuration) -> TranslationUnit:
        \"\"\"one file per architecture, in its own directory\"\"\"
        return TranslationUnit([LineComment(f"for {{config.arch}}")])
"""


def run(tmp_path: Path, *arguments: str, arches: tuple[str, ...] = ("sm80", "sm90")) -> int:
    plugin = tmp_path / "nested_plugin.py"
    plugin.write_text(PLUGIN.format(arches=arches))
    return main(["--plugin", str(plugin), "--preset", "nested", "-o", str(tmp_path / "out"), "-q", *arguments])


def snapshot(directory: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(path.relative_to(directory)): (path.stat().st_mtime_ns, path.read_bytes() if path.is_file() else b"")
        for path in sorted(directory.rglob("*"))
    }


def test_files_under_subdirectories_are_written_owned_and_left_alone(tmp_path: Path) -> None:
    assert run(tmp_path) == 0
    out = tmp_path / "out"
    assert (out / "sm80" / "kernels" / "fwd.cu").read_text() == "// for sm80\n"
    manifest = json.loads((out / ".flashast.json").read_text())
    assert sorted(manifest["files"]) == ["sm80/kernels/fwd.cu", "sm90/kernels/fwd.cu"]
    before = snapshot(out)
    assert run(tmp_path) == 0
    assert run(tmp_path, "--check") == 0
    assert snapshot(out) == before


def test_a_stale_file_under_a_subdirectory_is_pruned(tmp_path: Path) -> None:
    assert run(tmp_path) == 0
    assert run(tmp_path, "--prune", arches=("sm80",)) == 0
    out = tmp_path / "out"
    assert not (out / "sm90" / "kernels" / "fwd.cu").exists()
    assert sorted(json.loads((out / ".flashast.json").read_text())["files"]) == ["sm80/kernels/fwd.cu"]


@pytest.mark.parametrize("shape", ["symlink", "file"])
def test_a_subdirectory_that_is_a_link_or_a_file_is_refused_and_nothing_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shape: str
) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    if shape == "symlink":
        os.symlink(outside, out / "sm90")
    else:
        (out / "sm90").write_text("mine\n")
    before, outside_before = snapshot(out), snapshot(outside)
    assert run(tmp_path) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("flashast: error: ")
    # A link is refused by name; a file where a directory goes cannot even be read through.
    assert ("sm90: is not a plain directory" if shape == "symlink" else "sm90/kernels/fwd.cu: cannot read") in error[0]
    assert (snapshot(out), snapshot(outside)) == (before, outside_before)


def test_a_stale_file_behind_a_linked_subdirectory_is_never_deleted(tmp_path: Path) -> None:
    assert run(tmp_path) == 0
    out, outside = tmp_path / "out", tmp_path / "outside"
    (outside / "kernels").mkdir(parents=True)
    (outside / "kernels" / "fwd.cu").write_text((out / "sm90" / "kernels" / "fwd.cu").read_text())
    (out / "sm90" / "kernels" / "fwd.cu").unlink()
    (out / "sm90" / "kernels").rmdir()
    (out / "sm90").rmdir()
    os.symlink(outside, out / "sm90")
    assert run(tmp_path, "--prune", arches=("sm80",)) == 2
    assert (outside / "kernels" / "fwd.cu").exists()


@pytest.mark.parametrize("name", ["a/b.cu", "sm80/kernels/fwd.cu", "x.h"])
def test_file_names_may_have_subdirectories(name: str) -> None:
    assert FileName(name).text == name


@pytest.mark.parametrize("name", ["../x.cu", "a/../x.cu", "a//b.cu", "/a.cu", "a/", "a/.hidden.cu", ".git/x", "a\\b.cu"])
def test_file_names_never_leave_or_hide_in_the_directory(name: str) -> None:
    with pytest.raises(ModelError) as raised:
        FileName(name)
    assert (raised.value.owner, raised.value.field) == ("FileName", "text")
