"""Command-line interface: ``redundancy extract | general | probe | store info | data list | data fetch``."""

from ._main import build_parser, main

__all__ = ["build_parser", "main"]
