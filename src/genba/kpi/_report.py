"""A self-contained HTML report: charts are inline SVG drawn here, no script and no network.

>>> html = render_report("demo", "all", "week", {"oee": {"rows": [], "start": "a", "end": "b"},
...     "losses": {"rows": [], "pareto": []}, "reliability": {"rows": []},
...     "cost": {"rows": [], "currency": "EUR"}, "by": {"rows": []}})
>>> html.startswith("<!doctype html>") and "<script" not in html
True
"""

from __future__ import annotations

from html import escape
from typing import Any

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1d232a}
h1{font-size:1.6rem;margin:0}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccd}
.sub{color:#556}.warn{background:#fff4d6;border:1px solid #c98a00;padding:.5rem 1rem;margin:1rem 0}.tiles{display:flex;gap:1rem;margin:1rem 0}
.tile{border:1px solid #ccd;border-radius:6px;padding:.6rem 1rem;min-width:7rem}
.tile b{display:block;font-size:1.6rem}table{border-collapse:collapse;margin:.5rem 0}
td,th{padding:.25rem .6rem;border-bottom:1px solid #e3e6ea;text-align:right}
td:first-child,th:first-child,td.l{text-align:left}svg text{font:12px system-ui,sans-serif}
"""
WATERFALL = ["all_time", "planned", "run", "net_run", "fully_productive"]
LOSS_STEPS = [
    ("all_time", "planned", ["unknown", "not_planned"]),
    ("planned", "run", ["breakdowns", "setup_adjustments", "starved_blocked"]),
    ("run", "net_run", ["small_stops", "reduced_speed"]),
    ("net_run", "fully_productive", ["startup_rejects", "production_rejects"]),
]


def _pct(x: float | None) -> str:
    return "undefined" if x is None else f"{100 * x:.1f} %"


def _n(x: float | None, nd: int = 1) -> str:
    return "–" if x is None else f"{x:,.{nd}f}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _waterfall(row: dict[str, Any]) -> str:
    """Bars of the time waterfall (hours), each loss step shown as the drop between them."""
    w = row["waterfall_min"]
    top = max(w["all_time"], 1e-9)
    bar_w, gap, h = 110, 40, 220
    parts = []
    for i, key in enumerate(WATERFALL):
        v = w[key]
        bh = h * v / top
        x = 10 + i * (bar_w + gap)
        parts.append(
            f'<rect x="{x}" y="{20 + h - bh:.1f}" width="{bar_w}" height="{bh:.1f}" fill="#2f6f9f"/>'
            f'<text x="{x}" y="{h + 38}">{escape(key.replace("_", " "))}</text>'
            f'<text x="{x}" y="{14 + h - bh:.1f}">{v / 60:,.1f} h</text>'
        )
    for i, (a, b, _) in enumerate(LOSS_STEPS):
        x = 10 + i * (bar_w + gap) + bar_w
        y0, y1 = 20 + h - h * w[a] / top, 20 + h - h * w[b] / top
        parts.append(
            f'<rect x="{x + 5}" y="{y0:.1f}" width="{gap - 10}" height="{max(y1 - y0, 0):.1f}" '
            'fill="#d9534f"/>'
        )
    width = 10 + len(WATERFALL) * (bar_w + gap)
    return f'<svg width="{width}" height="{h + 50}" role="img" aria-label="OEE waterfall">{"".join(parts)}</svg>'


def _hbars(items: list[tuple[str, float]], unit: str, label: str) -> str:
    if not items:
        return "<p>No losses in this period.</p>"
    top = max(max(v for _, v in items), 1e-9)
    rows = []
    for i, (name, v) in enumerate(items):
        y = 5 + i * 24
        rows.append(
            f'<text x="0" y="{y + 14}">{escape(name)}</text>'
            f'<rect x="230" y="{y}" width="{500 * max(v, 0) / top:.1f}" height="18" fill="#d9534f"/>'
            f'<text x="{236 + 500 * max(v, 0) / top:.1f}" y="{y + 14}">{v:,.1f} {unit}</text>'
        )
    return (
        f'<svg width="860" height="{10 + 24 * len(items)}" role="img" aria-label="{escape(label)}">'
        + "".join(rows)
        + "</svg>"
    )


def render_report(node: str, asset: str, period: str, data: dict[str, Any]) -> str:
    oee, losses, rel, cost, by = (data[k] for k in ("oee", "losses", "reliability", "cost", "by"))
    rows = oee["rows"]
    top = rows[-1] if rows else None
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>genba report: {escape(asset)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(asset)} — production report</h1>",
        f'<p class="sub">Node {escape(node)}, {escape(period)} {escape(oee["start"])} to '
        f"{escape(oee['end'])} (UTC). Every figure comes from the stored samples; definitions: "
        "docs/kpi.md.</p>",
    ]
    doubts = [w["message"] for w in oee.get("warnings", [])] + [
        f"{x['machine']} is not counted: {x['reason']}" for x in oee.get("not_counted", [])
    ]
    if doubts:
        out.append(
            '<div class="warn" role="alert"><b>Check before you trust these figures</b><ul>'
            + "".join(f"<li>{escape(d)}</li>" for d in doubts)
            + "</ul></div>"
        )
    if top is not None:
        tiles = [("OEE", top["oee"]), ("Availability", top["availability"]),
                 ("Performance", top["performance"]), ("Quality", top["quality"]),
                 ("TEEP", top["teep"])]  # fmt: skip
        out.append(
            '<div class="tiles">'
            + "".join(f'<div class="tile">{k}<b>{_pct(v)}</b></div>' for k, v in tiles)
            + "</div>"
        )
        out.append(
            f"<h2>Where the time went: {escape(top['entity'])} (machine-hours)</h2>"
            + _waterfall(top)
        )
        six = [(k.replace("_", " "), v / 60) for k, v in top["losses_min"].items()]
        out.append("<h2>Losses</h2>" + _hbars(sorted(six, key=lambda x: -x[1]), "h", "losses"))
    pareto = [(f"{p['category']} / {p['reason']} ({p['state']})", p["minutes"])
              for p in losses.get("pareto", [])[:15]]  # fmt: skip
    out.append("<h2>Stop time by reason (Pareto)</h2>" + _hbars(pareto, "min", "loss Pareto"))
    out.append("<h2>OEE by machine and line</h2>")
    out.append(_table(
        ["entity", "availability", "performance", "quality", "OEE", "TEEP", "planned h", "good", "reject"],
        [[r["entity"], _pct(r["availability"]), _pct(r["performance"]), _pct(r["quality"]),
          _pct(r["oee"]), _pct(r["teep"]), _n(r["waterfall_min"]["planned"] / 60),
          _n(r["counts"]["good"], 0), _n(r["counts"]["reject"], 0)] for r in rows],
    ))  # fmt: skip
    lines = [r for r in by["rows"] if r["level"] in ("line", "site", "area", "all")]
    out.append("<h2>By day or shift</h2>")
    out.append(_table(
        ["period", "entity", "OEE", "availability", "performance", "quality", "good"],
        [[r["period"], r["entity"], _pct(r["oee"]), _pct(r["availability"]),
          _pct(r["performance"]), _pct(r["quality"]), _n(r["counts"]["good"], 0)] for r in lines],
    ))  # fmt: skip
    out.append("<h2>Reliability</h2>")
    out.append(_table(
        ["entity", "failures", "MTBF h", "MTTR min", "good per h", "first pass yield", "count", "target"],
        [[r["entity"], str(r["failures"]), _n(r["mtbf_h"], 2), _n(r["mttr_min"]),
          _n(r["throughput_per_h"]), _pct(r["first_pass_yield"]), _n(r["count"], 0),
          _n(r["target"], 0)] for r in rel["rows"]],
    ))  # fmt: skip
    cur = cost.get("currency", "")
    for r in cost["rows"]:
        out.append(f"<h2>Cost: {escape(r['entity'])} ({escape(cur)})</h2>")
        items = [(k.replace("_", " "), v) for k, v in r["costs"].items()]
        out.append(_hbars(items, cur, "costs"))
        out.append(_table(
            ["figure", "value"],
            [["total cost", _n(r["total_cost"], 2)], ["good units", _n(r["good_units"], 0)],
             ["cost per good unit", _n(r["cost_per_good_unit"], 4)], ["revenue", _n(r["revenue"], 2)],
             ["margin", _n(r["margin"], 2)], ["scrap material", _n(r["scrap_material"], 2)],
             ["energy while not producing", _n(r["energy_not_producing"], 2)],
             ["average WIP (units)", _n(r["wip_avg_units"], 1)],
             ["inventory turnover per year", _n(r["inventory_turnover_per_year"], 1)]],
        ))  # fmt: skip
        out.append(_table(
            ["loss", "minutes", "lost good units", f"money ({cur})"],
            [[k.replace("_", " "), _n(v["minutes"]), _n(v["lost_units"], 0), _n(v["money"], 2)]
             for k, v in r["loss_money"].items()],
        ))  # fmt: skip
        out.append(_table(
            ["product", "started", "finished", "revenue", "material", "conversion", "margin"],
            [[p["product"], _n(p["started"], 0), _n(p["finished"], 0), _n(p["revenue"], 2),
              _n(p["material"], 2), _n(p["conversion"], 2), _n(p["margin"], 2)]
             for p in r["by_product"]],
        ))  # fmt: skip
    out.append("</body></html>")
    return "\n".join(out)
