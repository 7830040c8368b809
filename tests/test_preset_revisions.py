"""Preset revisions: every built-in preset names the upstream it is byte-identical to, `--preset
NAME@REVISION` selects another revision (`flash-attn-2@v2.8.3`, the tree the 2.8.3 release builds),
the bare name the default one, and plugins add revisions through the same registry."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import digest_files, read_golden, snapshot

from flashast.cli import main
from flashast.errors import PluginError, VerificationError
from flashast.kinds import Kind, Preset
from flashast.nodes import TranslationUnit, Verbatim
from flashast.presets import flash_attn_2
from flashast.registry import Registry
from flashast.verify import verify

RELEASE = "flash-attn-2@v2.8.3"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry()


def test_flash_attn_2_v2_8_3_is_byte_identical_to_the_release(registry: Registry) -> None:
    """The 72 files flash-attn 2.8.3's generator writes (and its source distribution ships): no
    `fwd_split_align`, no `extern template` line; the golden manifest is upstream's."""
    files = registry.preset(RELEASE).generate()
    digests = {file.name: hashlib.sha256(file.text.encode("utf-8")).hexdigest() for file in files}
    assert len(digests) == 72
    assert digests == read_golden("flash-attn-2-v2.8.3")
    assert not any(isinstance(node, Verbatim) for file in files for node in file.unit.walk())


def test_flash_attn_2_v2_8_3_verifies_and_its_contract_lacks_the_aligned_tree(registry: Registry) -> None:
    """Its contract is 2.8.3's interface: its own files verify, and a file of upstream main naming
    `run_mha_fwd_splitkv_align` fails against it, as it fails against the real 2.8.3 headers."""
    release = registry.preset(RELEASE).generate()
    report = verify(release)
    assert (report.files, report.errors, report.warnings) == (72, [], [])
    main_split = next(file for file in registry.preset("flash-attn-2").generate()
                      if file.name == "flash_fwd_split_hdim128_bf16_causal_sm80.cu")
    verify([main_split])  # against its own contract: fine
    with pytest.raises(VerificationError) as raised:
        verify([replace(main_split, contract=flash_attn_2.RELEASE_2_8_3_CONTRACT)])
    assert "run_mha_fwd_splitkv_align" in raised.value.report


def test_every_builtin_preset_names_its_upstream_repository_and_revision(registry: Registry) -> None:
    for choice in registry.preset_choices():
        preset = registry.preset(choice)
        assert preset.revision and "/" in preset.upstream.split()[0], choice
        assert preset.describe_upstream() == f"{preset.upstream} at {preset.revision}"
    assert registry.preset("flash-attn-2").describe_upstream() == (
        "Dao-AILab/flash-attention csrc/flash_attn/src/generate_kernels.py at 0251105a")
    assert registry.preset(RELEASE).describe_upstream().endswith(" at v2.8.3")


def test_the_api_reference_names_every_built_in_preset_and_its_upstream(registry: Registry) -> None:
    text = (Path(__file__).parent.parent / "docs" / "reference" / "python-api.md").read_text()
    for choice in registry.preset_choices():
        preset = registry.preset(choice)
        files = sum(kind.count() for kind in preset.kinds)
        assert f"| `{choice}` | {files} | `{preset.upstream}` at `{preset.revision}` |" in text, choice


def test_the_bare_name_is_the_default_revision_and_each_revision_has_its_name(registry: Registry) -> None:
    assert registry.preset("flash-attn-2") is registry.preset("flash-attn-2@0251105a")
    assert registry.preset(RELEASE).name == "flash-attn-2"
    assert registry.preset(RELEASE).name_with_revision == RELEASE
    assert [preset.revision for preset in registry.revisions("flash-attn-2")] == ["0251105a", "v2.8.3"]
    assert registry.preset_names().count("flash-attn-2") == 1
    assert registry.preset_choices()[:2] == ["flash-attn-2", RELEASE]
    assert registry.origin_of(RELEASE, "fwd_split").description == "built-in"


@pytest.mark.parametrize(("selected", "message"), [
    ("flash-attn-2@v9", "preset 'flash-attn-2' has no revision 'v9' (known: flash-attn-2@0251105a (the default),"
                        " flash-attn-2@v2.8.3)"),
    ("flash-attn-2@", "preset 'flash-attn-2@': no revision after '@' (known: flash-attn-2@0251105a (the default),"
                      " flash-attn-2@v2.8.3)"),
])
def test_an_unknown_revision_is_one_line_naming_the_known_ones(
    selected: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-o", str(tmp_path / "kernels"), "--preset", selected]) == 2
    assert capsys.readouterr().err.splitlines() == [f"flashast: error: {message}"]
    assert not (tmp_path / "kernels").exists()


def test_the_cli_writes_the_release_and_the_manifest_says_which_upstream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kernels = tmp_path / "kernels"
    assert main(["-o", str(kernels), "--preset", RELEASE]) == 0
    assert digest_files(kernels) == read_golden("flash-attn-2-v2.8.3")
    assert "72 written, 0 unchanged, 0 stale (flash-attn-2@v2.8.3)" in capsys.readouterr().err
    # `cost --preset NAME@REVISION` reads the tree that revision wrote (its manifest says the bare name).
    log = tmp_path / ".ninja_log"
    log.write_text("# ninja log v5\n0\t2500\t0\tCMakeFiles/k.dir/kernels/flash_bwd_hdim64_fp16_sm80.cu.o\t1f2e\n")
    assert main(["cost", str(log), "-o", str(kernels), "--preset", RELEASE]) == 0
    assert "flash_bwd_hdim64_fp16_sm80.cu" in capsys.readouterr().out
    manifest = json.loads((kernels / ".flashast.json").read_text())
    # `preset` stays the bare name: revisions of one preset own a directory alike.
    assert (manifest["preset"], manifest["revision"]) == ("flash-attn-2", "v2.8.3")
    assert manifest["upstream"] == "Dao-AILab/flash-attention csrc/flash_attn/src/generate_kernels.py"
    # Moving the tree to upstream main is no change of owner: the split files change, the aligned
    # ones are added, nothing else is touched.
    before = snapshot(kernels)
    capsys.readouterr()
    assert main(["-o", str(kernels), "--preset", "flash-attn-2"]) == 0
    assert "48 written, 48 unchanged, 0 stale (flash-attn-2)" in capsys.readouterr().err
    after = snapshot(kernels)
    unchanged = {name for name in before if name.startswith(("flash_fwd_hdim", "flash_bwd_hdim"))}
    assert len(unchanged) == 48 and all(after[name] == before[name] for name in unchanged)
    manifest = json.loads((kernels / ".flashast.json").read_text())
    assert (manifest["preset"], manifest["revision"]) == ("flash-attn-2", "0251105a")
    assert digest_files(kernels) == read_golden("flash-attn-2")


def test_list_kinds_shows_each_revision_and_its_upstream(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-kinds"]) == 0
    lines = capsys.readouterr().out.splitlines()
    release = lines.index(next(line for line in lines if line.startswith(f"{RELEASE}  (72 files, built-in)")))
    assert lines[release + 1] == ("  byte-identical to Dao-AILab/flash-attention csrc/flash_attn/src/generate_kernels.py"
                                  " at v2.8.3")
    assert "  byte-identical to ggml-org/llama.cpp ggml/src/ggml-cuda/template-instances/generate_cu_files.py at 1f4ed645" \
        in lines


def unit_for(_: object) -> TranslationUnit:
    return TranslationUnit(())


def test_a_plugin_adds_a_revision_and_the_default_stays() -> None:
    registry = Registry()
    older = Preset("flash-attn-2", revision="v2.7.4", upstream="Dao-AILab/flash-attention x.py",
                   kinds=[Kind("fwd", axes={"head_dim": (64,)}, build=unit_for, file_name="f{head_dim}.cu")])
    registry.add_preset(older)
    assert registry.preset("flash-attn-2@v2.7.4") is older
    assert registry.preset("flash-attn-2").revision == "0251105a"
    registry.add_kind("flash-attn-2@v2.7.4", Kind("bwd", axes={"head_dim": (64,)}, build=unit_for,
                                                  file_name="b{head_dim}.cu"))
    assert [kind.name for kind in registry.preset("flash-attn-2@v2.7.4").kinds] == ["fwd", "bwd"]
    assert len(registry.preset("flash-attn-2@v2.8.3").kinds) == 3
    with pytest.raises(PluginError, match=r"preset 'flash-attn-2@v2.7.4' already exists \(first registered: Python"):
        registry.add_preset(older)
    with pytest.raises(PluginError, match=r"preset 'flash-attn-2' already exists .*; to add a revision of it, give"
                                          r" the Preset a revision=\.\.\.$"):
        registry.add_preset(Preset("flash-attn-2"))
    # A plugin's own preset: its first registration is the default, later ones are revisions.
    registry.add_preset(Preset("mine"))
    registry.add_preset(Preset("mine", revision="v2"))
    assert registry.preset("mine").revision == "" and registry.preset("mine@v2").revision == "v2"
    choices = registry.preset_choices()
    assert choices[choices.index("mine") + 1] == "mine@v2"


def test_a_revision_is_a_name_not_free_text() -> None:
    with pytest.raises(Exception, match="a revision is letters, digits"):
        Preset("mine", revision="v1 beta")
    with pytest.raises(Exception, match="must be one line of text"):
        Preset("mine", upstream="a\nb")
