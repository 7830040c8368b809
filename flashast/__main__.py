"""`python -m flashast`: the same as the `flashast` console script."""

import sys

from flashast.cli import main

sys.exit(main())
