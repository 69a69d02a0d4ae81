"""What every connector that reads an MQTT broker is configured with, declared once."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiomqtt
from pydantic import BaseModel, ConfigDict, Field, SecretStr


class BrokerSettings(BaseModel):
    """Broker address, credentials, TLS and pacing: shared by the ``mqtt`` and ``sparkplug``
    connectors (each adds its own options)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 for TLS, usually).")
    username: str | None = Field(None, description="User name, if the broker wants one.")
    password: SecretStr | None = Field(None, description="Password (masked in logs).")
    tls: bool = Field(False, description="Connect with TLS.")
    ca_file: Path | None = Field(None, description="CA certificate file for TLS.")
    cert_file: Path | None = Field(None, description="Client certificate file for TLS.")
    key_file: Path | None = Field(None, description="Client key file for TLS.")
    max_future_s: float = Field(
        300.0, ge=0, description="Timestamps further ahead of the node's clock are refused."
    )
    batch_ms: int = Field(50, gt=0, le=10_000, description="How often gathered samples go out.")
    reconnect_max_s: float = Field(30.0, gt=0, description="Longest wait between reconnects.")

    def tls_params(self) -> aiomqtt.TLSParameters | None:
        """aiomqtt's TLS parameters, or None without ``tls``."""
        if not self.tls:
            return None
        return aiomqtt.TLSParameters(
            ca_certs=str(self.ca_file) if self.ca_file else None,
            certfile=str(self.cert_file) if self.cert_file else None,
            keyfile=str(self.key_file) if self.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )

    def secret(self) -> str | None:
        """The password in clear, for the client only."""
        return self.password.get_secret_value() if self.password else None
