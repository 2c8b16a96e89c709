"""Telemetry as `[telemetry]` configures it: one call at server start."""

from __future__ import annotations

import atexit
from pathlib import Path

from milliwatt.config import TelemetryConfig
from milliwatt.telemetry import logs, tracing
from milliwatt.telemetry.http import Telemetry
from milliwatt.telemetry.metrics import Metrics, ModelStatus
from milliwatt.telemetry.store import RequestStore


def start_telemetry(
    config: TelemetryConfig, data_dir: Path, model_status: ModelStatus | None = None
) -> Telemetry | None:
    """Metrics, the request ledger and JSON logs; traces when an OTLP endpoint is known.
    None when telemetry is off (then nothing is measured, stored or exported)."""
    if not config.enabled:
        tracing.shutdown()
        return None
    tracing.configure(config.otlp_endpoint, service_name=config.service_name)
    if config.logs == "json":
        logs.configure()
    store = RequestStore.in_data_dir(data_dir)
    telemetry = Telemetry(Metrics(model_status), store, log=config.logs == "json")
    # at exit (Ctrl-C, SIGTERM through uvicorn): the last requests reach the ledger and the
    # collector
    atexit.register(tracing.shutdown)
    atexit.register(telemetry.close)
    return telemetry
