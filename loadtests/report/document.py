"""The report's document model: `Section`s of text, `Table`s and chart images, rendered to
Markdown (report.md) and to HTML (report.html, self-contained: charts inlined).

Text blocks are Markdown. The HTML renderer runs them through markdown-it (CommonMark plus
tables), so headings, lists, links and emphasis in a block (the verdict rules, for one) arrive
as HTML, never as raw Markdown; headings inside a block are nested under the section's own.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    title: str
    level: int = 2
    blocks: list[str | Table | Path] = field(default_factory=list)  # text (Markdown), table, image
    anchor: str | None = None  # the HTML id; derived from the title when None

    @property
    def id(self) -> str:
        return self.anchor or slug(self.title)


def slug(title: str) -> str:
    """A stable HTML id from a title: `chat — concurrent …` → `chat-concurrent-…`."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "section"


# A colour per verdict status (and per cell status): the class a table cell holding exactly
# that word, bold or not, gets in report.html.
STATUS_CLASSES = {
    "supported": "st-supported", "partly supported": "st-partly", "not supported": "st-not",
    "contradicted": "st-contradicted", "unstable": "st-unstable", "indicative": "st-indicative",
    "analogue": "st-analogue", "not testable": "st-untestable", "not measured": "st-unmeasured",
    "refused": "st-not", "failed": "st-not", "skipped": "st-unmeasured", "interrupted": "st-partly",
}
STYLE = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee;margin:0.5em 0}
code{background:#f5f5f5;padding:0 3px}
nav.toc{background:#fafafa;border:1px solid #e5e5e5;padding:0.5em 1.5em;margin:1em 0}
nav.toc li{margin:0.1em 0}
.st-supported{background:#e3f4e1;color:#145a14}.st-partly{background:#fff1d6;color:#7a4b00}
.st-not{background:#fbe0de;color:#8f1b12}.st-untestable{background:#ececec;color:#555}
.st-unmeasured{background:#eef2f8;color:#44546a}.st-contradicted{background:#f3c4c0;color:#6b0f08}
.st-unstable{background:#f4e6f7;color:#5d2a6b}.st-indicative{background:#e2f0f7;color:#1d4f66}
.st-analogue{background:#f6f3e4;color:#5e5420}
.legend span{padding:1px 6px;margin-right:6px;border-radius:3px}
"""


# --- Markdown -----------------------------------------------------------------------------------
def to_markdown(sections: Sequence[Section], root: Path) -> str:
    out: list[str] = []
    for s in sections:
        out.append("#" * s.level + " " + s.title + "\n")
        for b in s.blocks:
            if isinstance(b, Table):
                out.append("| " + " | ".join(b.header) + " |")
                out.append("|" + "---|" * len(b.header))
                out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in b.rows]
                out.append("")
            elif isinstance(b, Path):
                out.append(f"![{b.stem}]({b.relative_to(root).as_posix()})\n")
            else:
                out.append(b + "\n")
    return "\n".join(out)


# --- HTML -----------------------------------------------------------------------------------------
_MD = MarkdownIt("commonmark", {"html": False}).enable("table")


def inline(text: str) -> str:
    """One line of Markdown (a table cell) as HTML: escaped, with emphasis, code and links."""
    return str(_MD.renderInline(text))


def block(text: str, level: int) -> str:
    """A Markdown text block as HTML; its headings are nested below a section of `level`."""
    shifted = re.sub(r"^(#{1,6}) ", lambda m: "#" * min(6, len(m.group(1)) + level - 1) + " ", text, flags=re.M)
    return str(_MD.render(shifted))


def status_class(text: str) -> str | None:
    """The colour class of a cell that is a status word, alone or leading in bold
    (`**partly supported** — undershoot …`)."""
    lead = re.match(r"\*\*(.+?)\*\*", text.strip())
    return STATUS_CLASSES.get(lead.group(1) if lead else text.strip())


def _cell(text: str, tag: str = "td") -> str:
    css = status_class(text)
    return f"<{tag} class='{css}'>{inline(text)}</{tag}>" if css else f"<{tag}>{inline(text)}</{tag}>"


def to_html(sections: Sequence[Section], title: str, toc: bool = True) -> str:
    """The whole report; a table of contents of the level-2 sections follows the first section."""
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"]
    for i, s in enumerate(sections):
        parts.append(f"<h{s.level} id='{s.id}'>{html.escape(s.title)}</h{s.level}>")
        for b in s.blocks:
            if isinstance(b, Table):
                parts.append("<table><tr>" + "".join(_cell(h, "th") for h in b.header) + "</tr>")
                parts += ["<tr>" + "".join(_cell(c) for c in r) + "</tr>" for r in b.rows]
                parts.append("</table>")
            elif isinstance(b, Path):
                data = base64.b64encode(b.read_bytes()).decode()
                parts.append(f"<figure><img alt='{html.escape(b.stem)}' src='data:image/png;base64,{data}'></figure>")
            else:
                parts.append(block(b, s.level))
        if i == 0 and toc and len(sections) > 2:
            parts.append(table_of_contents(sections[1:]))
    parts.append("</body></html>")
    return "\n".join(parts)


def table_of_contents(sections: Sequence[Section]) -> str:
    items = "".join(f"<li><a href='#{s.id}'>{html.escape(s.title)}</a></li>" for s in sections if s.level == 2)
    return f"<nav class='toc'><strong>Contents</strong><ol>{items}</ol></nav>"


def markdown_toc(sections: Sequence[Section]) -> str:
    """The same table of contents for report.md (GitHub-style anchors are not stable: plain list)."""
    return "\n".join(f"{n}. {s.title}" for n, s in enumerate((s for s in sections if s.level == 2), 1))
