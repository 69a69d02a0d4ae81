from pathlib import Path

import pytest

from genba.errors import ConfigError
from genba.sim import load_scenario


def test_built_in_scenarios_load() -> None:
    demo = load_scenario("demo")
    assert [m.ideal_cycle_s for m in demo.lines[0].machine] == [1.0, 0.9, 0.95]
    assert demo.lines[0].machine[1].mtbf_h == 6.0  # from [machine_defaults]
    large = load_scenario("large")
    assert len(large.lines) == 143
    assert sum(len(ln.machine) for ln in large.lines) == 715  # 10,010 tags


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            '[[line]]\npath = "a/b/c"\n  [[line.machine]]\n  name = "m"\n  mtbf = 3\n',
            5,
            "did you mean 'mtbf_h'",
        ),
        ('[[line]]\npath = "a/b"\n[[line.machine]]\nname = "m"\n', 2, "3 levels site/area/line"),
        (
            '[[line]]\npath = "a/b/c"\norders = [{product = "x", quantity = 5}]\n[[line.machine]]\nname = "m"\n',
            None,
            "unknown product 'x'",
        ),
        (
            '[[shift]]\nname = "d"\nstart = "06:00"\nend = "14:00"\ndays = ["monday"]\n',
            5,
            "unknown weekday",
        ),
    ],
)
def test_errors_name_the_line_and_fix(
    tmp_path: Path, text: str, line: int | None, fragment: str
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_scenario(path)
    assert fragment in str(e.value)
    if line is not None:
        assert e.value.line == line


def test_missing_scenario_names_the_built_ins(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="demo, large"):
        load_scenario(tmp_path / "none.toml")
