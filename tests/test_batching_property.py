"""Property: batched verification gives exactly the verdict of per-file verification.

For any list of generated files, `verify(files)` (which parses the batches `flashast.batching` plans
as one translation unit each) and `verify(files, progress=...)` (which never batches: every file is
parsed on its own) must agree: both pass with the same report text, or both raise
`VerificationError` with an identical `.report`. A batched pass where the per-file path fails is a
false pass, the worst outcome; any other difference is a bug too.

Two properties, both with real libclang:

- random small presets (2 to 8 files, sometimes aggregators over them) built through the public
  API from a pool that mixes valid explicit instantiations and specializations (some with bodies
  calling other templates, among them templates another file specializes), `extern` instantiations,
  classes and aliases declared in one file and used in the same or another one, `#ifdef`/`#ifndef`
  guards, duplicates, templates and types the contract does not declare, and `Verbatim` in files;
  against one of a few fixed contracts (plain, with a non-void defined template, with a `Verbatim`
  primary that rejects `N == 1`, with a `Verbatim` that makes one instantiation depend on another);
- valid rendered files whose `text` is then corrupted directly (a brace, parenthesis or angle
  bracket dropped or added, a line ending in a backslash, a late `#include`, a directive, a comment
  opener or closer, lines spliced from one file into another), since batching also guards against
  defects of the text that the model does not show.

`test_the_scenarios_exercise_batching` checks (without libclang) that a good share of the generated
examples are actually batched, so that the properties are not vacuous.

The explicit `@example`s are counterexamples this search found in the first version of batching,
kept as regression cases; their comments say which rule each one led to.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import HealthCheck, event, example, given, note, settings
from hypothesis import strategies as st

from flashast import (
    BlankLine,
    ClassDeclaration,
    Contract,
    FunctionTemplate,
    IfDefined,
    IfNotDefined,
    Include,
    Kind,
    LineComment,
    Namespace,
    PragmaOnce,
    Preset,
    Style,
    TranslationUnit,
    Type,
    TypeAlias,
    TypeParameter,
    ValueParameter,
    Verbatim,
    VerificationError,
)
from flashast.batching import plan_batches
from flashast.generated import GeneratedFile
from flashast.verify import VerifyOptions, verify

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

# The templates files use. Which of them a contract declares (and how) varies by contract.
KERNEL = FunctionTemplate((TypeParameter("T"), ValueParameter("int", "N")), "void", "kernel", (), defined=True)
HELPER = FunctionTemplate((ValueParameter("int", "N"),), "void", "helper", ())
LAUNCH = FunctionTemplate((ValueParameter("int", "N"),), "void", "launch", ())
# A defined template returning a value: its empty body is a -Wreturn-type warning once instantiated.
MAKE = FunctionTemplate((ValueParameter("int", "N"),), "int", "make", (), defined=True)
# Declared only by the stateful contract, whose `stamp<N>` defines what `check<N>` requires.
STAMP = FunctionTemplate((ValueParameter("int", "N"),), "void", "stamp", (), defined=True)
CHECK = FunctionTemplate((ValueParameter("int", "N"),), "void", "check", (), defined=True)
# Declared by no contract.
OTHER = FunctionTemplate((ValueParameter("int", "N"),), "void", "other", ())

# The primary template's body rejects N == 1 (as in test_batching.py): a call to helper<1> passes only
# where a specialization helper<1> is visible.
STRICT_HELPER = Verbatim('template <int N> void helper() { static_assert(N != 1, "helper<1> needs a specialization"); }')
# Friend injection: instantiating stamp<N> defines `stamped(flag<N>)`, which check<N> needs; check<N>
# passes only after stamp<N> was instantiated in the same translation unit.
STATEFUL = Verbatim(
    "template <int N> struct flag { friend constexpr bool stamped(flag<N>); };\n"
    "template <int N> struct setter { friend constexpr bool stamped(flag<N>) { return true; } };\n"
    'template <int N> void stamp() { static_assert(sizeof(setter<N>) > 0, "stamp"); }\n'
    'template <int N> void check() { static_assert(stamped(flag<N>{}), "check<N> needs stamp<N> first"); }'
)


def _contract(*declarations: object) -> Contract:
    # `#pragma once`: aggregators include several members, each including the header.
    return Contract({"kernel.h": (PragmaOnce(), Namespace("ns", (ClassDeclaration("half"), *declarations)))})


# The contracts without `Verbatim` text: the only ones batching applies to.
TRANSPARENT = ("plain", "valued")
CONTRACTS = {
    "plain": _contract(KERNEL, HELPER, LAUNCH),
    "valued": _contract(KERNEL, HELPER, LAUNCH, MAKE),
    "strict": _contract(KERNEL, STRICT_HELPER, LAUNCH),
    "stateful": _contract(KERNEL, HELPER, LAUNCH, STATEFUL),
}
# The templates each contract declares (files mostly use these; `undeclared` draws from the rest).
DECLARED = {
    "plain": (KERNEL, HELPER, LAUNCH),
    "valued": (KERNEL, HELPER, LAUNCH, MAKE),
    "strict": (KERNEL, HELPER, LAUNCH),
    "stateful": (KERNEL, HELPER, LAUNCH, STAMP, CHECK),
}
ALL_TEMPLATES = (KERNEL, HELPER, LAUNCH, MAKE, STAMP, CHECK, OTHER)
PRELUDES = (
    (LineComment("generated"), Include("kernel.h")),
    (LineComment("generated, second prelude"), Include("kernel.h")),
)
STYLES = (Style(), Style(final_newline=False, indent_namespace_body=True, comment_endif=True))
MACROS = ("WITH_A", "WITH_B")
# `half` is the contract's; `float4` and `bf16` exist only where a file declares them.
TYPES = ("half", "half", "half", "float4", "bf16", "int")
FILE_VERBATIMS = (
    "struct float4 {};",
    "template void kernel<half, 2>();",
    "template <> void helper<1>() {}",
)


@dataclass(frozen=True)
class FileSpec:
    """One plain file: its namespace body, which prelude it has, and an optional guard around it all."""

    body: tuple[object, ...]
    prelude: int = 0
    guard: tuple[str, str] | None = None  # ("ifdef" | "ifndef", macro)


@dataclass(frozen=True)
class Scenario:
    contract: str
    files: tuple[FileSpec, ...]
    aggregators: tuple[tuple[int, ...], ...] = ()  # each: the indexes of the plain files it includes
    strict: bool = False
    style: int = 0


# Text edits, applied to rendered files in order (indexes wrap around):
# ("insert", file, line, text)   insert `text` as a line before line `line`
# ("append", file, text)         add `text` as a last line
# ("drop", file, char, k)        remove the k-th occurrence of `char`
# ("splice", src, dst, start, count, at)  copy `count` lines of src from `start` into dst before `at`
Edit = tuple[object, ...]


def build_files(scenario: Scenario) -> list[GeneratedFile]:
    """The scenario's files, made the way every file is: kinds in a preset."""
    contract = CONTRACTS[scenario.contract]

    def build(config: object) -> TranslationUnit:
        spec = scenario.files[config.index]  # type: ignore[attr-defined]
        block: object = Namespace("ns", spec.body)
        if spec.guard is not None:
            directive, macro = spec.guard
            block = (IfDefined if directive == "ifdef" else IfNotDefined)(macro, (block,))
        return TranslationUnit((*PRELUDES[spec.prelude], block))

    kinds = [Kind("plain", {"index": tuple(range(len(scenario.files)))}, build, "f_{index}.cu", contract)]
    if scenario.aggregators:

        def aggregate(config: object) -> TranslationUnit:
            members = scenario.aggregators[config.index]  # type: ignore[attr-defined]
            return TranslationUnit((LineComment("aggregator"), *(Include(f"f_{index}.cu") for index in members)))

        kinds.append(Kind("agg", {"index": tuple(range(len(scenario.aggregators)))}, aggregate, "agg_{index}.cu",
                          contract, aggregator=True))
    return Preset("property", STYLES[scenario.style], kinds=tuple(kinds)).generate()


def apply_edits(files: list[GeneratedFile], edits: tuple[Edit, ...]) -> list[GeneratedFile]:
    files = list(files)
    for edit in edits:
        operation = edit[0]
        if operation == "splice":
            _, source, target, start, count, at = edit
            source_lines = files[source % len(files)].text.splitlines()
            start %= len(source_lines)
            _insert(files, target, at, "\n".join(source_lines[start:start + count]))
        elif operation == "insert":
            _, target, at, text = edit
            _insert(files, target, at, text)
        elif operation == "append":
            _, target, text = edit
            index = target % len(files)
            old = files[index].text
            files[index] = replace(files[index], text=old + ("" if old.endswith("\n") else "\n") + f"{text}\n")
        else:
            _, target, char, k = edit
            index = target % len(files)
            text = files[index].text
            positions = [position for position, found in enumerate(text) if found == char]
            if positions:
                position = positions[k % len(positions)]
                files[index] = replace(files[index], text=text[:position] + text[position + 1:])
    return files


def _insert(files: list[GeneratedFile], target: object, at: object, text: str) -> None:
    index = target % len(files)  # type: ignore[operator]
    lines = files[index].text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    at = at % (len(lines) + 1)  # type: ignore[operator]
    lines.insert(at, text + "\n")
    files[index] = replace(files[index], text="".join(lines))


def outcome(files: list[GeneratedFile], strict: bool, batched: bool) -> tuple[bool, str]:
    """(passed, report text): the text of `VerificationError.report`, or of the returned report."""
    options = VerifyOptions(strict=strict)
    try:
        if batched:
            report = verify(files, options)
        else:
            report = verify(files, options, progress=lambda generated, seconds, failed: None)
    except VerificationError as error:
        return False, error.report
    return True, report.text()


def batches_of(files: list[GeneratedFile]) -> list[list[str]]:
    return [[generated.name for generated in batch.files] for batch in plan_batches(files, {f.name: f for f in files})]


def check_same_verdict(files: list[GeneratedFile], strict: bool) -> None:
    batches = batches_of(files)
    event("batched" if batches else "not batched")
    for generated in files:
        note(f"--- {generated.name}\n{generated.text}")
    note(f"batches: {batches}; strict: {strict}")
    per_file = outcome(files, strict, batched=False)
    batched = outcome(files, strict, batched=True)
    if batched[0] and not per_file[0]:
        event("FALSE PASS")
    assert batched == per_file, (
        ("FALSE PASS: batched verification passes, per-file verification fails"
         if batched[0] and not per_file[0] else "batched and per-file verification differ")
        + f"\nbatches: {batches}\n--- batched (passed={batched[0]}):\n{batched[1]}"
        + f"\n--- per file (passed={per_file[0]}):\n{per_file[1]}"
    )


# Strategies -----------------------------------------------------------------------------------------

numbers = st.integers(0, 2)


# The kinds of declaration a scenario draws from: each scenario enables some, so that some lists of
# files hold only what batches may hold and others mix in what they must not.
BATCHABLE_CHOICES = ("extern", "specialize", "launch", "comment", "guard")
FAULT_CHOICES = ("class", "alias", "undeclared", "verbatim", "foreign type")

# A subject: a template and its arguments. A scenario draws a few and its files instantiate,
# declare `extern`, specialize and call mostly those, so that files meet on the same subjects.
Subject = tuple[FunctionTemplate, tuple[object, ...]]


@st.composite
def subjects(draw: st.DrawFn, contract: str) -> Subject:
    # Mostly kernel, which any file may instantiate; the others each fail or warn in some use.
    others = [template for template in DECLARED[contract] if template not in (KERNEL, LAUNCH)]
    template = draw(st.sampled_from([KERNEL, KERNEL, KERNEL, *others]))
    # Few distinct arguments, so that files meet on the same specializations.
    if template is KERNEL:
        return KERNEL, (draw(st.sampled_from(["half", "int"])), draw(st.integers(0, 1)))
    return template, (draw(st.integers(0, 1)),)


@st.composite
def declarations(draw: st.DrawFn, contract: str, enabled: tuple[str, ...], pool: tuple[Subject, ...],
                 depth: int = 0) -> object:
    """One declaration of a file's namespace body."""
    choices = [choice for choice in enabled if choice != "guard" or depth == 0]
    choice = draw(st.sampled_from(choices))
    template, arguments = draw(st.sampled_from(pool))
    if choice == "instantiate":
        if draw(st.integers(0, 2)):  # mostly a number of its own, so that not every batch has a clash
            arguments = (*arguments[:-1], draw(st.integers(10, 40)))
        return template.instantiate(*arguments)
    if choice == "extern":
        return template.instantiate(*arguments, extern=True)
    if choice == "specialize":
        return template.specialize(*arguments)
    if choice == "launch":
        calls = [callee.call(*callee_arguments) for callee, callee_arguments in draw(st.lists(st.sampled_from(pool),
                                                                                             max_size=2))]
        return LAUNCH.specialize(draw(st.integers(0, 20)), body=calls)
    if choice == "comment":
        return draw(st.sampled_from([LineComment("a comment"), BlankLine(), LineComment("*/")]))
    if choice == "guard":
        body = tuple(draw(st.lists(declarations(contract, enabled, pool, depth + 1), min_size=1, max_size=2)))
        macro = draw(st.sampled_from(MACROS))
        return IfDefined(macro, body) if draw(st.booleans()) else IfNotDefined(macro, body)
    if choice == "class":
        return ClassDeclaration(draw(st.sampled_from(["float4", "bf16"])), complete=draw(st.booleans()))
    if choice == "alias":
        return TypeAlias(draw(st.sampled_from(["bf16", "float4"])), Type(draw(st.sampled_from(["half", "int"]))))
    if choice == "undeclared":
        template = draw(st.sampled_from([template for template in ALL_TEMPLATES if template not in DECLARED[contract]]))
        return template.instantiate(draw(numbers))
    if choice == "foreign type":
        return KERNEL.instantiate(draw(st.sampled_from(["float4", "bf16"])), draw(numbers))
    return Verbatim(draw(st.sampled_from(FILE_VERBATIMS)))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    contract = draw(st.sampled_from(sorted(CONTRACTS)))
    pool = tuple(draw(st.lists(subjects(contract), min_size=2, max_size=3)))
    enabled = ("instantiate", "instantiate", *(choice for choice in BATCHABLE_CHOICES if draw(st.booleans())))
    faults = tuple(choice for choice in FAULT_CHOICES if draw(st.integers(0, 3)) == 0)
    count = draw(st.integers(2, 8))
    files = []
    for _ in range(count):
        # Faults only in some files, so that the others may still be batched.
        file_enabled = (*enabled, *faults) if faults and draw(st.integers(0, 2)) == 0 else enabled
        body = tuple(draw(st.lists(declarations(contract, file_enabled, pool), min_size=1, max_size=3)))
        prelude = draw(st.sampled_from([0, 0, 0, 1]))
        guard = draw(st.sampled_from([None, None, None, ("ifdef", "WITH_A"), ("ifndef", "WITH_B")]))
        files.append(FileSpec(body, prelude, guard))
    aggregators = draw(st.sampled_from([(), (), ()]) | st.lists(
        st.lists(st.integers(0, count - 1), min_size=1, max_size=3, unique=True).map(tuple), min_size=1, max_size=3,
    ).map(tuple))
    return Scenario(contract, tuple(files), aggregators, draw(st.booleans()), draw(st.sampled_from([0, 1])))


@st.composite
def clean_scenarios(draw: st.DrawFn) -> Scenario:
    """Files that batch (before their text is edited) and mostly verify: instantiations of kernel, and
    specializations of launch calling it; now and then kernel<float4, N>, which fails unless some
    text declares float4."""
    kernel = st.builds(KERNEL.instantiate, st.sampled_from(["half", "half", "int", "int", "int", "float4"]), numbers)
    launch = st.builds(lambda number, calls: LAUNCH.specialize(number, body=calls), numbers,
                       st.lists(st.builds(KERNEL.call, st.sampled_from(["half", "int"]), numbers), max_size=2))
    declaration = st.one_of(kernel, kernel, launch, st.sampled_from([LineComment("a comment"), LineComment("*/")]))
    count = draw(st.integers(2, 8))
    files = tuple(FileSpec(tuple(draw(st.lists(declaration, min_size=1, max_size=3)))) for _ in range(count))
    return Scenario(draw(st.sampled_from(["plain", "valued"])), files, (), draw(st.booleans()),
                    draw(st.sampled_from([0, 1])))


LINE_TEXTS = (
    "{", "}", "(", ")", "<", ">", ";", "namespace ns {", "} // namespace ns", "// a comment ending in a backslash \\",
    "x \\", '#include "kernel.h"', "#pragma once", "#define float4 half", "%:define float4 half", "#if 0", "#else",
    "#endif", "/*", "*/", "// */", "namespace ns { /* }", "/**/ #define float4 half", "struct float4 {};",
    "template void kernel<half, 1>();", "template <> void helper<1>() {}", "extern template void kernel<half, 0>();",
)


@st.composite
def edits(draw: st.DrawFn) -> tuple[Edit, ...]:
    found: list[Edit] = []
    for _ in range(draw(st.integers(1, 3))):
        operation = draw(st.sampled_from(["insert", "append", "drop", "splice"]))
        target = draw(st.integers(0, 7))
        if operation == "insert":
            found.append(("insert", target, draw(st.integers(0, 12)), draw(st.sampled_from(LINE_TEXTS))))
        elif operation == "append":
            found.append(("append", target, draw(st.sampled_from(LINE_TEXTS))))
        elif operation == "drop":
            found.append(("drop", target, draw(st.sampled_from("{}()<>;")), draw(st.integers(0, 5))))
        else:
            found.append(("splice", draw(st.integers(0, 7)), target, draw(st.integers(0, 12)), draw(st.integers(1, 4)),
                          draw(st.integers(0, 12))))
    return tuple(found)


# Counterexamples found by this search (false passes of the first version), each fixed since -------
#
# Fixes: an `extern template` is batched only with files that neither call nor instantiate that name
# (like a specialization); nothing is batched against a contract with `Verbatim`; a file is batched
# only when its text is its model's rendering, with no block comment and no digraph.

# `helper` is declared by the contract but not defined, so f_0's explicit instantiation definition is
# an error ("explicit instantiation of undefined function template"). Clang reports it when it
# performs the pending instantiation at the end of the translation unit; in the batch, f_1's later
# `extern template void helper<1>();` turns the specialization into an explicit instantiation
# declaration first, and clang says nothing at all: a false pass with the plainest contract. The
# docstring admits `extern` whenever the contract has no `Verbatim`, because "instantiating a
# contract's template can only go wrong in Verbatim contract text (a FunctionTemplate's body is
# empty)"; a `FunctionTemplate` with no body at all goes wrong too.
UNDEFINED_THEN_EXTERN = Scenario("plain", (
    FileSpec((HELPER.instantiate(1),)),
    FileSpec((HELPER.instantiate(1, extern=True),)),
))
# A contract template with a non-void return type and an empty body (`int make() {}`) warns
# (-Wreturn-type) wherever it is instantiated. f_1's call instantiates make<0>; alone, f_1 gets that
# warning (a failure under --strict, a reported warning otherwise). In the batch, f_0's
# `extern template int make<0>();` suppresses the implicit instantiation, so the shared parse is
# clean and both files pass: batching.py admits `extern` whenever the contract has no `Verbatim`, on
# the premise that "instantiating a contract's template can only go wrong in Verbatim contract text
# (a FunctionTemplate's body is empty)", which does not hold for a non-void `FunctionTemplate`.
RETURN_TYPE_EXTERN = Scenario("valued", (
    FileSpec((MAKE.instantiate(0, extern=True),)),
    FileSpec((LAUNCH.specialize(0, body=[MAKE.call(0)]),)),
), strict=True)
# The same without --strict: the warning the per-file path reports is missing from the batched
# report, visible in `.report` as soon as any other file fails (f_2, alone in its prelude group).
RETURN_TYPE_EXTERN_DEFAULT = Scenario("valued", (
    FileSpec((MAKE.instantiate(0, extern=True),)),
    FileSpec((LAUNCH.specialize(0, body=[MAKE.call(0)]),)),
    FileSpec((KERNEL.instantiate("float4", 0),), prelude=1),
))
# With `Verbatim` contract text, explicit instantiations alone (no specialization, no extern) can
# depend on each other: stamp<1> defines, by friend injection, what check<1> needs. f_1 fails alone;
# after f_0 in the batch it passes.
STATEFUL_INSTANTIATIONS = Scenario("stateful", (
    FileSpec((STAMP.instantiate(1),)),
    FileSpec((CHECK.instantiate(1),)),
))

# Text-level: a digraph directive (`%:` is `#`) after the prelude is not seen as a directive by the
# "any directive but a conditional" check; it defines float4 for f_1, which fails alone.
DIGRAPH_DEFINE = (
    Scenario("plain", (FileSpec((KERNEL.instantiate("half", 0),)), FileSpec((KERNEL.instantiate("float4", 1),)))),
    (("insert", 0, 2, "%:define float4 half"),),
)
# Text-level: a block comment is not among the things checked to be closed: f_0 opens one on a line
# of its own (its braces still balance and its code still ends in `}`), and `// */` in f_1 (a valid
# `LineComment("*/")`) closes it in the batch, taking f_0's `}` and f_1's `namespace ns {` with it.
# f_0 fails alone ("unterminated /* comment").
BLOCK_COMMENT = (
    Scenario("plain", (FileSpec((KERNEL.instantiate("half", 0),)),
                       FileSpec((LineComment("*/"), KERNEL.instantiate("half", 1))))),
    (("insert", 0, 4, "/*"),),
)
# Text-level: a declaration the text holds but the model does not (as a line spliced from another
# file): the name-introducing rule is checked on the model only, so f_0's `struct float4 {};`
# declares float4 for f_1, which fails alone.
SPLICED_DECLARATION = (
    Scenario("plain", (FileSpec((KERNEL.instantiate("half", 0),)), FileSpec((KERNEL.instantiate("float4", 1),)))),
    (("insert", 0, 3, "struct float4 {};"),),
)


# Properties -----------------------------------------------------------------------------------------


@PROPERTY
@given(scenarios())
@example(UNDEFINED_THEN_EXTERN)
@example(RETURN_TYPE_EXTERN)
@example(RETURN_TYPE_EXTERN_DEFAULT)
@example(STATEFUL_INSTANTIATIONS)
def test_batched_and_per_file_verification_agree(scenario: Scenario) -> None:
    check_same_verdict(build_files(scenario), scenario.strict)


@PROPERTY
@given(clean_scenarios(), edits())
@example(*DIGRAPH_DEFINE)
@example(*BLOCK_COMMENT)
@example(*SPLICED_DECLARATION)
def test_batched_and_per_file_verification_agree_on_corrupted_text(scenario: Scenario, changes: tuple[Edit, ...]) -> None:
    check_same_verdict(apply_edits(build_files(scenario), changes), scenario.strict)


def test_the_scenarios_exercise_batching() -> None:
    """A good share of the generated cases plan at least one batch, and an edited file never is in
    one (planning only, no libclang)."""
    planned: list[bool] = []
    edited_in_batch: list[bool] = []
    batched_anyway: list[bool] = []
    planning = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

    @planning
    @given(scenarios())
    def plan(scenario: Scenario) -> None:
        if scenario.contract in TRANSPARENT:  # nothing is ever batched against `Verbatim` contract text
            planned.append(bool(batches_of(build_files(scenario))))

    @planning
    @given(clean_scenarios(), edits())
    def plan_edited(scenario: Scenario, changes: tuple[Edit, ...]) -> None:
        files = build_files(scenario)
        edited = apply_edits(files, changes)
        changed = {new.name for old, new in zip(files, edited, strict=True) if old.text != new.text}
        batches = batches_of(edited)
        edited_in_batch.append(any(changed & set(batch) for batch in batches))
        batched_anyway.append(bool(batches))

    plan()
    plan_edited()
    assert sum(planned) >= 0.3 * len(planned), f"only {sum(planned)} of {len(planned)} transparent scenarios batch"
    assert not any(edited_in_batch), "a file whose text is not its model's rendering is never batched"
    assert sum(batched_anyway) >= 0.15 * len(batched_anyway), (
        f"only {sum(batched_anyway)} of {len(batched_anyway)} edited lists of files batch their other files"
    )
