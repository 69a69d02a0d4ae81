"""genba's AI: models that learn each machine's normal operation and say when it leaves it.

Detectors (one module each) share the verbs of :class:`Detector`: ``fit`` on a frame of
normal operation, ``score`` a batch (a score per row, each signal's contribution, a threshold
learned from the training data), ``save``/:func:`load` as arrays and JSON, never pickles.
:func:`evaluate_skab` scores a detector on the Skoltech Anomaly Benchmark by its own protocol.
"""

from __future__ import annotations

from typing import Any

from genba.ai._detector import Detector, Scores, load_detector
from genba.ai._pca import PcaDetector
from genba.ai._robust import MadDetector
from genba.ai._skab import FileResult, SkabReport, evaluate_skab, nab_score, outlier_counts
from genba.errors import ModelError

DETECTORS: dict[str, type[Detector]] = {d.kind: d for d in (MadDetector, PcaDetector)}
"""Every detector kind by name."""


def make_detector(kind: str, **params: Any) -> Detector:
    """A new, untrained detector of ``kind`` with ``params`` over its defaults."""
    if kind not in DETECTORS:
        raise ModelError(f"unknown detector {kind!r}; known: {', '.join(sorted(DETECTORS))}")
    return DETECTORS[kind](**params)


def load(data: bytes) -> Detector:
    """A detector saved with :meth:`Detector.save` (its kind from the file)."""
    return load_detector(data, DETECTORS)


__all__ = [
    "DETECTORS",
    "Detector",
    "FileResult",
    "MadDetector",
    "PcaDetector",
    "Scores",
    "SkabReport",
    "evaluate_skab",
    "load",
    "make_detector",
    "nab_score",
    "outlier_counts",
]
