"""Command-line interface.

``redundancy extract | general | probe | pipeline | predict | finetune | report | run | store info |
data list | data fetch``: one subcommand per stage, and ``run`` for a whole TOML-configured job; this
layer only parses arguments, shows progress and prints.
"""

from ._main import build_parser, main

__all__ = ["build_parser", "main"]
