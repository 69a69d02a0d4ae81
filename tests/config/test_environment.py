"""``GENBA_…`` environment overrides, and secrets masked wherever settings are shown."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from genba.config import GenbaConfig, load_config, settings_view
from genba.errors import ConfigError
from tests.conftest import RunningNode, demo_config_text, write_config

MQTT = """
[[connector]]
kind = "mqtt"
host = "127.0.0.1"
port = 1
topics = ["plant/#"]
username = "genba"
password = "file-secret"

[alarms]
webhook = "https://hook:{pw}@hooks.example/x"
"""


def test_environment_overrides_file_values_and_nested_tables(tmp_path: Path) -> None:
    path = write_config(tmp_path, demo_config_text(extra=MQTT.format(pw="url-secret")))
    env = {
        "GENBA_NODE__NAME": "press-shop",
        "GENBA_CLOCK__SPEED": "60",
        "GENBA_CLOCK__KIND": "simulated",
        "GENBA_CONNECTOR__1__PASSWORD": "env-secret",
        "GENBA_ALARMS__MQTT_TOPIC": "plant/alarms",
        "GENBA_IGNORED": "no double underscore: not an override",
    }
    config = load_config(path, env=env)
    assert config.node.name == "press-shop"
    assert config.clock.kind == "simulated"
    assert config.clock.speed == 60.0
    assert config.connector[1].options()["password"] == "env-secret"
    assert config.model_dump()["alarms"]["mqtt_topic"] == "plant/alarms"
    assert config.from_environment == tuple(sorted(v for v in env if "__" in v))
    assert load_config(path, env={}).node.name == "demo"  # the file's own value


def test_a_bad_value_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    path = write_config(tmp_path, demo_config_text())
    with pytest.raises(ConfigError, match=r"environment variable GENBA_CLOCK__SPEED: clock.speed"):
        load_config(path, env={"GENBA_CLOCK__SPEED": "-1"})
    with pytest.raises(
        ConfigError, match=r"GENBA_CONNECTOR__7__PASSWORD: the file has no connector\[7\]"
    ):
        load_config(path, env={"GENBA_CONNECTOR__7__PASSWORD": "x"})
    with pytest.raises(ConfigError, match=r"node.nmae: unknown key in \[node\]"):
        load_config(path, env={"GENBA_NODE__NMAE": "x"})


def test_secrets_are_masked_in_settings_and_errors(tmp_path: Path) -> None:
    text = demo_config_text(extra=MQTT.format(pw="url-secret"))
    path = write_config(tmp_path, text)
    config = load_config(path, env={"GENBA_CONNECTOR__1__PASSWORD": "env-secret"})
    shown = repr(settings_view(config))
    assert "secret" not in shown
    view = settings_view(config)
    assert view["connector"][1]["password"] == "***"
    assert view["alarms"]["webhook"] == "https://hook:***@hooks.example/x"
    assert view["connector"][1]["qos"] == 1  # the kind's defaults are filled in
    with pytest.raises(ConfigError, match=r"store.dsn: .*\(got \*\*\*\)") as e:
        load_config(path, env={"GENBA_STORE__KIND": "postgres", "GENBA_STORE__DSN": "[70]"})
    assert "70" not in str(e.value)


async def test_settings_endpoint_shows_masked_settings_and_sources(
    tmp_path: Path, run_node: Callable[[GenbaConfig], asyncio.Future[RunningNode]]
) -> None:
    path = write_config(tmp_path, demo_config_text(extra=MQTT.format(pw="url-secret")))
    config = load_config(path, env={"GENBA_CONNECTOR__1__PASSWORD": "env-secret"})
    rn = await run_node(config)
    r = await rn.http.get("/api/settings")
    assert r.status_code == 200
    assert "secret" not in r.text
    body = r.json()
    assert body["from_environment"] == ["GENBA_CONNECTOR__1__PASSWORD"]
    assert body["components"] == ["store", "compaction", "alarms"]
    assert body["settings"]["node"]["name"] == "demo"
    assert {"key": "alarm", "title": "[[alarm]]", "component": "alarms"} in body["sections"]
