"""Read a report page as a person does: its <h2> sections in order, each with its tables (rows of
cell texts; a cell with only an icon reads as the icon's aria-label), its charts (<svg> outside table cells) and its prose.
Tests assert on that structure, not on words appearing somewhere in the page."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Section:
    heading: str
    tables: list[list[list[str]]] = field(default_factory=list)
    charts: int = 0
    text: str = ""


class _Reader(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections: list[Section] = [Section("")]  # what comes before the first heading
        self.heading: str | None = None
        self.row: list[str] | None = None
        self.cell: str | None = None
        self.icon = ""
        self.svg_depth = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "svg":
            if self.svg_depth == 0:
                if self.cell is not None:
                    self.icon = attributes.get("aria-label") or ""
                else:
                    self.sections[-1].charts += 1
            self.svg_depth += 1
        elif self.svg_depth:
            return
        elif tag == "h2":
            self.heading = ""
        elif tag == "table":
            self.sections[-1].tables.append([])
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell, self.icon = "", ""

    def handle_endtag(self, tag):
        if tag == "svg":
            self.svg_depth -= 1
        elif self.svg_depth:
            return
        elif tag == "h2" and self.heading is not None:
            self.sections.append(Section(" ".join(self.heading.split())))
            self.heading = None
        elif tag in ("td", "th") and self.row is not None and self.cell is not None:
            self.row.append(" ".join(self.cell.split()) or self.icon)
            self.cell = None
        elif tag == "tr" and self.row is not None:
            if self.sections[-1].tables:
                self.sections[-1].tables[-1].append(self.row)
            self.row = None

    def handle_data(self, data):
        if self.svg_depth:
            return
        if self.heading is not None:
            self.heading += data
        elif self.cell is not None:
            self.cell += data
        else:
            self.sections[-1].text += data


def read_sections(html: str) -> dict[str, Section]:
    """{heading: section} in page order (the part before the first heading under "")."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return {s.heading: s for s in reader.sections}


def as_records(table: list[list[str]]) -> list[dict[str, str]]:
    """A table with a header row as one dict per body row."""
    header, *rows = table
    return [dict(zip(header, row)) for row in rows]
