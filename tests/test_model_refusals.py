"""The model refuses, when a node is made, what clang would read differently from what the node says.

A comment is one line only if the preprocessor agrees: clang and gcc splice a line that ends in a
backslash even when spaces or tabs follow it, so `// x\\ ` swallows the next line (with `--no-verify`,
an explicit instantiation would silently declare nothing). Which endings splice is asked of libclang
itself, so the model's rule and the compiler's cannot drift. A function-like macro's parameter is
bound once per invocation, so every template parameter it feeds, within one instantiation too, must
take the same kind of argument.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

from flashast.errors import ModelError
from flashast.macros import FunctionMacro, MacroInstantiation
from flashast.names import TrailingComment
from flashast.nodes import BlockComment, LineComment
from flashast.signatures import IntArg, TypeParameter, ValueParameter
from flashast.templates import FunctionTemplate, MacroParameter
from flashast.verify.toolchain import load_cindex

ENDINGS = ["x", "x\\", "x\\ ", "x\\  ", "x\\\t", "x\\ \t ", "x\\\f", "x\\\v", "x\\ y", "x \\ y", "\\ ",
           "x\\\u00a0", "x//\\ "]


def clang_splices(comment_line: str) -> bool:
    """Whether clang takes the line after `comment_line` into it: the declaration there vanishes."""
    cindex = load_cindex()
    source = f"{comment_line}\nint declared_after_the_comment;\n"
    unit = cindex.Index.create().parse("t.cpp", args=["-std=c++17", "-xc++"], unsaved_files=[("t.cpp", source)])
    names = {cursor.spelling for cursor in unit.cursor.get_children()}
    return "declared_after_the_comment" not in names


@pytest.mark.parametrize("text", ENDINGS, ids=repr)
def test_a_line_comment_is_refused_exactly_when_clang_would_splice_the_next_line(text: str) -> None:
    splices = clang_splices(f"// {text}")
    try:
        LineComment(text)
    except ModelError as error:
        assert splices, f"refused what clang reads as one line: {error}"
        assert error.field == "text" and error.value == text
        assert "splice" in error.problem
    else:
        assert not splices, f"LineComment({text!r}) accepted, but clang splices the next line into it"


@pytest.mark.parametrize("text", ["x\\ ", "x\\\t", "x\\ \t ", "x??/  "], ids=repr)
def test_every_comment_node_refuses_a_backslash_then_blanks(text: str) -> None:
    for build in (lambda: LineComment(text), lambda: TrailingComment(text), lambda: BlockComment((text,))):
        with pytest.raises(ModelError, match="splice"):
            build()


def test_a_plugin_comment_ending_in_a_backslash_and_a_space_is_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    """With `--no-verify` nothing would catch the vanished line later: the refusal is the only guard."""
    plugin = tmp_path / "splice.py"
    plugin.write_text(
        "from flashast import Kind, LineComment, TranslationUnit\n"
        "\n"
        "\n"
        "def build(config):\n"
        "    return TranslationUnit((LineComment('x\\\\ '),))\n"
        "\n"
        "\n"
        "def register(registry):\n"
        "    registry.add_kind('pytorch', Kind('splice', axes={'head_dim': (128,)}, build=build,"
        " file_name='splice_hdim{head_dim}.cu'))\n"
    )
    code, _, stderr = run_cli("-o", "kernels", "--plugin", str(plugin), "--no-verify", cwd=tmp_path)
    assert code == 2, stderr
    error = stderr.strip().splitlines()[-1]
    assert error.startswith("flashast: error: ") and stderr.count("flashast: error: ") == 1
    assert "Kind(splice)" in error and "LineComment.text=" in error and "splice" in error
    assert "Traceback" not in stderr
    assert not (tmp_path / "kernels").exists()


MIXED = FunctionTemplate((ValueParameter("int", "D"), TypeParameter("T")), "void", "mixed", (), defined=True)
FLAGS = FunctionTemplate((ValueParameter("int", "D"), ValueParameter("bool", "B")), "void", "flags", (), defined=True)


@pytest.mark.parametrize("template", [MIXED, FLAGS], ids=["int-and-type", "int-and-bool"])
def test_a_macro_parameter_feeding_two_kinds_in_one_instantiation_is_refused_at_construction(
    template: FunctionTemplate,
) -> None:
    with pytest.raises(ModelError) as caught:
        FunctionMacro("DECL", ("P",), MacroInstantiation(template, (MacroParameter("P"), MacroParameter("P"))))
    assert caught.value.field == "parameters" and caught.value.value == "P"
    assert "different kinds" in caught.value.problem


def test_a_macro_parameter_feeding_two_parameters_of_one_kind_is_accepted_and_expands() -> None:
    twice = FunctionTemplate((ValueParameter("int", "D"), ValueParameter("int", "E")), "void", "twice", (),
                             defined=True)
    macro = FunctionMacro("DECL", ("P",), MacroInstantiation(twice, (MacroParameter("P"), MacroParameter("P"))))
    (instantiation,) = macro.invoke(64).expansion()
    assert instantiation.signature.template_arguments == (IntArg(64), IntArg(64))
