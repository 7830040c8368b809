"""Fetching and finding the real trees `verify_real_sources.py` parses against, into a cache folder.

Everything fetched is pinned (a version and the sha256 of the archive the registry served) and
unpacked once; a second run finds it and fetches nothing.

- flash-attention 2: the `flash-attn==2.8.3.post2` source distribution (PyPI), which carries
  `csrc/flash_attn/src/*.h` and CUTLASS (`csrc/cutlass/include`, headers only: its manifest leaves
  out CUTLASS's `.inl` files). pip can only fetch a source distribution by running its setup, which
  imports torch, so the cache holds a virtual environment with `torch==2.13.0` (its CPU build), whose
  `torch/include` also provides the ATen/c10 headers `flash.h` includes.
- flash-attention 3: its `hopper/` C++ sources are in no package on the registries (the sdist above
  carries flash-attention 2's `csrc/` only), so they come from a checkout the user names. CUTLASS
  comes from the checkout's `csrc/cutlass` submodule when it is there, else from the
  `nvidia-cutlass==4.2.0.0` wheel (PyPI), which carries CUTLASS 4.2's whole `include/` tree (the FA2
  sdist's CUTLASS lacks `gemm/collective/builders/sm90_common.inl`, which the sm90 mainloops include).
- clang's resource headers (the CUDA wrappers), which the libclang wheel lacks: Debian's
  `libclang-common-16-dev` (`/usr/lib/llvm-16/lib/clang/16`), installed with apt-get (after
  `apt-get update`) when running as root and `flashast.verify.find_resource_dirs` finds none.
- nothing for CUDA: the toolkit already on the machine is used, with `include/cccl` for CCCL.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

EXIT_USAGE = 2
EXIT_FETCH = 4

FLASH_ATTN_VERSION = "2.8.3.post2"
FLASH_ATTN_SDIST = f"flash_attn-{FLASH_ATTN_VERSION}.tar.gz"
# What the registry served on 2026-11-25; a different archive under the same version is not the
# release this script documents.
FLASH_ATTN_SHA256 = "d0f9f0b08a986cdeadbffcf5ec8b3a8f514366c68ad1853d3ab061bc83cc340b"
TORCH_REQUIREMENT = "torch==2.13.0"
CUTLASS_VERSION = "4.2.0.0"
CUTLASS_WHEEL = f"nvidia_cutlass-{CUTLASS_VERSION}-py3-none-any.whl"
CUTLASS_WHEEL_SHA256 = "f9599ada45c7bcb6bf53f7d3f0a7d154183e53451c01bfa59eecd37dd4a693f6"
CUTLASS_WHEEL_INCLUDE = "cutlass_library/source/include/"
# A header FA3's sm90 mainloops include that a headers-only CUTLASS (the FA2 sdist's) lacks.
CUTLASS_FOR_HOPPER = "cutlass/gemm/collective/builders/sm90_common.inl"
FA3_SOURCE_VARIABLE = "FLASHAST_FA3_SOURCE"
FA3_LAUNCH_HEADER = "hopper/flash_fwd_launch_template.h"
NO_FA3_SOURCE = (
    "flash-attn-3 needs a flash-attention checkout: the hopper/ C++ sources are in no package on the"
    " registries (the flash-attn sdist carries flash-attention 2's csrc/ only); pass --source DIR, the"
    f" folder holding hopper/ (a clone of Dao-AILab/flash-attention), or set ${FA3_SOURCE_VARIABLE}"
)
RESOURCE_DIR_PACKAGE = "libclang-common-16-dev"
CUDA_WRAPPER = "include/__clang_cuda_runtime_wrapper.h"
COMPLETE = ".flashast-complete"

Say = Callable[[str], None]


class SetupFailure(Exception):
    """Fetching, finding or installing a prerequisite failed; carries the exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FETCH) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_quietly(command: Sequence[str], what: str, env: dict[str, str] | None = None) -> None:
    """Run a fetching/installing command; on failure show its output's tail and raise `SetupFailure`."""
    completed = subprocess.run(list(command), capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        # pip warns about every missing local index page; those lines hide the reason.
        lines = [line for line in (completed.stdout + completed.stderr).splitlines() if "is ignored" not in line]
        tail = "\n".join(lines[-25:])
        raise SetupFailure(f"{what} failed (exit {completed.returncode}): {shlex.join(command)}\n{tail}")


def checked(archive: Path, expected: str) -> str:
    """The archive's sha256, which must be the pinned one."""
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != expected:
        raise SetupFailure(f"{archive}: sha256 {digest}, expected {expected}; delete it and rerun")
    return digest


def torch_environment(cache: Path, say: Say) -> Path:
    """A virtual environment holding torch, created once; returns torch's include directory."""
    venv = cache / "venv"
    python = venv / "bin" / "python"
    if not (venv / COMPLETE).exists():
        say(f"creating {venv} with {TORCH_REQUIREMENT} (needed to fetch the sdist, and for ATen/c10 headers)")
        shutil.rmtree(venv, ignore_errors=True)
        run_quietly([sys.executable, "-m", "venv", str(venv)], "creating the virtual environment")
        run_quietly([str(python), "-m", "pip", "install", "-q", TORCH_REQUIREMENT], f"pip install {TORCH_REQUIREMENT}")
        (venv / COMPLETE).write_text(TORCH_REQUIREMENT + "\n")
    include = subprocess.run(
        [str(python), "-c", "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'include'))"],
        capture_output=True, text=True, check=False,
    )
    if include.returncode != 0:
        raise SetupFailure(f"torch in {venv} does not import; delete {venv} and rerun\n{include.stderr[-2000:]}")
    return Path(include.stdout.strip())


def flash_attn_sources(cache: Path, say: Say) -> Path:
    """The unpacked flash-attn sdist (fetched once, checked against its pinned sha256)."""
    downloads = cache / "downloads"
    archive = downloads / FLASH_ATTN_SDIST
    if not archive.exists():
        say(f"fetching flash-attn=={FLASH_ATTN_VERSION} (source distribution)")
        downloads.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, FLASH_ATTENTION_SKIP_CUDA_BUILD="TRUE")
        python = cache / "venv" / "bin" / "python"
        run_quietly(
            [str(python), "-m", "pip", "download", "-q", f"flash-attn=={FLASH_ATTN_VERSION}", "--no-deps",
             "--no-binary", ":all:", "--no-build-isolation", "-d", str(downloads)],
            "pip download flash-attn", env,
        )
    digest = checked(archive, FLASH_ATTN_SHA256)
    root = cache / "src" / f"flash_attn-{FLASH_ATTN_VERSION}"
    if not (root / COMPLETE).exists():
        shutil.rmtree(root, ignore_errors=True)
        root.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            members = [member for member in tar.getmembers() if member.name.startswith(f"{root.name}/csrc/")]
            if hasattr(tarfile, "data_filter"):  # refuse links and paths that leave the folder
                tar.extractall(root.parent, members=members, filter="data")
            else:
                tar.extractall(root.parent, members=members)
        (root / COMPLETE).write_text(digest + "\n")
    return root


def fa3_source(explicit: Path | None) -> Path:
    """The flash-attention checkout FA3 is verified against: `--source`, else `$FLASHAST_FA3_SOURCE`."""
    given = explicit or (Path(os.environ[FA3_SOURCE_VARIABLE]) if os.environ.get(FA3_SOURCE_VARIABLE) else None)
    if given is None:
        raise SetupFailure(NO_FA3_SOURCE, EXIT_USAGE)
    if not (given / FA3_LAUNCH_HEADER).is_file():
        raise SetupFailure(f"{given}: no {FA3_LAUNCH_HEADER}; name the flash-attention checkout (the folder"
                           " holding hopper/)", EXIT_USAGE)
    return given.absolute()


def cutlass_for_hopper(source: Path, cache: Path, say: Say) -> Path:
    """CUTLASS's `include/` for FA3: the checkout's submodule if present, else the pinned wheel's."""
    own = source / "csrc" / "cutlass" / "include"
    if (own / CUTLASS_FOR_HOPPER).is_file():
        return own
    archive = cache / "downloads" / CUTLASS_WHEEL
    if not archive.exists():
        say(f"fetching nvidia-cutlass=={CUTLASS_VERSION} (CUTLASS's headers; {own} has none)")
        archive.parent.mkdir(parents=True, exist_ok=True)
        run_quietly([sys.executable, "-m", "pip", "download", "-q", f"nvidia-cutlass=={CUTLASS_VERSION}", "--no-deps",
                     "--only-binary", ":all:", "-d", str(archive.parent)], "pip download nvidia-cutlass")
    digest = checked(archive, CUTLASS_WHEEL_SHA256)
    root = cache / "src" / f"nvidia-cutlass-{CUTLASS_VERSION}"
    if not (root / COMPLETE).exists():
        shutil.rmtree(root, ignore_errors=True)
        with zipfile.ZipFile(archive) as wheel:
            names = [name for name in wheel.namelist() if name.startswith(CUTLASS_WHEEL_INCLUDE)]
            if any(".." in Path(name).parts for name in names):
                raise SetupFailure(f"{archive}: a member leaves the folder; delete it and rerun")
            wheel.extractall(root, members=names)
        (root / COMPLETE).write_text(digest + "\n")
    return root / CUTLASS_WHEEL_INCLUDE


def find_cuda(explicit: Path | None) -> Path:
    """The CUDA toolkit to parse against: the option, then the usual environment variables and places."""
    candidates = [explicit] if explicit else []
    candidates += [Path(os.environ[name]) for name in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(name)]
    candidates.append(Path("/usr/local/cuda"))
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(Path(nvcc).resolve().parent.parent)
    candidates += sorted(Path("/usr/local").glob("cuda-*"), reverse=True)
    for candidate in candidates:
        if (candidate / "include" / "cuda.h").is_file():
            return candidate
    raise SetupFailure("no CUDA toolkit found (looked at --cuda-path, $CUDA_HOME, $CUDA_PATH, /usr/local/cuda,"
                       " nvcc's); install one or pass --cuda-path")


def find_resource_dir(explicit: Path | None, say: Say) -> Path:
    """clang resource headers libclang 18 can parse CUDA with; installs Debian's when root and none exist."""
    if explicit:
        if not (explicit / CUDA_WRAPPER).is_file():
            raise SetupFailure(f"--resource-dir {explicit}: has no {CUDA_WRAPPER}", EXIT_USAGE)
        return explicit
    from flashast.verify import COMPATIBLE_RESOURCE_MAJORS, find_resource_dirs

    found = find_resource_dirs()
    if found:
        return found[0]
    wanted = "clang resource headers of clang " + "/".join(map(str, COMPATIBLE_RESOURCE_MAJORS))
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise SetupFailure(f"no {wanted} found; install Debian's {RESOURCE_DIR_PACKAGE} (as root: apt-get"
                           f" install {RESOURCE_DIR_PACKAGE}) or pass --resource-dir")
    say(f"installing {RESOURCE_DIR_PACKAGE} with apt-get (clang's CUDA resource headers)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run_quietly(["apt-get", "update", "-q"], "apt-get update", env)
    run_quietly(["apt-get", "install", "-y", "-q", "--no-install-recommends", RESOURCE_DIR_PACKAGE],
                f"apt-get install {RESOURCE_DIR_PACKAGE}", env)
    found = find_resource_dirs()
    if not found:
        raise SetupFailure(f"{RESOURCE_DIR_PACKAGE} is installed but no {wanted} appeared")
    return found[0]
