"""``genba.toml``: one file describes a node. See :func:`load_config` and ``docs/config.md``."""

from genba.config._load import load_config, parse_config, parse_toml_model
from genba.config._model import (
    ClockSettings,
    ConnectorSettings,
    ForwardSettings,
    GenbaConfig,
    MachineSettings,
    NodeSettings,
    RetentionSettings,
    TagSettings,
    TierSettings,
)
from genba.config._production import (
    CalendarSettings,
    CostSettings,
    LineSettings,
    ProductSettings,
    ReasonSettings,
    SignalSettings,
)
from genba.config._template import example_config

__all__ = [
    "CalendarSettings",
    "ClockSettings",
    "ConnectorSettings",
    "CostSettings",
    "ForwardSettings",
    "GenbaConfig",
    "LineSettings",
    "MachineSettings",
    "NodeSettings",
    "ProductSettings",
    "ReasonSettings",
    "RetentionSettings",
    "SignalSettings",
    "TagSettings",
    "TierSettings",
    "example_config",
    "load_config",
    "parse_config",
    "parse_toml_model",
]
