"""The drift watch both model watches run (:mod:`genba.ai._drift`): every
:data:`DRIFT_EVERY_S` each version in service is compared with its training data; drift is
recorded (``ai.drift``), listed in ``problems`` and trains a challenger at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from genba.ai._drift import DriftReport, check_drift, record_drift
from genba.ai._registry import ModelVersion
from genba.config import MachineSettings, ModelSettings, RulSettings
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


__all__ = ["DRIFT_EVERY_S", "DriftReport", "DriftWatch", "check_drift"]
