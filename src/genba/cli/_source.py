"""Where ``genba tags`` and ``genba query`` read from: the store file when no node holds
it, else the running node's API. Both answer with the same dicts (:class:`genba.historian.History`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from genba.api import _views
from genba.api._kpi_views import kpi_json
from genba.clock import RealClock
from genba.config import RETENTION, GenbaConfig
from genba.errors import GenbaError, StoreLockedError
from genba.historian import History, Store, open_store
from genba.kpi import Kpi, KpiAnswer
from genba.tags import TagRegistry


class Source(Protocol):
    def tags(self, pattern: str = "#") -> list[dict[str, Any]]: ...

    def samples(
        self,
        path: str,
        *,
        start: str | None = None,
        end: str | None = None,
        every: str | None = None,
        agg: str = "avg",
        limit: int | None = None,
    ) -> dict[str, Any]: ...


class ApiSource:
    """Reads through a running node's HTTP API."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, timeout=60)

    def _get(self, url: str, params: dict[str, Any]) -> Any:
        try:
            r = self._http.get(url, params={k: v for k, v in params.items() if v is not None})
        except httpx.TransportError as e:
            raise GenbaError(
                f"The historian is held by a running node, but its API at {self.base_url} "
                f"does not answer ({e}). Check [node] http in the config."
            ) from None
        body = r.json()
        if r.status_code >= 400:
            raise GenbaError(body["error"]["message"])
        return body

    def tags(self, pattern: str = "#") -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._get("/api/tags", {"pattern": pattern})
        return result

    def samples(
        self,
        path: str,
        *,
        start: str | None = None,
        end: str | None = None,
        every: str | None = None,
        agg: str = "avg",
        limit: int | None = None,
    ) -> dict[str, Any]:
        query = {"start": start, "end": end, "every": every, "agg": agg, "limit": limit}
        result: dict[str, Any] = self._get(f"/api/tags/{quote(path)}/samples", query)
        return result

    def kpi(
        self, kind: str, asset: str, start: str | None, end: str | None, by: str | None
    ) -> dict[str, Any]:
        query = {"asset": asset, "start": start, "end": end, "by": by}
        result: dict[str, Any] = self._get(f"/api/kpi/{kind}", query)
        return result

    def close(self) -> None:
        self._http.close()


class StoreHistory:
    """History read here from the store file, as the API would send it (``genba.api._views``)."""

    def __init__(self, history: History) -> None:
        self._history = history

    def tags(self, pattern: str = "#") -> list[dict[str, Any]]:
        return [_views.tag_json(t) for t in self._history.tags(pattern)]

    def samples(
        self,
        path: str,
        *,
        start: str | None = None,
        end: str | None = None,
        every: str | None = None,
        agg: str = "avg",
        limit: int | None = None,
    ) -> dict[str, Any]:
        h = self._history.samples(path, start=start, end=end, every=every, agg=agg, limit=limit)
        return _views.history_json(h)


class StoreKpi:
    """KPIs computed here from the store file."""

    def __init__(self, kpi: Kpi) -> None:
        self._kpi = kpi

    def kpi(
        self, kind: str, asset: str, start: str | None, end: str | None, by: str | None
    ) -> dict[str, Any]:
        answer: KpiAnswer = getattr(self._kpi, kind)(asset, start, end, by)
        return kpi_json(answer)


class KpiSource(Protocol):
    def kpi(
        self, kind: str, asset: str, start: str | None, end: str | None, by: str | None
    ) -> dict[str, Any]: ...


@contextlib.contextmanager
def _store_or_api(config: GenbaConfig) -> Iterator[Store | ApiSource]:
    """The store, opened read-only; or the node's API when a running node holds the store."""
    try:
        store = open_store(config.store, data_dir=config.data_dir, read_only=True)
    except StoreLockedError:
        api = ApiSource(f"http://{config.node.http}")
        try:
            yield api
        finally:
            api.close()
        return
    try:
        yield store
    finally:
        store.close()


@contextlib.contextmanager
def open_kpi(config: GenbaConfig) -> Iterator[KpiSource]:
    """KPIs computed from the store file, or asked of the running node that holds it."""
    with _store_or_api(config) as src:
        if isinstance(src, ApiSource):
            yield src
        else:
            store = src

            def newest() -> int:  # no node runs: nothing vouches for time after the last write
                last = store.last()
                return int(last.ts_ns.max()) + 1 if len(last) else 0

            kpi = Kpi(config, TagRegistry(src.load_tags()), src, RealClock(), vouched_until=newest)
            yield StoreKpi(kpi)


@contextlib.contextmanager
def open_source(config: GenbaConfig) -> Iterator[Source]:
    """History from the store file, or from the running node that holds it."""
    with _store_or_api(config) as src:
        if isinstance(src, ApiSource):
            yield src
        else:
            registry = TagRegistry(src.load_tags())
            yield StoreHistory(History(registry, src, RealClock(), config.section(RETENTION)))
