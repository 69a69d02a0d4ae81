"""Node components: a package's own service is one module plus one entry point.

The test writes such a package into a temp dir (a module and its ``dist-info`` with the entry
point), puts it on ``sys.path`` and runs a node: the component's section is part of
``genba.toml`` (validated, documented), it is built, run, shown in health and settings, and
stopped in order with the built-ins.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from genba import plugins
from genba.config import GenbaConfig, config_model, parse_config, registered_sections
from genba.config._docs import render_reference
from genba.errors import ConfigError
from genba.node import Forwarder, Node
from tests.conftest import RunningNode, demo_config_text, wait_until

MODULE = '''
from __future__ import annotations
import asyncio
from typing import Any, ClassVar
from pydantic import BaseModel, ConfigDict, Field
from genba.bus import Overflow
from genba.config import Section
from genba.component import ComponentContext, Shutdown
from genba.types import SampleBatch

class CounterSettings(BaseModel):
    """``[counter]``: counts the samples of the matching tags."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    tags: str = Field("#", description="Which tags.")

COUNTER = Section("counter", CounterSettings | None, lambda: None)

class Counter:
    name: ClassVar[str] = "counter"
    order: ClassVar[int] = 80
    sections: ClassVar[tuple[Section[Any], ...]] = (COUNTER,)
    shutdown: ClassVar[Shutdown] = Shutdown.DRAIN
    stopped_after_bus = False

    @classmethod
    def create(cls, ctx: ComponentContext) -> Counter | None:
        settings = ctx.config.section(COUNTER)
        return None if settings is None else cls(ctx, settings)

    def __init__(self, ctx: ComponentContext, settings: CounterSettings) -> None:
        self.sub = ctx.bus.subscribe(settings.tags, name="counter", overflow=Overflow.BLOCK)
        self.seen = 0
        self.before = list(ctx.components)

    async def run(self) -> None:
        while not self.sub.finished:
            for item in await self.sub.drain(timeout=0.05):
                if isinstance(item, SampleBatch):
                    self.seen += len(item)
        Counter.stopped_after_bus = True

    def health(self) -> dict[str, Any]:
        return {"seen": self.seen, "built_after": self.before}

    def problems(self) -> list[str]:
        return [] if self.seen else ["counter: nothing seen yet"]
'''


def _clear() -> None:
    for f in (plugins.available, plugins.components, registered_sections, config_model):
        f.cache_clear()


@pytest.fixture
def counter_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "site"
    (root / "counter_pkg.dist-info").mkdir(parents=True)
    (root / "genba_counter.py").write_text(textwrap.dedent(MODULE))
    (root / "counter_pkg.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: counter-pkg\nVersion: 1.0\n"
    )
    (root / "counter_pkg.dist-info" / "entry_points.txt").write_text(
        "[genba.components]\ncounter = genba_counter:Counter\n"
    )
    monkeypatch.syspath_prepend(str(root))
    _clear()
    yield root
    monkeypatch.undo()
    _clear()


def test_builtins_register_as_components_in_order() -> None:
    assert [name for name, _ in plugins.components()] == [
        "store",
        "retention",
        "compaction",
        "alarms",
        "ai",
        "rul",
        "forward",
    ]
    assert [s.key for s in registered_sections()] == ["retention", "alarm", "alarms", "forward"]


def test_a_packages_section_is_part_of_the_config_and_its_docs(counter_package: Path) -> None:
    config = parse_config('[counter]\ntags = "plant/#"\n')
    assert config.model_dump()["counter"] == {"tags": "plant/#"}
    with pytest.raises(
        ConfigError, match=r"genba.toml:2: counter.tgas: unknown key in \[counter\]"
    ):
        parse_config("[counter]\ntgas = 1\n")
    assert "### `[counter]`" in render_reference()
    assert "counts the samples of the matching tags" in render_reference()


async def test_a_packages_component_runs_in_the_node(
    counter_package: Path,
    make_config: Callable[[str], GenbaConfig],
    run_node: Callable[[GenbaConfig], asyncio.Future[RunningNode]],
) -> None:
    rn = await run_node(make_config(demo_config_text(rate_hz=20, extra="\n[counter]\n")))
    assert list(rn.node.components) == [
        "store",
        "compaction",
        "alarms",
        "counter",
    ]  # no retention/forward set
    await wait_until(lambda: rn.node.health()["counter"]["seen"] > 50)
    health = (await rn.http.get("/api/health")).json()
    assert health["counter"]["built_after"] == ["store", "compaction", "alarms"]
    assert health["status"] == "ok"
    settings = (await rn.http.get("/api/settings")).json()
    assert {"key": "counter", "title": "[counter]", "component": "counter"} in settings["sections"]
    assert settings["settings"]["counter"] == {"tags": "#"}
    await rn.shutdown()
    counter = rn.node.components["counter"]
    assert getattr(type(counter), "stopped_after_bus")  # noqa: B009 - DRAIN: ran until the bus closed
    assert counter.health()["seen"] == rn.node.bus.stats().published_samples


def test_a_section_claimed_twice_is_an_error(counter_package: Path) -> None:
    (counter_package / "counter_pkg.dist-info" / "entry_points.txt").write_text(
        "[genba.components]\ncounter = genba_counter2:Counter\n"
    )
    (counter_package / "genba_counter2.py").write_text(
        textwrap.dedent(MODULE).replace('Section("counter"', 'Section("forward"')
    )
    _clear()
    with pytest.raises(
        ValueError, match=r"declares section \[forward\], which component 'forward'"
    ):
        registered_sections()


def test_a_node_without_optional_components_builds_none_of_them(
    make_config: Callable[[str], GenbaConfig],
) -> None:
    node = Node(make_config(demo_config_text()))
    try:
        assert "forward" not in node.components
        assert "retention" not in node.components
        with pytest.raises(
            KeyError, match="runs no Forwarder component; running: store, compaction, alarms"
        ):
            node.component(Forwarder)
    finally:
        node.store.close()
