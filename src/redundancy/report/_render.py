"""Renderers of the report's blocks: Markdown (figures as files) and self-contained HTML (figures inline).

The HTML needs nothing outside the file: inline CSS, system fonts, PNGs as ``data:`` URIs. Tables are
written here from the blocks (escaped with :func:`html.escape`), so no Markdown library is needed.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence

from ._blocks import Block, Code, Figure, Heading, Links, Markdown, Paragraph, Table

FIGURE_DIR = "figures"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#222;background:#fff;margin:0;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:20px 28px 64px}
h1{font-size:1.7em;margin:.3em 0}
h2{font-size:1.35em;border-bottom:1px solid #ccc;padding-bottom:.15em;margin-top:1.8em}
h3{font-size:1.1em;margin:1.4em 0 .4em}
p{margin:.4em 0 .7em}
p.note{color:#777;font-style:italic}
a{color:#333}
nav ul{margin:.3em 0 1em;padding-left:1.3em}
table{border-collapse:collapse;margin:0 0 1.2em;font-size:.85em}
p.cap{color:#555;font-size:.85em;margin:1em 0 .3em}
th,td{border:1px solid #d0d0d0;padding:3px 8px;vertical-align:top}
th{background:#eee;text-align:left;font-weight:600}
tbody tr:nth-child(even){background:#f8f8f8}
table.num td:not(:first-child){text-align:right;font-variant-numeric:tabular-nums}
td.mono,code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace}
td.mono{word-break:break-all;font-size:.92em}
pre{background:#f6f6f6;border:1px solid #ddd;padding:10px;overflow:auto;font-size:.78em;max-height:520px}
.figs{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start;margin:.4em 0 1em}
figure{margin:0;flex:1 1 520px;max-width:100%}
figure.wide{flex-basis:100%}
figure img{display:block;max-width:100%;height:auto;border:1px solid #e4e4e4}
figcaption{font-size:.82em;color:#555;margin-top:.25em}
"""


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: Sequence[Block], figure_dir: str = FIGURE_DIR) -> str:
    """``report.md``: figures as ``![alt](figures/file.png)`` (the caller writes the PNGs there)."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f'{"#" * b.level} {b.text} <a id="{b.anchor}"></a>')
        elif isinstance(b, Paragraph):
            out.append(f"> {b.text}" if b.note else b.text)
        elif isinstance(b, Table):
            lines = [b.caption, ""] if b.caption else []
            lines.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
            lines.append("|" + "|".join("---" for _ in b.header) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("\n".join(lines))
        elif isinstance(b, Markdown):
            out.append(b.text.rstrip("\n"))
        elif isinstance(b, Code):
            out.append(f"```{b.language}\n{b.text.rstrip()}\n```")
        elif isinstance(b, Figure):
            out.append(f"![{b.alt}]({figure_dir}/{b.file})\n\n*{b.caption}*")
        elif isinstance(b, Links):
            out.append("\n".join(f"- [{text}](#{anchor})" for text, anchor in b.items))
        else:  # pragma: no cover
            raise TypeError(f"unknown block {type(b).__name__}")
    return "\n\n".join(out) + "\n"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _html_table(b: Table) -> str:
    cls = ' class="num"' if b.numeric else ""
    parts = [f'<p class="cap">{_e(b.caption)}</p>'] if b.caption else []
    parts.append(f"<table{cls}>")
    parts.append("<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in b.header) + "</tr></thead><tbody>")
    for row in b.rows:
        cells = "".join(
            f'<td class="mono">{_e(c)}</td>' if i in b.mono else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</tbody></table>")
    return "\n".join(parts)


_MD_INLINE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|])")


def _md_unescape(text: str) -> str:
    return _MD_INLINE.sub(r"\1", text)


def _split_row(line: str) -> list[str]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [_md_unescape(c.strip()) for c in re.split(r"(?<!\\)\|", body)]


def markdown_to_blocks(text: str) -> list[Block]:
    """The small Markdown subset the stages write (paragraphs and pipe tables) as blocks."""
    blocks: list[Block] = []
    para: list[str] = []
    table: list[str] = []

    def flush() -> None:
        if para:
            blocks.append(Paragraph(_md_unescape(" ".join(para))))
            para.clear()
        if table:
            rows = [_split_row(x) for x in table if not re.fullmatch(r"\|?[\s:|-]+\|?", x.strip())]
            if rows:
                blocks.append(Table(header=tuple(rows[0]), rows=tuple(tuple(r) for r in rows[1:])))
            table.clear()

    for line in text.splitlines():
        s = line.strip()
        if not s:
            flush()
        elif s.startswith("|"):
            if para:
                flush()
            table.append(s)
        else:
            if table:
                flush()
            para.append(s)
    flush()
    return blocks


def _img(b: Figure) -> str:
    data = base64.b64encode(b.png).decode("ascii")
    cls = ' class="wide"' if b.wide else ""
    return (
        f'<figure{cls}><img id="{_e(b.anchor)}" alt="{_e(b.alt)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_e(b.caption)}</figcaption></figure>"
    )


def render_html(blocks: Sequence[Block], title: str) -> str:
    """``report.html``: one self-contained page (inline CSS, figures as ``data:`` URIs, no scripts)."""
    body: list[str] = []
    figs: list[str] = []

    def close_figures() -> None:
        if figs:
            body.append('<div class="figs">\n' + "\n".join(figs) + "\n</div>")
            figs.clear()

    for b in blocks:
        if isinstance(b, Figure):
            figs.append(_img(b))
            continue
        close_figures()
        if isinstance(b, Heading):
            body.append(f'<h{b.level} id="{_e(b.anchor)}">{_e(b.text)}</h{b.level}>')
        elif isinstance(b, Paragraph):
            body.append(f'<p class="note">{_e(b.text)}</p>' if b.note else f"<p>{_e(b.text)}</p>")
        elif isinstance(b, Table):
            body.append(_html_table(b))
        elif isinstance(b, Markdown):
            for sub in markdown_to_blocks(b.text):
                body.append(_html_table(sub) if isinstance(sub, Table) else f"<p>{_e(sub.text)}</p>")
        elif isinstance(b, Code):
            body.append(f"<pre><code>{_e(b.text)}</code></pre>")
        elif isinstance(b, Links):
            items = "".join(f'<li><a href="#{_e(anchor)}">{_e(text)}</a></li>' for text, anchor in b.items)
            body.append(f"<nav><ul>{items}</ul></nav>")
        else:  # pragma: no cover
            raise TypeError(f"unknown block {type(b).__name__}")
    close_figures()
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )
