"""`find_package(flashast CONFIG)` and `flashast_generate` with the real cmake and ninja (the PyPI
packages of the test extra), on a small project whose target compiles the generated files as C++.

The project's kind is a plugin of the test's own whose files specialize a template declared by a stub
header the test writes, so they compile with the host compiler in milliseconds (the real kernels take
minutes each with nvcc). The scenario is one build tree taken through what a maintainer does: build,
build again (no work), add a value to an axis (exactly the new file is compiled), drop a configuration
(its file leaves the target; `flashast cost` reads the log this ninja wrote), add a value the header
lacks (the build fails with flashast's diagnostic, nothing written), and a bad filter (the configure
step fails with flashast's line).

Marker `tools` (deselected by default, run by `.ci/run` in a step of its own) for the build scenario
(about five seconds, most of it CMake's compiler detection), the list NO_AGGREGATORS gives, and the
wheel's package data; `--cmake-dir` and the interpreter check run by default, and so does the CMake
how-to page (`tests/test_docs.py`), which configures and builds too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import cli_environment, run_cli, snapshot

import flashast

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

PLUGIN = '''\
"""A kind whose files compile as plain C++ against include/launch.h."""

from flashast import (AxisValue, BlankLine, ClassDeclaration, Configuration, Contract, FunctionTemplate, Include,
                      Namespace, PragmaOnce, Preset, Registry, TranslationUnit, TypeParameter, ValueParameter)
from flashast.presets.common import CUTLASS_TYPES, cuda_stream, cutlass_types, launcher_parameters

HEADER = "launch.h"
LAUNCHERS = (32, 64, 96, 128)  # the head dimensions launch.h has a launcher for
PARAMETERS = launcher_parameters("Params")
RUN = FunctionTemplate((TypeParameter("T"), ValueParameter("int", "D")), "void", "run_", PARAMETERS)


def launcher(head_dim: int) -> FunctionTemplate:
    return FunctionTemplate((TypeParameter("T"),), "void", f"run_hdim{head_dim}", PARAMETERS, defined=True)


CONTRACT = Contract({HEADER: (PragmaOnce(), *cuda_stream(), cutlass_types(["fp16"]), Namespace(
    "demo", (ClassDeclaration("Params"), RUN, *(launcher(head_dim) for head_dim in LAUNCHERS))))})
AXES: dict[str, tuple[AxisValue, ...]] = {"head_dim": (64, 128)}


def register(registry: Registry) -> None:
    registry.add_preset(Preset("demo", description="compiles as C++"))

    @registry.kind("demo", axes=AXES, file_name="run_hdim{head_dim}.cu", contract=CONTRACT)
    def run(config: Configuration) -> TranslationUnit:
        """run_<T, D> specializations"""
        element = CUTLASS_TYPES["fp16"]
        body = [launcher(config.head_dim).call(element)]
        specialization = RUN.specialize(element, config.head_dim, body=body)
        return TranslationUnit((Include(HEADER), BlankLine(), Namespace("demo", (specialization,))))
'''

HEADER = """\
#pragma once
struct CUstream_st;
using cudaStream_t = CUstream_st *;
namespace cutlass { struct half_t {}; }
namespace demo {
struct Params { int calls; };
template<typename T, int D> void run_(Params &params, cudaStream_t stream);
#define LAUNCHER(D) template<typename T> void run_hdim##D(Params &params, cudaStream_t) { params.calls += D; }
LAUNCHER(32) LAUNCHER(64) LAUNCHER(96) LAUNCHER(128)
}
"""

# 3.20: the LANGUAGE property compiles a .cu file as C++ (policy CMP0119).
CMAKELISTS = """\
cmake_minimum_required(VERSION 3.20)
project(demo LANGUAGES CXX)
find_package(flashast CONFIG REQUIRED)
flashast_generate(KERNELS OUTPUT_DIR kernels PRESET demo PLUGINS kinds.py)
set_source_files_properties(${KERNELS} PROPERTIES LANGUAGE CXX)
add_library(kernels STATIC ${KERNELS})
target_include_directories(kernels PRIVATE include)
"""


def tool(name: str) -> str:
    """The test extra's cmake or ninja (beside this interpreter), else one on PATH; skip without."""
    found = shutil.which(name, path=os.pathsep.join([str(BIN), os.environ.get("PATH", "")]))
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = cli_environment()
    environment["PATH"] = os.pathsep.join([str(BIN), environment.get("PATH", "")])
    return subprocess.run([os.fspath(part) for part in command], cwd=cwd, env=environment, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600, check=False)


def cmake_dir() -> str:
    code, stdout, stderr = run_cli("--cmake-dir")
    assert code == 0 and stderr == "", stderr
    return stdout.strip()


def compiled(output: str) -> list[str]:
    """The generated files a ninja run compiled, by name."""
    return sorted(re.findall(r"Building CXX object \S*/(run_hdim\d+\.cu)\.o", output))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))


def test_cmake_dir_holds_the_config_files() -> None:
    """`--cmake-dir` (like `pybind11 --cmakedir`) prints where find_package looks; the version file
    says the package's version, so `find_package(flashast 0.2 CONFIG)` checks it."""
    directory = Path(cmake_dir())
    assert directory.is_absolute()
    assert (directory / "flashast-config.cmake").is_file()
    version = (directory / "flashast-config-version.cmake").read_text()
    assert f'set(PACKAGE_VERSION "{flashast.__version__}")' in version


@pytest.mark.tools
def test_a_project_builds_the_files_and_rebuilds_only_what_changed(tmp_path: Path) -> None:
    cmake, ninja = tool("cmake"), tool("ninja")
    source, build = tmp_path / "project", tmp_path / "build"
    (source / "include").mkdir(parents=True)
    (source / "kinds.py").write_text(PLUGIN)
    (source / "include" / "launch.h").write_text(HEADER)
    (source / "CMakeLists.txt").write_text(CMAKELISTS)
    kernels = build / "kernels"

    configured = run(cmake, "-S", source, "-B", build, "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}",
                     f"-Dflashast_DIR={cmake_dir()}", f"-DPython3_EXECUTABLE={sys.executable}", cwd=tmp_path)
    assert configured.returncode == 0, configured.stdout
    assert not kernels.exists(), "configuring lists the files; it writes none"

    first = run(ninja, "-C", build, cwd=tmp_path)
    assert first.returncode == 0, first.stdout
    assert compiled(first.stdout) == ["run_hdim128.cu", "run_hdim64.cu"]
    assert "flashast: 2 written, 0 unchanged, 0 stale (demo)" in first.stdout
    assert "ninja: no work to do." in run(ninja, "-C", build, "-n", cwd=tmp_path).stdout

    # A new axis value: the configure step re-runs (the plugin changed), flashast writes one file, and
    # only that file compiles; the others keep their bytes and mtimes, so restat prunes their steps.
    objects = {path.name: path.stat().st_mtime_ns for path in build.rglob("*.cu.o")}
    edit(source / "kinds.py", '"head_dim": (64, 128)', '"head_dim": (64, 128, 96)')
    added = run(ninja, "-C", build, cwd=tmp_path)
    assert added.returncode == 0, added.stdout
    assert "Re-running CMake" in added.stdout or "Configuring done" in added.stdout, added.stdout
    assert "flashast: 1 written, 2 unchanged, 0 stale (demo)" in added.stdout
    assert compiled(added.stdout) == ["run_hdim96.cu"], added.stdout
    assert {name: mtime for name, mtime in objects.items()} == {
        path.name: path.stat().st_mtime_ns for path in build.rglob("*.cu.o") if path.name in objects}
    assert "ninja: no work to do." in run(ninja, "-C", build, "-n", cwd=tmp_path).stdout

    # A configuration removed: its file leaves the target (flashast reports it stale, compiles nothing).
    edit(source / "kinds.py", '"head_dim": (64, 128, 96)', '"head_dim": (64, 96)')
    removed = run(ninja, "-C", build, cwd=tmp_path)
    assert removed.returncode == 0, removed.stdout
    assert compiled(removed.stdout) == []
    assert "flashast: stale" in removed.stdout and "run_hdim128.cu" in removed.stdout
    inputs = run(ninja, "-C", build, "-t", "inputs", "kernels", cwd=tmp_path).stdout
    assert "run_hdim96.cu" in inputs and "run_hdim64.cu" in inputs and "run_hdim128.cu" not in inputs

    # The log this ninja wrote, read by `flashast cost`: each compiled file with its object.
    code, stdout, stderr = run_cli("cost", build / ".ninja_log", "-o", kernels, "--json")
    assert code == 0, stderr
    document = json.loads(stdout)
    assert document["ninja_log_version"] in (5, 6, 7)
    outputs = {entry["name"]: entry["outputs"] for entry in document["files"]}
    assert outputs["run_hdim96.cu"] == ["CMakeFiles/kernels.dir/kernels/run_hdim96.cu.o"]
    assert {entry["name"] for entry in document["files"] if entry["compiled_seconds"] is not None} == {
        "run_hdim64.cu", "run_hdim96.cu", "run_hdim128.cu"}

    # A head dimension the header has no launcher for: the build fails with flashast's diagnostic at
    # the generated line, and the directory is exactly as it was.
    before = snapshot(kernels)
    edit(source / "kinds.py", '"head_dim": (64, 96)', '"head_dim": (64, 96, 256)')
    failed = run(ninja, "-C", build, cwd=tmp_path)
    assert failed.returncode != 0
    assert "run_hdim256.cu:6:5: error: use of undeclared identifier 'run_hdim256'" in failed.stdout, failed.stdout
    assert "flashast: error: verification failed: 1 error(s) in 1 of 3 file(s); nothing was written" in failed.stdout
    assert compiled(failed.stdout) == []
    assert snapshot(kernels) == before

    # A filter that selects nothing stops the configure step with flashast's one line.
    edit(source / "kinds.py", '"head_dim": (64, 96, 256)', '"head_dim": (64, 96)')
    edit(source / "CMakeLists.txt", "PLUGINS kinds.py", "PLUGINS kinds.py ONLY head_dim=100")
    refused = run(ninja, "-C", build, cwd=tmp_path)
    assert refused.returncode != 0
    assert "flashast_generate(KERNELS): flashast --list failed (exit 2)" in refused.stdout, refused.stdout
    assert "flashast: error: --only head_dim=100: head_dim has no value '100' (values: 64, 96)" in refused.stdout


def test_find_package_refuses_an_interpreter_without_this_flashast(tmp_path: Path) -> None:
    """An interpreter that does not run the flashast flashast_DIR belongs to would list other files:
    finding fails, saying which interpreter and how to choose another."""
    cmake = tool("cmake")
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(none LANGUAGES NONE)\nfind_package(flashast CONFIG REQUIRED)\n"
    )
    configured = run(cmake, "-S", tmp_path, "-B", tmp_path / "build", f"-Dflashast_DIR={cmake_dir()}",
                     "-DFLASHAST_PYTHON_EXECUTABLE=/bin/false", cwd=tmp_path)
    assert configured.returncode != 0
    text = " ".join(configured.stdout.split())
    assert "/bin/false does not run the flashast in" in text, configured.stdout
    assert "set FLASHAST_PYTHON_EXECUTABLE or Python3_EXECUTABLE" in text


@pytest.mark.tools
def test_the_wheel_ships_the_cmake_files(tmp_path: Path) -> None:
    """A non-editable install has them too: they are package data of the wheel."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "flashast", source / "flashast", ignore=shutil.ignore_patterns("__pycache__"))
    built = run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                tmp_path / "dist", source, cwd=tmp_path)
    assert built.returncode == 0, built.stdout
    (wheel,) = (tmp_path / "dist").glob("flashast-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"flashast/cmake/flashast-config.cmake", "flashast/cmake/flashast-config-version.cmake"} <= names


@pytest.mark.tools
def test_the_lists_say_which_files_a_build_compiles(tmp_path: Path) -> None:
    """<out-var> holds the files a build compiles, <out-var>_WRITTEN every file the run writes:
    flash-attention 3's sm80 forward `*_softcapall_*` aggregators in place of the files they include
    (as upstream's setup.py), COMPILE members the members, NO_AGGREGATORS no aggregator at all."""
    cmake = tool("cmake")
    selection = "PRESET flash-attn-3 ONLY sm=80 ONLY head_dim=128 ONLY kind=fwd,fwd_softcapall"
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(lists LANGUAGES NONE)\nfind_package(flashast CONFIG REQUIRED)\n"
        f"flashast_generate(DEFAULT OUTPUT_DIR fa3 {selection})\n"
        f"flashast_generate(MEMBERS OUTPUT_DIR fa3 {selection} COMPILE members)\n"
        f"flashast_generate(NONE OUTPUT_DIR fa3 {selection} NO_AGGREGATORS)\n"
        'file(WRITE "${CMAKE_BINARY_DIR}/lists.txt" "${DEFAULT}\\n${DEFAULT_WRITTEN}\\n${MEMBERS}\\n${MEMBERS_WRITTEN}\\n'
        '${NONE}\\n${NONE_WRITTEN}\\n")\n'
    )
    build = tmp_path / "build"
    configured = run(cmake, "-S", tmp_path, "-B", build, f"-Dflashast_DIR={cmake_dir()}",
                     f"-DPython3_EXECUTABLE={sys.executable}", cwd=tmp_path)
    assert configured.returncode == 0, configured.stdout
    lists = [line.split(";") for line in (build / "lists.txt").read_text().splitlines()]
    assert all(path.startswith(f"{build / 'fa3'}/") for paths in lists for path in paths)
    default, written, members, members_written, none, none_written = ({Path(path).name for path in paths}
                                                                      for paths in lists)
    aggregators = {name for name in written if "_softcapall_" in name}
    assert written == members_written and len(written) == 24 and len(aggregators) == 8
    assert default == aggregators
    assert members == none == none_written == written - aggregators


@pytest.mark.tools
def test_flash_attn_3_links_from_the_listed_files(tmp_path: Path) -> None:
    """Issue 22: a shared library of flash-attention 3 files, compiled as C++ against stand-in
    headers (tests/fixtures/fa3_standin) in which each explicit instantiation or specialization is a
    real symbol. Every written file, as the module listed them before (aggregators and members),
    fails to link: the sm90 backward `softcapall` aggregator repeats its members' specializations.
    The default list links, and defines each symbol in one object only (no forward instantiation is
    compiled twice either), the very symbols every written file defines. COMPILE aggregators builds
    the sm90 forward `hdimall`/`hdimdiff` aggregators instead of their members, as upstream did in 2025."""
    cmake, ninja = tool("cmake"), tool("ninja")
    standin = ROOT / "tests" / "fixtures" / "fa3_standin"
    hdim_selection = ("ONLY sm=90 ONLY dtype=bf16 ONLY split=false ONLY paged=false ONLY softcap=false"
                      " ONLY packgqa=false ONLY kind=fwd,fwd_hdimall,fwd_hdimdiff")
    (tmp_path / "CMakeLists.txt").write_text(f"""\
cmake_minimum_required(VERSION 3.20)
project(fa3 LANGUAGES CXX)
find_package(flashast CONFIG REQUIRED)
flashast_generate(FA3 OUTPUT_DIR fa3 PRESET flash-attn-3 ONLY head_dim=64 ONLY dtype=bf16)
flashast_generate(HDIM OUTPUT_DIR hdim PRESET flash-attn-3 {hdim_selection} COMPILE aggregators)
set_source_files_properties(${{FA3_WRITTEN}} ${{HDIM_WRITTEN}} PROPERTIES LANGUAGE CXX)
add_library(fa3 SHARED ${{FA3}})
add_library(fa3_every_file SHARED EXCLUDE_FROM_ALL ${{FA3_WRITTEN}})
add_library(fa3_hdim SHARED ${{HDIM}})
foreach(target fa3 fa3_every_file fa3_hdim)
  target_include_directories(${{target}} PRIVATE "{standin}")
endforeach()
""")
    build = tmp_path / "build"
    configured = run(cmake, "-S", tmp_path, "-B", build, "-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}",
                     f"-Dflashast_DIR={cmake_dir()}", f"-DPython3_EXECUTABLE={sys.executable}", cwd=tmp_path)
    assert configured.returncode == 0, configured.stdout

    built = run(ninja, "-C", build, cwd=tmp_path)
    assert built.returncode == 0, built.stdout
    assert (build / "libfa3.so").is_file() and (build / "libfa3_hdim.so").is_file()
    objects = sorted((build / "CMakeFiles" / "fa3.dir" / "fa3").glob("*.o"))
    assert len(objects) == 37 and len(list((build / "fa3").glob("*.cu"))) == 47
    definitions = defined_symbols(objects)
    assert all(len(where) == 1 for where in definitions.values()), {
        symbol: where for symbol, where in definitions.items() if len(where) > 1}
    hdim_objects = sorted(path.name for path in (build / "CMakeFiles" / "fa3_hdim.dir" / "hdim").glob("*.o"))
    assert hdim_objects == ["flash_fwd_hdimall_bf16_sm90.cu.o", "flash_fwd_hdimdiff_bf16_sm90.cu.o"]

    every_file = run(ninja, "-C", build, "fa3_every_file", cwd=tmp_path)
    assert every_file.returncode != 0
    assert ("multiple definition of `void run_mha_bwd_<90, cutlass::bfloat16_t, 64, false>"
            "(Flash_bwd_params&, CUstream_st*)'") in every_file.stdout, every_file.stdout
    all_objects = sorted((build / "CMakeFiles" / "fa3_every_file.dir" / "fa3").glob("*.o"))
    assert len(all_objects) == 47
    assert set(defined_symbols(all_objects)) == set(definitions)
    # sm80 forward 8 files x 2 archs, sm90 forward 30 (64, 64/256, 64/512), backward 4 (sm80, 2 archs) + 2.
    assert len(definitions) == 52


def defined_symbols(objects: list[Path]) -> dict[str, list[str]]:
    """Each `run_mha_fwd_`/`run_mha_bwd_` function the objects define, with the objects defining it."""
    listed = subprocess.run(["nm", "-C", "--defined-only", *objects], stdout=subprocess.PIPE, text=True, check=True)
    where: dict[str, list[str]] = {}
    current = ""
    for line in listed.stdout.splitlines():
        if line.endswith(":"):
            current = Path(line[:-1]).name
        elif re.search(r" [TW] void run_mha_(fwd|bwd)_<", line):
            where.setdefault(line.split(" ", 2)[2], []).append(current)
    return where
