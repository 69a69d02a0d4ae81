"""The simulator as real devices on the network: MQTT JSON, Sparkplug B, OPC UA, Modbus TCP.

Every output has the same verbs: ``start()``, ``publish(ts_ns, values)`` for the new ticks
(rows) of every simulated tag (columns, :attr:`Simulator.tag_paths`), and ``stop()``. Each
also takes setpoint writes from its clients and hands them to the simulator.
"""

from genba.sim.outputs._base import Output, ReportByException, run_outputs
from genba.sim.outputs.modbus import ModbusOutput, register_map
from genba.sim.outputs.mqtt import MqttOutput
from genba.sim.outputs.opcua import OpcUaOutput
from genba.sim.outputs.sparkplug import SparkplugOutput

__all__ = [
    "ModbusOutput",
    "MqttOutput",
    "OpcUaOutput",
    "Output",
    "ReportByException",
    "SparkplugOutput",
    "register_map",
    "run_outputs",
]
