"""``genba.toml``: one file describes a node. See :func:`load_config` and ``docs/config.md``."""

from genba.config._load import (
    SECRET_KEYS,
    env_overrides,
    load_config,
    parse_config,
    parse_toml_model,
)
from genba.config._model import (
    ALARM_RULES,
    ALARMS,
    FORWARD,
    RETENTION,
    ClockSettings,
    ConnectorSettings,
    ForwardSettings,
    GenbaConfig,
    MachineSettings,
    ModelSettings,
    NodeSettings,
    RetentionSettings,
    TagSettings,
    TierSettings,
    config_model,
    registered_sections,
)
from genba.config._production import (
    CalendarSettings,
    CostSettings,
    LineSettings,
    Product,
    ProductSettings,
    ReasonSettings,
    SignalSettings,
)
from genba.config._sections import Section
from genba.config._storage import StoreSettings
from genba.config._template import example_config
from genba.config._view import mask, settings_view

__all__ = [
    "ALARMS",
    "ALARM_RULES",
    "FORWARD",
    "RETENTION",
    "SECRET_KEYS",
    "CalendarSettings",
    "ClockSettings",
    "ConnectorSettings",
    "CostSettings",
    "ForwardSettings",
    "GenbaConfig",
    "LineSettings",
    "MachineSettings",
    "ModelSettings",
    "NodeSettings",
    "Product",
    "ProductSettings",
    "ReasonSettings",
    "RetentionSettings",
    "Section",
    "SignalSettings",
    "StoreSettings",
    "TagSettings",
    "TierSettings",
    "config_model",
    "env_overrides",
    "example_config",
    "load_config",
    "mask",
    "parse_config",
    "parse_toml_model",
    "registered_sections",
    "settings_view",
]
