"""One self-contained HTML page: sections of Markdown-like tables and PNGs embedded as base64."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any


def table_html(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p><em>no finished runs yet</em></p>"
    cols = list(rows[0])

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return '<td class="missing">missing</td>' if math.isnan(v) else f"<td>{v:.3f}</td>"
        cls = f' class="{v}"' if v in ("failed", "missing", "started") else ""
        return f"<td{cls}>{html.escape(str(v))}</td>"

    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(cell(r.get(c, "")) for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def image_html(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(Path(path).name)}"></figure>'


STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}.failed{color:#b00}.missing,.started{color:#888}
img{max-width:100%}figure{margin:1em 0}"""


def write_page(path: Path, title: str, sections: list[tuple[str, str, list[str]]]) -> None:
    """`sections`: (heading, intro text, HTML fragments)."""
    from postbc.io.atomic import atomic_write_bytes

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    for heading, intro, fragments in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if intro:
            parts.append(f"<p>{html.escape(intro)}</p>")
        parts += fragments
    parts.append("</body></html>")
    atomic_write_bytes(Path(path), "\n".join(parts).encode())
