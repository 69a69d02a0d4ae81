"""The effective settings of a node as JSON, every secret masked: what ``GET /api/settings``
shows. Connector and store options appear as their kind's model reads them (defaults filled
in); a value under a secret key (:data:`~genba.config._load.SECRET_KEYS`) and the password of a
URL (``mqtt://user:pw@host``) are shown as ``***``.

>>> from genba.config import parse_config
>>> view = settings_view(parse_config('[store]\\nkind = "postgres"\\ndsn = "postgresql://g:pw@db/g"\\n'))
>>> view["store"]["dsn"]
'***'
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from genba import plugins
from genba.config._load import SECRET_KEYS
from genba.config._model import ConnectorSettings, GenbaConfig
from genba.config._storage import StoreSettings

MASK = "***"
_URL_PASSWORD = re.compile(r"(//[^/:@\s]*:)[^@/\s]+@")


def settings_view(config: GenbaConfig) -> dict[str, Any]:
    """``config`` as JSON-ready data, secrets masked (see the module docstring)."""
    data = config.model_dump(mode="json")
    data["store"] = _with_options(config.store, StoreSettings, plugins.STORES, config.store.kind)
    data["connector"] = [
        _with_options(c, ConnectorSettings, plugins.CONNECTORS, c.kind) for c in config.connector
    ]
    masked = mask(data)
    assert isinstance(masked, dict)
    return masked


def _with_options(
    settings: BaseModel, core: type[BaseModel], group: str, kind: str
) -> dict[str, Any]:
    out = {k: v for k, v in settings.model_dump(mode="json").items() if k in core.model_fields}
    try:
        model: type[BaseModel] = plugins.load(group, kind).Settings
    except KeyError:  # checked when the config was read; a package removed since
        return out | dict(settings.model_extra or {})
    return out | model.model_validate(settings.model_extra or {}).model_dump(mode="json")


def mask(value: Any, key: str = "") -> Any:
    """``value`` with every secret replaced by ``***`` (recursively).

    >>> mask({"broker": "mqtt://u:pw@h:1883", "password": "x", "tls": {"private_key": None}})
    {'broker': 'mqtt://u:***@h:1883', 'password': '***', 'tls': {'private_key': None}}
    """
    if isinstance(value, dict):
        return {k: mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, key) for v in value]
    if value is not None and key in SECRET_KEYS:
        return MASK
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\1{MASK}@", value)
    return value
