"""doctor.html: what `fgvctune doctor` found, one section per kind of issue, thumbnails worst first.

Self-contained like the run report (page.py): inline PNGs and style, no script, nothing fetched.
"""

from __future__ import annotations

from fgvctune.results import page

THUMBNAIL = 144  # pixels, the longer side of a sample's picture
SHOWN = 24  # thumbnails per kind (four rows on a laptop); doctor.csv lists every one
TITLES = {
    "label": "Label issues: the given label looks wrong",
    "outlier": "Outliers: unlike the rest of the data",
    "near_duplicate": "Near duplicates in the model's feature space",
}
WHAT = {
    "label": "the model's out-of-sample view disagrees with the given label; the suggested label is its best guess.",
    "outlier": "far from every other sample in feature space: a wrong picture, a broken file, or a rare view.",
    "near_duplicate": "closer to another sample than pictures of one class usually are (beside the byte and "
    "dHash checks of <code>fgvctune info</code>, which find copies of the file).",
}


def html(diagnosis) -> str:
    d = diagnosis.dataset
    total = sum(len(s) for s in d.splits.values())
    cards = [("images", f"{total:,}"), ("classes", str(len(d.labels)))]
    cards += [(f"{kind.replace('_', ' ')} issues", str(diagnosis.count(kind))) for kind in diagnosis.kinds]
    subtitle = (
        f"{d.adapter} dataset at {d.root}, splits {', '.join(d.splits)}; probabilities: {diagnosis.probabilities}"
    )
    parts = [page.header("doctor", subtitle), page.cards(cards)]
    for kind in diagnosis.kinds:
        parts.append(page.section(TITLES[kind], _kind(diagnosis, kind)))
    parts.append(page.section("Classes the data confuses (cleanlab's overlapping classes)", _overlapping(diagnosis)))
    return page.document("fgvctune doctor", "\n".join(parts))


def _kind(diagnosis, kind: str) -> str:
    found = [f for f in diagnosis.found if f.issue == kind]
    if not found:
        return "<p>None found.</p>"
    more = f" The first {SHOWN} are shown; doctor.csv lists all {len(found)}." if len(found) > SHOWN else ""
    intro = f"<p>{len(found)} sample(s): {WHAT[kind]} Worst first (score 0 worst, 1 best).{more}</p>"
    return intro + "<div class=tiles>" + "".join(_tile(f) for f in found[:SHOWN]) + "</div>"


def _tile(f) -> str:
    picture = page.thumbnail(f.sample.path, THUMBNAIL)
    image = (
        f'<img src="data:image/png;base64,{picture}" alt="{page.esc(f.id)}">'
        if picture
        else "<div class=missing>image not found</div>"
    )
    if f.issue == "label":
        said = f"given: <span class=wrong>{page.esc(f.given)}</span><br>suggested: <b>{page.esc(f.suggested)}</b>"
    elif f.issue == "near_duplicate":
        said = f"{page.esc(f.given)}<br>like: {page.esc(', '.join(f.others[:2]))}"
    else:
        said = page.esc(f.given)
    return (
        f"<figure>{image}<figcaption>{said}<br>score {f.score:.3g}"
        f"<br><small>{page.esc(f.split)}: {page.esc(f.id)}</small></figcaption></figure>"
    )


def _overlapping(diagnosis) -> str:
    if not diagnosis.overlapping:
        return "<p>No pair of classes overlaps.</p>"
    rows = [[page.esc(a), page.esc(b), str(n), f"{p:.4f}"] for a, b, n, p in diagnosis.overlapping[:20]]
    table = page.table(["class", "class", "samples between them", "joint probability"], rows, numeric=[2, 3])
    return "<p>Pairs of classes whose samples the out-of-sample probabilities mix, most first.</p>" + table
