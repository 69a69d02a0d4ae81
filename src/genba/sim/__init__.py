"""The plant simulator: a discrete-event model of lines that knows its own truth.

See docs/simulator.md. ``Simulator`` produces samples; ``truth()`` the ground truth.
"""

from genba.sim._plant import Failure, Plant
from genba.sim._reasons import Reason
from genba.sim._sampler import SIGNALS
from genba.sim._scenario import BUILT_IN, Scenario, load_scenario
from genba.sim._simulator import Simulator
from genba.sim._truth import GroundTruth, MachineTruth, truth

__all__ = [
    "BUILT_IN",
    "SIGNALS",
    "Failure",
    "GroundTruth",
    "MachineTruth",
    "Plant",
    "Reason",
    "Scenario",
    "Simulator",
    "load_scenario",
    "truth",
]
