"""The prometheus source (and a scrape cross-check) against Debian's real `prometheus`.

One server per module: it scrapes a local exporter with known series every second, has one
alert firing and one pending, and one target that is always down.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from opstui.config.models import PrometheusConnection, PrometheusProbe, ScrapeProbe
from opstui.sources.base import ProbeError
from opstui.sources.prometheus import PrometheusSource, backfill_window
from opstui.sources.registry import ClientPool
from opstui.sources.scrape import ScrapeSource
from tests.servers.prometheus import GAUGE_VALUE, PrometheusServer
from tests.sources.conftest import http_connection
from tests.support import free_port, require_binary

HAND_MEDIAN = 0.25 + 0.25 * 2 / 3  # rank 5 of 10: 2 of the 3 observations in (0.25, 0.5]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    binary = require_binary("prometheus")
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), binary)
    server.start()
    try:
        server.wait_for_data()
        yield server
    finally:
        server.close()


@pytest.fixture
async def pool() -> AsyncIterator[ClientPool]:
    pool = ClientPool()
    yield pool
    await pool.aclose()


def _source(pool: ClientPool, url: str, timeout: str = "2s", **probe: Any) -> PrometheusSource:
    connection = PrometheusConnection.model_validate(
        {"kind": "prometheus", "url": url, "timeout": timeout}
    )
    # The pool keys clients by connection name: one name per URL and timeout.
    name = f"{url.rsplit(':', 1)[-1]}-{timeout}"
    config = PrometheusProbe.model_validate(
        {"kind": "prometheus", "id": "p", "connection": name, **probe}
    )
    return PrometheusSource.build(config, connection, pool)


async def test_scalar_and_single_series(prometheus: PrometheusServer, pool: ClientPool) -> None:
    scalar = await _source(pool, prometheus.url, query="scalar(vector(3)) * 2").poll()
    assert scalar.value == 6.0
    assert scalar.fields == {"value": 6.0, "series": 1}

    gauge = await _source(pool, prometheus.url, query="opstui_test_gauge").poll()
    assert gauge.value == GAUGE_VALUE
    assert gauge.fields["series"] == 1
    shown = dict(gauge.facts)["series"]
    assert shown.startswith('{__name__="opstui_test_gauge",') and 'job="exporter"' in shown
    assert gauge.latency_ms is not None and gauge.no_data is None


async def test_several_series_show_the_top_ones(
    prometheus: PrometheusServer, pool: ClientPool
) -> None:
    reading = await _source(pool, prometheus.url, query="opstui_test_temperature", top=2).poll()
    assert reading.value == 7.0  # room b, the highest
    assert reading.fields["series"] == 4
    table = reading.table
    assert table is not None and table.total_rows == 4 and table.title == "top 2 of 4"
    # Labels every series shares (job, instance, __name__) are left out of the rows.
    assert table.rows == (('{room="b"}', "7"), ('{room="c"}', "5"))


async def test_empty_vector_is_no_data(prometheus: PrometheusServer, pool: ClientPool) -> None:
    reading = await _source(pool, prometheus.url, query='opstui_test_gauge{job="nope"}').poll()
    assert reading.value is None
    assert reading.no_data == "query returned no series"
    assert reading.fields == {"series": 0}


async def test_nan_and_infinities(prometheus: PrometheusServer, pool: ClientPool) -> None:
    nan = await _source(pool, prometheus.url, query="vector(0) / 0").poll()
    assert nan.value is not None and math.isnan(nan.value)
    assert ("value", "NaN") in nan.facts
    assert nan.notes and "no data" in nan.notes[0]
    inf = await _source(pool, prometheus.url, query="vector(1) / 0").poll()
    assert inf.value == math.inf and ("value", "+Inf") in inf.facts
    minus = await _source(pool, prometheus.url, query="vector(-1) / 0").poll()
    assert minus.value == -math.inf


async def test_bad_promql_is_an_error_with_the_message(
    prometheus: PrometheusServer, pool: ClientPool
) -> None:
    with pytest.raises(ProbeError) as caught:
        await _source(pool, prometheus.url, query="sum(").poll()
    assert caught.value.reason.startswith("PromQL: ")
    assert "unclosed left parenthesis" in caught.value.reason
    assert caught.value.hint is not None
    with pytest.raises(ProbeError, match="range vector"):
        await _source(pool, prometheus.url, query="opstui_test_gauge[1m]").poll()


async def test_first_poll_backfills_history(prometheus: PrometheusServer, pool: ClientPool) -> None:
    await asyncio.to_thread(prometheus.wait_for_samples, "opstui_test_gauge", 4)
    source = _source(pool, prometheus.url, query="opstui_test_gauge", interval="1s")
    before = time.time()
    first = await source.poll()
    assert len(first.backfill) >= 3, "the server has scraped for 4 s at least"
    times = [at for at, _ in first.backfill]
    assert times == sorted(times) and times[-1] <= before
    assert {value for _, value in first.backfill} == {GAUGE_VALUE}
    assert times[-1] - times[0] <= backfill_window(600, 1.0)[0]
    second = await source.poll()
    assert second.backfill == ()

    no_backfill = _source(pool, prometheus.url, query="opstui_test_gauge", backfill=False)
    assert (await no_backfill.poll()).backfill == ()


async def test_alerts_preset(prometheus: PrometheusServer, pool: ClientPool) -> None:
    reading = await _source(pool, prometheus.url, preset="alerts").poll()
    assert reading.value == 1.0
    assert reading.fields == {"firing": 1, "pending": 1}
    assert reading.verdict is None
    assert reading.table is not None
    assert reading.table.columns == ("alertname", "severity", "state", "since")
    (firing, pending) = reading.table.rows
    assert firing[:3] == ("AlwaysFiring", "critical", "firing")
    assert pending[:3] == ("LongPending", "warning", "pending")
    assert firing[3].endswith("s") or firing[3].endswith("m")


async def test_targets_preset(prometheus: PrometheusServer, pool: ClientPool) -> None:
    reading = await _source(pool, prometheus.url, preset="targets").poll()
    assert reading.value == 1.0
    assert reading.fields == {"up": 1, "down": 1, "total": 2}
    assert reading.table is not None
    ((job, instance, error),) = reading.table.rows
    assert (job, instance) == ("gone", f"127.0.0.1:{prometheus.down_port}")
    assert "connection refused" in error


async def test_refused_and_hung_server(prometheus: PrometheusServer, pool: ClientPool) -> None:
    with pytest.raises(ProbeError) as caught:
        await _source(pool, f"http://127.0.0.1:{free_port()}", query="1").poll()
    assert caught.value.reason == "refused"

    source = _source(pool, prometheus.url, timeout="1s", query="1", backfill=False)
    await source.poll()  # the connection is open and kept
    prometheus.hang()
    try:
        with pytest.raises(ProbeError) as caught:
            await asyncio.wait_for(source.poll(), timeout=30)
        assert caught.value.reason == "timeout after 1s"
        with pytest.raises(ProbeError, match="timeout after 1s"):
            await asyncio.wait_for(
                _source(pool, prometheus.url, timeout="1s", preset="alerts").poll(), timeout=30
            )
    finally:
        prometheus.unhang()
    assert (await source.poll()).value == 1.0


async def test_scrape_quantile_matches_prometheus_histogram_quantile(
    prometheus: PrometheusServer, pool: ClientPool
) -> None:
    exporter = prometheus.exporter.url
    scrape_config = ScrapeProbe.model_validate(
        {
            "kind": "scrape",
            "id": "s",
            "connection": "exporter",
            "metric": "opstui_test_latency_seconds",
            "mode": "quantile",
            "quantile": 0.5,
        }
    )
    scrape = ScrapeSource.build(scrape_config, http_connection(exporter), pool)
    ours = (await scrape.poll()).value
    query = "histogram_quantile(0.5, sum by (le) (opstui_test_latency_seconds_bucket))"
    theirs = (await _source(pool, prometheus.url, query=query).poll()).value
    assert ours == pytest.approx(HAND_MEDIAN)
    assert theirs == pytest.approx(HAND_MEDIAN)


async def test_check_json(prometheus: PrometheusServer, tmp_path: Path) -> None:
    config = {
        "title": "prom check",
        "connections": {
            "prom": {"kind": "prometheus", "url": prometheus.url, "timeout": "5s"},
            "exporter": {"kind": "http", "base_url": prometheus.exporter.url},
        },
        "probes": [
            {"id": "rooms", "kind": "prometheus", "connection": "prom",
             "query": "opstui_test_temperature"},
            {"id": "quiet", "kind": "prometheus", "connection": "prom", "query": "vector(0)/0",
             "thresholds": {"above": {"warn": 1}}},
            {"id": "down", "kind": "prometheus", "connection": "prom", "preset": "targets"},
            {"id": "gauge", "kind": "scrape", "connection": "exporter",
             "metric": "opstui_test_temperature", "labels": {"room": "c"}},
        ],
    }  # fmt: skip
    path = tmp_path / "opstui.json"
    path.write_text(json.dumps(config))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "opstui", "check", "--json", "--config", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2, err.decode()  # the NaN probe with thresholds is nodata
    probes = {p["id"]: p for p in json.loads(out)["probes"]}
    assert probes["rooms"]["state"] == "ok"
    assert probes["rooms"]["value"] == 7.0
    assert probes["rooms"]["fields"] == {"value": 7.0, "series": 4}
    assert probes["quiet"]["state"] == "nodata"
    assert probes["quiet"]["value"] is None  # NaN has no JSON form: null
    assert probes["down"]["fields"] == {"up": 1, "down": 1, "total": 2}
    assert probes["gauge"]["state"] == "ok"
    assert probes["gauge"]["fields"] == {"value": 5.0, "series": 1}
