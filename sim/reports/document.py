"""One document model for every report, rendered to Markdown and to a self-contained HTML page.

A report is built once, as a `Document` of blocks (headings, paragraphs, bullet lists, tables,
figures); `markdown` and `html` render the same blocks, so the two never say different things.
A figure is embedded in the page (base64 PNG) and linked by its file name in the Markdown (the
PNG is written next to it).
"""

from __future__ import annotations

import base64
import html as _html
from dataclasses import dataclass, field

__all__ = ["Document", "Block", "Heading", "Paragraph", "Bullets", "Table", "Figure", "markdown",
           "html"]


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """Cells as the reader sees them (already formatted). `numeric`: the columns aligned right
    (Markdown `---:`); `first_bold`: the first column names the row."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...] | None = None
    first_bold: bool = True


@dataclass(frozen=True)
class Figure:
    """A PNG written as `name` next to the report; `heading`: a heading of its own in the page
    (level 2 or 3; 0: none). In the Markdown the title is the image's text, not a heading (the
    terminal summary of a run prints the Markdown without its images)."""

    name: str
    title: str
    png: bytes = field(repr=False)
    heading: int = 0


Block = Heading | Paragraph | Bullets | Table | Figure

_STYLE = ("body{font-family:sans-serif;max-width:80em;margin:auto;padding:0 1em;color:#222}"
          "table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
          "td,th{border:1px solid #ccc;padding:3px 7px;vertical-align:top;text-align:left}"
          "td.number{text-align:right}"
          "th{background:#f3f3f3} td.name{font-weight:600} img{max-width:100%}")


@dataclass(frozen=True)
class Document:
    title: str
    blocks: tuple[Block, ...]

    @property
    def figures(self) -> dict[str, bytes]:
        """The figures' PNGs by file name."""
        return {block.name: block.png for block in self.blocks if isinstance(block, Figure)}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(document: Document) -> str:
    """The document as Markdown (GitHub tables; figures as links to their PNG files)."""
    lines = [f"# {document.title}", ""]
    for block in document.blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Bullets):
            lines += [*[f"- {item}" for item in block.items], ""]
        elif isinstance(block, Table):
            numeric = block.numeric or (False,) * len(block.header)
            lines += ["| " + " | ".join(_cell(c) for c in block.header) + " |",
                      "|" + "|".join("---:" if right else "---" for right in numeric) + "|",
                      *["| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows],
                      ""]
        elif isinstance(block, Figure):
            lines += [f"![{block.title}]({block.name})", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _table(block: Table) -> str:
    escape = _html.escape
    numeric = block.numeric or (False,) * len(block.header)

    def cell(k: int, text: str) -> str:
        kind = ("name" if block.first_bold and k == 0 else "number" if numeric[k] else "")
        return f"<td{f' class={kind}' if kind else ''}>{escape(str(text))}</td>"

    head = "".join(f"<th>{escape(str(c))}</th>" for c in block.header)
    body = "".join("<tr>" + "".join(cell(k, text) for k, text in enumerate(row)) + "</tr>"
                   for row in block.rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def html(document: Document) -> str:
    """The document as one self-contained page (figures embedded)."""
    escape = _html.escape
    parts = [f"<h1>{escape(document.title)}</h1>"]
    for block in document.blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            parts.append(f"<p>{escape(block.text)}</p>")
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{escape(item)}</li>" for item in block.items)
                         + "</ul>")
        elif isinstance(block, Table):
            parts.append(_table(block))
        elif isinstance(block, Figure):
            if block.heading:
                parts.append(f"<h{block.heading}>{escape(block.title)}</h{block.heading}>")
            parts.append(f'<img alt="{escape(block.title)}" '
                         f'src="data:image/png;base64,{base64.b64encode(block.png).decode()}">')
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>"
            f"{escape(document.title)}</title><style>{_STYLE}</style></head>"
            f"<body>{''.join(parts)}</body></html>\n")
