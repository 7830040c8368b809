"""A plugin written against 0.1.0's `Style` knobs loads, warns naming each knob's replacement in the
layout policy, and its files keep their bytes: the same as the policy spelled the 0.2.0 way.

The plugin is a real file loaded the way the CLI loads it (`--plugin FILE.py`), once in-process to see
its warnings and once through `flashast.cli.main` to see the written bytes.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import pytest

from flashast.cli import main
from flashast.errors import ModelError
from flashast.nodes import ClassDeclaration, IfNotDefined, TranslationUnit
from flashast.plugins import load_plugins
from flashast.printer import render
from flashast.registry import Registry
from flashast.style import PointerAlignment, Style

# Every knob 0.1.0's Style had, set away from its default where the layout shows it.
OLD_STYLE = """\
Style(
    comment_namespace_close=True,
    spaces_before_close_comment=2,
    declarator_binds_to_name=False,
    indent_width=2,
    indent_namespace_body=False,
    space_after_template=True,
    final_newline=False,
)"""
# The same layout in the policy's words.
NEW_STYLE = """\
Style(
    fix_namespace_comments=True,
    spaces_before_trailing_comments=2,
    pointer_alignment=PointerAlignment.LEFT,
    indent_width=2,
    namespace_indentation=NamespaceIndentation.NONE,
    space_after_template_keyword=True,
    insert_newline_at_eof=False,
)"""

PLUGIN = """\
from flashast import (ClassDeclaration, Declarator, FunctionTemplate, Kind, Namespace, NamespaceIndentation,
                      Parameter, PointerAlignment, Preset, Style, TranslationUnit, Type, TypeParameter)

PARAMETERS = (Parameter(Type("Params", declarator=Declarator.REFERENCE), "params"),)
RUN = FunctionTemplate((TypeParameter("T"),), "void", "run_attention", PARAMETERS)
HELPER = FunctionTemplate((TypeParameter("T"),), "void", "attention_helper", PARAMETERS)
STYLE = {style}


def build(config):
    return TranslationUnit((Namespace("llm", (
        ClassDeclaration("Params"), RUN, HELPER,
        RUN.specialize(config.dtype, body=(HELPER.call(config.dtype),)),
    )),))


def register(registry):
    kind = Kind("attention", axes={{"dtype": ("float", "double")}}, build=build, file_name="attention_{{dtype}}.cu")
    registry.add_preset(Preset("old-style-fork", style=STYLE, kinds=(kind,)))
"""

EXPECTED_FLOAT = (
    "namespace llm {\n"
    "struct Params;\n"
    "template <typename T>\n"
    "void run_attention(Params& params);\n"
    "template <typename T>\n"
    "void attention_helper(Params& params);\n"
    "template <>\n"
    "void run_attention<float>(Params& params) {\n"
    "  attention_helper<float>(params);\n"
    "}\n"
    "}  // namespace llm"
)


def write_plugin(directory: Path, style: str) -> str:
    """The plugin file, in a directory of its own (the module is named after the file)."""
    directory.mkdir()
    path = directory / "old_style_fork.py"
    path.write_text(PLUGIN.format(style=style))
    return str(path)


def test_an_old_knob_plugin_loads_warns_naming_each_replacement_and_prints_the_new_policys_bytes(tmp_path: Path) -> None:
    old_registry, new_registry = Registry(), Registry()
    with pytest.warns(DeprecationWarning) as caught:
        load_plugins(old_registry, [write_plugin(tmp_path / "old", OLD_STYLE)], no_plugins=True)
    messages = "\n".join(str(warning.message) for warning in caught)
    for old, replacement in [
        ("comment_namespace_close", "fix_namespace_comments"),
        ("spaces_before_close_comment", "spaces_before_trailing_comments"),
        ("declarator_binds_to_name", "pointer_alignment=PointerAlignment.RIGHT or PointerAlignment.LEFT"),
        ("indent_namespace_body", "namespace_indentation"),
        ("space_after_template", "space_after_template_keyword"),
        ("final_newline", "insert_newline_at_eof"),
    ]:
        assert f"Style({old}=...) is deprecated" in messages and f"write Style({replacement}" in messages, old
    # indent_width is an option again under its old name: nothing to warn about.
    assert "indent_width" not in messages
    assert all(str(warning.filename).endswith("old_style_fork.py") for warning in caught)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_plugins(new_registry, [write_plugin(tmp_path / "new", NEW_STYLE)], no_plugins=True)
    old_preset, new_preset = old_registry.preset("old-style-fork"), new_registry.preset("old-style-fork")
    assert old_preset.style == new_preset.style
    old_files, new_files = old_preset.generate(), new_preset.generate()
    assert [(file.name, file.text) for file in old_files] == [(file.name, file.text) for file in new_files]
    assert old_files[1].text == EXPECTED_FLOAT


def test_the_cli_writes_an_old_knob_plugins_files_verified_with_the_same_bytes(tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path / "plugin", OLD_STYLE)
    output = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        code = main(["-o", str(output), "--preset", "old-style-fork", "--plugin", plugin, "--no-plugins"], Registry())
    assert code == 0
    assert (output / "attention_float.cu").read_text() == EXPECTED_FLOAT


def test_old_knobs_read_from_a_style_warn_and_give_the_old_meaning() -> None:
    style = Style(pointer_alignment=PointerAlignment.LEFT, insert_newline_at_eof=False)
    with pytest.warns(DeprecationWarning, match="read Style.pointer_alignment"):
        assert style.declarator_binds_to_name is False  # type: ignore[attr-defined]
    with pytest.warns(DeprecationWarning, match="read Style.insert_newline_at_eof"):
        assert style.final_newline is False  # type: ignore[attr-defined]
    # A copy made with dataclasses.replace passes every option by its new name: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dataclasses.replace(style, indent_width=2).indent_width == 2


def test_comment_endif_has_no_layout_replacement_but_keeps_working() -> None:
    unit = TranslationUnit((IfNotDefined("FLASHATTENTION_DISABLE_ALIBI", (ClassDeclaration("Alibi"),)),))
    with pytest.warns(DeprecationWarning, match="no layout option replaces it"):
        style = Style(comment_endif=True)
    assert render(unit, style) == "#ifndef FLASHATTENTION_DISABLE_ALIBI\nstruct Alibi;\n#endif // FLASHATTENTION_DISABLE_ALIBI\n"
    assert render(unit) == "#ifndef FLASHATTENTION_DISABLE_ALIBI\nstruct Alibi;\n#endif\n"


@pytest.mark.parametrize(("knob", "value"), [("final_newline", 1), ("spaces_before_close_comment", 17),
                                             ("declarator_binds_to_name", "yes")])
def test_an_old_knob_with_a_wrong_value_is_refused_under_its_old_name(knob: str, value: object) -> None:
    with pytest.raises(ModelError) as raised, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        Style(**{knob: value})
    assert raised.value.field == knob and raised.value.value == value


def test_positional_knobs_in_0_1_order_still_work_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning) as caught:
        style = Style(False, False, False, 2)  # type: ignore[misc]
    messages = [str(warning.message) for warning in caught]
    assert any("with positional arguments" in message for message in messages), messages
    # The 0.1.0 positions are the old knobs, each named with its replacement.
    assert any("write Style(fix_namespace_comments=...)" in message for message in messages), messages
    assert any("write Style(insert_newline_at_eof=...)" in message for message in messages), messages
    assert style == Style(space_before_namespace_brace=False, fix_namespace_comments=False,
                          insert_newline_at_eof=False, indent_width=2)
    assert all(str(warning.filename) == __file__ for warning in caught)
    with pytest.raises(TypeError, match="multiple values"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        Style(True, space_before_namespace_brace=False)  # type: ignore[misc]
