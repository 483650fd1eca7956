"""The scrape source against a real local /metrics server whose numbers the test controls."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from opstui.config.models import ScrapeProbe
from opstui.sources.base import ProbeError
from opstui.sources.http import get_http_client
from opstui.sources.registry import ClientPool
from opstui.sources.scrape import ScrapeSource
from tests.sources.conftest import http_connection
from tests.support import ServeApp

BOUNDS = ("0.1", "0.25", "0.5", "1", "2.5", "+Inf")


@dataclass
class Metrics:
    """What the test server serves; tests change it between polls."""

    requests: dict[str, float] = field(default_factory=lambda: {"a": 10.0, "b": 5.0})
    temperature: dict[str, float] = field(default_factory=lambda: {"a": 3.0, "b": 7.0})
    buckets: list[float] = field(default_factory=lambda: [2, 3, 6, 8, 9, 10])
    raw: str | None = None

    def render(self) -> str:
        if self.raw is not None:
            return self.raw
        lines = ["# HELP http_requests_total requests", "# TYPE http_requests_total counter"]
        lines += [
            f'http_requests_total{{code="200",pod="{k}"}} {v}' for k, v in self.requests.items()
        ]
        lines += ["# TYPE temperature gauge"]
        lines += [f'temperature{{room="{k}"}} {v}' for k, v in self.temperature.items()]
        lines += ["# TYPE latency_seconds histogram"]
        lines += [
            f'latency_seconds_bucket{{le="{le}"}} {count}'
            for le, count in zip(BOUNDS, self.buckets, strict=True)
        ]
        lines += [f"latency_seconds_count {self.buckets[-1]}", "latency_seconds_sum 7.4", ""]
        return "\n".join(lines)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    metrics: Metrics
    url: str
    pool: ClientPool
    clock: Clock

    def source(self, **probe: Any) -> ScrapeSource:
        config = ScrapeProbe.model_validate(
            {"kind": "scrape", "id": "s", "connection": "app", **probe}
        )
        connection = http_connection(self.url, timeout="2s")
        client = get_http_client(self.pool, "app", connection)
        return ScrapeSource(config, connection, client, clock=self.clock)


@pytest.fixture
async def rig(serve_app: ServeApp) -> AsyncIterator[Rig]:
    metrics = Metrics()

    async def handler(_: web.Request) -> web.Response:
        return web.Response(text=metrics.render(), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", handler)
    url = await serve_app(app)
    pool = ClientPool()
    yield Rig(metrics, url, pool, Clock())
    await pool.aclose()


async def test_value_sums_matching_series_and_filters_labels(rig: Rig) -> None:
    reading = await rig.source(metric="http_requests_total").poll()
    assert reading.value == 15.0
    assert reading.fields["series"] == 2
    assert reading.table is not None and reading.table.rows[0][1] == "10"
    assert reading.latency_ms is not None

    only_b = await rig.source(metric="http_requests_total", labels={"pod": "b"}).poll()
    assert only_b.value == 5.0 and only_b.fields["series"] == 1

    hottest = await rig.source(metric="temperature", aggregate="max").poll()
    assert hottest.value == 7.0

    missing = await rig.source(metric="temperature", labels={"room": "zzz"}).poll()
    assert missing.value is None
    assert missing.no_data == 'no series temperature{room="zzz"}'


async def test_rate_between_two_scrapes_with_counter_reset(rig: Rig) -> None:
    source = rig.source(metric="http_requests_total", mode="rate")
    first = await source.poll()
    assert first.value is None and first.no_data == "rate needs two scrapes"

    rig.metrics.requests = {"a": 30.0, "b": 15.0}  # +20 and +10 in 5 s
    rig.clock.now += 5.0
    second = await source.poll()
    assert second.value == pytest.approx(6.0)
    assert second.fields["window_s"] == pytest.approx(5.0)
    assert ("window", "5s") in second.facts

    rig.metrics.requests = {"a": 4.0, "b": 25.0}  # pod a restarted and counted 4; b +10
    rig.clock.now += 2.0
    third = await source.poll()
    assert third.value == pytest.approx((4.0 + 10.0) / 2.0)
    assert third.value is not None and third.value >= 0

    rig.metrics.requests = {"c": 1.0}  # only a new series: nothing to compare
    rig.clock.now += 1.0
    fourth = await source.poll()
    assert fourth.no_data == "rate needs two scrapes of the same series"


async def test_quantile_cumulative_then_from_bucket_deltas(rig: Rig) -> None:
    source = rig.source(metric="latency_seconds", mode="quantile", quantile=0.5)
    first = await source.poll()
    # rank 5 of 10: 2 of the 3 observations in (0.25, 0.5]
    assert first.value == pytest.approx(0.25 + 0.25 * 2 / 3)
    assert ("from", "cumulative buckets (first scrape)") in first.facts
    assert "window_s" not in first.fields

    # Four new observations, all in (1, 2.5]: the window's median is in that bucket.
    rig.metrics.buckets = [2, 3, 6, 8, 13, 14]
    rig.clock.now += 10.0
    second = await source.poll()
    assert second.value == pytest.approx(1.0 + 1.5 * 2 / 4)
    assert ("from", "bucket deltas over 10s") in second.facts
    assert second.fields["window_s"] == pytest.approx(10.0)
    assert second.fields["observations"] == 4.0

    rig.clock.now += 10.0  # nothing observed: NaN, which thresholds read as no data
    quiet = await source.poll()
    assert quiet.value is not None and math.isnan(quiet.value)
    assert quiet.notes == ("no observations in the window",)


async def test_bad_exposition_and_http_errors(rig: Rig) -> None:
    source = rig.source(metric="temperature")
    rig.metrics.raw = "<html><body>login</body></html>"
    with pytest.raises(ProbeError) as caught:
        await source.poll()
    assert caught.value.reason.startswith("bad exposition: ")
    assert caught.value.hint == "is path a Prometheus /metrics page?"

    wrong_path = rig.source(metric="temperature", path="/nope")
    with pytest.raises(ProbeError) as caught:
        await wrong_path.poll()
    assert caught.value.reason == "HTTP 404"

    rig.metrics.raw = '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="2"} 4\n'
    quantile = rig.source(metric="h", mode="quantile", quantile=0.9)
    with pytest.raises(ProbeError, match=r"\+Inf"):
        await quantile.poll()


def test_quantile_mode_needs_quantile() -> None:
    with pytest.raises(ValueError, match="needs `quantile`"):
        ScrapeProbe.model_validate(
            {"kind": "scrape", "id": "s", "connection": "app", "metric": "m", "mode": "quantile"}
        )
