"""Champion and challenger: a newly trained version (the challenger) replaces the one in
service (the champion) only when it measures better, on data neither was trained on, by a
margin a paired test says is real. Every decision is kept with its evidence; a person can pin
a version (and roll back) over any decision.

The flow (:func:`challenge`), the same for every model kind:

1. the **champion** is the version in service (:func:`in_service`): the pinned one if a pin is
   set, else the challenger of the newest promoting decision (a model's first version is
   promoted on arrival: there is nothing to compare it with);
2. the **challenger** is trained on the data up to ``holdout_days`` before now, so that the
   newest ``holdout_days`` are unseen by both (the champion was trained earlier still);
3. both are scored on those days by the kind's own loss, row by row (:func:`rul_losses`,
   :func:`detector_losses`), and the paired difference (champion − challenger) is resampled by
   whole groups — a life of the part, a block of hours — 2,000 times (:func:`paired_bootstrap`:
   rows of one life or block are alike, so rows are not independent draws); fewer than
   :data:`MIN_GROUPS` groups is no evidence;
4. the challenger is **promoted** when the bootstrap's 95 % interval of the improvement lies
   above zero and the improvement is at least ``min_gain`` of the champion's loss; otherwise the
   champion stays. Either way a decision record says why, with the figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from genba.ai._registry import ModelVersion, latest, versions
from genba.errors import ModelError
from genba.historian import Record, Store

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

DECISION_KIND = "ai.decision"
PIN_KIND = "ai.pin"
BOOTSTRAP = 2000
MIN_GROUPS = 4
"""Fewer lives or blocks than this in the unseen data: no decision (the champion stays)."""
MIN_GAIN = 0.02
"""A challenger must cut the champion's loss by at least this share (and the paired test
must say the cut is real)."""


@dataclass(frozen=True)
class Decision:
    """Why a challenger was (not) put in service, with the evidence."""

    name: str
    machine: str
    challenger: int
    champion: int | None
    promoted: bool
    reason: str
    metric: str = ""
    champion_loss: float | None = None
    challenger_loss: float | None = None
    improvement: float | None = None
    """Mean paired improvement (champion's loss − challenger's), in the metric's unit."""
    ci_low: float | None = None
    ci_high: float | None = None
    rows: int = 0
    groups: int = 0
    eval_from_ns: int | None = None
    eval_to_ns: int | None = None
    created_ns: int = 0

    @property
    def key(self) -> str:
        return f"{self.name}/{self.machine}"


def paired_bootstrap(
    a: F64, b: F64, groups: I64, weights: F64 | None = None, *, n: int = BOOTSTRAP, seed: int = 0
) -> tuple[float, float, float]:
    """The weighted mean of ``a − b`` and its 95 % bootstrap interval, resampling whole
    groups (a paired, clustered bootstrap).

    >>> g = np.repeat(np.arange(20), 5)
    >>> mean, lo, hi = paired_bootstrap(np.full(100, 2.0), np.full(100, 1.0), g)
    >>> (mean, lo, hi)
    (1.0, 1.0, 1.0)
    >>> rng = np.random.default_rng(1)
    >>> noise = paired_bootstrap(rng.normal(size=100), rng.normal(size=100), g)
    >>> bool(noise[1] < 0 < noise[2])
    True
    """
    w = np.ones(len(a)) if weights is None else np.asarray(weights, dtype=np.float64)
    u, inv = np.unique(groups, return_inverse=True)
    s = np.bincount(inv, w * (a - b), minlength=len(u))
    c = np.bincount(inv, w, minlength=len(u))
    mean = float(s.sum() / c.sum())
    pick = np.random.default_rng(seed).integers(0, len(u), size=(n, len(u)))
    boot = s[pick].sum(axis=1) / np.maximum(c[pick].sum(axis=1), 1e-300)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return mean, float(lo), float(hi)


def judge(
    name: str,
    machine: str,
    champion: ModelVersion,
    challenger: ModelVersion,
    metric: str,
    losses: tuple[F64, F64, I64, F64] | str,
    *,
    eval_from_ns: int,
    eval_to_ns: int,
    now_ns: int,
    min_gain: float = MIN_GAIN,
) -> Decision:
    """The decision on ``challenger`` from the paired ``losses`` (champion's, challenger's,
    group, weight per row), or from a string saying why there is no evidence."""
    base = Decision(name, machine, challenger.version, champion.version, False, "", metric=metric,
                    eval_from_ns=eval_from_ns, eval_to_ns=eval_to_ns, created_ns=now_ns)  # fmt: skip
    if isinstance(losses, str):
        return replace(base, reason=f"champion kept: {losses}")
    a, b, g, w = losses
    n = len(np.unique(g))
    if n < MIN_GROUPS:
        return replace(base, rows=len(a), groups=n,
                       reason=f"champion kept: the unseen data holds {n} lives or blocks to compare on ({MIN_GROUPS} needed)")  # fmt: skip
    gain, lo, hi = paired_bootstrap(a, b, g, w)
    champ = float(np.average(a, weights=w))
    chall = float(np.average(b, weights=w))
    need = min_gain * champ
    promoted = lo > 0 and gain >= need
    if promoted:
        why = f"promoted: {metric} {chall:.4g} against the champion's {champ:.4g}, better by {gain:.4g} (95 % interval {lo:.4g} to {hi:.4g})"  # fmt: skip
    elif lo <= 0:
        why = f"champion kept: the improvement {gain:.4g} is not real (95 % interval {lo:.4g} to {hi:.4g} includes 0 or less)"  # fmt: skip
    else:
        why = f"champion kept: better by {gain:.4g}, under the margin of {need:.4g} ({min_gain:.0%} of the champion's {metric})"  # fmt: skip
    return replace(base, promoted=promoted, reason=why, champion_loss=champ,
                   challenger_loss=chall, improvement=gain, ci_low=lo, ci_high=hi,
                   rows=len(a), groups=len(np.unique(g)))  # fmt: skip


def first_decision(v: ModelVersion, now_ns: int) -> Decision:
    """A model's first version goes into service: there is no champion to beat."""
    return Decision(v.name, v.machine, v.version, None, True, "promoted: the first version (no champion to compare with)", created_ns=now_ns)  # fmt: skip


def record(store: Store, d: Decision) -> Decision:
    store.append_records([Record(DECISION_KIND, d.created_ns, d.key, asdict(d))])
    return d


def decisions(store: Store, name: str | None = None, machine: str | None = None) -> list[Decision]:  # fmt: skip
    """Every decision (of one model, of one machine), oldest first."""
    key = f"{name}/{machine}" if name is not None and machine is not None else None
    out, after = [], 0
    while True:
        page = store.records(DECISION_KIND, key=key, after_seq=after, limit=1000)
        out += [Decision(**r.body) for r in page]
        if len(page) < 1000:
            break
        after = int(page[-1].seq or 0)
    return [d for d in out if name is None or d.name == name]


def pin(store: Store, name: str, machine: str, version: int | None, now_ns: int, note: str = "") -> None:  # fmt: skip
    """Put ``version`` in service whatever the decisions say (None: unpin, the decisions
    rule again). The version must exist."""
    if version is not None and not any(v.version == version for v in versions(store, name, machine)):  # fmt: skip
        known = ", ".join(str(v.version) for v in versions(store, name, machine)) or "none"
        raise ModelError(f"model {name} has no version {version} for {machine}; versions: {known}")
    body = {"name": name, "machine": machine, "version": version, "note": note, "at_ns": now_ns}
    store.append_records([Record(PIN_KIND, now_ns, f"{name}/{machine}", body)])


def pinned(store: Store, name: str, machine: str) -> int | None:
    page = store.records(PIN_KIND, key=f"{name}/{machine}", limit=1, newest_first=True)
    return None if not page else page[0].body.get("version")


def pins(store: Store, name: str | None = None) -> list[dict[str, Any]]:
    """Every pin and unpin, oldest first."""
    return [r.body for r in store.records(PIN_KIND, limit=100_000) if name is None or r.body["name"] == name]  # fmt: skip


def in_service(store: Store, name: str, machine: str) -> ModelVersion | None:
    """The version in service: pinned, else the newest promoted, else (a registry from
    before decisions were kept) the newest."""
    all_v = {v.version: v for v in versions(store, name, machine)}
    p = pinned(store, name, machine)
    if p is not None and p in all_v:
        return all_v[p]
    promoted = [d.challenger for d in decisions(store, name, machine) if d.promoted]
    if promoted and promoted[-1] in all_v:
        return all_v[promoted[-1]]
    if not decisions(store, name, machine):
        return latest(store, name, machine)
    return None


def rollback(store: Store, name: str, machine: str, now_ns: int) -> int:
    """Pin the version that was in service before the current one; returns it."""
    current = in_service(store, name, machine)
    served = [d.challenger for d in decisions(store, name, machine) if d.promoted]
    earlier = [v for v in served if current is None or v < current.version]
    if not earlier:
        raise ModelError(f"model {name} for {machine} has no earlier version in service to roll back to")  # fmt: skip
    pin(store, name, machine, earlier[-1], now_ns, note="rollback")
    return earlier[-1]
