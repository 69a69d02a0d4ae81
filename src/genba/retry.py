"""Jittered exponential backoff: how every reconnect and retry loop in genba waits.

Connectors reconnecting to a broker, PLC or server, the simulator's outputs, the node
restarting a failed connector or task, and the historian writing its backlog all wait with
one :class:`Backoff`, so a plant full of clients that lost the same broker does not come back
in lockstep.

>>> import random
>>> random.seed(1)
>>> b = Backoff(max_s=4.0, first_s=1.0)
>>> [round(b.next_delay(), 2) for _ in range(5)]  # 1, 2, 4, 4, 4 s, each ×0.5–1.5
[0.63, 2.69, 5.06, 3.02, 3.98]
>>> b.reset(); round(b.next_delay(), 2)
0.95
"""

from __future__ import annotations

import random


class Backoff:
    """Waits of ``first_s`` doubling up to ``max_s``, each jittered ×0.5–1.5; :meth:`reset`
    after a success."""

    def __init__(self, max_s: float, first_s: float = 0.5) -> None:
        self.max_s, self.first_s = max_s, first_s
        self._next = first_s

    def reset(self) -> None:
        self._next = self.first_s

    def next_delay(self) -> float:
        """The next wait in seconds."""
        delay = self._next * random.uniform(0.5, 1.5)
        self._next = min(self._next * 2, self.max_s)
        return delay
