"""OPC UA server (asyncua) with an address space per machine.

``Objects/<site>/<area>/<line>/<machine>/<tag>``: folders for the ISA-95 levels, an object
per machine and a variable per tag, node ids ``ns=<urn:genba:sim>;s=<tag path>``, each with
its ``EngineeringUnits``. ``temperature_sp`` and ``speed_sp`` are writable.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
from asyncua import Node, Server, ua

from genba.sim._sampler import SIGNALS
from genba.sim._simulator import Simulator
from genba.sim.outputs._base import INTEGER_SIGNALS, SETPOINTS, apply_setpoint

log = logging.getLogger("genba.sim")
NAMESPACE = "urn:genba:sim"


class OpcUaOutput:
    """Serves the simulated plant as an OPC UA address space."""

    name = "opcua"

    def __init__(self, sim: Simulator, port: int = 4840, *, host: str = "127.0.0.1") -> None:
        self.sim = sim
        self.endpoint = f"opc.tcp://{host}:{port}/genba/"
        self.server = Server()
        self.vars: list[Node] = []
        self.types: list[ua.VariantType] = []
        self._written: dict[int, float] = {}  # setpoint column -> value we last showed

    async def start(self) -> None:
        for name in ("asyncua.server", "asyncua.common"):  # chatty at INFO
            logging.getLogger(name).setLevel(logging.WARNING)
        await self.server.init()
        self.server.set_endpoint(self.endpoint)
        self.server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        self.server.set_server_name(f"genba simulator: {self.sim.scenario.plant.name}")
        ns = await self.server.register_namespace(NAMESPACE)
        folders: dict[str, Node] = {}
        objects = self.server.nodes.objects

        async def folder(path: str) -> Node:
            if path not in folders:
                parent_path, _, name = path.rpartition("/")
                parent = await folder(parent_path) if parent_path else objects
                folders[path] = await parent.add_folder(
                    ua.NodeId(path, ns), ua.QualifiedName(name, ns)
                )
            return folders[path]

        n_sig = len(SIGNALS)
        for m in self.sim.plant.machines:
            line_path, _, name = m.path.rpartition("/")
            obj = await (await folder(line_path)).add_object(
                ua.NodeId(m.path, ns), ua.QualifiedName(name, ns)
            )
            for j, (sig, unit, desc) in enumerate(SIGNALS):
                vtype = ua.VariantType.Int64 if sig in INTEGER_SIGNALS else ua.VariantType.Double
                initial = 0 if vtype == ua.VariantType.Int64 else 0.0
                var = await obj.add_variable(
                    ua.NodeId(f"{m.path}/{sig}", ns),
                    ua.QualifiedName(sig, ns),
                    ua.Variant(initial, vtype),
                )
                await var.write_attribute(
                    ua.AttributeIds.Description,
                    ua.DataValue(ua.Variant(ua.LocalizedText(f"{desc} [{unit}]"))),
                )
                await var.add_property(
                    ns,
                    "EngineeringUnits",
                    ua.EUInformation(
                        DisplayName=ua.LocalizedText(unit), Description=ua.LocalizedText(unit)
                    ),
                )
                if sig in SETPOINTS:
                    await var.set_writable()
                    self._written[m.index * n_sig + j] = float("nan")
                self.vars.append(var)
                self.types.append(vtype)
        await self.server.start()

    async def publish(self, ts_ns: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> None:
        # Setpoints a client wrote since our last publish go to the simulator first.
        for col, shown in self._written.items():
            current = float(self.server.read_attribute_value(self.vars[col].nodeid).Value.Value)
            if shown == shown and current != shown:
                apply_setpoint(self.sim, self.sim.tag_paths[col], current, "opcua")
        row = values[-1]
        stamp = datetime.fromtimestamp(int(ts_ns[-1]) / 1e9, tz=UTC)
        for col, (var, vtype) in enumerate(zip(self.vars, self.types, strict=True)):
            v = row[col]
            if v != v:
                continue
            value = int(v) if vtype == ua.VariantType.Int64 else float(v)
            await self.server.write_attribute_value(
                var.nodeid,
                ua.DataValue(
                    ua.Variant(value, vtype), SourceTimestamp=stamp, ServerTimestamp=stamp
                ),
            )
            if col in self._written:
                self._written[col] = float(v)

    async def stop(self) -> None:
        await self.server.stop()
