"""HTML pages for studies and the tour index. Plain HTML, no JavaScript, no network."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Sequence

from difflens.tools.io import atomic_write_text

from .context import StudyContext

__all__ = ["write_study_page", "write_index"]

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} .sub{color:#666;margin-top:0}
figure{margin:1.5em 0} figcaption{color:#555;font-size:.92em}
img{max-width:100%;border:1px solid #eee}
table{border-collapse:collapse;margin:1em 0} td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4} pre{background:#f7f7f7;padding:1em;overflow-x:auto}
.ok{color:#070}.fail{color:#a00}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_study_page(ctx: StudyContext, title: str, description: str, seconds: float) -> Path:
    """Write ``ctx.out/index.html`` from the context's report items and metrics."""
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='sub'>study <code>{html.escape(ctx.name)}</code> · seed {ctx.seed} · "
        f"{'quick' if ctx.quick else 'full' if ctx.full else 'default'} settings · {seconds:.1f} s</p>",
        f"<p>{html.escape(description)}</p>",
    ]
    for item in ctx.items:
        p = item.payload
        if item.kind == "heading":
            parts.append(f"<h2>{html.escape(p['text'])}</h2>")
        elif item.kind == "text":
            parts.append(f"<p>{html.escape(p['text'])}</p>")
        elif item.kind in ("figure", "animation"):
            src = html.escape(p["path"])
            media = (
                f"<video src='{src}' controls loop></video>"
                if src.endswith(".mp4")
                else f"<img src='{src}' alt='{html.escape(p['caption'])}'>"
            )
            parts.append(f"<figure>{media}<figcaption>{html.escape(p['caption'])}</figcaption></figure>")
        elif item.kind == "table":
            cap = f"<p>{html.escape(p['caption'])}</p>" if p["caption"] else ""
            parts.append(cap + _table(p["rows"], p["headers"]))
    parts.append("<h2>Metrics</h2><p><a href='metrics.json'>metrics.json</a></p>")
    parts.append(f"<pre>{html.escape(json.dumps(ctx.metrics, indent=2, sort_keys=True))}</pre>")
    return atomic_write_text(ctx.out / "index.html", _page(title, "\n".join(parts)))


def write_index(out: Path, entries: Sequence[dict[str, Any]]) -> Path:
    """The tour's ``index.html``: one row per study with its status, time and a link."""
    rows = []
    for e in entries:
        status = "<span class='ok'>ok</span>" if e["ok"] else f"<span class='fail'>{html.escape(e['error'])}</span>"
        link = f"<a href='{html.escape(e['name'])}/index.html'>{html.escape(e['title'])}</a>"
        rows.append(f"<tr><td style='text-align:left'>{link}</td><td>{status}</td><td>{e['seconds']:.1f}</td></tr>")
    body = (
        "<h1>difflens tour</h1><p class='sub'>every study at quick settings</p>"
        "<table><tr><th>study</th><th>status</th><th>seconds</th></tr>" + "".join(rows) + "</table>"
    )
    return atomic_write_text(Path(out) / "index.html", _page("difflens tour", body))
