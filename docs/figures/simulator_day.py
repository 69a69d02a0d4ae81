"""Draw docs/figures/simulator_day.png: one simulated day of the demo filler.

    .venv/bin/pip install -e ".[docs]" && .venv/bin/python docs/figures/simulator_day.py

It picks the day (seed 42) that ends in a wear-out failure, so the vibration drift shows.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from genba.sim import SIGNALS, Simulator, load_scenario
from genba.states import MachineState

COL = {name: i for i, (name, _, _) in enumerate(SIGNALS)}
COLORS = {
    "RUNNING": "#2ea043", "IDLE": "#6e7681", "STARVED": "#d29922", "BLOCKED": "#a371f7",
    "PLANNED_STOP": "#8b949e", "SETUP": "#388bfd", "DOWN": "#f85149", "SMALL_STOP": "#db6d28",
}  # fmt: skip


def main() -> None:
    sim = Simulator(load_scenario("demo"), t0_ns=1_767_571_200 * 10**9)  # Mon 2026-01-05 00:00Z
    ts, values = sim.advance(7 * 86_400.0)
    wear = [f for f in sim.plant.failures if f.wear_out and f.machine == 0]
    end_s = wear[0].start_s + 2 * 3600 if wear else 86_400.0
    start_s = max(end_s - 86_400.0, 0.0)
    t_s = (ts - sim.t0_ns) / 1e9
    rows = (t_s >= start_s) & (t_s < end_s)
    hours = (t_s[rows] - start_s) / 3600
    filler = values.reshape(len(ts), -1, len(SIGNALS))[rows, 0, :]

    fig, ax = plt.subplots(4, 1, figsize=(11, 8), sharex=True, height_ratios=[1, 2, 2, 2])
    state = filler[:, COL["state"]].astype(int)
    for code in np.unique(state):
        name = MachineState(code).name
        ax[0].fill_between(hours, 0, 1, where=state == code, color=COLORS[name], step="post",
                           label=name.lower().replace("_", " "), linewidth=0)  # fmt: skip
    ax[0].set_yticks([])
    ax[0].legend(ncol=8, fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.02), frameon=False)
    fig.suptitle("Demo filler: one simulated day, ending two hours after a wear-out failure")
    ax[1].plot(hours, filler[:, COL["vibration"]], lw=0.3, color="#6e40c9")
    ax[1].set_ylabel("vibration\nmm/s RMS")
    ax[2].plot(hours, filler[:, COL["temperature"]], lw=0.6, color="#bf3989", label="drive bearing")
    ax[2].plot(
        hours, filler[:, COL["process_temperature"]], lw=0.6, color="#0969da", label="process"
    )
    ax[2].set_ylabel("temperature\ndegC")
    ax[2].legend(fontsize=7, loc="upper left")
    good = filler[:, COL["good_count"]] - filler[0, COL["good_count"]]
    rejects = filler[:, COL["reject_count"]] - filler[0, COL["reject_count"]]
    ax[3].plot(hours, good, color="#2ea043", label="good")
    ax[3].plot(hours, rejects * 20, color="#f85149", label="rejects × 20")
    ax[3].set_ylabel("parts since\nstart of window")
    ax[3].legend(fontsize=7, loc="upper left")
    ax[3].set_xlabel("hours")
    for f in wear[:1]:
        for a in ax[1:]:
            a.axvline((f.start_s - start_s) / 3600, color="#f85149", ls="--", lw=0.8)
    fig.tight_layout()
    out = Path(__file__).with_suffix(".png")
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
