"""The tag registry: unified-namespace path ↔ integer :data:`~genba.types.TagId`.

Batches carry integer ids; the registry is where a path becomes an id and back. Ids are
assigned once and kept by the store, so history stays attached to its tag across restarts.

>>> reg = TagRegistry()
>>> [t.id for t in reg.ensure([TagSpec("s/a/l/m/temp", unit="degC")])]
[1]
>>> reg.get("s/a/l/m/temp").spec.unit
'degC'
>>> reg.match_mask("s/a/+/m/#").tolist()
[False, True]
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import numpy.typing as npt

from genba.errors import UnknownTagError
from genba.paths import check_path, check_pattern, matches
from genba.types import Tag, TagId, TagSpec

NewTagsHook = Callable[[list[Tag]], None]


class TagRegistry:
    """Paths and ids of every tag the node knows. Ids start at 1 and are never reused."""

    def __init__(self, tags: Iterable[Tag] = ()) -> None:
        self._by_path: dict[str, Tag] = {}
        self._by_id: dict[TagId, Tag] = {}
        self._hooks: list[NewTagsHook] = []
        self._masks: dict[str, npt.NDArray[np.bool_]] = {}
        self._max_id = 0
        self._lock = threading.Lock()  # ensure() runs on the event loop and in ingest threads
        for tag in tags:
            self._add(tag)

    def _add(self, tag: Tag) -> None:
        self._by_path[tag.path] = tag
        self._by_id[tag.id] = tag
        self._max_id = max(self._max_id, tag.id)  # kept, not searched: ensure is O(new tags)

    @property
    def max_id(self) -> int:
        return self._max_id

    def __len__(self) -> int:
        return len(self._by_path)

    def __iter__(self) -> Iterator[Tag]:
        return iter(sorted(self._by_path.values(), key=lambda t: t.path))

    def __contains__(self, path: object) -> bool:
        return path in self._by_path

    def on_new_tags(self, hook: NewTagsHook) -> None:
        """Call ``hook`` with the tags each :meth:`ensure` call adds or changes."""
        self._hooks.append(hook)

    def ensure(self, specs: Iterable[TagSpec]) -> list[Tag]:
        """Register the specs not known yet, fill in metadata of known ones; return all."""
        out: list[Tag] = []
        changed: list[Tag] = []
        with self._lock:
            next_id = self.max_id + 1
            for spec in specs:
                old = self._by_path.get(spec.path)
                if old is None:
                    check_path(spec.path)
                    tag = Tag(next_id, spec)
                    next_id += 1
                else:
                    merged = old.spec.merged(spec)
                    tag = old if merged == old.spec else Tag(old.id, merged)
                if tag is not old:
                    self._add(tag)
                    changed.append(tag)
                out.append(tag)
            if changed:
                self._masks.clear()
                for hook in self._hooks:
                    hook(changed)
        return out

    def get(self, path: str) -> Tag:
        """The tag at ``path``; raises :class:`UnknownTagError` with near matches."""
        try:
            return self._by_path[path]
        except KeyError:
            close = difflib.get_close_matches(path, self._by_path, n=3, cutoff=0.6)
            raise UnknownTagError(path, close) from None

    def by_id(self, tag_id: TagId) -> Tag:
        return self._by_id[tag_id]

    def paths_of(self, ids: Iterable[TagId]) -> list[str]:
        return [self._by_id[i].path for i in ids]

    def match(self, pattern: str) -> list[Tag]:
        """Tags whose path matches the MQTT-style ``pattern``, sorted by path."""
        check_pattern(pattern)
        return [t for t in self if matches(pattern, t.path)]

    def match_mask(self, pattern: str) -> npt.NDArray[np.bool_]:
        """Boolean lookup table indexed by tag id: ``mask[batch.tag_ids]`` filters a batch."""
        mask = self._masks.get(pattern)
        if mask is None or len(mask) <= self.max_id:
            mask = np.zeros(self.max_id + 1, dtype=np.bool_)
            mask[[t.id for t in self.match(pattern)]] = True
            self._masks[pattern] = mask
        return mask
