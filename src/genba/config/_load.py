"""Read and validate ``genba.toml``, with errors that name the file, line, key and fix."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from genba import plugins
from genba.config._model import GenbaConfig, config_model
from genba.errors import ConfigError

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

_AOT = re.compile(r"^\s*\[\[\s*([^\]]+?)\s*\]\]")
_TABLE = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


ENV_PREFIX = "GENBA_"
SECRET_KEYS = ("password", "dsn", "secret", "token", "private_key")
"""Settings whose values are never shown: ``GET /api/settings``, ``genba config`` and
config errors print ``***`` for them (pydantic's ``SecretStr`` masks them in logs)."""


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> GenbaConfig:
    """Read and validate the config file at ``path``, with the ``GENBA_…`` overrides of
    ``env`` (the process environment when not given; see :func:`env_overrides`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"No config file at {p}. Write an example with `genba init {p.parent}`.", file=str(p)
        ) from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"not a text file (byte {e.start} is not UTF-8); give the path of a genba.toml, "
            f"or write one with `genba init {p.parent}`.",
            file=str(p),
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"a folder, not a file; give the genba.toml inside it (`-c {p / 'genba.toml'}`).",
            file=str(p),
        ) from None
    overrides = env_overrides(os.environ if env is None else env)
    config = parse_config(text, file=str(p), overrides=overrides).with_source(p.resolve())
    if config.data_dir.exists() and not config.data_dir.is_dir():
        raise ConfigError(
            f"{config.data_dir} is a file, not a folder; point data_dir at a folder (it is "
            "made if missing).",
            file=str(p),
            key="node.data_dir",
        )
    return config


def env_overrides(env: Mapping[str, str]) -> dict[Loc, tuple[str, Any]]:
    """Settings given as environment variables: ``GENBA_<SECTION>__<KEY>`` (more ``__<KEY>``
    for nested tables, a number for the position in a table array), each replacing the file's
    value. The value is read as a TOML value when it is one (``8080``, ``true``, ``[1, 2]``),
    else as a string — so a secret need not be in the file::

        GENBA_STORE__DSN=postgresql://genba:s3cret@db/genba
        GENBA_CONNECTOR__0__PASSWORD=s3cret

    >>> env_overrides({"GENBA_NODE__HTTP": "0.0.0.0:8080", "GENBA_CLOCK__SPEED": "60", "HOME": "/"})
    {('clock', 'speed'): ('GENBA_CLOCK__SPEED', 60), ('node', 'http'): ('GENBA_NODE__HTTP', '0.0.0.0:8080')}
    """
    out: dict[Loc, tuple[str, Any]] = {}
    for var, raw in sorted(env.items()):
        if not var.startswith(ENV_PREFIX) or "__" not in var:
            continue
        parts = var[len(ENV_PREFIX) :].lower().split("__")
        loc: Loc = tuple(int(p) if p.isdigit() else p for p in parts)
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out[loc] = (var, value)
    return out


def _apply(data: dict[str, Any], loc: Loc, var: str, value: Any) -> None:
    node: Any = data
    for i, part in enumerate(loc[:-1]):
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise ConfigError(
                    f"{var}: the file has no {_dotted(loc[: i + 1])} (table {part} of "
                    f"[[{_dotted(loc[:i])}]]); number the tables from 0",
                    file=f"environment variable {var}",
                )
            node = node[part]
        else:
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
        if not isinstance(node, (dict, list)):
            raise ConfigError(
                f"{var}: {_dotted(loc[: i + 1])} is not a table", file=f"environment variable {var}"
            )
    if not isinstance(node, dict) or isinstance(loc[-1], int):
        raise ConfigError(f"{var}: {_dotted(loc)} is not a key", file=f"environment variable {var}")
    node[loc[-1]] = value


def parse_config(
    text: str, *, file: str = "genba.toml", overrides: Mapping[Loc, tuple[str, Any]] | None = None
) -> GenbaConfig:
    """Validate config ``text`` (with ``overrides`` from :func:`env_overrides` applied);
    ``file`` is only used in error messages.

    >>> parse_config('[node]\\nnmae = "x"\\n')
    Traceback (most recent call last):
    ...
    genba.errors.ConfigError: genba.toml:2: node.nmae: unknown key in [node]; did you mean 'name'? Valid keys: name, data_dir, http, max_body_mb.
    """
    config = parse_toml_model(text, config_model(), file=file, overrides=overrides)
    _check_plugins(config, text, file)
    return config.with_environment(tuple(var for var, _ in (overrides or {}).values()))


def parse_toml_model(
    text: str,
    model: type[M],
    *,
    file: str,
    overrides: Mapping[Loc, tuple[str, Any]] | None = None,
) -> M:
    """Parse TOML ``text`` into ``model``; errors name the file, line, key and the fix (or
    the environment variable that gave the value)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise ConfigError(
            f"not valid TOML: {e}.",
            file=file,
            line=int(m.group(1)) if m else None,
        ) from None
    for loc, (var, value) in (overrides or {}).items():
        _apply(data, loc, var, value)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        error = _config_error(e, model, (), text, file)
        for loc, (var, _) in (overrides or {}).items():
            if error.key.startswith(_dotted(loc)):
                raise ConfigError(
                    f"{error.reason} (the value is from {var})",
                    file=f"environment variable {var}",
                    key=error.key,
                ) from None
        raise error from None


def _check_plugins(config: GenbaConfig, text: str, file: str) -> None:
    """Validate the options of each connector and of the store against their kind's model."""
    targets: list[tuple[Loc, str, str, dict[str, Any]]] = [
        (("store",), plugins.STORES, config.store.kind, config.store.backend_options())
    ]
    targets += [
        (("connector", i), plugins.CONNECTORS, c.kind, c.options())
        for i, c in enumerate(config.connector)
    ]
    for loc, group, kind, options in targets:
        try:
            cls = plugins.load(group, kind)
        except KeyError as e:
            raise ConfigError(
                f"{_dotted((*loc, 'kind'))}: {e.args[0]}.",
                file=file,
                line=_locate(text, (*loc, "kind")),
                key=_dotted((*loc, "kind")),
            ) from None
        settings: type[BaseModel] = cls.Settings
        try:
            settings.model_validate(options)
        except ValidationError as e:
            raise _config_error(e, settings, loc, text, file) from None


def _config_error(
    e: ValidationError, model: type[BaseModel], prefix: Loc, text: str, file: str
) -> ConfigError:
    err = e.errors()[0]
    loc: Loc = (*prefix, *err["loc"])
    inner: Loc = tuple(err["loc"])
    key = _dotted(loc)
    section = _section(loc[:-1]) if loc else "the file"
    if err["type"] == "extra_forbidden":
        valid = list(_model_at(model, inner[:-1]).model_fields)
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        msg = f"{key}: unknown key in {section}; {hint}Valid keys: {', '.join(valid)}."
    elif err["type"] == "missing":
        msg = f"{key}: required key missing in {section}."
    elif err["type"] == "value_error":  # our own validators already name the value and fix
        msg = f"{key}: {err['ctx']['error']}."
    else:
        field = _field_at(model, inner)
        expected = f" Expected: {field}" if field else ""
        got = "***" if str(loc[-1]) in SECRET_KEYS else repr(err.get("input"))
        msg = f"{key}: {err['msg']} (got {got}).{expected}"
    return ConfigError(msg, file=file, line=_locate(text, loc), key=key)


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _section(loc: Loc) -> str:
    names = [p for p in loc if isinstance(p, str)]
    idx = [p for p in loc if isinstance(p, int)]
    if not names:
        return "the top level"
    if idx:
        return f"[[{'.'.join(names)}]] #{idx[-1] + 1}"
    return f"[{'.'.join(names)}]"


def _unwrap(tp: Any) -> Any:
    """The model class inside ``list[X]``, ``X | None`` and the like."""
    while True:
        origin = typing.get_origin(tp)
        if origin in (list, typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0]
        else:
            return tp


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel]:
    for part in loc:
        if isinstance(part, str) and part in model.model_fields:
            inner = _unwrap(model.model_fields[part].annotation)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                model = inner
    return model


def _field_at(model: type[BaseModel], loc: Loc) -> str:
    if not loc or not isinstance(loc[-1], str):
        return ""
    parent = _model_at(model, loc[:-1])
    f = parent.model_fields.get(loc[-1])
    return f.description or "" if f else ""


def _locate(text: str, loc: Loc) -> int | None:
    """1-based line of the key at ``loc`` (or of its table), found by reading the TOML."""
    header: Loc = ()
    counts: dict[Loc, int] = {}
    best: tuple[int, int] | None = None  # (matched length, line)
    for lineno, line in enumerate(text.splitlines(), start=1):
        if m := _AOT.match(line):
            names = m.group(1).split(".")
            parent: Loc = _resolve(names[:-1], counts)
            key = (*parent, names[-1])
            counts[key] = counts.get(key, -1) + 1
            header = (*key, counts[key])
            here: Loc = header
        elif m := _TABLE.match(line):
            header = _resolve(m.group(1).split("."), counts)
            here = header
        elif m := _KEY.match(line):
            here = (*header, m.group(1))
        else:
            continue
        n = _common(here, loc)
        if n == len(here) and (best is None or n > best[0]):
            best = (n, lineno)
    return best[1] if best else None


def _resolve(names: list[str], counts: dict[Loc, int]) -> Loc:
    """Table names to a loc, picking the latest element of each array of tables on the way."""
    out: Loc = ()
    for name in names:
        out = (*out, name)
        if out in counts:
            out = (*out, counts[out])
    return out


def _common(a: Loc, b: Loc) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
