"""Options and helpers every ``genba`` command shares."""

from __future__ import annotations

from pathlib import Path

import click

from genba.cli._format import FORMATS
from genba.config import GenbaConfig, load_config
from genba.errors import GenbaError

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
