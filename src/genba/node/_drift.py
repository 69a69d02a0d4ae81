"""What both model watches (``ai``, ``rul``) share about retraining: the drift watch
(:mod:`genba.ai._drift`) — every :data:`DRIFT_EVERY_S` each version in service is compared
with its training data; drift is recorded (``ai.drift``), listed in ``problems`` and trains a
challenger at once — and one training attempt in a worker thread, whose failure is a problem
of that machine only."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from genba.ai._champion import Decision
from genba.ai._drift import DriftReport, check_drift, record_drift
from genba.ai._registry import ModelVersion
from genba.config import MachineSettings, ModelSettings, RulSettings
from genba.errors import GenbaError
from genba.types import NS_PER_S

log = logging.getLogger("genba.ai")
DRIFT_EVERY_S = 3600.0


class DriftWatch:
    """What the drift checks found, per ``(model, machine)``; which need a challenger."""

    def __init__(self) -> None:
        self.reports: dict[tuple[str, str], DriftReport] = {}
        self.force: set[tuple[str, str]] = set()
        self._checked: dict[tuple[str, str], int] = {}

    async def round(
        self,
        watched: Sequence[tuple[ModelSettings | RulSettings, MachineSettings, ModelVersion]],
        now_ns: int,
        check: Callable[..., DriftReport],
        args: tuple[Any, ...],
        kinds: Any = None,
    ) -> list[DriftReport]:
        """Check each version in service that is due; returns the drifted ones."""
        out = []
        for spec, machine, v in watched:
            key = (spec.name, machine.path)
            if spec.drift_days <= 0 or now_ns - self._checked.get(key, -(2**62)) < DRIFT_EVERY_S * NS_PER_S:  # fmt: skip
                continue
            self._checked[key] = now_ns
            config, store, registry, clock = args
            rep = await asyncio.to_thread(
                check, config, store, registry, clock, spec, machine, v, now_ns, spec.drift_days, kinds
            )  # fmt: skip
            self.reports[key] = rep
            if rep.drifted:
                record_drift(store, rep)
                self.force.add(key)
                log.warning(rep.text())
                out.append(rep)
        return out

    def problems(self) -> list[str]:
        return [r.text() for r in self.reports.values() if r.drifted]


def too_soon(spec: ModelSettings | RulSettings, champion: ModelVersion | None, now_ns: int) -> bool:  # fmt: skip
    """A challenger must be trained on newer data than the champion and judged on the
    ``holdout_days`` after it: not possible before then."""
    return champion is not None and now_ns - spec.holdout_days * 86_400 * NS_PER_S <= champion.trained_to_ns  # fmt: skip


async def attempt(
    what: str, fn: Callable[..., tuple[ModelVersion, Decision]], *args: Any, problems: dict[tuple[str, str], str], key: tuple[str, str], errors: list[int]
) -> tuple[ModelVersion, Decision] | None:  # fmt: skip
    """``fn(*args)`` in a worker thread; a failure becomes ``problems[key]`` (a bug also
    counts in ``errors[0]`` and is logged) and None, never an exception."""
    try:
        return await asyncio.to_thread(fn, *args)
    except GenbaError as e:
        problems[key] = f"{what} not trained: {e}"
    except Exception as e:  # a bug in one machine's training must not stop the others
        errors[0] += 1
        log.exception("training %s failed", what)
        problems[key] = f"{what} not trained: {e!r}"
    return None


__all__ = ["DRIFT_EVERY_S", "DriftReport", "DriftWatch", "attempt", "check_drift", "too_soon"]
