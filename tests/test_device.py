"""`--device-arch`: the same files parsed for the device, where device-only code is instantiated.

The fixture tree (tests/fixtures/device_headers) has a copy path that only the device side compiles
for sm_80 and later, with a static assertion that rejects 32-bit elements: a file instantiating the
launch for `float` passes on the host side and fails on the device side for sm_80, at its own line.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import run_cli, snapshot

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "device_headers"

PLUGIN = """
from flashast import (Contract, Declarator, FunctionTemplate, Include, Kind, Namespace, Parameter, Preset,
                      TranslationUnit, Type, TypeParameter)

RUN_COPY = FunctionTemplate((TypeParameter("T"),), "void", "run_copy",
                            (Parameter(Type("Copy_params", declarator=Declarator.REFERENCE), "params"),
                             Parameter(Type("cudaStream_t"), "stream")))


def build(config):
    instantiation = RUN_COPY.instantiate(config.element)
    return TranslationUnit((Include("copy_launch.h"), Namespace("device_check", (instantiation,))))


def register(registry):
    registry.add_preset(Preset("device", kinds=(
        Kind("copy", axes={{"element": {elements}}}, build=build, file_name="copy_{{element}}.cu",
             architectures={architectures}),
    )))
"""


# The same kind over `traits_launch.h`, whose device-only code names a dependent type without
# `typename` (as FA2's backward kernel does): nvcc accepts it, clang rejects it.
TRAITS_PLUGIN = PLUGIN.replace('"run_copy"', '"run_traits_copy"').replace('"copy_launch.h"', '"traits_launch.h"')


def plugin(tmp_path: Path, architectures: str = "()", elements: str = '("short", "float")',
           text: str = PLUGIN) -> Path:
    path = tmp_path / "device_plugin.py"
    path.write_text(text.format(architectures=architectures, elements=elements))
    return path


def run(tmp_path: Path, *arguments: str | Path, architectures: str = "()",
        elements: str = '("short", "float")', text: str = PLUGIN) -> tuple[int, str]:
    code, _, stderr = run_cli("-o", tmp_path / "out", "--plugin", plugin(tmp_path, architectures, elements, text),
                              "--preset", "device", "--include-dir", FIXTURE, *arguments)
    return code, stderr


def test_the_host_side_passes_what_the_device_side_rejects_at_the_generated_line(tmp_path: Path) -> None:
    preview = tmp_path / "preview"
    code, _, stderr = run_cli("-o", preview, "--plugin", plugin(tmp_path), "--preset", "device", "--no-verify", "-q")
    assert code == 0, stderr
    generated = (preview / "copy_float.cu").read_text().splitlines()
    line = next(number for number, text in enumerate(generated, 1) if "run_copy<float>" in text)

    code, stderr = run(tmp_path)
    assert code == 0, stderr  # host side only
    before = snapshot(tmp_path / "out")
    (tmp_path / "out" / "copy_float.cu").write_text("// edited\n")
    code, stderr = run(tmp_path, "--device-arch", "sm_80", "--force")
    assert code == 3, stderr
    assert re.search(rf"^copy_float\.cu:{line}:\d+: error: static assertion failed .*16-bit elements only",
                     stderr, re.MULTILINE), stderr
    assert re.search(r"copy_launch\.h:\d+:\d+: note: the error is here, in a header", stderr), stderr
    assert "(device side, --cuda-gpu-arch=sm_80)" in stderr
    assert "kind=copy element=float" in stderr
    assert "copy_short.cu:" not in stderr
    assert (tmp_path / "out" / "copy_float.cu").read_text() == "// edited\n"  # exit 3: nothing written
    assert snapshot(tmp_path / "out").keys() == before.keys()


def test_one_run_reports_a_host_error_and_another_files_device_only_error(tmp_path: Path) -> None:
    """A file failing on the host side does not keep the others from their device-side parse: the
    `float` file's device-only assertion is reported in the same run as the undeclared element's
    host error, and the summary says how many files failed at which level."""
    code, stderr = run(tmp_path, "--device-arch", "sm_80", elements='("float", "undeclared_element")')
    assert code == 3, stderr
    assert re.search(r"^copy_undeclared_element\.cu:\d+:\d+: error: .*undeclared_element", stderr, re.MULTILINE), stderr
    assert re.search(r"^copy_float\.cu:\d+:\d+: error: static assertion failed", stderr, re.MULTILINE), stderr
    assert "2 of 2 file(s) (1 on the host side, 1 on the device side for sm_80)" in stderr
    assert not (tmp_path / "out").exists()  # exit 3: nothing written


def test_a_missing_typename_nvcc_accepts_is_the_headers_warning_and_device_only_errors_still_fail(
    tmp_path: Path,
) -> None:
    """clang rejects `staged<Traits::Staging>(...)` on the device side and nvcc does not: no clang
    option accepts it, so flashast reports it once as the header's warning. The `float` file's
    device-only assertion, in the same kernel, still fails; the `short` file passes."""
    code, stderr = run(tmp_path, "--device-arch", "sm_80", "--header-warnings", text=TRAITS_PLUGIN)
    assert code == 3, stderr
    assert re.search(r"^copy_float\.cu:\d+:\d+: error: static assertion failed", stderr, re.MULTILINE), stderr
    assert "error(s) in 1 of 2 file(s)" in stderr, stderr
    warning = re.findall(r"^.*traits_launch\.h:\d+:\d+: warning: missing 'typename' prior to dependent type name.*$",
                         stderr, re.MULTILINE)
    assert len(warning) == 1, stderr  # the header's, once, though both files instantiate it
    assert "nvcc accepts this on the device side, clang does not" in stderr
    assert not re.search(r"^copy_short\.cu:.*error", stderr, re.MULTILINE), stderr
    code, stderr = run(tmp_path, "--device-arch", "sm_80", elements='("short",)', text=TRAITS_PLUGIN)
    assert code == 0, stderr


def test_an_architecture_without_the_device_only_path_passes(tmp_path: Path) -> None:
    code, stderr = run(tmp_path, "--device-arch", "sm_75")
    assert code == 0, stderr


def test_without_a_value_each_kind_is_parsed_for_the_architectures_it_declares(tmp_path: Path) -> None:
    code, stderr = run(tmp_path, "--device-arch", architectures='("sm_80",)')
    assert code == 3, stderr
    assert "(device side, --cuda-gpu-arch=sm_80)" in stderr
    code, stderr = run(tmp_path, "--device-arch", architectures='("sm_75",)')
    assert code == 0, stderr
    # A kind that declares its architectures is never parsed for another one, even when named.
    code, stderr = run(tmp_path, "--device-arch", "sm_80", architectures='("sm_75",)')
    assert code == 0, stderr


def test_device_side_verdicts_are_reused_per_architecture(tmp_path: Path) -> None:
    code, stderr = run(tmp_path, "--device-arch", "sm_75", "--timings")
    assert code == 0, stderr
    assert len(re.findall(r"^flashast: verified \S+\.cu in", stderr, re.MULTILINE)) == 2  # host
    assert len(re.findall(r"^flashast: verified \(device, sm_75\) \S+\.cu in", stderr, re.MULTILINE)) == 2
    code, stderr = run(tmp_path, "--device-arch", "sm_75", "--timings")
    assert code == 0, stderr
    assert "flashast: 4 file(s) not parsed again" in stderr
    code, stderr = run(tmp_path, "--device-arch", "sm_75", "--device-arch", "sm_70", "--timings")
    assert code == 0, stderr
    assert len(re.findall(r"^flashast: verified \(device, sm_70\) ", stderr, re.MULTILINE)) == 2  # only sm_70's
    assert len(re.findall(r"^flashast: verified ", stderr, re.MULTILINE)) == 2


def test_device_arch_is_checked_and_needs_real_headers(tmp_path: Path) -> None:
    code, _, stderr = run_cli("-o", tmp_path / "out", "--device-arch", "sm_80")
    assert code == 2
    assert "--device-arch: the device side is parsed against real headers" in stderr
    code, stderr = run(tmp_path, "--device-arch", "ampere")
    assert code == 2
    assert "--device-arch ampere: not a GPU architecture" in stderr


def test_built_in_kinds_declare_the_architectures_their_files_are_built_for() -> None:
    """`--device-arch` without a value parses FA3's sm80 files for sm_80 and sm_86 and its sm90 files
    (their guards are per architecture) for sm_90a only; FA2's and PyTorch's files for sm_80."""
    from flashast import Registry
    from flashast.verify import VerifyOptions, device_targets

    files = Registry().preset("flash-attn-3").generate()
    targets = device_targets(files, VerifyOptions(include_dirs=(FIXTURE,), device_declared=True))
    assert set(targets) == {"sm_80", "sm_86", "sm_90a"}
    assert {generated.name for generated in targets["sm_80"]} == {generated.name for generated in targets["sm_86"]}
    assert all("sm80" in generated.name for generated in targets["sm_80"])
    assert all("sm90" in generated.name for generated in targets["sm_90a"])
    assert len(targets["sm_80"]) + len(targets["sm_90a"]) == len(files)
    # Named on the command line, an architecture a file's kind does not declare is not parsed for it.
    named = device_targets(files, VerifyOptions(include_dirs=(FIXTURE,), device_architectures=("sm_90a",)))
    assert set(named) == {"sm_90a"} and named["sm_90a"] == targets["sm_90a"]
    for preset in ("flash-attn-2", "pytorch"):
        assert set(device_targets(Registry().preset(preset).generate(),
                                  VerifyOptions(include_dirs=(FIXTURE,), device_declared=True))) == {"sm_80"}


# A dependent type named without `typename` as a function template's explicit argument, the
# construct of FA2's `flash_bwd_kernel.h` that nvcc accepts on the device side.
MISSING_TYPENAME = """
template <typename T> struct Traits { using Mma = int; };
template <typename Mma, typename Layout> Layout convert(Layout layout) { return layout; }
template <typename K> int use() { return convert<K::Mma>(1); }
template int use<Traits<int>>();
"""


def test_no_documented_clang_setting_accepts_what_nvcc_does_so_flashast_judges_it() -> None:
    """docs/explanation/verification.md: the settings tried, each still an error with libclang 18."""
    from clang import cindex

    index = cindex.Index.create()
    for setting in ([], ["-std=c++20"], ["-fms-compatibility"], ["-fms-extensions"], ["-fdelayed-template-parsing"]):
        unit = index.parse("missing_typename.cpp", ["-x", "c++", "-std=c++17", *setting],
                           [("missing_typename.cpp", MISSING_TYPENAME)])
        errors = [str(diagnostic.spelling) for diagnostic in unit.diagnostics
                  if diagnostic.severity >= cindex.Diagnostic.Error]
        assert any(error.startswith("missing 'typename' prior to dependent type name") for error in errors), setting
