"""The documented example ``genba.toml`` that ``genba init`` writes."""

from __future__ import annotations

from importlib.resources import files


def example_config() -> str:
    """Text of the example config: a demo line of three simulated machines.

    >>> from genba.config import parse_config
    >>> [m.path.rsplit("/", 1)[1] for m in parse_config(example_config()).machine]
    ['filler', 'capper', 'labeler']
    """
    return files("genba.config").joinpath("example.toml").read_text(encoding="utf-8")
