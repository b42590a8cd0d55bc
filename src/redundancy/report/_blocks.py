"""The report's content as blocks (headings, paragraphs, tables, figures...) and the number formats.

The content is built once as a list of blocks that both renderers (Markdown, HTML) write, so
``report.md`` and ``report.html`` say the same thing: the renderers only decide how a block looks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# ------------------------------------------------------------------------------------------------ blocks


@dataclass(frozen=True)
class Heading:
    """A section heading; ``anchor`` is its id (HTML) / link target (Markdown)."""

    level: int
    text: str
    anchor: str


@dataclass(frozen=True)
class Paragraph:
    """Plain text (no markup); ``note`` paragraphs are shown muted (e.g. "not run")."""

    text: str
    note: bool = False


@dataclass(frozen=True)
class Table:
    """A table of already formatted cells.

    ``numeric``: cells after the first column are numbers (right-aligned in HTML); ``mono``: indices of
    columns shown in a monospace font (hashes, paths).
    """

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    numeric: bool = True
    mono: tuple[int, ...] = ()


@dataclass(frozen=True)
class Markdown:
    """Markdown written by a stage (the pipeline's ``table_markdown()``): copied verbatim into
    ``report.md``; its pipe tables and paragraphs are converted for HTML."""

    text: str


@dataclass(frozen=True)
class Code:
    """Preformatted text (the job record)."""

    text: str
    language: str = ""


@dataclass(frozen=True, eq=False)
class Figure:
    """A PNG figure: written to ``figures/{file}`` beside ``report.md`` and embedded in the HTML.

    ``wide`` figures take the page's whole width in HTML (the others sit two to a row).
    """

    anchor: str
    file: str
    alt: str
    caption: str
    png: bytes
    wide: bool = False


@dataclass(frozen=True)
class Links:
    """A list of links to anchors in the report (the contents)."""

    items: tuple[tuple[str, str], ...]


Block = Heading | Paragraph | Table | Markdown | Code | Figure | Links


# ----------------------------------------------------------------------------------------------- helpers


def slug(text: str) -> str:
    """A safe anchor / file-name part: lowercase ASCII letters, digits, ``.``, ``_`` and ``-``."""
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-") or "x"


def missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def score(x: float | None) -> str:
    """A score (a fraction) in percent with two decimals, as the paper's tables; ``–`` when missing."""
    return "–" if missing(x) else f"{100 * x:.2f}"


def score_ci(x: float | None, interval: Any = None, fmt: Any = None) -> str:
    """``fmt(x)`` (default :func:`score`) with its interval when there is one: ``95.01 [94.80, 95.20]``."""
    fmt = score if fmt is None else fmt
    if interval is None or missing(x) or missing(interval.low) or missing(interval.high):
        return fmt(x)
    return f"{fmt(x)} [{fmt(interval.low)}, {fmt(interval.high)}]"


def share(x: float | None) -> str:
    """A share in percent with one decimal."""
    return "–" if missing(x) else f"{100 * x:.1f}"


def num(x: int | None) -> str:
    return "–" if x is None else f"{int(x):,}"


def size(n: int | None) -> str:
    """Bytes in B / kB / MB / GB (decimal units, as disk sizes)."""
    if n is None:
        return "–"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover


def short(v: Any) -> str:
    """A number in its shortest form (``3``, ``0.3``); other values as text, ``–`` for None."""
    if v is None:
        return "–"
    return f"{v:g}" if isinstance(v, int | float) and not isinstance(v, bool) else str(v)


NOT_RUN = "not run"


def figures_of(blocks: Sequence[Block]) -> tuple[Figure, ...]:
    """The figure blocks, in order (the PNGs to write beside ``report.md``)."""
    return tuple(b for b in blocks if isinstance(b, Figure))
