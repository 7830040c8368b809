"""Random expression trees print as C++ that means the tree: each prints warning-free under -Wall and
evaluates (libclang, in a `static_assert`) to the value the tree has under C++'s rules. That is what
the printer's parentheses promise, where precedence and associativity need them and where clang's
-Wparentheses asks for them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from flashast.axes import Configuration
from flashast.contract import Contract
from flashast.definition_printer import spell_expression
from flashast.expressions import BinaryExpression, BinaryOperator, Expression, IntegerLiteral, UnaryExpression
from flashast.generated import GeneratedFile
from flashast.nodes import TranslationUnit, Verbatim
from flashast.style import Style
from flashast.verify import VerifyOptions, verify

# Shifts, division and remainder are left out: their undefined cases (a negative shift, a zero
# divisor) are not what this test is about.
OPERATORS = [operator for operator in BinaryOperator if operator not in {
    BinaryOperator.SHIFT_LEFT, BinaryOperator.SHIFT_RIGHT, BinaryOperator.DIVIDE, BinaryOperator.REMAINDER}]


def value_of(expression: Expression) -> int:
    """The tree's value under C++'s rules (bools promote to 0 and 1; `&&`, `||`, `!` and comparisons
    give a bool)."""
    if isinstance(expression, IntegerLiteral):
        return expression.value
    if isinstance(expression, UnaryExpression):
        operand = value_of(expression.operand)
        return {"!": int(not operand), "-": -operand, "~": ~operand}[expression.operator.value]
    assert isinstance(expression, BinaryExpression)
    left, right = value_of(expression.left), value_of(expression.right)
    results = {
        "+": left + right, "-": left - right, "*": left * right, "<": int(left < right), "<=": int(left <= right),
        ">": int(left > right), ">=": int(left >= right), "==": int(left == right), "!=": int(left != right),
        "&": left & right, "^": left ^ right, "|": left | right, "&&": int(bool(left) and bool(right)),
        "||": int(bool(left) or bool(right)),
    }
    return results[expression.operator.value]


def equals(tree: Expression, value: int) -> Expression:
    """`tree == value`, as a tree (a negative value is `-` applied to a literal)."""
    literal: Expression = IntegerLiteral(abs(value))
    return BinaryExpression(tree, "==", UnaryExpression("-", literal) if value < 0 else literal)


def expressions() -> st.SearchStrategy[Expression]:
    # Literals up to 5, at most 8 of them; the filter keeps every value inside a 32-bit int.
    leaves = st.integers(0, 5).map(IntegerLiteral)

    def extend(children: st.SearchStrategy[Expression]) -> st.SearchStrategy[Expression]:
        unary = st.builds(UnaryExpression, st.sampled_from(["!", "-", "~"]), children)
        binary = st.builds(BinaryExpression, children, st.sampled_from(OPERATORS), children)
        return unary | binary

    return st.recursive(leaves, extend, max_leaves=8).filter(lambda tree: abs(value_of(tree)) < 2**31)


@settings(max_examples=25, derandomize=True, deadline=None)
@given(st.lists(expressions(), min_size=8, max_size=8))
def test_random_expressions_print_as_what_they_mean(trees: list[Expression]) -> None:
    assertions = [Verbatim(f'static_assert({spell_expression(equals(tree, value_of(tree)))}, "");') for tree in trees]
    file = GeneratedFile("expressions.cpp", "test", "expressions", Configuration(()), TranslationUnit(assertions),
                         Style(), Contract())
    # `5 && x` (a literal operand of a logical operator), `~(a < b)` (a bool complemented) and `2 ^ 2` are
    # warnings about what random trees mean, not about how they are printed.
    quiet = ("-Wno-constant-logical-operand", "-Wno-bool-operation", "-Wno-xor-used-as-pow")
    report = verify([file], VerifyOptions(clang_args=quiet))
    assert (report.errors, report.warnings) == ([], [])
