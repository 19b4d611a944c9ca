"""The test suite; ``ROOT`` is the repository, wherever a test module sits in the tree."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
