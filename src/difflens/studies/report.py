"""HTML pages for studies and the tour's landing page. Plain HTML, no JavaScript, no network.

Each page opens with the run's status: a run that was interrupted, failed or
is still running (or was killed) says so above everything it reports, so no
partial result reads as a finished one.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any, Sequence

from .context import StudyContext

if TYPE_CHECKING:  # pragma: no cover
    from .outdir import OutputFolder
    from .registry import Study

__all__ = ["write_study_page", "write_index", "status_line", "headline_values"]

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} .sub{color:#666;margin-top:0}
figure{margin:1.5em 0} figcaption{color:#555;font-size:.92em}
img{max-width:100%;border:1px solid #eee}
table{border-collapse:collapse;margin:1em 0} td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4} pre{background:#f7f7f7;padding:1em;overflow-x:auto}
.ok{color:#070}.fail{color:#a00}.warn{color:#a60}
.banner{padding:.6em 1em;border-radius:4px;margin:1em 0}
.banner.fail{background:#fdecea}.banner.warn{background:#fff4e0}
.cards{display:flex;flex-wrap:wrap;gap:1em}
.card{border:1px solid #ddd;border-radius:6px;padding:.8em;width:320px}
.card img{width:100%;height:180px;object-fit:contain;background:#fafafa}
.card table{font-size:.9em;width:100%} .card td:first-child{text-align:left}
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


def status_line(status: str, stopped: dict[str, Any]) -> tuple[str, str]:
    """(css class, sentence) describing a run's status for its page."""
    if status == "complete":
        return "ok", "complete"
    where = f" during {stopped['phase']!r}" if stopped.get("phase") else ""
    if status == "interrupted":
        step = (f", optimisation at step {stopped['step']} of {stopped['steps']}"
                if stopped.get("step") is not None else "")
        how = f" by {stopped['signal']}" if stopped.get("signal") else ""
        return "fail", (f"INTERRUPTED{how}{where}{step}. Nothing below is a finished result; "
                        "continue it with difflens run STUDY --resume --out THIS_FOLDER.")
    if status == "failed":
        return "fail", f"FAILED{where}: {stopped.get('error', '')}. What is below was reported before the error."
    return "warn", ("RUNNING: this run has not finished. If no difflens process is writing here any more, it was "
                    "killed; continue it with difflens run STUDY --resume --out THIS_FOLDER.")


def headline_values(metrics: dict[str, Any], headline: Sequence[tuple[str, str]]) -> list[tuple[str, Any]]:
    """The (label, value) pairs of the headline metrics that the run has reported."""
    return [(label, metrics[key]) for key, label in headline if key in metrics]


def write_study_page(ctx: StudyContext, entry: "Study", seconds: float) -> None:
    """Write ``ctx.out/index.html`` from the context's report items, status and metrics."""
    cls, sentence = status_line(ctx.status, ctx.stopped)
    parts = [
        f"<h1>{html.escape(entry.title)}</h1>",
        f"<p class='sub'>study <code>{html.escape(ctx.name)}</code> · seed {ctx.seed} · {ctx.preset} settings · "
        f"{html.escape(str(ctx.device))} · {seconds:.1f} s</p>",
        f"<p class='banner {cls}'><b>status:</b> {html.escape(sentence)}</p>" if cls != "ok"
        else "<p class='ok'><b>status:</b> complete</p>",
        f"<p>{html.escape(entry.description)}</p>",
    ]
    head = headline_values(ctx.metrics, entry.headline)
    if head:
        parts.append(_table([[label, value] for label, value in head], ["headline", "value"]))
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
    parts.append("<h2>Settings</h2>" + _table(list(ctx.settings.to_dict().items()), ["setting", "value"]))
    parts.append("<h2>Metrics</h2><p><a href='metrics.json'>metrics.json</a></p>")
    parts.append(f"<pre>{html.escape(json.dumps(ctx.record(), indent=2, sort_keys=True))}</pre>")
    ctx.folder.write_text("index.html", _page(entry.title, "\n".join(parts)))


def write_index(root: "OutputFolder", entries: Sequence[dict[str, Any]], pending: Sequence[str] = ()) -> None:
    """The tour's landing page: per study its status, headline numbers and main figure, linking to its page."""
    cards = []
    for e in entries:
        name = html.escape(e["name"])
        if e["status"] == "complete":
            status = "<span class='ok'>complete</span>"
        else:
            status = f"<span class='fail'>{html.escape(e['status'])}: {html.escape(e['error'])}</span>"
        metrics = _read_metrics(root, e["name"])
        thumb = ""
        if e.get("figure") and (root.path / e["name"] / f"{e['figure']}.png").is_file():
            thumb = f"<a href='{name}/index.html'><img src='{name}/{html.escape(e['figure'])}.png' alt=''></a>"
        rows = "".join(f"<tr><td>{html.escape(label)}</td><td>{_fmt(value)}</td></tr>"
                       for label, value in headline_values(metrics, e.get("headline", ())))
        cards.append(f"<div class='card'><h3><a href='{name}/index.html'>{html.escape(e['title'])}</a></h3>"
                     f"{thumb}<p>{status} · {e['seconds']:.1f} s</p><table>{rows}</table></div>")
    for name in pending:
        cards.append(f"<div class='card'><h3>{html.escape(name)}</h3><p class='warn'>not run</p></div>")
    body = ("<h1>difflens tour</h1><p class='sub'>every study at quick settings; "
            "each card links to the study's page</p><div class='cards'>" + "".join(cards) + "</div>")
    root.write_text("index.html", _page("difflens tour", body))


def _read_metrics(root: "OutputFolder", name: str) -> dict[str, Any]:
    try:
        return json.loads((root.path / name / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
