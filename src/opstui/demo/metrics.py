"""The demo service's Prometheus metrics, named as the Anclora service exports them (seed 000).

One private CollectorRegistry per world, so two worlds (or a test) never share counters and
nothing lands in prometheus_client's global registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

DURATION_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0
)
DEPTH_STATES = ("waiting", "active", "prioritized", "delayed", "completed", "failed")


class WorldMetrics:
    """Counters, the processing-duration histogram and queue-depth gauges of one world."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.registry = CollectorRegistry(auto_describe=True)
        self.duration = Histogram(
            "anclora_queue_processing_duration_seconds",
            "Time a worker spent on one WhatsApp job",
            ["queue"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.processed = Counter(
            "anclora_messages_processed",
            "WhatsApp messages processed, by outcome",
            ["status"],
            registry=self.registry,
        )
        self.depth = Gauge(
            "anclora_queue_depth",
            "Jobs in the queue, by state",
            ["queue", "state"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "anclora_http_requests",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=self.registry,
        )
        for status in ("success", "failed", "retried"):
            self.processed.labels(status=status)

    def job_done(self, status: str, seconds: float) -> None:
        self.processed.labels(status=status).inc()
        self.duration.labels(queue=self.queue).observe(seconds)

    def set_depth(self, counts: dict[str, int]) -> None:
        for state in DEPTH_STATES:
            self.depth.labels(queue=self.queue, state=state).set(counts.get(state, 0))

    def request(self, method: str, route: str, status: int) -> None:
        self.http_requests.labels(method=method, route=route, status=str(status)).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
