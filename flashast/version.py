"""flashast's version, the one place it is written.

A module of its own so that modules deep in the house (a verdict key, the output manifest) can name
the version without importing the package face, which imports everything; `pyproject.toml` reads it
from here, and the package face re-exports it as `flashast.__version__`.
"""

__version__ = "0.2.0"
