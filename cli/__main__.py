"""`python -m cli` and the `vecp` console script (pyproject.toml [project.scripts])."""

from __future__ import annotations

import sys

from cli.app import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
