"""genba's AI: models that learn each machine's normal operation and say when it leaves it.

Detectors (one module each) share the verbs of :class:`Detector`: ``fit`` on a frame of
normal operation, ``score`` a batch (a score per row, each signal's contribution, a threshold
learned from the training data), ``save``/:func:`load` as arrays and JSON, never pickles.
:func:`evaluate_skab` scores a detector on the Skoltech Anomaly Benchmark by its own protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genba.ai._autoencoder import AutoencoderDetector
from genba.ai._champion import Decision, decisions, in_service, pin, pinned, rollback
from genba.ai._detector import Detector, Scores, load_detector
from genba.ai._hst import HalfSpaceTreesDetector
from genba.ai._iforest import IsolationForestDetector
from genba.ai._iterate import challenge
from genba.ai._knn import KnnDetector
from genba.ai._pca import PcaDetector
from genba.ai._registry import ModelVersion, latest, versions
from genba.ai._robust import MadDetector
from genba.ai._rul import RulModel, RulNow, estimate_now, train_rul
from genba.ai._simeval import ALARM_DEADBAND, SimReport, evaluate_sim
from genba.ai._skab import FileResult, SkabReport, evaluate_skab, nab_score, outlier_counts
from genba.ai._train import PLANT_RULE, machines_of, train
from genba.clock import Clock
from genba.config import GenbaConfig
from genba.errors import GenbaError, ModelError
from genba.historian import Store
from genba.tags import TagRegistry

DETECTORS: dict[str, type[Detector]] = {
    d.kind: d
    for d in (
        MadDetector,
        PcaDetector,
        KnnDetector,
        IsolationForestDetector,
        AutoencoderDetector,
        HalfSpaceTreesDetector,
    )
}
"""Every detector kind by name."""


def make_detector(kind: str, **params: Any) -> Detector:
    """A new, untrained detector of ``kind`` with ``params`` over its defaults."""
    if kind not in DETECTORS:
        raise ModelError(f"unknown detector {kind!r}; known: {', '.join(sorted(DETECTORS))}")
    return DETECTORS[kind](**params)


def load(data: bytes) -> Detector:
    """A detector saved with :meth:`Detector.save` (its kind from the file)."""
    return load_detector(data, DETECTORS)


def load_version(v: ModelVersion) -> Detector:
    """The detector of a registry version, once it passes its hash check."""
    return v.load(DETECTORS)


def load_rul(v: ModelVersion) -> RulModel:
    """The RUL model of a registry version, once it passes its hash check."""
    if v.detector != RulModel.kind:
        raise ModelError(f"model {v.name} of {v.machine} is a {v.detector} detector, not a RUL model")  # fmt: skip
    return RulModel.load(v.data())


@dataclass(frozen=True)
class Trained:
    """What training one model for one machine gave: a version, or why not."""

    model: str
    machine: str
    version: ModelVersion | None
    error: str = ""
    decision: Decision | None = None
    """Whether the new version went into service, and why (:mod:`genba.ai._champion`)."""


def train_models(
    config: GenbaConfig,
    store: Store,
    registry: TagRegistry,
    clock: Clock,
    *,
    name: str | None = None,
    end_ns: int | None = None,
) -> list[Trained]:
    """Train every ``[[model]]`` and ``[[rul]]`` (or the one named) for each machine it
    matches, on the data before ``end_ns`` (now), as a challenger to the version in service
    (:func:`~genba.ai._iterate.challenge`); one machine that cannot be trained does not stop
    the others."""
    models = [m for m in config.model if name is None or m.name == name]
    ruls = [r for r in config.rul if name is None or r.name == name]
    if not models and not ruls:
        known = ", ".join(m.name for m in [*config.model, *config.rul]) or "(no [[model]] or [[rul]] in the config)"  # fmt: skip
        raise ModelError(f"no [[model]] or [[rul]] named {name!r}; models: {known}")
    end = clock.now_ns() if end_ns is None else end_ns
    out = []
    for rul in ruls:
        for machine in machines_of(config, rul):
            try:
                v, d = challenge(config, store, registry, clock, rul, machine, end)
                out.append(Trained(rul.name, machine.path, v, decision=d))
            except GenbaError as e:
                out.append(Trained(rul.name, machine.path, None, str(e)))
    for model in models:
        if model.detector not in DETECTORS:
            raise ModelError(
                f"[[model]] {model.name!r}: unknown detector {model.detector!r}; "
                f"known: {', '.join(sorted(DETECTORS))}"
            )
        for machine in machines_of(config, model):
            try:
                v, d = challenge(config, store, registry, clock, model, machine, end, DETECTORS)
                out.append(Trained(model.name, machine.path, v, decision=d))
            except GenbaError as e:
                out.append(Trained(model.name, machine.path, None, str(e)))
    return out


__all__ = [
    "ALARM_DEADBAND",
    "DETECTORS",
    "PLANT_RULE",
    "AutoencoderDetector",
    "Decision",
    "Detector",
    "FileResult",
    "HalfSpaceTreesDetector",
    "IsolationForestDetector",
    "KnnDetector",
    "MadDetector",
    "ModelVersion",
    "PcaDetector",
    "RulModel",
    "RulNow",
    "Scores",
    "SimReport",
    "SkabReport",
    "Trained",
    "challenge",
    "decisions",
    "estimate_now",
    "evaluate_sim",
    "evaluate_skab",
    "in_service",
    "latest",
    "load",
    "load_rul",
    "load_version",
    "make_detector",
    "nab_score",
    "outlier_counts",
    "pin",
    "pinned",
    "rollback",
    "train",
    "train_models",
    "train_rul",
    "versions",
]
