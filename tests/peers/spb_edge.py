"""An independent Sparkplug B edge node for the tests: pysparkplug (not genba's encoder), driven
by JSON lines on stdin, answering one JSON line per command on stdout.

It runs in its own virtual environment (``.venv-peer``, made by ``./dev test``): pysparkplug
needs paho-mqtt 1.x, genba's aiomqtt paho-mqtt 2.x. Commands::

    {"op": "connect", "host": h, "port": p, "group": g, "edge": e, "metrics": [M, ...]}
    {"op": "register", "device": d, "metrics": [M, ...]}        # DBIRTH
    {"op": "update_device", "device": d, "metrics": [M, ...]}   # DDATA by name
    {"op": "raw_ddata", "device": d, "metrics": [M, ...]}       # DDATA as given (type mismatches)
    {"op": "deregister", "device": d}                           # DDEATH
    {"op": "disconnect"}                                        # NDEATH, then close

where M is {"name", "datatype" (pysparkplug's DataType name, e.g. "INT16"), "value"}.
"""

from __future__ import annotations

import json
import sys
import time

import pysparkplug as spb


def metric(d: dict[str, object]) -> spb.Metric:
    return spb.Metric(
        timestamp=spb.get_current_timestamp(),
        name=str(d["name"]),
        datatype=spb.DataType[str(d["datatype"])],
        value=d["value"],  # type: ignore[arg-type]
    )


def main() -> None:
    edge: spb.EdgeNode | None = None
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "connect":
            edge = spb.EdgeNode(cmd["group"], cmd["edge"], [metric(m) for m in cmd["metrics"]])
            edge.connect(cmd["host"], port=cmd["port"], blocking=False)
            time.sleep(0.5)  # the birth goes out from the client's thread
        elif edge is None:
            raise SystemExit(f"{op} before connect")
        elif op == "register":
            edge.register(spb.Device(cmd["device"], [metric(m) for m in cmd["metrics"]]))
        elif op == "update_device":
            edge.update_device(cmd["device"], [metric(m) for m in cmd["metrics"]])
        elif op == "raw_ddata":
            topic = spb.Topic(
                message_type=spb.MessageType.DDATA,
                group_id=edge.group_id,
                edge_node_id=edge.edge_node_id,
                device_id=cmd["device"],
            )
            payload = spb.DData(
                timestamp=spb.get_current_timestamp(),
                seq=edge._seq,
                metrics=tuple(metric(m) for m in cmd["metrics"]),
            )
            edge._client.publish(
                spb.Message(topic=topic, payload=payload, qos=spb.QoS.AT_MOST_ONCE, retain=False),
                include_dtypes=True,
            )
        elif op == "deregister":
            edge.deregister(cmd["device"])
        elif op == "disconnect":
            edge.disconnect()
        else:
            raise SystemExit(f"unknown op {op!r}")
        time.sleep(0.05)
        print(json.dumps({"ok": op}), flush=True)


if __name__ == "__main__":
    main()
