"""The guided incident of `opstui demo`, on the world's own clock (no sleeping): a campaign
builds a backlog past warn and crit and fails the health check; two tasks never catch up
while it lasts, four drain it within two minutes; the world recovers alone after it ends."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from opstui.demo.runner import CALM_ENV, SPEED_ENV, WorldRunner, demo_runner
from opstui.demo.server import anclora_health
from opstui.demo.world import Incident, World

WARN, CRIT = 1000, 5000  # demo.yaml's queue thresholds
INCIDENT = Incident()
TICK = 0.5


@dataclass
class Track:
    """The world stepped tick by tick, with the moments that matter to the story."""

    world: World
    crossed: dict[int, float] = field(default_factory=dict)
    health_failed: float | None = None
    waiting_at: dict[float, int] = field(default_factory=dict)

    def run(self, until: float) -> None:
        t = self.world.now
        while t < until - 1e-9:
            t = round(t + TICK, 6)
            self.world.advance(t)
            waiting = self.world.counts()["waiting"]
            self.waiting_at[t] = waiting
            for level in (WARN, CRIT):
                if waiting > level:
                    self.crossed.setdefault(level, t)
            if self.health_failed is None and self.status() == "fail":
                self.health_failed = t

    def status(self) -> str:
        body, _ = anclora_health(WorldRunner(self.world))
        return str(body["status"])

    def waiting(self) -> int:
        return self.world.counts()["waiting"]


def mean_duration(world: World) -> tuple[float, float]:
    """The processing histogram's (sum, count) so far."""
    labels = {"queue": world.settings.queue}
    registry = world.metrics.registry
    total = registry.get_sample_value("anclora_queue_processing_duration_seconds_sum", labels)
    count = registry.get_sample_value("anclora_queue_processing_duration_seconds_count", labels)
    assert total is not None and count is not None
    return total, count


@pytest.mark.parametrize("seed", [7, 3])
def test_a_campaign_builds_a_backlog_and_fails_the_health_check(seed: int) -> None:
    track = Track(World(seed=seed, incident=INCIDENT))
    track.run(INCIDENT.start)
    assert track.waiting() < 300 and track.status() == "pass"  # calm before the campaign
    track.run(INCIDENT.start + 60)
    assert INCIDENT.start < track.crossed[WARN] < track.crossed[CRIT] <= INCIDENT.start + 60
    assert track.health_failed is not None and track.health_failed <= INCIDENT.start + 60
    body, status = anclora_health(WorldRunner(track.world))
    assert status == 503 and body["status"] == "fail"
    loop = body["checks"]["eventLoop"][0]  # type: ignore[index]
    assert loop["status"] == "fail" and "event loop lag" in loop["output"]
    assert body["checks"]["memory"][0]["status"] == "pass"  # type: ignore[index]


def test_the_lag_slows_processing_so_p95_rises() -> None:
    """Same seed, same window, with and without the campaign: jobs take longer in it."""
    calm, busy = World(seed=7), World(seed=7, incident=INCIDENT)
    means = []
    for world in (calm, busy):
        track = Track(world)
        track.run(60)
        before = mean_duration(world)
        track.run(100)
        after = mean_duration(world)
        means.append((after[0] - before[0]) / (after[1] - before[1]))
    assert means[1] > means[0] * 1.15


def test_two_tasks_fall_behind_for_minutes_then_recover_alone() -> None:
    track = Track(World(seed=7, incident=INCIDENT))
    track.run(INCIDENT.end)
    w = track.waiting_at
    assert w[90.0] < w[150.0] < w[210.0]  # still growing three minutes in
    assert min(v for t, v in w.items() if 80 <= t <= INCIDENT.end) > CRIT  # crit throughout
    assert track.status() != "pass"
    track.run(INCIDENT.end + 420)  # the campaign is over: two tasks catch up within 7 min
    assert track.waiting() < WARN
    assert track.status() == "pass"


@pytest.mark.parametrize("seed", [7, 3])
def test_four_tasks_drain_the_backlog_within_two_minutes(seed: int) -> None:
    """Scaled 30 s after crossing 5,000 plus a human moment, as the runbook's scale-up does."""
    track = Track(World(seed=seed, incident=INCIDENT))
    track.run(INCIDENT.start + 60)
    scaled_at = track.crossed[CRIT] + 45
    track.run(scaled_at)
    assert track.waiting() > CRIT
    track.world.set_tasks(4)
    track.run(scaled_at + 120)
    drained = min(t for t, v in track.waiting_at.items() if t > scaled_at and v < WARN)
    assert track.waiting() < WARN
    assert track.status() == "pass"
    # ...and it stays drained while the campaign goes on.
    track.run(INCIDENT.end)
    assert max(v for t, v in track.waiting_at.items() if t > drained + 15) < WARN


def test_same_seed_and_times_same_incident() -> None:
    a, b = World(seed=7, incident=INCIDENT), World(seed=7, incident=INCIDENT)
    for t in (10.0, 30.0, 30.25, 55.0, 80.0):
        assert a.advance(t) == b.advance(t)
    assert a.counts() == b.counts()


def test_the_campaign_rate_ramps_holds_eases_and_ends() -> None:
    i = INCIDENT
    assert i.extra_rate(i.start - 0.1) == 0.0
    assert i.extra_rate(i.start + i.ramp / 2) == pytest.approx(i.peak_extra / 2)
    assert i.extra_rate(i.start + i.ramp + 1) == i.peak_extra
    eased = i.start + i.ramp + i.peak_for + i.ease
    assert i.extra_rate(eased + 1) == i.sustain_extra
    assert i.extra_rate(i.end - 0.1) == i.sustain_extra
    assert i.extra_rate(i.end) == 0.0


def test_demo_runner_incident_by_default_calm_and_speed_from_env() -> None:
    runner = demo_runner(7, redis_url=None, ecs_tasks=None, env={})
    assert runner.world.incident == INCIDENT and runner.speed == 1.0
    calm = demo_runner(7, redis_url=None, ecs_tasks=None, env={CALM_ENV: "1", SPEED_ENV: "4"})
    assert calm.world.incident is None and calm.speed == 4.0
    track = Track(calm.world)
    track.run(120)
    assert WARN not in track.crossed and track.status() == "pass"
    for bad in ("fast", "0.5", "100"):
        with pytest.raises(RuntimeError, match=SPEED_ENV):
            demo_runner(7, redis_url=None, ecs_tasks=None, env={SPEED_ENV: bad})
