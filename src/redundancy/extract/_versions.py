"""Versions of the packages whose behaviour changes the numbers; recorded in every result."""

from __future__ import annotations

import importlib.metadata
import platform

_PACKAGES = ("redundancy", "torch", "transformers", "tokenizers", "numpy")


def package_versions() -> dict[str, str]:
    """``{package: version}`` for the packages that shape the numbers, plus Python's version."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
