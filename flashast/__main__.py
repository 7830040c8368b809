"""`python -m flashast`: the same as the `flashast` console script."""

from flashast.cli import exit_with, main

exit_with(main())
