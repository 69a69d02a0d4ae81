"""KPIs from summed figures: ratios, the waterfall, losses, reliability and money.

Each function takes :class:`~genba.kpi._oee.Figures` already summed to one entity and one
period (arrays of shape (1, 1)) and returns JSON-ready numbers. An undefined ratio (nothing
to divide by) is ``None`` — never 0 or NaN. Formulas: docs/kpi.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from genba.config import CostSettings, ProductSettings
from genba.kpi._oee import F64, Figures


def _f(x: Any) -> float:
    return float(x.sum())


def ratio(a: float, b: float) -> float | None:
    """``a / b``, or None when ``b`` is zero (the figure is undefined)."""
    return a / b if b > 1e-12 else None


def _ratio(a: F64, b: F64) -> F64:
    """``a / b`` element by element; NaN (None once unstacked) where ``b`` is zero."""
    out = np.full(np.shape(a), np.nan)
    np.divide(a, b, out=out, where=b > 1e-12)
    return out


def unstack(tree: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """A tree of (entities, periods) arrays as a tree per entity and period, NaN as None."""
    lists = _lists(tree)
    n, periods = np.shape(next(_leaves(tree)))
    return [[_pick(lists, i, p) for p in range(periods)] for i in range(n)]


def _lists(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _lists(v) if isinstance(v, dict) else _nested(v) for k, v in tree.items()}


def _nested(values: F64) -> Any:
    """Nested lists of Python floats, None where NaN."""
    a = np.asarray(values, dtype=np.float64)
    out = a.astype(object)
    out[np.isnan(a)] = None
    return out.tolist()


def _pick(tree: dict[str, Any], i: int, p: int) -> dict[str, Any]:
    return {k: _pick(v, i, p) if isinstance(v, dict) else v[i][p] for k, v in tree.items()}


def _leaves(tree: dict[str, Any]) -> Iterator[Any]:
    for v in tree.values():
        yield from _leaves(v) if isinstance(v, dict) else (v,)


def oee_arrays(f: Figures) -> dict[str, Any]:
    """Availability, performance, quality, OEE, TEEP, the waterfall and the six big losses of
    every (entity, period) of ``f`` at once: arrays of its shape (see :func:`unstack`)."""
    all_s, unknown = f.all_s, f.time("unknown")
    planned, run = f.planned_s, f.run_s
    net, fp = f.net_run_s, f.fully_productive_s
    su = f.startup_reject_s
    small = f.time("small_stop")
    known = all_s - unknown
    good, reject = f.good, f.reject
    return {
        "availability": _ratio(run, planned),
        "performance": _ratio(net, run),
        "quality": _ratio(fp, net),
        "oee": _ratio(fp, planned),
        "teep": _ratio(fp, known),
        "utilisation": _ratio(planned, known),
        "waterfall_min": {
            "all_time": all_s / 60,
            "unknown": unknown / 60,
            "not_planned": f.time("not_planned") / 60,
            "planned": planned / 60,
            "run": run / 60,
            "net_run": net / 60,
            "fully_productive": fp / 60,
        },
        "losses_min": {
            "breakdowns": f.time("down") / 60,
            "setup_adjustments": f.time("setup") / 60,
            "small_stops": small / 60,
            "reduced_speed": (run - small - net) / 60,
            "startup_rejects": su / 60,
            "production_rejects": (net - fp - su) / 60,
            "starved_blocked": (f.time("starved") + f.time("blocked")) / 60,
        },
        "counts": {
            "good": good,
            "reject": reject,
            "total": good + reject,
            "startup_rejects": f.startup_reject,
        },
    }


def oee(f: Figures) -> dict[str, Any]:
    """:func:`oee_arrays` of figures summed to one entity and one period."""
    return unstack(oee_arrays(f))[0][0]


def reliability(f: Figures) -> dict[str, Any]:
    """MTBF, MTTR, throughput, cycle time, first pass yield and counts against target."""
    n = _f(f.failures)
    planned, run, net = _f(f.planned_s), _f(f.run_s), _f(f.net_run_s)
    good, total = _f(f.good), _f(f.good) + _f(f.reject)
    mtbf = ratio(run, n)
    mttr = ratio(_f(f.repair_s), n)
    ideal_per_part = ratio(net, total)
    target = None if ideal_per_part is None else planned / ideal_per_part
    return {
        "failures": int(n),
        "mtbf_h": None if mtbf is None else mtbf / 3600,
        "mttr_min": None if mttr is None else mttr / 60,
        "throughput_per_h": ratio(good * 3600, planned),
        "avg_cycle_s": ratio(run, total),
        "ideal_cycle_s": ideal_per_part,
        "first_pass_yield": ratio(good, total),
        "count": total,
        "target": target,
        "count_vs_target": None if target is None else ratio(total, target),
    }


def money(
    line: Figures,
    first: Figures,
    last: Figures,
    constraint: Figures,
    *,
    machines: int,
    operators: float,
    costs: CostSettings,
    products: list[ProductSettings],
    by_product_started: list[float],
    by_product_finished: list[float],
    wip_avg_units: float | None,
    inventory_value: float | None = None,
) -> dict[str, Any]:
    """Costs of a line in one period, cost per good unit, the money of each loss, margin
    per product and inventory turnover. ``first``/``last`` are the line's first and last
    machine, ``constraint`` its constraint machine. Turnover is cost of goods sold (material
    of the goods finished plus the conversion cost) over ``inventory_value`` (the stock's
    average value, from the ERP); without it, None: the parts between machines are a lower
    bound of WIP, and dividing by it gave turnovers of 778,830 a year."""
    sched_h = _f(first.scheduled_s) / 3600  # one machine's: the line shares one calendar
    material = sum(n * p.material_cost for n, p in zip(by_product_started, products, strict=True))
    energy_kwh = _f(line.energy_kwh)
    parts = {
        "material": material,
        "energy": energy_kwh * costs.energy_price_per_kwh,
        "labour": sched_h * operators * costs.labour_rate_per_h,
        "machine_hours": sched_h * machines * costs.machine_rate_per_h,
    }
    total = sum(parts.values())
    finished = _f(last.good)
    revenue = sum(n * p.price for n, p in zip(by_product_finished, products, strict=True))
    unit_margin = ratio(
        sum(n * (p.price - p.material_cost) for n, p in zip(by_product_finished, products, strict=True)),
        sum(by_product_finished),
    )  # fmt: skip
    unit_material = ratio(material, sum(by_product_started))
    c = oee(constraint)["losses_min"]
    ideal = ratio(_f(constraint.net_run_s), _f(constraint.good) + _f(constraint.reject))
    losses: dict[str, dict[str, float | None]] = {}
    for name, minutes in c.items():
        lost_units = None if ideal is None else minutes * 60 / ideal
        money_lost = None if lost_units is None or unit_margin is None else lost_units * unit_margin
        losses[name] = {"minutes": minutes, "lost_units": lost_units, "money": money_lost}
    scrap_units = _f(line.reject)
    scrap = None if unit_material is None else scrap_units * unit_material
    idle_energy = _f(line.energy_idle_kwh) * costs.energy_price_per_kwh
    conversion = total - material
    cogs = None if unit_material is None else finished * unit_material
    by_product = []
    share_base = sum(by_product_finished)
    for n_fin, n_start, p in zip(by_product_finished, by_product_started, products, strict=True):
        conv = conversion * (n_fin / share_base) if share_base else 0.0
        by_product.append(
            {
                "product": p.name,
                "finished": n_fin,
                "started": n_start,
                "revenue": n_fin * p.price,
                "material": n_start * p.material_cost,
                "conversion": conv,
                "margin": n_fin * p.price - n_start * p.material_cost - conv,
            }
        )
    wip_value = (
        None if wip_avg_units is None or unit_material is None else wip_avg_units * unit_material
    )
    period_h = _f(first.all_s) / 3600
    sold = None if cogs is None else cogs + conversion
    turnover = None if sold is None or inventory_value is None else ratio(sold, inventory_value)
    return {
        "currency": costs.currency,
        "costs": parts,
        "total_cost": total,
        "good_units": finished,
        "cost_per_good_unit": ratio(total, finished),
        "revenue": revenue,
        "margin": revenue - total,
        "energy_kwh": energy_kwh,
        "loss_money": losses,
        "scrap_units": scrap_units,
        "scrap_material": scrap,
        "energy_not_producing": idle_energy,
        "by_product": by_product,
        "wip_avg_units": wip_avg_units,
        "wip_avg_value": wip_value,
        "inventory_turnover": turnover,
        "inventory_turnover_per_year": None
        if turnover is None or period_h <= 0
        else turnover * 8760 / period_h,
        "material_of_goods_finished": cogs,
    }
