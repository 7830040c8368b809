"""The `llama.cpp` preset: ggml's CUDA template instance files (120 files).

Byte for byte what ggml-org/llama.cpp `ggml/src/ggml-cuda/template-instances/generate_cu_files.py`
writes (as of commit 1f4ed6451e43a89682978ada600f7be42468f96b), in five kinds. Each file includes its
family's header from the parent directory (`#include "../fattn-vec.cuh"`) and invokes that header's
`DECL_*_CASE` macros, which expand to explicit instantiation definitions:

- `fattn_tile` (12): `DECL_FATTN_TILE_CASE(DKQ, DV)` for one pair of head sizes;
- `fattn_vec` (49): `DECL_FATTN_VEC_CASE(D, type_K, type_V)` for D = 64, 128, 256 and one pair of
  K/V types, D padded to three columns (`( 64,` beside `(128,`);
- `fattn_mma_f16` (21): `DECL_FATTN_MMA_F16_CASE(DKQ, DV, ncols1, ncols2)` for one (ncols1, ncols2)
  and every head size the kernel is built for with it;
- `mmq` (22): `DECL_MMQ_CASE(type)`, and for the FP4 types also `DECL_MMQ_CASE_W4A4(type)`;
- `mmf` (16): `DECL_MMF_CASE(ncols_dst)`.

Types are `ggml_type` enumerators in the C++ (`GGML_TYPE_Q4_0`) and their short names on the axes and
in file names (`q4_0`), as upstream's `get_short_name` spells them.

The generator's rules are the kinds' constraints, each with its reason: DV equals DKQ except for the
asymmetric head sizes (576/512, 320/256, 192/128); an mma file exists for ncols1 x ncols2 in {8, 16,
32, 64}. Which head sizes an mma file instantiates is a rule inside one file (`mma_case_skip_reason`).

Upstream's script first deletes every `*.cu` in its directory (`for filename in glob("*.cu"):
os.remove(filename)`), then writes every file. flashast must not do that: it writes only files whose
bytes changed and never deletes a file it did not write; files it no longer makes are reported as
stale, and removed only when asked, and only if its manifest says they are its own.

The contract is written from the facts of ggml's headers (`fattn-vec.cuh`, `fattn-tile.cuh`,
`fattn-mma-f16.cuh`, `mmq.cuh`, `mmf.cuh`, `common.cuh` and `ggml.h`): the primary templates the macros
instantiate, with their parameter kinds, and the macros, whose replacements are modelled as typed
explicit instantiations (`FunctionMacro`). Where the model simplifies: `DECL_MMF_CASE` is written as
its six instantiations directly (upstream goes through `DECL_MMF_CASE_HELPER`, with the block-row
counts `MMF_ROWS_PER_BLOCK` = 32 and `MMF_ROWS_PER_BLOCK_CDNA` = 64 as macros); every macro's last
instantiation is ended by the invocation's `;`; CUDA's vector types are opaque structs.
"""

from __future__ import annotations

from collections.abc import Sequence

from flashast.axes import AxisValue, Configuration
from flashast.contract import Contract
from flashast.kinds import Kind, Preset
from flashast.nodes import (
    BlankLine,
    ClassDeclaration,
    Declaration,
    Declarator,
    EnumDeclaration,
    Enumerator,
    FunctionMacro,
    FunctionTemplate,
    Include,
    LineComment,
    MacroInstantiation,
    MacroParameter,
    Parameter,
    PragmaOnce,
    TranslationUnit,
    Type,
    TypeAlias,
    TypeParameter,
    ValueParameter,
)
from flashast.presets.common import cuda_stream
from flashast.style import Style

PRESET_NAME = "llama.cpp"
STYLE = Style()

# The enumerations of ggml.h, with their values: an argument naming an enumerator is checked against them.
GGML_TYPE = EnumDeclaration(
    "ggml_type",
    (
        Enumerator("GGML_TYPE_F32", 0), Enumerator("GGML_TYPE_F16", 1), Enumerator("GGML_TYPE_Q4_0", 2),
        Enumerator("GGML_TYPE_Q4_1", 3), Enumerator("GGML_TYPE_Q5_0", 6), Enumerator("GGML_TYPE_Q5_1", 7),
        Enumerator("GGML_TYPE_Q8_0", 8), Enumerator("GGML_TYPE_Q8_1", 9), Enumerator("GGML_TYPE_Q2_K", 10),
        Enumerator("GGML_TYPE_Q3_K", 11), Enumerator("GGML_TYPE_Q4_K", 12), Enumerator("GGML_TYPE_Q5_K", 13),
        Enumerator("GGML_TYPE_Q6_K", 14), Enumerator("GGML_TYPE_Q8_K", 15), Enumerator("GGML_TYPE_IQ2_XXS", 16),
        Enumerator("GGML_TYPE_IQ2_XS", 17), Enumerator("GGML_TYPE_IQ3_XXS", 18), Enumerator("GGML_TYPE_IQ1_S", 19),
        Enumerator("GGML_TYPE_IQ4_NL", 20), Enumerator("GGML_TYPE_IQ3_S", 21), Enumerator("GGML_TYPE_IQ2_S", 22),
        Enumerator("GGML_TYPE_IQ4_XS", 23), Enumerator("GGML_TYPE_I8", 24), Enumerator("GGML_TYPE_I16", 25),
        Enumerator("GGML_TYPE_I32", 26), Enumerator("GGML_TYPE_I64", 27), Enumerator("GGML_TYPE_F64", 28),
        Enumerator("GGML_TYPE_IQ1_M", 29), Enumerator("GGML_TYPE_BF16", 30), Enumerator("GGML_TYPE_TQ1_0", 34),
        Enumerator("GGML_TYPE_TQ2_0", 35), Enumerator("GGML_TYPE_MXFP4", 39), Enumerator("GGML_TYPE_NVFP4", 40),
        Enumerator("GGML_TYPE_Q1_0", 41), Enumerator("GGML_TYPE_Q2_0", 42), Enumerator("GGML_TYPE_COUNT", 43),
    ),
)
GGML_PREC = EnumDeclaration(
    "ggml_prec",
    (
        Enumerator("GGML_PREC_UNDEFINED", 0), Enumerator("GGML_PREC_DEFAULT", 0), Enumerator("GGML_PREC_F32", 10),
        Enumerator("GGML_PREC_BF16", 15), Enumerator("GGML_PREC_F16", 20), Enumerator("GGML_PREC_Q8", 30),
        Enumerator("GGML_PREC_Q4", 40),
    ),
)

# The axes, as upstream lists them (K/V and matrix types by short name).
HEAD_SIZES_KQ = (40, 64, 72, 80, 96, 112, 128, 192, 256, 320, 512, 576)
# DKQ -> DV for the asymmetric head sizes; every other DV equals its DKQ.
HEAD_SIZES_V_OVERRIDE = {576: 512, 320: 256, 192: 128}
HEAD_SIZES_V = tuple(sorted({HEAD_SIZES_V_OVERRIDE.get(size, size) for size in HEAD_SIZES_KQ}))
TYPES_KV = ("f16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "bf16")
VEC_HEAD_SIZES = (64, 128, 256)
NCOLS1 = (1, 2, 4, 8, 16, 32, 64)
NCOLS2 = (1, 2, 4, 8, 16, 32)
MMA_NCOLS = (8, 16, 32, 64)
TYPES_MMQ = (
    "q1_0", "q2_0", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k",
    "iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s", "iq1_s", "iq4_nl", "iq4_xs", "mxfp4", "nvfp4",
)
# The FP4 types, whose mmq files also instantiate the native FP4 (W4A4) variant.
TYPES_MMQ_W4A4 = ("mxfp4", "nvfp4")
MMF_NCOLS_DST = tuple(range(1, 17))


def ggml_type(short_name: str) -> str:
    """`q4_0` -> `GGML_TYPE_Q4_0` (the inverse of upstream's `get_short_name`)."""
    return "GGML_TYPE_" + short_name.upper()


# The contract -------------------------------------------------------------------------------------

CUDA_CONTEXT = Parameter(Type("ggml_backend_cuda_context", declarator=Declarator.REFERENCE), "ctx")
DESTINATION = Parameter(Type("ggml_tensor", declarator=Declarator.POINTER), "dst")


def _int64(name: str) -> Parameter:
    return Parameter(Type("int64_t", const=True), name)


FATTN_VEC_CASE = FunctionTemplate(
    (ValueParameter("int", "D"), ValueParameter(GGML_TYPE, "type_K"), ValueParameter(GGML_TYPE, "type_V")),
    "void", "ggml_cuda_flash_attn_ext_vec_case", (CUDA_CONTEXT, DESTINATION), defined=True,
)
FATTN_TILE_CASE = FunctionTemplate(
    (ValueParameter("int", "DKQ"), ValueParameter("int", "DV")),
    "void", "ggml_cuda_flash_attn_ext_tile_case", (CUDA_CONTEXT, DESTINATION), defined=True,
)
FATTN_MMA_F16_CASE = FunctionTemplate(
    (ValueParameter("int", "DKQ"), ValueParameter("int", "DV"), ValueParameter("int", "ncols1"),
     ValueParameter("int", "ncols2")),
    "void", "ggml_cuda_flash_attn_ext_mma_f16_case", (CUDA_CONTEXT, DESTINATION), defined=True,
)
MUL_MAT_Q_CASE = FunctionTemplate(
    (ValueParameter(GGML_TYPE, "type"), ValueParameter(GGML_PREC, "prec_src1", default="GGML_PREC_Q8")),
    "void", "mul_mat_q_case",
    (CUDA_CONTEXT, Parameter(Type("mmq_args", const=True, declarator=Declarator.REFERENCE), "args"),
     Parameter(Type("cudaStream_t"), "stream")),
    defined=True,
)
MUL_MAT_F_CUDA = FunctionTemplate(
    (TypeParameter("T"), ValueParameter("int", "rows_per_block"), ValueParameter("int", "cols_per_block")),
    "void", "mul_mat_f_cuda",
    (
        Parameter(Type("T", const=True, declarator=Declarator.POINTER), "x"),
        Parameter(Type("float", const=True, declarator=Declarator.POINTER), "y"),
        Parameter(Type("int32_t", const=True, declarator=Declarator.POINTER), "ids"),
        Parameter(Type("float", declarator=Declarator.POINTER), "dst"),
        # Upstream's template calls this one `ncols_dst`; its instantiation macro spells it
        # `ncols_dst_total`, since `ncols_dst` is the macro's parameter there (FunctionMacro refuses
        # the clash: the preprocessor would replace the parameter's name with the macro's argument).
        *map(_int64, ("ncols_x", "nrows_x", "ncols_dst_total", "stride_row", "stride_col_y", "stride_col_dst",
                      "stride_col_id", "stride_row_id", "nchannels_x", "nchannels_y", "nchannels_dst",
                      "stride_channel_x", "stride_channel_y", "stride_channel_dst", "nsamples_x", "nsamples_dst",
                      "stride_sample_x", "stride_sample_y", "stride_sample_dst")),
        Parameter(Type("cudaStream_t"), "stream"),
        Parameter(Type("mmf_ids_data", const=True, declarator=Declarator.POINTER), "ids_data"),
    ),
    defined=True,
)
# The element types and block-row counts (MMF_ROWS_PER_BLOCK, MMF_ROWS_PER_BLOCK_CDNA) DECL_MMF_CASE covers.
MMF_ELEMENT_TYPES = ("float", "half2", "nv_bfloat162")
MMF_ROWS_PER_BLOCK = (32, 64)

DECL_FATTN_VEC_CASE = FunctionMacro(
    "DECL_FATTN_VEC_CASE", ("D", "type_K", "type_V"),
    MacroInstantiation(FATTN_VEC_CASE, (MacroParameter("D"), MacroParameter("type_K"), MacroParameter("type_V"))),
)
DECL_FATTN_TILE_CASE = FunctionMacro(
    "DECL_FATTN_TILE_CASE", ("DKQ", "DV"),
    MacroInstantiation(FATTN_TILE_CASE, (MacroParameter("DKQ"), MacroParameter("DV"))),
)
DECL_FATTN_MMA_F16_CASE = FunctionMacro(
    "DECL_FATTN_MMA_F16_CASE", ("DKQ", "DV", "ncols1", "ncols2"),
    MacroInstantiation(FATTN_MMA_F16_CASE, tuple(map(MacroParameter, ("DKQ", "DV", "ncols1", "ncols2")))),
)
DECL_MMQ_CASE = FunctionMacro(
    "DECL_MMQ_CASE", ("type",), MacroInstantiation(MUL_MAT_Q_CASE, (MacroParameter("type"),))
)
DECL_MMQ_CASE_W4A4 = FunctionMacro(
    "DECL_MMQ_CASE_W4A4", ("type",), MacroInstantiation(MUL_MAT_Q_CASE, (MacroParameter("type"), "GGML_PREC_Q4"))
)
DECL_MMF_CASE = FunctionMacro(
    "DECL_MMF_CASE", ("ncols_dst",),
    tuple(
        MacroInstantiation(MUL_MAT_F_CUDA, (element, rows, MacroParameter("ncols_dst")))
        for rows in MMF_ROWS_PER_BLOCK for element in MMF_ELEMENT_TYPES
    ),
)

COMMON_HEADER = "../common.cuh"


def _family_header(*declarations: Declaration) -> tuple[Declaration, ...]:
    """A family header as upstream's files see it: `common.cuh` (beside it), then its declarations."""
    return (PragmaOnce(), Include("common.cuh"), *declarations)


CONTRACT = Contract(
    {
        "ggml.h": (PragmaOnce(), GGML_TYPE, GGML_PREC, ClassDeclaration("ggml_tensor")),
        COMMON_HEADER: (
            PragmaOnce(),
            Include("ggml.h"),
            TypeAlias("int32_t", "int"),
            TypeAlias("int64_t", "long long"),
            *cuda_stream(),
            ClassDeclaration("half2"),
            ClassDeclaration("nv_bfloat162"),
            ClassDeclaration("ggml_backend_cuda_context"),
        ),
        "../fattn-vec.cuh": _family_header(FATTN_VEC_CASE, DECL_FATTN_VEC_CASE),
        "../fattn-tile.cuh": _family_header(FATTN_TILE_CASE, DECL_FATTN_TILE_CASE),
        "../fattn-mma-f16.cuh": _family_header(FATTN_MMA_F16_CASE, DECL_FATTN_MMA_F16_CASE),
        "../mmq.cuh": _family_header(ClassDeclaration("mmq_args"), MUL_MAT_Q_CASE, DECL_MMQ_CASE, DECL_MMQ_CASE_W4A4),
        "../mmf.cuh": _family_header(ClassDeclaration("mmf_ids_data"), MUL_MAT_F_CUDA, DECL_MMF_CASE),
    }
)


# The files --------------------------------------------------------------------------------------

NOTICE = LineComment("This file has been autogenerated by generate_cu_files.py, do not edit manually.")


def _instance_file(header: str, *invocations: Declaration) -> TranslationUnit:
    """The notice, a blank line, the family header, a blank line, then the invocations."""
    return TranslationUnit((NOTICE, BlankLine(), Include(f"../{header}"), BlankLine(), *invocations))


def fattn_tile_constraint(config: Configuration) -> str | None:
    expected = HEAD_SIZES_V_OVERRIDE.get(int(config.dkq), int(config.dkq))
    if config.dv != expected:
        return f"the tile kernel for DKQ {config.dkq} has DV {expected}"
    return None


def build_fattn_tile(config: Configuration) -> TranslationUnit:
    return _instance_file("fattn-tile.cuh", DECL_FATTN_TILE_CASE.invoke(config.dkq, config.dv))


def build_fattn_vec(config: Configuration) -> TranslationUnit:
    type_k, type_v = ggml_type(str(config.type_k)), ggml_type(str(config.type_v))
    # Upstream pads D to three columns: `( 64,` beside `(128,`.
    return _instance_file(
        "fattn-vec.cuh", *(DECL_FATTN_VEC_CASE.invoke(size, type_k, type_v, widths=(3,)) for size in VEC_HEAD_SIZES)
    )


def fattn_mma_constraint(config: Configuration) -> str | None:
    if int(config.ncols1) * int(config.ncols2) not in MMA_NCOLS:
        return "the mma kernel takes ncols1 x ncols2 columns per block, one of 8, 16, 32, 64"
    return None


def mma_case_skip_reason(head_size: int, ncols1: int, ncols2: int) -> str | None:
    """Why upstream's mma file for (ncols1, ncols2) has no case for `head_size`, or None (it has one).

    The models named are upstream's own comments: niche head sizes are compiled only for the GQA
    ratios (ncols2) those models use.
    """
    if head_size in (40, 72):
        return f"no mma kernel for head size {head_size}"
    only = {192: (8, 16), 320: (32,), 512: (2, 4, 8), 576: (4, 16, 32)}
    models = {192: "MiMo-V2.5", 320: "Mistral Small 4", 512: "Gemma 4 (+ MTP)", 576: "Deepseek, GLM 4.7 Flash"}
    if head_size in only and ncols2 not in only[head_size]:
        return f"head size {head_size} is compiled only for ncols2 in {only[head_size]} ({models[head_size]})"
    if head_size not in (192, 320, 576) and ncols2 in (16, 32) and (head_size, ncols1, ncols2) != (128, 1, 16):
        return "ncols2 16 and 32 are compiled for head sizes 192, 320, 576 and 128 with ncols1 1 (MiniMax-M3 sparse FA)"
    return None


def build_fattn_mma(config: Configuration) -> TranslationUnit:
    ncols1, ncols2 = int(config.ncols1), int(config.ncols2)
    cases = [
        DECL_FATTN_MMA_F16_CASE.invoke(size, HEAD_SIZES_V_OVERRIDE.get(size, size), ncols1, ncols2)
        for size in HEAD_SIZES_KQ if mma_case_skip_reason(size, ncols1, ncols2) is None
    ]
    return _instance_file("fattn-mma-f16.cuh", *cases)


def build_mmq(config: Configuration) -> TranslationUnit:
    type_ = ggml_type(str(config.type))
    w4a4 = (BlankLine(), DECL_MMQ_CASE_W4A4.invoke(type_)) if config.type in TYPES_MMQ_W4A4 else ()
    return _instance_file("mmq.cuh", DECL_MMQ_CASE.invoke(type_), *w4a4)


def build_mmf(config: Configuration) -> TranslationUnit:
    return _instance_file("mmf.cuh", DECL_MMF_CASE.invoke(config.ncols_dst))


FATTN_TILE_AXES: dict[str, Sequence[AxisValue]] = {"dkq": HEAD_SIZES_KQ, "dv": HEAD_SIZES_V}

FATTN_TILE = Kind(
    "fattn_tile", axes=FATTN_TILE_AXES, build=build_fattn_tile, file_name="fattn-tile-instance-dkq{dkq}-dv{dv}.cu",
    contract=CONTRACT, constraint=fattn_tile_constraint,
    description="ggml_cuda_flash_attn_ext_tile_case<DKQ, DV> via DECL_FATTN_TILE_CASE",
)
FATTN_VEC = Kind(
    "fattn_vec", axes={"type_k": TYPES_KV, "type_v": TYPES_KV}, build=build_fattn_vec,
    file_name="fattn-vec-instance-{type_k}-{type_v}.cu", contract=CONTRACT,
    description="ggml_cuda_flash_attn_ext_vec_case<D, type_K, type_V> for D 64/128/256 via DECL_FATTN_VEC_CASE",
)
FATTN_MMA_F16 = Kind(
    "fattn_mma_f16", axes={"ncols1": NCOLS1, "ncols2": NCOLS2}, build=build_fattn_mma,
    file_name="fattn-mma-f16-instance-ncols1_{ncols1}-ncols2_{ncols2}.cu", contract=CONTRACT,
    constraint=fattn_mma_constraint,
    description="ggml_cuda_flash_attn_ext_mma_f16_case<DKQ, DV, ncols1, ncols2> via DECL_FATTN_MMA_F16_CASE",
)
MMQ = Kind(
    "mmq", axes={"type": TYPES_MMQ}, build=build_mmq, file_name="mmq-instance-{type}.cu", contract=CONTRACT,
    description="mul_mat_q_case<type> via DECL_MMQ_CASE (and the FP4 W4A4 variant)",
)
MMF = Kind(
    "mmf", axes={"ncols_dst": MMF_NCOLS_DST}, build=build_mmf, file_name="mmf-instance-ncols_{ncols_dst}.cu",
    contract=CONTRACT, description="mul_mat_f_cuda<T, rows_per_block, ncols_dst> via DECL_MMF_CASE",
)

KINDS = (FATTN_TILE, FATTN_VEC, FATTN_MMA_F16, MMQ, MMF)

PRESET = Preset(
    PRESET_NAME, style=STYLE, description="llama.cpp / ggml CUDA template instances (ggml-org/llama.cpp)",
    kinds=KINDS, revision="1f4ed645",
    upstream="ggml-org/llama.cpp ggml/src/ggml-cuda/template-instances/generate_cu_files.py",
)
