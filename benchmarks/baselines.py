"""The string-template generators flashast replaces, as the scripts the generation rows run.

Written the way the upstream scripts work (`str.format` over `itertools.product`, one `write_text`
per file), so that a baseline run and a flashast run pay the same interpreter start-up and
file-system costs: pytorch's `generate_kernels.py` (`-o DIR`) and flash-attention 3's (the output
directory as its only argument). Each is the text of a script, written to the work directory and run
in a fresh process like flashast.
"""

from __future__ import annotations

import textwrap

PYTORCH_BASELINE = textwrap.dedent(
    '''
    import argparse
    import itertools
    from dataclasses import dataclass
    from pathlib import Path

    ELEMENT_TYPES = {"fp16": "cutlass::half_t", "bf16": "cutlass::bfloat16_t"}
    HEAD_DIMS = [32, 64, 96, 128, 160, 192, 224, 256]
    SPECIALIZATION = """
    template<>
    void run_mha_{direction}_<{element}, {head_dim}>(Flash_{direction}_params &params, cudaStream_t stream) {{
        run_mha_{direction}_hdim{head_dim}<{element}>(params, stream);
    }}
    """
    SPLIT = """

    template void run_mha_fwd_splitkv_dispatch<{element}, {head_dim}>(Flash_fwd_params &params, cudaStream_t stream);
    """
    PRELUDE = """
    // Copyright (c) 2023, Tri Dao.

    // Splitting the different head dimensions to different files to speed up compilation.
    // This file is auto-generated. See "generate_kernels.py"

    """


    @dataclass
    class Instantiation:
        dtype: str
        head_dim: int
        direction: str

        @property
        def text(self) -> str:
            template = SPLIT if self.direction == "fwd_split" else SPECIALIZATION
            body = template.format(direction=self.direction, element=ELEMENT_TYPES[self.dtype], head_dim=self.head_dim)
            header = "bwd" if self.direction == "bwd" else "fwd"
            return (PRELUDE + f"#include <ATen/native/transformers/cuda/flash_attn/flash_{header}_launch_template.h>\\n"
                    + "namespace pytorch_flash{\\n" + body + "} // namespace pytorch_flash\\n")

        @property
        def name(self) -> str:
            return f"flash_{self.direction}_hdim{self.head_dim}_{self.dtype}_sm80.cu"


    parser = argparse.ArgumentParser()
    parser.add_argument("-o", "--output_dir", required=True)
    out = Path(parser.parse_args().output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for dtype, head_dim in itertools.product(ELEMENT_TYPES, HEAD_DIMS):
        for direction in ("fwd", "bwd", "fwd_split"):
            kernel = Instantiation(dtype, head_dim, direction)
            (out / kernel.name).write_text(kernel.text)
    '''
)

FLASH_ATTN_3_BASELINE = textwrap.dedent(
    '''
    import itertools, sys
    from pathlib import Path

    DTYPES = {"fp16": "cutlass::half_t", "bf16": "cutlass::bfloat16_t", "e4m3": "cutlass::float_e4m3_t"}
    HEAD_DIMS = [64, 96, 128, 192, 256]
    PRELUDE = ("// Copyright (c) 2024, Jay Shah, Ganesh Bikshandi, Ying Zhang, Vijay Thakkar, Pradeep Ramani, Tri Dao.\\n"
               "// Splitting the different template instantiations to different files to speed up compilation.\\n"
               "// This file is auto-generated. See \\"generate_kernels.py\\"\\n\\n")
    FWD = ("template void run_mha_fwd_<{arch}, {dtype}, {hd}, {hdv}, {split}, {paged}, {softcap}, {packgqa}>"
           "(Flash_fwd_params &params, cudaStream_t stream);\\n")
    BWD = ("template<>\\nvoid run_mha_bwd_<{arch}, {dtype}, {hd}, {softcap}>(Flash_bwd_params &params, cudaStream_t stream) {{\\n"
           "    run_mha_bwd_hdim{hd}<{arch}, {dtype}, {softcap}>(params, stream);\\n}}\\n")
    b = lambda value: "true" if value else "false"
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    def suffix(dtype, paged, split, softcap, packgqa, sm):
        return (f"_{dtype}" + ("_paged" if paged else "") + ("_split" if split else "")
                + ("_softcap" if softcap else "") + ("_packgqa" if packgqa else "") + f"_sm{sm}")
    members = {}
    for dtype, hd, split, paged, softcap, packgqa, sm in itertools.product(
            DTYPES, HEAD_DIMS, [False, True], [False, True], [False, True], [False, True], [80, 90]):
        if packgqa and (sm < 90 or paged or split) or (sm < 90 and dtype == "e4m3"):
            continue
        pairs = [hd] if sm == 90 or dtype != "e4m3" else []
        if sm == 90 and hd == 192:
            pairs.append(128)
        if sm == 90 and hd == 64 and dtype != "e4m3":
            pairs += [256, 512]
        for hdv in pairs:
            pack = b(packgqa or paged or split) if sm == 90 else "true"
            lines = [FWD.format(arch=arch, dtype=DTYPES[dtype], hd=hd, hdv=hdv, split=b(split), paged=b(paged),
                                softcap=b(softcap), packgqa=pack) for arch in ([90] if sm == 90 else [80, 86])]
            body = "#ifndef FLASHATTENTION_DISABLE_HDIM" + str(hd) + "\\n" + "".join(lines) + "#endif\\n"
            if sm != 90:
                body = "#ifndef FLASHATTENTION_DISABLE_SM8x\\n" + body + "#endif\\n"
            name = f"flash_fwd_hdim{hd}" + (f"_{hdv}" if hdv != hd else "") + suffix(dtype, paged, split, softcap, packgqa, sm) + ".cu"
            (out / name).write_text(PRELUDE + '#include "flash_fwd_launch_template.h"\\n\\n' + body)
            group = "hdimall" if hdv == hd else "hdimdiff"
            if sm == 90:
                members.setdefault(f"flash_fwd_{group}" + suffix(dtype, paged, split, softcap, packgqa, sm) + ".cu", []).append(name)
            else:
                members.setdefault(f"flash_fwd_hdim{hd}" + suffix(dtype, paged, split, False, False, sm).replace("_sm80", "_softcapall_sm80") + ".cu", []).append(name)
    for dtype, hd, softcap, sm in itertools.product(["fp16", "bf16"], HEAD_DIMS, [False, True], [80, 90]):
        lines = [BWD.format(arch=arch, dtype=DTYPES[dtype], hd=hd, softcap=b(softcap)) for arch in ([90] if sm == 90 else [80, 86])]
        body = "#ifndef FLASHATTENTION_DISABLE_HDIM" + str(hd) + "\\n" + "".join(lines) + "#endif\\n"
        if sm != 90:
            body = "#ifndef FLASHATTENTION_DISABLE_SM8x\\n" + body + "#endif\\n"
        name = f"flash_bwd_hdim{hd}" + suffix(dtype, False, False, softcap, False, sm) + ".cu"
        (out / name).write_text(PRELUDE + '#include "flash_bwd_launch_template.h"\\n\\n' + body)
        if sm == 90:
            members.setdefault(f"flash_bwd_hdim{hd}_{dtype}_softcapall_sm90.cu", []).append(name)
    for name, included in members.items():
        (out / name).write_text(PRELUDE + "\\n".join(f'#include "{member}"' for member in included))
    '''
)
