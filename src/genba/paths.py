"""Unified-namespace paths and MQTT-style patterns over them.

A tag path is ``site/area/line/machine/name``: levels joined by ``/``. A pattern is an
MQTT topic filter: ``+`` matches one level, ``#`` (last) matches any number of levels.

>>> matches("berlin/+/line1/#", "berlin/packaging/line1/filler/temperature")
True
>>> matches("berlin/+/line2/#", "berlin/packaging/line1/filler/temperature")
False
>>> check_pattern("berlin/#/filler")
Traceback (most recent call last):
...
genba.errors.PatternError: Pattern 'berlin/#/filler': '#' may only stand alone as the last level, as in 'site/area/#'.
"""

from __future__ import annotations

import re

from genba.errors import PatternError

_BAD_CHARS = re.compile(r"[+#\x00-\x1f\x7f]")


def check_path(path: str, *, what: str = "Tag path") -> str:
    """Return ``path`` if it is a valid unified-namespace path, else raise ValueError."""
    if not path or path != path.strip():
        raise ValueError(f"{what} {path!r} is empty or has spaces at its ends.")
    levels = path.split("/")
    if any(not level for level in levels):
        raise ValueError(f"{what} {path!r} has an empty level; write levels joined by single '/'.")
    bad = _BAD_CHARS.search(path)
    if bad:
        raise ValueError(
            f"{what} {path!r} contains {bad.group()!r}; '+' and '#' are wildcards for patterns "
            "and control characters are not allowed."
        )
    return path


def check_level(name: str, what: str) -> str:
    """Return ``name`` if it is one valid path level (no '/'), else raise ValueError.

    >>> check_level("filler", "machine name")
    'filler'
    """
    if "/" in name:
        raise ValueError(f"a {what} is one level, without '/'; got {name!r}")
    return check_path(name, what=what.capitalize())


ISA95_LEVELS = ("site", "area", "line", "machine")


def check_asset_path(path: str, level: str) -> str:
    """Return ``path`` if it is a valid ISA-95 path down to ``level``, else raise ValueError.

    >>> check_asset_path("berlin/packaging/line1", "line")
    'berlin/packaging/line1'
    >>> check_asset_path("berlin/line1", "line")
    Traceback (most recent call last):
    ...
    ValueError: expected 3 levels site/area/line, got 'berlin/line1'
    """
    check_path(path, what=f"{level.capitalize()} path")
    n = ISA95_LEVELS.index(level) + 1
    if len(path.split("/")) != n:
        raise ValueError(f"expected {n} levels {'/'.join(ISA95_LEVELS[:n])}, got {path!r}")
    return path


def check_pattern(pattern: str) -> str:
    """Return ``pattern`` if it is a valid MQTT-style topic filter, else raise PatternError."""
    if not pattern:
        raise PatternError(
            "Pattern is empty; use '#' for every tag or 'site/area/#' for a subtree."
        )
    levels = pattern.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise PatternError(
                f"Pattern {pattern!r}: '#' may only stand alone as the last level, "
                "as in 'site/area/#'."
            )
        if "+" in level and level != "+":
            raise PatternError(
                f"Pattern {pattern!r}: '+' must fill a whole level, as in 'site/+/line1/#'."
            )
        if not level:
            raise PatternError(f"Pattern {pattern!r} has an empty level; join levels with one '/'.")
    return pattern


def matches(pattern: str, path: str) -> bool:
    """Whether ``path`` matches the (already checked) ``pattern``."""
    p_levels = pattern.split("/")
    t_levels = path.split("/")
    for i, p in enumerate(p_levels):
        if p == "#":
            return True
        if i >= len(t_levels):
            return False
        if p != "+" and p != t_levels[i]:
            return False
    return len(p_levels) == len(t_levels)
