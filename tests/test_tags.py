import pytest

from genba.errors import UnknownTagError
from genba.tags import TagRegistry
from genba.types import Tag, TagSpec


def test_ids_are_stable_and_never_reused() -> None:
    reg = TagRegistry([Tag(5, TagSpec("s/a/l/m/x"))])
    new = reg.ensure([TagSpec("s/a/l/m/x"), TagSpec("s/a/l/m/y")])
    assert [t.id for t in new] == [5, 6]


def test_unknown_tag_suggests_close_paths() -> None:
    reg = TagRegistry()
    reg.ensure([TagSpec("s/a/l/m/temperature")])
    with pytest.raises(UnknownTagError) as e:
        reg.get("s/a/l/m/temperatur")
    assert e.value.suggestions == ["s/a/l/m/temperature"]
    assert "Did you mean" in str(e.value)


def test_hooks_see_new_and_changed_tags_only() -> None:
    reg = TagRegistry()
    seen: list[list[str]] = []
    reg.on_new_tags(lambda tags: seen.append([f"{t.path}:{t.spec.unit}" for t in tags]))
    reg.ensure([TagSpec("s/a/l/m/x")])
    reg.ensure([TagSpec("s/a/l/m/x")])  # no change: no call
    reg.ensure([TagSpec("s/a/l/m/x", unit="A")])
    assert seen == [["s/a/l/m/x:"], ["s/a/l/m/x:A"]]


def test_match_mask_tracks_new_tags() -> None:
    reg = TagRegistry()
    reg.ensure([TagSpec("s/a/l1/m/x")])
    assert reg.match_mask("s/+/l1/#").tolist() == [False, True]
    reg.ensure([TagSpec("s/a/l2/m/x"), TagSpec("s/a/l1/m/y")])
    assert reg.match_mask("s/+/l1/#").tolist() == [False, True, False, True]
