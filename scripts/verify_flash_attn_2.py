#!/usr/bin/env python3
"""`verify_real_sources.py` under its earlier name, which docs and tests use: with no `--preset`, it
verifies `flash-attn-2` against flash-attn 2.8.3.post2, fetched from the registries by itself."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling, also when loaded by path (tests)
from verify_real_sources import *  # noqa: F403 - the same script: its names, for tests loading it by path
from verify_real_sources import main

if __name__ == "__main__":
    sys.exit(main(prog="verify_flash_attn_2.py"))
