"""The report's page: its building blocks (tables, cards, sections, inline pictures) and its one style sheet.

Everything is escaped here, once; the page works offline: inline PNGs, inline style, no script.
"""

from __future__ import annotations

import base64
import html
from datetime import datetime


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def plus_minus(mean: float, std: float | None, spread: bool) -> str:
    return f"{mean:.1%} &plusmn; {100 * std:.1f}" if spread and std is not None else f"{mean:.1%}"


def img(png: bytes, alt: str) -> str:
    return f'<img class=plot alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def table(head, rows, numeric=()) -> str:
    numeric = set(numeric)
    th = "".join(f"<th{' class=num' if i in numeric else ''}>{h}</th>" for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if i in numeric else ''}>{c}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<div class=scroll><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>"


def thumbnail(source, side: int) -> str:
    """A base64 PNG of an image file or container member (data.containers.Member), its longer side `side`
    pixels; "" when it cannot be read."""
    import io

    from fgvctune.data.images import open_image
    from fgvctune.errors import DataError

    try:
        with open_image(source) as im:
            im.draft("RGB", (side, side))
            im = im.convert("RGB")
            im.thumbnail((side, side))
            buf = io.BytesIO()
            im.save(buf, format="PNG", optimize=True)
    except (DataError, TypeError, OSError):
        return ""
    return base64.b64encode(buf.getvalue()).decode("ascii")


def cards(items) -> str:
    cards = "".join(
        f"<div class=card><div class=label>{esc(k)}</div><div class=value>{esc(v)}</div></div>" for k, v in items
    )
    return f"<div class=cards>{cards}</div>"


def section(title: str, content: str) -> str:
    return f"<section><h2>{esc(title)}</h2>{content}</section>"


def header(title: str, subtitle: str) -> str:
    return f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"


STYLE = """
:root { --ink: #1d2330; --muted: #667085; --line: #e4e7ec; --accent: #2f6fde; --bad: #c4320a; --good: #067647; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f7f9; color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 24px 48px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0 0 16px; color: var(--muted); }
h2 { font-size: 19px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 16px 0 8px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
.pair > *, .columns > *, .cards > * { min-width: 0; }
code { overflow-wrap: anywhere; }
.pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 0 16px; align-items: start; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .label { color: var(--muted); font-size: 13px; }
.card .value { font-size: 20px; font-weight: 600; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 14px; }
th, td { text-align: left; padding: 3px 12px 3px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
img.plot { max-width: 100%; height: auto; display: block; margin: 8px 0; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 8px 28px;
  align-items: start; }
.bar { display: inline-block; width: 90px; height: 10px; background: var(--line); border-radius: 5px;
  vertical-align: middle; }
.bar span { display: block; height: 100%; background: var(--accent); border-radius: 5px; }
.tag { padding: 0 8px; border-radius: 10px; font-size: 13px; }
.tag.on { background: #dcfae6; color: var(--good); }
.tag.off { background: #f2f4f7; color: var(--muted); }
.tag.part { background: #fef0c7; color: #93370d; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 12px; }
figure { margin: 0; background: #fafafa; border: 1px solid var(--line); border-radius: 6px; padding: 6px; }
figure img { width: 100%; height: auto; image-rendering: auto; display: block; border: 2px solid var(--bad); }
figcaption { font-size: 13px; margin-top: 4px; overflow-wrap: anywhere; }
.wrong { color: var(--bad); font-weight: 600; }
.missing { height: 96px; display: grid; place-items: center; color: var(--muted); }
.muted { color: var(--muted); }
details summary { cursor: pointer; color: var(--accent); margin: 8px 0; }
code { font-size: 13px; }
footer { color: var(--muted); font-size: 13px; text-align: center; }
"""


def document(title: str, body: str) -> str:
    made = f"made by fgvctune on {datetime.now():%Y-%m-%d %H:%M}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}<footer>{esc(made)}</footer></main></body></html>\n"
    )
