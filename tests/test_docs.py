"""The docs are part of the product: these fail when the code and the docs disagree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from genba.api import create_app
from genba.cli import _docs as cli_docs
from genba.config import _docs as config_docs
from genba.config import parse_config
from genba.sim import _docs as sim_docs

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize(
    ("doc", "module"),
    [("config.md", config_docs), ("cli.md", cli_docs), ("simulator.md", sim_docs)],
)
def test_generated_references_are_current(doc: str, module: object) -> None:
    text = (ROOT / "docs" / doc).read_text()
    begin, end = module.BEGIN, module.END  # type: ignore[attr-defined]
    found = text[text.index(begin) : text.index(end) + len(end)]
    assert found == module.render_reference(), f"docs/{doc} is stale: run `./dev docs`"  # type: ignore[attr-defined]


def test_every_route_is_documented(tmp_path: Path) -> None:
    from genba.node import Node

    config = parse_config("").with_source(tmp_path / "genba.toml")
    node = Node(config)
    try:
        app = create_app(node)
    finally:
        node.store.close()
    api_doc = (ROOT / "docs" / "api.md").read_text()
    paths = {getattr(r, "path", "") for r in app.routes}
    for path in paths - {
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/static",
        "/vendor/uplot",
    }:
        documented = path.replace("{path:path}", "{path}").replace("{name:path}", "{name}")
        assert f" {documented}" in api_doc, f"{path} is not in docs/api.md"


def test_readme_has_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^(\./dev \w+)", readme, flags=re.M)
    assert commands == ["./dev demo", "./dev test"]
    assert "exec ./dev test" in (ROOT / ".ci" / "run").read_text()
    for link in re.findall(r"\]\((docs/[\w.]+\.md)\)", readme):
        assert (ROOT / link).exists(), link


def test_performance_doc_names_its_commands() -> None:
    perf = (ROOT / "docs" / "performance.md").read_text()
    for bench in sorted((ROOT / "bench").glob("*.py")):
        assert f"bench/{bench.name}" in perf, f"{bench.name} has no results in docs/performance.md"
