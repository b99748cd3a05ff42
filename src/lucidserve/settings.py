"""Service configuration: every setting enters here, from `LUCIDSERVE_*` environment variables.

The CLI turns its options into these same fields, so a value has one name whether it comes from the
command line, the environment, or a Kubernetes ConfigMap.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lucidserve.bundle.store import TrustPolicy

MIB = 1024 * 1024
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class Settings(BaseSettings):
    """All of lucidserve's settings; see the configuration table in README.md."""

    model_config = SettingsConfigDict(env_prefix="LUCIDSERVE_", extra="ignore", frozen=True)

    # Serving
    model_dir: Path = Path("models/default")
    host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on all interfaces
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int | None = Field(default=None, ge=1)
    graceful_timeout: int = Field(default=25, ge=1)
    timeout: int = Field(default=60, ge=1)
    keepalive: int = Field(default=5, ge=1)
    multiproc_dir: Path | None = None
    worker_tmp_dir: Path | None = None

    # Trust: what a bundle may load (see docs/security.md)
    allow_pickle: bool = False
    bundle_sha256: str | None = None

    # Request limits
    max_body_bytes: int = Field(default=MIB, ge=1024)
    max_batch_rows: int = Field(default=1000, ge=1)
    max_text_length: int = Field(default=10_000, ge=1)
    request_timeout_seconds: float = Field(default=5.0, gt=0)
    max_connections: int = Field(default=1000, ge=1)

    # Inference
    batching: bool = True
    batch_max_rows: int = Field(default=128, ge=1)
    batch_max_wait_ms: float = Field(default=0.0, ge=0)
    queue_max_rows: int = Field(default=4096, ge=1)
    inference_stall_seconds: float = Field(default=30.0, gt=0)

    # Observability
    log_level: str = "INFO"
    metrics_enabled: bool = True
    metrics_port: int = Field(default=9100, ge=1, le=65535)
    metrics_on_app_port: bool = False
    prediction_log: bool = True
    log_queue_max_lines: int = Field(default=10_000, ge=1)
    log_inputs: bool = False
    input_hash_key: SecretStr | None = None
    access_log_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    slow_request_seconds: float = Field(default=1.0, gt=0)

    # Drift
    drift_enabled: bool = True
    drift_window_seconds: float = Field(default=3600.0, gt=0)
    drift_slot_seconds: float | None = Field(default=None, gt=0)
    drift_min_samples: int = Field(default=500, ge=1)
    drift_warn_psi: float = Field(default=0.1, gt=0)
    drift_alert_psi: float = Field(default=0.25, gt=0)

    # Access control
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    api_keys_file: Path | None = None
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    docs_enabled: bool = True

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("bundle_sha256", mode="before")
    @classmethod
    def _hex_digest(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            return value
        digest = value.strip().lower().removeprefix("sha256:")
        if not _SHA256_HEX.fullmatch(digest):
            raise ValueError("expected a SHA-256 digest: 64 hex digits (sha256sum card.json)")
        return digest

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> Settings:
        if self.drift_warn_psi >= self.drift_alert_psi:
            raise ValueError("drift_warn_psi must be below drift_alert_psi")
        return self

    def trust_policy(self) -> TrustPolicy:
        """What the bundle may load: pickle only when allowed, and the card's expected digest."""
        return TrustPolicy(allow_pickle=self.allow_pickle, expected_card_sha256=self.bundle_sha256)

    @model_validator(mode="after")
    def _distinct_ports(self) -> Settings:
        if self.metrics_enabled and self.metrics_port == self.port:
            raise ValueError("metrics_port must differ from port")
        return self

    def accepted_api_keys(self) -> tuple[bytes, ...]:
        """The API keys from the setting and the secret file (one key a line), as bytes."""
        keys = [key.get_secret_value() for key in self.api_keys]
        if self.api_keys_file is not None:
            text = self.api_keys_file.read_text(encoding="utf-8")
            keys.extend(line.strip() for line in text.splitlines())
        return tuple(key.encode() for key in keys if key)

    def effective_workers(self) -> int:
        """The worker count: the setting, else the cgroup CPU limit, else the CPU count."""
        if self.workers is not None:
            return self.workers
        return cpu_limit()


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def cpu_limit(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: the cgroup v2 (or v1) quota rounded up, else the CPU count."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    available = available or os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    if quota is None:
        return available
    return max(1, min(available, -(-quota[0] // quota[1])))


def _cgroup_quota(root: Path) -> tuple[int, int] | None:
    v2 = root / "cpu.max"
    if v2.is_file():
        parts = v2.read_text().split()
        if len(parts) == 2 and parts[0] != "max":
            return int(parts[0]), int(parts[1])
        return None
    quota, period = root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"
    if quota.is_file() and period.is_file():
        q, p = int(quota.read_text()), int(period.read_text())
        return (q, p) if q > 0 and p > 0 else None
    return None
