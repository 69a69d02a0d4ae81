"""One alarm's state as in ANSI/ISA-18.2 (the alarm state transition diagram, simplified).

==============  ==========  ============  =================================================
state           condition   acknowledged  reached by
==============  ==========  ============  =================================================
``normal``      inactive    yes           an acknowledged alarm clears; an acknowledgement
                                          of a cleared alarm
``unack``       active      no            the condition becomes active
``acked``       active      yes           an operator acknowledges an active alarm
``rtn_unack``   inactive    no            an unacknowledged alarm clears (return to normal)
``shelved``     either      —             an operator shelves it; it comes back when the
                                          shelf expires: ``unack`` if active, else ``normal``
==============  ==========  ============  =================================================

>>> a = AlarmState("filler-vibration-high")
>>> [e["event"] for e in (a.condition(True, 1), a.acknowledge(2, "ana"), a.condition(False, 3))]
['activated', 'acknowledged', 'cleared']
>>> a.state
'normal'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genba.errors import GenbaError
from genba.timeparse import format_time
from genba.types import NS_PER_S

STATES = ("normal", "unack", "acked", "rtn_unack", "shelved")


class AlarmStateError(GenbaError):
    """An operator action that does not apply to the alarm's state (e.g. acknowledging an
    alarm that is normal)."""


@dataclass
class AlarmState:
    name: str
    state: str = "normal"
    active: bool = False
    since_ns: int | None = None
    """When the condition last changed."""
    shelved_until_ns: int | None = None

    def _event(self, event: str, t_ns: int, **extra: Any) -> dict[str, Any]:
        return {
            "alarm": self.name,
            "event": event,
            "state": self.state,
            "time": format_time(t_ns),
            "ts_ms": t_ns // 1_000_000,
            **extra,
        }

    def condition(self, active: bool, t_ns: int) -> dict[str, Any] | None:
        """The condition became ``active`` (or inactive) at ``t_ns``: the event, if any."""
        if active == self.active:
            return None
        self.active, self.since_ns = active, t_ns
        if self.state == "shelved":
            return None  # tracked, not announced (ISA-18.2: shelved alarms are suppressed)
        if active:
            self.state = "unack" if self.state in ("normal", "rtn_unack") else self.state
            return self._event("activated", t_ns)
        self.state = {"unack": "rtn_unack", "acked": "normal"}.get(self.state, self.state)
        return self._event("cleared", t_ns)

    def acknowledge(self, t_ns: int, user: str = "") -> dict[str, Any]:
        if self.state not in ("unack", "rtn_unack"):
            raise AlarmStateError(
                f"Alarm {self.name!r} is {self.state}; only an unacknowledged alarm (unack or "
                "rtn_unack) can be acknowledged."
            )
        self.state = "acked" if self.state == "unack" else "normal"
        return self._event("acknowledged", t_ns, user=user)

    def shelve(self, t_ns: int, minutes: float, user: str = "") -> dict[str, Any]:
        if minutes <= 0:
            raise AlarmStateError(f"Shelve {self.name!r} for a positive number of minutes.")
        self.state = "shelved"
        self.shelved_until_ns = t_ns + int(minutes * 60 * NS_PER_S)
        return self._event("shelved", t_ns, user=user, until=format_time(self.shelved_until_ns))

    def unshelve(self, t_ns: int, user: str = "") -> dict[str, Any]:
        if self.state != "shelved":
            raise AlarmStateError(f"Alarm {self.name!r} is {self.state}, not shelved.")
        self.shelved_until_ns = None
        self.state = "unack" if self.active else "normal"
        return self._event("unshelved", t_ns, user=user)

    def tick(self, t_ns: int) -> dict[str, Any] | None:
        """The shelf expires: the alarm returns, announced again if its condition is active."""
        due = self.shelved_until_ns
        if self.state == "shelved" and due is not None and t_ns >= due:
            return self.unshelve(due, user="shelf expired")
        return None
