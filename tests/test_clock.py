import asyncio
import time

from genba.clock import RealClock, SimulatedClock


def test_real_clock_is_utc_nanoseconds() -> None:
    assert abs(RealClock().now_ns() - time.time_ns()) < 1_000_000_000


async def test_simulated_clock_runs_faster_than_real_time() -> None:
    clock = SimulatedClock(start_ns=0, speed=100.0)
    t0 = time.monotonic()
    await clock.sleep(5.0)  # 5 simulated seconds
    real = time.monotonic() - t0
    assert real < 1.0
    assert clock.now_ns() >= 5_000_000_000
    await asyncio.sleep(0)
