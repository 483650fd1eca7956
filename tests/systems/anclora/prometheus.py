"""Prometheus scraping the Anclora stand-in's /metrics as job `anclora-app` (the job the
seed's "Missing Metrics" runbook looks for), with the lifecycle API on so `POST /-/reload`
(the runbook's "force scrape") works. Reuses tests/servers/prometheus.py's PrometheusServer
without its exporter."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from tests.servers.prometheus import PrometheusServer

JOB = "anclora-app"


class AncloraPrometheus(PrometheusServer):
    def __init__(self, workdir: Path, target: str, binary: str = "prometheus") -> None:
        super().__init__(workdir, binary)
        self.target = target  # host:port of the stand-in

    def _write_config(self) -> Path:
        config = self.workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: {JOB}\n"
            f"    static_configs: [{{targets: ['{self.target}']}}]\n"
        )
        return config

    def argv(self) -> Sequence[str]:
        return [*super().argv(), "--web.enable-lifecycle"]

    def start(self) -> None:
        """Prometheus only: the stand-in is the scrape target, there is no exporter."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        super(PrometheusServer, self).start()

    def close(self) -> None:
        self.stop()

    def wait_for_rates(self, timeout: float = 40.0) -> None:
        """Until the target is up and a 5m rate of the app's counters has a value (two
        scrapes): the state every probe of the example reads from."""
        deadline = time.monotonic() + timeout
        query = "sum(rate(anclora_queue_messages_total[5m]))"
        while True:
            try:
                up = self.api("/api/v1/query", query=f'up{{job="{JOB}"}}')["result"]
                rate = self.api("/api/v1/query", query=query)["result"]
            except (OSError, ValueError, KeyError):
                up, rate = [], []
            if up and up[0]["value"][1] == "1" and rate and float(rate[0]["value"][1]) > 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"prometheus had no anclora data after {timeout:g}s")
            time.sleep(0.2)
