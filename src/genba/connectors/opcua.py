"""OPC UA client (asyncua): browse, subscribe, map node ids to tags, write setpoints.

Under each configured ``browse_root`` node every numeric or boolean Variable is found by
browsing; its tag path is ``tag_prefix`` + the browse names below the root joined by ``/``
(``Objects/berlin/packaging/line1/filler/vibration`` with root ``Objects`` gives
``berlin/packaging/line1/filler/vibration``). Values arrive through one subscription at
``sampling_ms``, each stored at its source timestamp. After a lost connection the client
reconnects with backoff and subscribes again. Security: None, or Basic256Sha256 Sign and
SignAndEncrypt with a client certificate; user/password optional.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from asyncua import Client, Node, ua
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from genba.connectors._base import ConnectorContext
from genba.connectors._gather import Pending
from genba.errors import NotConnectedError, WriteRejectedError
from genba.retry import Session
from genba.types import Quality, TagSpec

log = logging.getLogger("genba.connectors.opcua")
_NUMERIC = {
    ua.VariantType.Boolean, ua.VariantType.SByte, ua.VariantType.Byte, ua.VariantType.Int16,
    ua.VariantType.UInt16, ua.VariantType.Int32, ua.VariantType.UInt32, ua.VariantType.Int64,
    ua.VariantType.UInt64, ua.VariantType.Float, ua.VariantType.Double,
}  # fmt: skip


class OpcUaSettings(BaseModel):
    """Options of ``[[connector]]`` when ``kind = "opcua"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str = Field("opc.tcp://127.0.0.1:4840/", description="Server endpoint URL.")
    browse_roots: list[str] = Field(
        ["i=85"], description="Node ids to browse below (default: the Objects folder)."
    )
    tag_prefix: str = Field("", description="Put in front of tag paths.")
    sampling_ms: int = Field(1000, ge=0, description="Subscription publishing interval.")
    queue_size: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Changes the server keeps per variable between two publishes, so a "
        "report-by-exception subscription loses none (OPC UA Part 4, 5.12.1.5).",
    )
    security: Literal["None", "Basic256Sha256_Sign", "Basic256Sha256_SignAndEncrypt"] = Field(
        "None", description="Security policy and mode."
    )
    application_uri: str = Field(
        "urn:genba:client",
        description="This client's application URI; must be the URI in its certificate.",
    )
    certificate: Path | None = Field(None, description="Client certificate (PEM or DER).")
    private_key: Path | None = Field(None, description="Client private key.")
    server_certificate: Path | None = Field(None, description="Server certificate to trust.")
    username: str | None = Field(None, description="User name, if the server wants one.")
    password: SecretStr | None = Field(None, description="Password (masked in logs).")
    timeout_s: float = Field(4.0, gt=0, description="Request timeout.")
    batch_ms: int = Field(50, gt=0, le=10_000, description="How often gathered samples go out.")
    reconnect_max_s: float = Field(30.0, gt=0, description="Longest wait between reconnects.")

    @model_validator(mode="after")
    def _certificates_for_security(self) -> Self:
        if self.security != "None" and (self.certificate is None or self.private_key is None):
            raise ValueError(
                f"security = {self.security!r} needs certificate and private_key "
                '(the client\'s certificate and key files); or set security = "None"'
            )
        return self


class OpcUaConnector:
    """Reads an OPC UA server's variables through a subscription."""

    kind: ClassVar[str] = "opcua"
    Settings: ClassVar[type[BaseModel]] = OpcUaSettings

    def __init__(self, settings: OpcUaSettings, ctx: ConnectorContext) -> None:
        self.s = settings
        self.ctx = ctx
        self.nodes: dict[str, tuple[int, str]] = {}  # node id string -> (tag id, path)
        self.by_path: dict[str, Node] = {}
        self._pending = Pending()
        self.client: Client | None = None

    @classmethod
    def from_settings(cls, settings: BaseModel, ctx: ConnectorContext) -> Self:
        if not isinstance(settings, OpcUaSettings):
            raise TypeError(f"expected OpcUaSettings, got {type(settings).__name__}")
        return cls(settings, ctx)

    # asyncua calls this for every data change of the subscription
    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        entry = self.nodes.get(node.nodeid.to_string())
        if entry is None or isinstance(val, str | bytes) or val is None:
            return
        dv = data.monitored_item.Value
        stamp: datetime | None = dv.SourceTimestamp or dv.ServerTimestamp
        ts = (
            int(stamp.replace(tzinfo=stamp.tzinfo or UTC).timestamp() * 1_000_000) * 1000
            if stamp
            else self.ctx.clock.now_ns()
        )
        good = dv.StatusCode is None or dv.StatusCode.is_good()
        self._pending.add(entry[0], ts, float(val), Quality.GOOD if good else Quality.BAD)

    def status_change_notification(self, status: Any) -> None:
        log.warning("%s: subscription status %s", self.ctx.name, status)

    async def _browse(self, root: Node, prefix: list[str], out: list[tuple[Node, str]]) -> None:
        for child in await root.get_children():
            name = (await child.read_browse_name()).Name
            cls = await child.read_node_class()
            if cls == ua.NodeClass.Variable:
                try:
                    vtype = await child.read_data_type_as_variant_type()
                except Exception:  # a variable without a usable data type: not a tag
                    continue
                if vtype in _NUMERIC:
                    out.append((child, "/".join([*prefix, name])))
            elif cls == ua.NodeClass.Object and not (
                prefix == [] and name in ("Server", "Aliases", "Locations")  # the server's own
            ):
                await self._browse(child, [*prefix, name], out)

    async def _connect(self) -> Client:
        client = Client(self.s.endpoint, timeout=self.s.timeout_s)
        client.application_uri = self.s.application_uri
        if self.s.username:
            client.set_user(self.s.username)
            if self.s.password:
                client.set_password(self.s.password.get_secret_value())
        if self.s.security != "None":
            policy, mode = self.s.security.split("_")
            await client.set_security_string(
                f"{policy},{mode},{self.s.certificate},{self.s.private_key}"
                + (f",{self.s.server_certificate}" if self.s.server_certificate else "")
            )
        await client.connect()
        return client

    async def write(self, path: str, value: float) -> float | None:
        """Write a variable by tag path, in the variable's own data type, and read it back."""
        if self.client is None:
            raise NotConnectedError(self.ctx.name, path, f"no session with {self.s.endpoint}")
        node = self.by_path.get(path)
        if node is None:
            raise WriteRejectedError(
                self.ctx.name, path, value, "not a variable this connector browsed"
            )
        try:
            vtype = await node.read_data_type_as_variant_type()
            v: Any = bool(value) if vtype == ua.VariantType.Boolean else (
                float(value) if vtype in (ua.VariantType.Float, ua.VariantType.Double)
                else round(value)
            )  # fmt: skip
            await node.write_value(ua.DataValue(ua.Variant(v, vtype)))
            return float(await node.read_value())
        except ua.UaStatusCodeError as e:  # BadNotWritable, BadTypeMismatch, BadOutOfRange...
            raise WriteRejectedError(self.ctx.name, path, value, f"the server answered {e}") from e
        except (OverflowError, ValueError) as e:
            raise WriteRejectedError(self.ctx.name, path, value, str(e)) from e

    async def flush(self) -> None:
        await self.ctx.publish(self._pending.take())

    async def run(self) -> None:
        await self.ctx.keep_connected(
            self._serve,
            errors=(OSError, TimeoutError, ua.UaError, ConnectionError),
            max_s=self.s.reconnect_max_s,
            on_lost=self._lost,
        )

    async def _serve(self, session: Session) -> None:
        self.client = await self._connect()
        found: list[tuple[Node, str]] = []
        for root in self.s.browse_roots:
            await self._browse(self.client.get_node(root), [], found)
        tags = self.ctx.declare([TagSpec(self.s.tag_prefix + p) for _, p in found])
        self.nodes = {
            n.nodeid.to_string(): (t.id, t.path) for (n, _), t in zip(found, tags, strict=True)
        }
        self.by_path = {t.path: n for (n, _), t in zip(found, tags, strict=True)}
        sub = await self.client.create_subscription(self.s.sampling_ms, self)
        if found:
            # Every source update, also of an unchanged value with a new source time
            # (trigger StatusValueTimestamp, Part 4, 7.22.2): a historian wants each
            # report. asyncua's public subscribe_data_change takes no filter.
            await sub._subscribe(
                [n for n, _ in found],
                mfilter=ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp),
                queuesize=self.s.queue_size,
                sampling_interval=0.0,
            )
        self.ctx.health.details = {"variables": len(found), "endpoint": self.s.endpoint}
        session.connected()
        while True:
            await asyncio.sleep(self.s.batch_ms / 1000)
            await self.flush()
            await self.client.check_connection()  # raises when the server is gone

    async def _lost(self, _: BaseException) -> None:
        """The server is gone: keep what came in before, close what is left of the session."""
        await self.flush()
        if self.client is not None:
            try:
                await self.client.disconnect()
            except Exception:  # the server is gone; the socket is what it is
                log.debug("disconnect after failure", exc_info=True)
            self.client = None
