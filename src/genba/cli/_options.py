"""Options and helpers every ``genba`` command shares."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from genba.cli._format import FORMATS
from genba.config import GenbaConfig, load_config
from genba.errors import GenbaError

if TYPE_CHECKING:
    from genba.historian import Store

CONFIG_HELP = "Node config file (default: ./genba.toml)."
config_option = click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("genba.toml"),
    show_default=True,
    help=CONFIG_HELP,
)
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format.",
)


def load_or_exit(path: Path) -> GenbaConfig:
    """The config at ``path``, or a clean CLI error naming what is wrong."""
    try:
        return load_config(path)
    except GenbaError as e:
        raise click.ClickException(str(e)) from None


@contextlib.contextmanager
def store_or_exit(config: GenbaConfig, *, read_only: bool, hint: str = "") -> Iterator[Store]:
    """The config's store, closed afterwards; a store that cannot be opened (held by a running
    node, a bad DSN) is a clean CLI error, followed by ``hint``."""
    from genba.historian import open_store

    try:
        store = open_store(config.store, data_dir=config.data_dir, read_only=read_only)
    except GenbaError as e:
        raise click.ClickException(f"{e}{hint}") from None
    try:
        yield store
    finally:
        store.close()
