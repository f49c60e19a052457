"""One self-contained HTML page from a folder of results: figures inline (base64 PNG), small CSVs as
tables, a provenance table. No scripts, fonts or links to fetch: it reads the same offline and in a year.

Figures are the stems ``save_figure`` wrote (a ``.png`` with its ``.svg`` sibling), so the page shows
exactly the figures on disk.
"""
from __future__ import annotations

import base64
import csv
import html
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from PIL import Image

TABLE_ROWS = 40  # larger CSVs are named, not shown

STYLE = """
.freqlens-report{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;max-width:1100px;
margin:0 auto;padding:1em;line-height:1.4}
.freqlens-report h1{font-size:1.5em}.freqlens-report h2{font-size:1.25em;border-bottom:1px solid #ccc;margin-top:2em}
.freqlens-report h3{font-size:1.05em}
.freqlens-report figure{margin:1em 0}.freqlens-report img{max-width:100%;height:auto;border:1px solid #eee}
.freqlens-report figcaption{font-size:.85em;color:#555}
.freqlens-report table{border-collapse:collapse;font-size:.8em;margin:.5em 0}
.freqlens-report td,.freqlens-report th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
.freqlens-report th{background:#f4f4f4}.freqlens-report .note{color:#666;font-size:.85em}
"""


def figure_stems(directory: Path) -> list[Path]:
    """Figures in ``directory`` (not its sub-folders): PNGs written with an SVG sibling, sorted."""
    return sorted(p.with_suffix("") for p in directory.glob("*.png") if p.with_suffix(".svg").exists())


def figure(png: Path, caption: str) -> str:
    """An inline PNG shown at print size (``save_figure`` writes 200 dpi; a CSS pixel is 1/96 inch)."""
    with Image.open(png) as image:
        width = round(image.width * 96 / 200)
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    text = html.escape(caption)
    return (f'<figure><img alt="{text}" width="{width}" src="data:image/png;base64,{data}">'
            f"<figcaption>{text}</figcaption></figure>")


def table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def csv_table(path: Path, relative_to: Path) -> str:
    """A CSV as a table when it is short, else a note naming the file."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    name = html.escape(str(path.relative_to(relative_to)))
    if len(rows) - 1 > TABLE_ROWS:
        return f'<p class="note">{name}: {len(rows) - 1} rows (see the file)</p>'
    return f"<h3>{name}</h3>" + table(rows[0], [[_number(v) for v in row] for row in rows[1:]])


def folder_section(heading: str, directory: Path, root: Path) -> str:
    """A section with every figure and (short) CSV of ``directory``."""
    parts = [f"<h2>{html.escape(heading)}</h2>"]
    parts += [figure(stem.with_suffix(".png"), f"{stem.name.replace('_', ' ')} ({stem.relative_to(root)}.pdf/.svg/.png)")
              for stem in figure_stems(directory)]
    parts += [csv_table(p, root) for p in sorted(directory.glob("*.csv"))]
    return "\n".join(parts)


def provenance_table(provenance: Mapping[str, Any]) -> str:
    """The provenance as key/value rows (nested keys joined by dots; long lists summarised)."""
    return table(("field", "value"), _flatten(provenance))


def fragment(title: str, body: Sequence[str]) -> str:
    """The report as an HTML fragment (with its own scoped style), for Jupyter's ``_repr_html_``."""
    return f'<div class="freqlens-report"><style>{STYLE}</style><h1>{html.escape(title)}</h1>\n' + "\n".join(body) + "</div>"


def document(title: str, body: Sequence[str]) -> str:
    """The report as a complete HTML page."""
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{html.escape(title)}</title>'
            f"</head><body>\n{fragment(title, body)}\n</body></html>\n")


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        return [row for k, v in value.items() for row in _flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    return [(prefix, _cell(value))]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        text = ", ".join(_cell(v) for v in value[:12])
        return f"[{text}, …] ({len(value)})" if len(value) > 12 else f"[{text}]"
    return str(value)


def _number(text: str) -> str | float:
    """CSV cells holding a non-integer number become floats (shown to 6 significant digits)."""
    try:
        return text if text.lstrip("-").isdigit() else float(text)
    except ValueError:
        return text
