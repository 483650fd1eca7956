"""Debian's `prometheus` as a child process, scraping a local exporter every second.

The exporter (a prometheus_client process on its own random port) serves known series: a
counter, a gauge, a labelled gauge with four series and a histogram with fixed observations,
so tests can compare Prometheus' answers with numbers they know. The generated config also
scrapes a refused port (one target always down) and loads a rule file with one alert that
fires at once and one that stays pending for an hour.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.servers.process import ServerProcess, free_tcp_port, port_open

HISTOGRAM_BOUNDS = (0.1, 0.25, 0.5, 1.0, 2.5)
HISTOGRAM_OBSERVATIONS = (0.05, 0.05, 0.2, 0.3, 0.3, 0.4, 0.7, 0.9, 1.5, 3.0)
ROOM_TEMPERATURES = {"a": 3.0, "b": 7.0, "c": 5.0, "d": 1.0}
COUNTER_VALUE = 42.0
GAUGE_VALUE = 12.5

_EXPORTER = r"""
import sys, time
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

registry = CollectorRegistry()
Counter("opstui_test_requests", "requests", registry=registry).inc(%(counter)r)
Gauge("opstui_test_gauge", "a gauge", registry=registry).set(%(gauge)r)
rooms = Gauge("opstui_test_temperature", "per room", ["room"], registry=registry)
for room, value in %(rooms)r.items():
    rooms.labels(room=room).set(value)
histogram = Histogram("opstui_test_latency_seconds", "latency", buckets=%(bounds)r,
                      registry=registry)
for value in %(observations)r:
    histogram.observe(value)
start_http_server(int(sys.argv[1]), addr="127.0.0.1", registry=registry)
while True:
    time.sleep(3600)
"""

_RULES = """groups:
  - name: opstui-test
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        for: 0s
        labels: {severity: critical}
      - alert: LongPending
        expr: vector(1)
        for: 1h
        labels: {severity: warning}
"""


class ExporterProcess(ServerProcess):
    """A prometheus_client exporter with the series above."""

    name = "exporter"

    def argv(self) -> Sequence[str]:
        code = _EXPORTER % {
            "counter": COUNTER_VALUE,
            "gauge": GAUGE_VALUE,
            "rooms": ROOM_TEMPERATURES,
            "bounds": HISTOGRAM_BOUNDS,
            "observations": HISTOGRAM_OBSERVATIONS,
        }
        return [sys.executable, "-c", code, str(self.port)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class PrometheusServer(ServerProcess):
    """`prometheus` on a random port with a generated config; `close()` ends the exporter too.

    `stop`/`start`/`hang` act on prometheus only, so fault tests can break it while the
    exporter keeps serving.
    """

    name = "prometheus"

    def __init__(self, workdir: Path, binary: str = "prometheus", port: int | None = None):
        super().__init__(workdir, port)
        self.binary = binary
        self.exporter = ExporterProcess(workdir / "exporter")
        self.down_port = free_tcp_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        rules = self.workdir / "rules.yml"
        rules.write_text(_RULES)
        config = self.workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s}\n"
            f"rule_files: [{json.dumps(str(rules))}]\n"
            "scrape_configs:\n"
            "  - job_name: exporter\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{self.exporter.port}']}}]\n"
            "  - job_name: gone\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{self.down_port}']}}]\n"
        )
        return config

    def argv(self) -> Sequence[str]:
        return [
            self.binary,
            f"--config.file={self.workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]

    def ready(self) -> bool:
        if not port_open(self.port):
            return False
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.exporter.proc is None:
            self.exporter.start()
        self._write_config()
        super().start()

    def close(self) -> None:
        """Stop prometheus and the exporter."""
        self.stop()
        self.exporter.stop()

    def api(self, path: str, **params: str) -> Any:
        """GET an API path and return its `data` (for waiting and cross-checks)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as response:
            return json.loads(response.read())["data"]

    def wait_for_samples(self, metric: str, count: int, timeout: float = 30.0) -> None:
        """Until the last minute holds at least `count` samples of `metric`."""
        deadline = time.monotonic() + timeout
        query = f"count_over_time({metric}[1m])"
        while True:
            result = self.api("/api/v1/query", query=query)["result"]
            if result and float(result[0]["value"][1]) >= count:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {count} samples of {metric} after {timeout:g}s")
            time.sleep(0.2)

    def wait_for_data(self, timeout: float = 30.0) -> None:
        """Until both targets were scraped, two samples of the exporter exist and the rules
        have been evaluated: the state every query test starts from. Takes ~6 s: prometheus
        2.42 hands discovered targets to its scrapers only every 5 s (not configurable)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                up = self.api("/api/v1/query", query="up")["result"]
                samples = self.api("/api/v1/query", query="count_over_time(opstui_test_gauge[1m])")[
                    "result"
                ]
                alerts = self.api("/api/v1/alerts")["alerts"]
                targets = self.api("/api/v1/targets")["activeTargets"]
            except (OSError, ValueError, KeyError):
                up, samples, alerts, targets = [], [], [], []
            if (
                len(up) == 2
                and samples
                and float(samples[0]["value"][1]) >= 2
                and {a["state"] for a in alerts} == {"firing", "pending"}
                and len(targets) == 2
                and all(t.get("lastScrape", "").startswith("2") for t in targets)
                and any(t.get("lastError") for t in targets)
            ):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"prometheus had no data after {timeout:g}s: {self.log_tail()}")
            time.sleep(0.2)


class ScrapingPrometheus(PrometheusServer):
    """`prometheus` scraping the given targets (job -> ["host:port", ...]) instead of the
    built-in test exporter, for tests whose exporter is the thing under test (`opstui
    export`). No rule file; `close()` stops prometheus only (the targets are the caller's)."""

    def __init__(
        self,
        workdir: Path,
        targets: dict[str, list[str]],
        *,
        scrape_interval: float = 1.0,
        binary: str = "prometheus",
        port: int | None = None,
    ) -> None:
        super().__init__(workdir, binary, port)
        self.targets = {job: list(addresses) for job, addresses in targets.items()}
        self.scrape_interval = scrape_interval

    def _write_config(self) -> Path:
        interval = f"{self.scrape_interval:g}s"
        lines = [
            f"global: {{scrape_interval: {interval}, evaluation_interval: {interval}, "
            f"scrape_timeout: {interval}}}",
            "scrape_configs:",
        ]
        for job, addresses in self.targets.items():
            lines.append(f"  - job_name: {json.dumps(job)}")
            lines.append(f"    static_configs: [{{targets: {json.dumps(addresses)}}}]")
        config = self.workdir / "prometheus.yml"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        ServerProcess.start(self)

    def close(self) -> None:
        self.stop()

    def series_labels(self, query: str) -> list[dict[str, str]]:
        """The label sets of an instant query's result ([] while Prometheus cannot answer)."""
        try:
            result = self.api("/api/v1/query", query=query)["result"]
        except (OSError, ValueError, KeyError):
            return []
        return [dict(item["metric"]) for item in result]
