"""The one reconnect loop (genba.retry.Session): how it ends."""

from __future__ import annotations

import asyncio

import pytest

from genba.retry import LinkState, Session


async def test_a_cancellation_turned_into_a_link_error_still_stops_the_session() -> None:
    # Python 3.11's wait_for and timeout() can hand a task that is being cancelled an error
    # instead of CancelledError; a session that took it for a lost link reconnected forever,
    # and a node's shutdown hung 20 s on a Sparkplug connector (tests/connectors).
    tries = 0

    async def serve(s: Session) -> None:
        nonlocal tries
        tries += 1
        s.connected()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise TimeoutError("timed out") from None  # what the cancellation became

    session = Session("plc", max_s=0.01, first_s=0.001, errors=(OSError,))
    task = asyncio.create_task(session.run(serve))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert tries == 1
    assert session.state is LinkState.STOPPED


async def test_a_failed_link_is_tried_again_after_a_wait() -> None:
    tries: list[str] = []

    async def serve(s: Session) -> None:
        tries.append(s.state.value)
        if len(tries) < 3:
            raise ConnectionError("refused")
        s.connected()

    session = Session("plc", max_s=0.01, first_s=0.001, errors=(ConnectionError,))
    await session.run(serve)
    assert tries == ["connecting"] * 3
    assert (session.failures, session.last_error) == (2, "ConnectionError: refused")
