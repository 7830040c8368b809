"""The pytorch-mem-eff preset against the real headers (marker `realheaders`): torch 2.13's own
`kernel_forward.h`/`kernel_backward.h` (the wheel ships them), CUTLASS, CUDA and cuRAND, on the host
side and for the device (`--device-arch sm_80`, where kernel bodies are instantiated).

The trees come from the registries into the cache the flash-attn-2 real-header test uses
(`$FLASHAST_FA2_CACHE`, else `~/.cache/flashast-fa2`): the torch 2.13.0 CPU environment (its
`torch/include`), CUTLASS from the flash-attn 2.8.3.post2 sdist, and the `nvidia-curand` wheel's
headers (`kernel_forward.h` includes `curand_kernel.h`, which CUDA 13's toolkit no longer ships). A
second run fetches nothing.

The contract conforms to the real headers; clean files of each kind verify on both sides; a forward kernel with 48 queries per block (a slip in
a generator's shape table) fails where nvcc fails, at `AttentionKernel`'s
`static_assert(kQueriesPerBlock % 32 == 0)`, reported at the generated file's line.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

from flashast.cli import main
from flashast.errors import VerificationError
from flashast.nodes import TranslationUnit
from flashast.presets import mem_eff_kernels, pytorch_mem_eff
from flashast.registry import Registry
from flashast.verify import VerifyOptions, verify

pytestmark = pytest.mark.realheaders

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
CURAND_VERSION = "10.4.4.72"
CURAND_WHEEL = f"nvidia_curand-{CURAND_VERSION}-py3-none-manylinux_2_27_x86_64.whl"
# What the registry served on 2026-12-07.
CURAND_WHEEL_SHA256 = "25c3457ae7a224fdd484dab90b0fc5dc0e842fab5db3012afa4a5bd2af4eb7e5"
CURAND_INCLUDE = "nvidia/cu13/include/"
# One clean file of each kind: forward (sm80 kernels only), backward (sm80), and a header.
CLEAN = ("cutlassF_bf16_aligned.cu", "cutlassB_bf16_aligned_k32.cu", "cutlassF.h")
# torch's wheel lacks this generated header; c10 skips it when told to, as its CMake-less builds do.
DEFINES = ("C10_CUDA_NO_CMAKE_CONFIGURE_FILE",)


def fetch_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_real_sources", SCRIPTS / "fetch_real_sources.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def curand_headers(cache: Path, fetch: ModuleType) -> Path:
    """The cuRAND headers of the pinned `nvidia-curand` wheel, fetched and unpacked once."""
    root = cache / "curand"
    if not (root / fetch.COMPLETE).exists():
        downloads = cache / "downloads"
        wheel = downloads / CURAND_WHEEL
        if not wheel.exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"nvidia-curand=={CURAND_VERSION}",
                 "-d", str(downloads)], check=True, capture_output=True, timeout=1800,
            )
        fetch.checked(wheel, CURAND_WHEEL_SHA256)
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(root, [name for name in archive.namelist() if name.startswith(CURAND_INCLUDE)])
        (root / fetch.COMPLETE).write_text(CURAND_VERSION + "\n")
    return root / CURAND_INCLUDE


@pytest.fixture(scope="module")
def arguments() -> list[str]:
    """The command-line options that point verification at the real trees."""
    fetch = fetch_module()
    cache = Path(os.environ.get("FLASHAST_FA2_CACHE", Path.home() / ".cache" / "flashast-fa2"))
    try:
        torch_include = fetch.torch_environment(cache, print)
        cutlass = fetch.flash_attn_sources(cache, print) / "csrc" / "cutlass" / "include"
        curand = curand_headers(cache, fetch)
        cuda = fetch.find_cuda(None)
        resource = fetch.find_resource_dir(None, print)
    except (fetch.SetupFailure, subprocess.CalledProcessError) as failure:
        pytest.skip(f"the real trees could not be fetched: {failure}")
    directories = [torch_include, cutlass, curand, cuda / "include" / "cccl"]
    return [
        *(option for directory in directories for option in ("--include-dir", str(directory))),
        "--cuda-path", str(cuda), "--resource-dir", str(resource),
        *(option for define in DEFINES for option in ("--define", define)),
    ]


def test_clean_files_of_each_kind_verify_on_host_and_device(arguments: list[str], tmp_path: Path) -> None:
    selection = [option for name in CLEAN for option in ("--only", name)]
    out = tmp_path / "kernels"
    code = main(["--preset", "pytorch-mem-eff", "-o", str(out), *selection, *arguments, "--device-arch", "sm_80", "-q"])
    assert code == 0
    assert sorted(path.name for path in out.iterdir() if not path.name.startswith(".")) == sorted(CLEAN)


def test_a_kernel_shape_nvcc_rejects_fails_at_the_generated_line(arguments: list[str]) -> None:
    clean = next(file for file in Registry().preset("pytorch-mem-eff").generate() if file.name == CLEAN[0])
    slipped = mem_eff_kernels.forward_kernel(True, "bf16", (80, 121), 48, 64, 64)
    unit = TranslationUnit((*clean.unit.declarations[:-3], pytorch_mem_eff.kernel_definition(slipped)))
    wrong = replace(clean, unit=unit)
    line = next(number for number, text in enumerate(wrong.text.splitlines(), 1) if "__launch_bounds__" in text)
    include_dirs = tuple(Path(value) for option, value in itertools.pairwise(arguments) if option == "--include-dir")
    options = VerifyOptions(
        include_dirs=include_dirs, defines=DEFINES, cuda_path=Path(arguments[arguments.index("--cuda-path") + 1]),
        resource_dir=Path(arguments[arguments.index("--resource-dir") + 1]),
    )
    with pytest.raises(VerificationError) as raised:
        verify([wrong], options)
    assert "kQueriesPerBlock % 32 == 0" in raised.value.report
    assert f"{CLEAN[0]}:{line}:" in raised.value.report


def test_the_contract_conforms_to_the_real_headers(arguments: list[str]) -> None:
    """The contract's classes and `std` names are declared by the real headers; its CUDA stand-ins
    (`__global__`, `__CUDA_ARCH__`, …) are not compared: they stand in for CUDA's own definitions."""
    assert main(["--preset", "pytorch-mem-eff", "--conformance", *arguments, "-q"]) == 0
