"""The model registry, first version: every trained model a numbered version in the
historian's record log (kind ``ai.model``, key ``<model name>/<machine>``), with what made it
— detector kind, settings, signals, training range and rows, training metrics, library
versions — and the model itself (:meth:`Detector.save` bytes, base64) under its SHA-256.
Loading checks the hash first: a record altered after it was written is refused."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from genba._version import __version__
from genba.ai._detector import Detector, load_detector
from genba.errors import ModelError
from genba.historian import Record, Store

RECORD_KIND = "ai.model"


class Saved(Protocol):
    """What the registry keeps of a model: a detector, or a RUL model."""

    kind: ClassVar[str]
    fitted_by: ClassVar[tuple[str, ...]]
    params: dict[str, Any]
    signals: list[str]
    used: npt.NDArray[np.bool_]

    def save(self) -> bytes: ...


@dataclass(frozen=True)
class ModelVersion:
    """One trained version of a model for one machine (the record's body, typed)."""

    name: str
    machine: str
    version: int
    detector: str
    params: dict[str, Any]
    signals: list[str]
    used: list[bool]
    trained_from_ns: int
    trained_to_ns: int
    rows: int
    metrics: dict[str, Any]
    libraries: dict[str, str]
    sha256: str
    created_ns: int
    model_b64: str
    mode: str = ""
    """The tag whose value is the operating mode ("" for none)."""
    as_of_ns: int = 0
    """When it was trained, in the data's time (its training end, or a challenger's
    training end plus the days held out to judge it on); 0 in versions from before."""

    @property
    def as_of(self) -> int:
        return self.as_of_ns or self.trained_to_ns

    @property
    def key(self) -> str:
        return f"{self.name}/{self.machine}"

    def summary(self) -> dict[str, Any]:
        """Everything but the model's bytes (what lists and the API show)."""
        out = dict(self.__dict__)
        out.pop("model_b64")
        return out

    def load(self, kinds: dict[str, type[Detector]]) -> Detector:
        """The detector, once its bytes match the hash they were saved under."""
        return load_detector(self.data(), kinds)

    def data(self) -> bytes:
        """The model's bytes, once they match the hash they were saved under."""
        data = base64.b64decode(self.model_b64)
        got = hashlib.sha256(data).hexdigest()
        if got != self.sha256:
            raise ModelError(
                f"model {self.name} version {self.version} of {self.machine} fails its hash "
                f"(stored {self.sha256[:12]}…, the bytes give {got[:12]}…): the record was "
                f"altered; train the model again (`genba ai train --model {self.name}`)"
            )
        return data


def save_version(
    store: Store,
    name: str,
    machine: str,
    det: Saved,
    *,
    trained_from_ns: int,
    trained_to_ns: int,
    rows: int,
    metrics: dict[str, Any],
    now_ns: int,
    mode: str = "",
    as_of_ns: int | None = None,
) -> ModelVersion:
    """Append the next version of ``name`` for ``machine`` to the record log."""
    data = det.save()
    last = latest(store, name, machine)
    v = ModelVersion(
        name=name,
        machine=machine,
        version=1 if last is None else last.version + 1,
        detector=det.kind,
        params=dict(det.params),
        signals=list(det.signals),
        used=[bool(u) for u in det.used],
        trained_from_ns=trained_from_ns,
        trained_to_ns=trained_to_ns,
        rows=rows,
        metrics=metrics,
        libraries={"genba": __version__, "numpy": np.__version__}
        | {d: metadata.version(d) for d in det.fitted_by},
        sha256=hashlib.sha256(data).hexdigest(),
        created_ns=now_ns,
        model_b64=base64.b64encode(data).decode("ascii"),
        mode=mode,
        as_of_ns=trained_to_ns if as_of_ns is None else as_of_ns,
    )
    store.append_records([Record(RECORD_KIND, now_ns, v.key, dict(v.__dict__))])
    return v


def versions(
    store: Store, name: str | None = None, machine: str | None = None
) -> list[ModelVersion]:
    """Every stored version (of one model, of one machine), oldest first."""
    key = f"{name}/{machine}" if name is not None and machine is not None else None
    out, after = [], 0
    while True:
        page = store.records(RECORD_KIND, key=key, after_seq=after, limit=1000)
        out += [_version(r) for r in page]
        if len(page) < 1000:
            break
        after = int(page[-1].seq or 0)
    return [v for v in out if name is None or v.name == name]


def latest(store: Store, name: str, machine: str) -> ModelVersion | None:
    page = store.records(RECORD_KIND, key=f"{name}/{machine}", limit=1, newest_first=True)
    return _version(page[0]) if page else None


def _version(r: Record) -> ModelVersion:
    try:
        return ModelVersion(**r.body)
    except TypeError as e:
        raise ModelError(f"record {r.seq} of {RECORD_KIND} is not a model version ({e})") from e
