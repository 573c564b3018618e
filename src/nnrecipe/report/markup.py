"""HTML building blocks of the report: one self-contained page (inline CSS, PNG figures as base64
``data:`` URIs, no script, no external resource; a Content-Security-Policy forbids fetching any).

Every piece of text from a run (config, class names, examples) goes through `html.escape`.
"""

from __future__ import annotations

import base64
import io
import math
import tempfile
from html import escape
from pathlib import Path
from typing import Callable

from matplotlib.figure import Figure

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1100px;padding:1rem 2rem;
color:#222;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
nav a{margin-right:.8rem;font-size:.9rem;color:#0b5cad;text-decoration:none}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.chosen td,td.diff{background:#fff3c4}td.changed{background:#ffd97a;font-weight:bold}td.best{font-weight:bold}
img{max-width:100%;height:auto;display:block;margin:.5rem 0}
pre{background:#f7f7f7;padding:.6rem;overflow:auto;font-size:.82rem}
.na{color:#777;font-style:italic}.warn{color:#a15c00}
.verdict{display:inline-block;padding:.1rem .5rem;border-radius:.3rem;background:#e8f0fe;font-weight:bold}
details summary{cursor:pointer;color:#0b5cad}
"""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def page(title: str, sections: list[tuple[str, str, str]]) -> str:
    """A whole document: title, a contents line, then each (id, heading, body) as a <section>."""
    nav = " ".join(f'<a href="#{sid}">{escape(head)}</a>' for sid, head, _ in sections)
    body = "\n".join(f'<section id="{sid}">\n<h2>{escape(head)}</h2>\n{html}\n</section>'
                     for sid, head, html in sections)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{escape(title)}</h1>\n<nav>{nav}</nav>\n{body}\n</body>\n</html>\n")


def fmt(value) -> str:
    """A cell: ints with thousands separators, floats to 4 significant digits, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return escape(str(value))


def table(header: list[str], rows: list[list], *, row_class: list[str] | None = None,
          cell_class: list[list[str]] | None = None) -> str:
    """An HTML table; numbers are formatted with `fmt` and right-aligned, strings are escaped."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    lines = []
    for i, row in enumerate(rows):
        cells = []
        for j, v in enumerate(row):
            classes = ["num"] if isinstance(v, (int, float)) and not isinstance(v, bool) else []
            if cell_class and cell_class[i][j]:
                classes.append(cell_class[i][j])
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{fmt(v)}</td>")
        attr = f' class="{row_class[i]}"' if row_class and row_class[i] else ""
        lines.append(f"<tr{attr}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def image(png: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def figure_png(fig: Figure) -> bytes:
    """A matplotlib Figure as PNG bytes (the Agg canvas, no pyplot)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def png_from(draw: Callable[[Path], None]) -> bytes:
    """Bytes of the PNG that `draw(path)` writes, for the plot functions that take an output path."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "figure.png"
        draw(path)
        return path.read_bytes()


def stored_or_drawn(path: Path, draw: Callable[[Path], None]) -> bytes:
    """The PNG `fit` already wrote at `path` (plots/*.png: drawn by the same function from the same
    files, so reading it saves the rendering), or a fresh one from `draw` when the run lacks it."""
    path = Path(path)
    if path.is_file():
        png = path.read_bytes()
        if png.startswith(_PNG_SIGNATURE):
            return png
    return png_from(draw)


def not_available(why: str) -> str:
    return f'<p class="na">Not available: {escape(why)}.</p>'


def para(text: str, cls: str | None = None) -> str:
    return f'<p class="{cls}">{escape(text)}</p>' if cls else f"<p>{escape(text)}</p>"


def details(summary: str, content: str) -> str:
    return f"<details><summary>{escape(summary)}</summary>\n<pre>{escape(content)}</pre>\n</details>"
