import pytest

from genba.errors import PatternError
from genba.paths import check_path, check_pattern, matches


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("#", "a/b/c", True),
        ("a/#", "a/b/c", True),
        ("a/#", "a", True),  # MQTT: 'a/#' also matches the parent level
        ("a/+/c", "a/b/c", True),
        ("a/+/c", "a/b/d", False),
        ("a/+", "a/b/c", False),
        ("a/b/c", "a/b/c", True),
        ("a/b", "a/b/c", False),
        ("+/+/+", "a/b/c", True),
    ],
)
def test_mqtt_filter_semantics(pattern: str, path: str, expected: bool) -> None:
    assert matches(check_pattern(pattern), path) is expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "empty"),
        ("a/#/b", "'#' may only stand alone as the last level"),
        ("a/b#", "'#' may only stand alone"),
        ("a/b+/c", "'\\+' must fill a whole level"),
        ("a//b", "empty level"),
    ],
)
def test_bad_patterns_explain_the_fix(pattern: str, message: str) -> None:
    with pytest.raises(PatternError, match=message):
        check_pattern(pattern)


@pytest.mark.parametrize("path", ["", " a/b", "a//b", "a/+/b", "a/#", "a/\x00"])
def test_bad_paths_are_rejected(path: str) -> None:
    with pytest.raises(ValueError, match="Tag path"):
        check_path(path)
