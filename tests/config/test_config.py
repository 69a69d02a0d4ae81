from pathlib import Path

import pytest

from genba.config import example_config, load_config, parse_config
from genba.errors import ConfigError


def test_empty_file_is_a_working_node() -> None:
    config = parse_config("")
    assert config.node.http == "127.0.0.1:8000"
    assert config.store.kind == "duckdb"
    assert config.clock.kind == "real"
    assert config.connector == []


def test_example_config_describes_the_demo_line() -> None:
    config = parse_config(example_config())
    assert [c.kind for c in config.connector] == ["simulator"]
    assert len(config.machines_of("berlin/packaging/line1")) == 3
    filler = config.machine[0]
    assert filler.ideal_cycle_time_s == 1.0
    spec = {s.path: s for s in config.tag_specs()}[
        "berlin/packaging/line1/filler/process_temperature"
    ]
    assert (spec.unit, spec.low, spec.high) == ("degC", 4.0, 60.0)


def test_data_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "genba.toml").write_text('[node]\ndata_dir = "d"\n')
    assert load_config(tmp_path / "genba.toml").data_dir == tmp_path.resolve() / "d"


@pytest.mark.parametrize(
    ("text", "line", "fragments"),
    [
        (
            '[node]\nname = "x"\nhtpp = "1"\n',
            3,
            ["node.htpp", "unknown key", "did you mean 'http'"],
        ),
        (
            "[store]\nflush_interval_ms = -5\n",
            2,
            ["store.flush_interval_ms", "greater than 0", "-5"],
        ),
        ('[store]\nflush_interval_ms = "fast"\n', 2, ["valid integer", "'fast'"]),
        ('[clock]\nkind = "warp"\n', 2, ["clock.kind", "'real' or 'simulated'"]),
        (
            '[[machine]]\npath = "a/b/c/d"\n[[machine]]\npath = "a/b/c/e"\n'
            '  [[machine.tag]]\n  name = "t"\n  unti = "A"\n',
            7,
            ["machine[1].tag[0].unti", "did you mean 'unit'"],
        ),
        ('[[machine]]\npath = "a/b/c"\n', 2, ["4 levels site/area/line/machine"]),
        (
            '[[machine]]\npath = "a/b/c/d"\n[[machine.tag]]\nname = "t"\nlow = 5\nhigh = 1\n',
            3,
            ["low (5.0) must be below high"],
        ),
        (
            '[[connector]]\nkind = "simulator"\nscenario = "demo"\nrate = 2\n',
            4,
            ["connector[0].rate", "Valid keys: scenario, seed, sample_rate_hz"],
        ),
        (
            '[[connector]]\nkind = "simulator"\nseed = "x"\n',
            3,
            ["connector[0].seed", "valid integer"],
        ),
        ("[[machine]]\n", 1, ["machine[0].path", "required key missing"]),
        (
            '[[connector]]\nkind = "nosuch"\n',
            2,
            ["'nosuch' is not an installed connector kind", "known: ", "simulator"],
        ),
        ('[store]\nkind = "nosuch"\n', 2, ["'nosuch' is not an installed store kind", "duckdb"]),
        ('[store]\npaht = "x"\n', 2, ["store.paht", "did you mean 'path'"]),
        ("[node\n", 1, ["not valid TOML"]),
    ],
)
def test_errors_name_file_line_key_and_fix(text: str, line: int, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text, file="plant.toml")
    assert e.value.line == line, str(e.value)
    assert str(e.value).startswith(f"plant.toml:{line}: ")
    for fragment in fragments:
        assert fragment in str(e.value)


def test_missing_file_suggests_genba_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="genba init"):
        load_config(tmp_path / "genba.toml")


def test_duplicate_machines_are_refused() -> None:
    with pytest.raises(ConfigError, match="declared twice"):
        parse_config('[[machine]]\npath = "a/b/c/d"\n[[machine]]\npath = "a/b/c/d"\n')


def test_a_binary_file_or_a_data_dir_that_is_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    # issue 14: both once ended in a Python traceback
    binary = tmp_path / "genba.toml"
    binary.write_bytes(b"[node]\n\xd0\xcf\x11\xe0 not text")
    with pytest.raises(ConfigError, match="not a text file"):
        load_config(binary)
    (tmp_path / "afile").write_text("x")
    binary.write_text('[node]\ndata_dir = "afile"\n')
    with pytest.raises(ConfigError, match="afile is a file, not a folder"):
        load_config(binary)
