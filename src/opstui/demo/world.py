"""A small simulated Anclora WhatsApp system: producers, a BullMQ queue, ECS-sized workers.

The world is a discrete-event simulation driven by the time it is given (seconds since its
start), so it is deterministic for a seed and testable without waiting: `advance(t)` runs
every arrival, job start and job end up to `t` in time order and returns the Redis commands
that mirror those changes into the queue's keys exactly as BullMQ v6 lays them out:

- `<prefix>:<queue>:wait` LIST (producers LPUSH, workers take from the right),
- `:active` LIST, `:prioritized` ZSET (score priority << 32 + counter), `:delayed` ZSET (retry
  backoff; score due_ms * 0x1000 + id & 0xfff), `:completed` / `:failed` ZSETs (score = finish
  time in ms), completed trimmed to the last `keep_completed` (removeOnComplete), failed to the
  last `keep_failed`, and `:meta` HASH whose `paused` flag stops the workers.

Workers are ECS running tasks x per-task concurrency; `set_tasks()` resizes them, so scaling
the service really drains a backlog. Arrival rate drifts slowly and now and then a burst
outpaces the workers for a while; durations drift and have a slow tail. That is the live
background. An optional `Incident` (the guided incident of `opstui demo`) adds a campaign
send on the world's own clock that two tasks cannot keep up with and four can.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, field

from opstui.demo.metrics import WorldMetrics

Command = tuple[str | int | float, ...]

STEP = 0.5
"""Longest stretch of simulated time handled with one arrival draw (seconds)."""


@dataclass(frozen=True)
class WorldSettings:
    """The world's knobs; the defaults make a calm but visibly busy service."""

    queue: str = "anclora-whatsapp"
    prefix: str = "bull"
    tasks: int = 2
    concurrency: int = 3
    base_rate: float = 45.0
    median_duration: float = 0.045
    duration_spread: float = 0.55
    fail_ratio: float = 0.06
    attempts: int = 2
    backoff: float = 2.0
    priority_share: float = 0.05
    keep_completed: int = 1000
    keep_failed: int = 5000
    burst_every: float = 240.0
    burst_factor: float = 1.6
    lag_per_job_ms: float = 1 / 55
    lag_slowdown_ms: float = 600.0


@dataclass(frozen=True)
class Incident:
    """A campaign send on the world's clock: extra arrivals that outgrow two tasks.

    Calm until `start`; the campaign ramps up to `peak_extra` jobs/s over `ramp` seconds and
    holds it for `peak_for` (the backlog passes 1,000 then 5,000 and the event loop lags), then
    eases to `sustain_extra`, still more than two tasks can take but well under what four can,
    and stops `length` seconds after it started, so a world nobody scales recovers by itself.
    """

    start: float = 20.0
    ramp: float = 8.0
    peak_extra: float = 170.0
    peak_for: float = 40.0
    ease: float = 20.0
    sustain_extra: float = 70.0
    length: float = 240.0

    @property
    def end(self) -> float:
        return self.start + self.length

    def extra_rate(self, t: float) -> float:
        """The campaign's own arrivals per second at `t` (0 outside it)."""
        if t < self.start or t >= self.end:
            return 0.0
        into = t - self.start
        if into < self.ramp:
            return self.peak_extra * into / self.ramp
        into -= self.ramp
        if into < self.peak_for:
            return self.peak_extra
        into -= self.peak_for
        if into < self.ease:
            return self.peak_extra + (self.sustain_extra - self.peak_extra) * into / self.ease
        return self.sustain_extra


@dataclass(order=True)
class _Running:
    ends: float
    job: str = field(compare=False)
    attempt: int = field(compare=False)
    started: float = field(compare=False)


@dataclass(frozen=True)
class HealthFigures:
    """What the service's /health reports: heap in MiB and event-loop lag in ms."""

    heap_mib: float
    heap_limit_mib: float
    event_loop_lag_ms: float


class World:
    """The simulated system; `advance(now)` moves it to `now` seconds since its start."""

    def __init__(
        self,
        seed: int = 7,
        settings: WorldSettings | None = None,
        *,
        epoch_ms: int = 1_767_225_600_000,
        incident: Incident | None = None,
    ) -> None:
        self.settings = settings or WorldSettings()
        self.incident = incident
        self.rng = random.Random(seed)
        self.epoch_ms = epoch_ms
        self.metrics = WorldMetrics(self.settings.queue)
        self.now = 0.0
        self.tasks = self.settings.tasks
        self.paused = False
        self.wait: deque[str] = deque()  # left = newest, as LPUSH leaves it
        self.prioritized: dict[str, int] = {}
        self.delayed: dict[str, tuple[float, int]] = {}  # job -> (due, attempt)
        self.running: list[_Running] = []
        self.completed: deque[str] = deque()
        self.failed: deque[str] = deque()
        self.attempts: dict[str, int] = {}
        self.total_completed = 0
        self.total_failed = 0
        self.total_retried = 0
        self.total_added = 0
        self._next_id = 1
        self._priority_counter = 0
        self._bursts: list[tuple[float, float]] = []
        self._plan_bursts_until = 0.0
        self._out: list[Command] = []
        self.metrics.set_depth(self.counts())

    # --- keys -----------------------------------------------------------------------------

    def key(self, name: str) -> str:
        return f"{self.settings.prefix}:{self.settings.queue}:{name}"

    # --- public ---------------------------------------------------------------------------

    @property
    def workers(self) -> int:
        return max(self.tasks, 0) * self.settings.concurrency

    def set_tasks(self, tasks: int) -> None:
        """ECS running tasks changed: more (or fewer) workers from the next event on."""
        self.tasks = max(tasks, 0)

    def set_paused(self, paused: bool) -> None:
        """The queue's meta.paused flag as read from Redis: paused workers take no new jobs."""
        self.paused = paused

    def counts(self) -> dict[str, int]:
        return {
            "waiting": len(self.wait),
            "active": len(self.running),
            "prioritized": len(self.prioritized),
            "delayed": len(self.delayed),
            "completed": len(self.completed),
            "failed": len(self.failed),
        }

    @property
    def backlog(self) -> int:
        return len(self.wait) + len(self.prioritized)

    def arrival_rate(self, t: float) -> float:
        """Jobs per second at `t`: a slow daily-like swell, a faster wobble, bursts, and the
        incident's campaign when there is one."""
        s = self.settings
        rate = s.base_rate * (1 + 0.3 * math.sin(2 * math.pi * t / 600) + 0.12 * math.sin(
            2 * math.pi * t / 53 + 1.0))
        self._plan_bursts(t)
        campaign = self.incident.extra_rate(t) if self.incident is not None else 0.0
        for start, length in self._bursts:
            if start <= t < start + length and campaign == 0.0:  # the campaign is the burst
                rate *= s.burst_factor
        rate += campaign
        return max(rate, 0.0)

    def health(self) -> HealthFigures:
        """Heap grows with jobs held in memory; event-loop lag grows with the backlog."""
        held = self.backlog + len(self.running) + len(self.delayed)
        heap = 210.0 + 18.0 * math.sin(2 * math.pi * self.now / 420) + held * 0.012
        lag = 2.5 + held * self.settings.lag_per_job_ms + 1.5 * abs(math.sin(self.now * 1.7))
        return HealthFigures(heap_mib=heap, heap_limit_mib=1024.0, event_loop_lag_ms=lag)

    def reset_commands(self) -> list[Command]:
        """Commands that replace the queue's keys with the world's whole current state."""
        keys = ("wait", "active", "prioritized", "delayed", "completed", "failed", "meta")
        out: list[Command] = [("DEL", *(self.key(k) for k in keys))]
        out.append(
            ("HSET", self.key("meta"), "opts.maxLenEvents", 10000, "version", "bullmq:5.34.0",
             "paused", 1 if self.paused else 0)
        )
        if self.wait:
            out.append(("RPUSH", self.key("wait"), *self.wait))
        if self.running:
            out.append(("RPUSH", self.key("active"), *(r.job for r in self.running)))
        if self.prioritized:
            pairs = [x for job, score in self.prioritized.items() for x in (score, job)]
            out.append(("ZADD", self.key("prioritized"), *pairs))
        if self.delayed:
            pairs = [
                x for job, (due, _) in self.delayed.items() for x in (self._delay_score(job, due),
                                                                        job)
            ]
            out.append(("ZADD", self.key("delayed"), *pairs))
        for name, jobs in (("completed", self.completed), ("failed", self.failed)):
            if jobs:
                score = self._ms(self.now)
                out.append(("ZADD", self.key(name), *(x for job in jobs for x in (score, job))))
        return out

    def advance(self, now: float) -> list[Command]:
        """Run the world up to `now` (seconds since start); the Redis commands of the changes."""
        self._out = []
        while self.now < now:
            end = min(now, self.now + STEP)
            self._run_until(end)
        self._trim(self.completed, "completed", self.settings.keep_completed)
        self._trim(self.failed, "failed", self.settings.keep_failed)
        self.metrics.set_depth(self.counts())
        out, self._out = self._out, []
        return out

    # --- simulation -----------------------------------------------------------------------

    def _run_until(self, end: float) -> None:
        start = self.now
        expected = self.arrival_rate(start) * (end - start)
        arrivals = sorted(start + self.rng.random() * (end - start)
                          for _ in range(_poisson(self.rng, expected)))
        arrivals_left = deque(arrivals)
        while True:
            t_arrival = arrivals_left[0] if arrivals_left else math.inf
            t_end = self.running[0].ends if self.running else math.inf
            t_due = min((due for due, _ in self.delayed.values()), default=math.inf)
            t = min(t_arrival, t_end, t_due)
            if t > end:
                break
            self.now = t
            if t == t_end:
                self._finish(heapq.heappop(self.running))
            elif t == t_due:
                self._promote(t)
            else:
                arrivals_left.popleft()
                self._add_job()
            self._start_jobs()
        self.now = end
        self._start_jobs()

    def _add_job(self) -> None:
        job = str(self._next_id)
        self._next_id += 1
        self.total_added += 1
        self.attempts[job] = 0
        if self.rng.random() < self.settings.priority_share:
            self._priority_counter += 1
            score = (1 << 32) + self._priority_counter
            self.prioritized[job] = score
            self._emit("ZADD", self.key("prioritized"), score, job)
        else:
            self.wait.appendleft(job)
            self._emit("LPUSH", self.key("wait"), job)

    def _start_jobs(self) -> None:
        if self.paused:
            return
        while len(self.running) < self.workers:
            if self.wait:
                job = self.wait.pop()
                self._emit("RPOP", self.key("wait"))
            elif self.prioritized:
                job = min(self.prioritized, key=self.prioritized.__getitem__)
                del self.prioritized[job]
                self._emit("ZREM", self.key("prioritized"), job)
            else:
                return
            self._emit("LPUSH", self.key("active"), job)
            attempt = self.attempts.get(job, 0) + 1
            self.attempts[job] = attempt
            heapq.heappush(self.running, _Running(self.now + self._duration(), job, attempt,
                                                  self.now))

    def _duration(self) -> float:
        """Lognormal around a drifting median, slower when the event loop lags, rare outliers."""
        s = self.settings
        median = s.median_duration * (1 + 0.35 * math.sin(2 * math.pi * self.now / 300 + 0.5))
        median *= 1 + self.health().event_loop_lag_ms / s.lag_slowdown_ms
        value = median * math.exp(self.rng.gauss(0.0, s.duration_spread))
        if self.rng.random() < 0.01:
            value *= 6
        return min(value, 30.0)

    def _finish(self, run: _Running) -> None:
        s = self.settings
        self._emit("LREM", self.key("active"), 1, run.job)
        seconds = run.ends - run.started
        if self.rng.random() >= s.fail_ratio:
            self.total_completed += 1
            self.attempts.pop(run.job, None)
            self.metrics.job_done("success", seconds)
            self._settle(self.completed, "completed", run.job)
        elif run.attempt < s.attempts:
            self.total_retried += 1
            self.metrics.job_done("retried", seconds)
            due = self.now + s.backoff * 2 ** (run.attempt - 1)
            self.delayed[run.job] = (due, run.attempt)
            self._emit("ZADD", self.key("delayed"), self._delay_score(run.job, due), run.job)
        else:
            self.total_failed += 1
            self.attempts.pop(run.job, None)
            self.metrics.job_done("failed", seconds)
            self._settle(self.failed, "failed", run.job)

    def _settle(self, jobs: deque[str], name: str, job: str) -> None:
        jobs.append(job)
        self._emit("ZADD", self.key(name), self._ms(self.now), job)

    def _trim(self, jobs: deque[str], name: str, keep: int) -> None:
        """removeOnComplete/removeOnFail: keep the newest `keep` (oldest go first)."""
        if len(jobs) > keep:
            for _ in range(len(jobs) - keep):
                jobs.popleft()
            self._emit("ZREMRANGEBYRANK", self.key(name), 0, -(keep + 1))

    def _promote(self, t: float) -> None:
        for job, (due, _) in sorted(self.delayed.items(), key=lambda item: item[1][0]):
            if due > t:
                break
            del self.delayed[job]
            self._emit("ZREM", self.key("delayed"), job)
            self.wait.appendleft(job)
            self._emit("LPUSH", self.key("wait"), job)

    def _plan_bursts(self, t: float) -> None:
        """Bursts are drawn ahead in order, so they depend on the seed only, not on the caller."""
        s = self.settings
        while self._plan_bursts_until <= t + STEP:
            gap = self.rng.expovariate(1.0 / s.burst_every) if s.burst_every > 0 else math.inf
            start = self._plan_bursts_until + max(gap, 30.0)
            if math.isinf(start):
                self._plan_bursts_until = math.inf
                return
            self._bursts.append((start, self.rng.uniform(20.0, 45.0)))
            self._plan_bursts_until = start
        self._bursts = [(a, n) for a, n in self._bursts if a + n >= t - STEP]

    # --- output ---------------------------------------------------------------------------

    def _ms(self, t: float) -> int:
        return self.epoch_ms + int(t * 1000)

    def _delay_score(self, job: str, due: float) -> int:
        return self._ms(due) * 0x1000 + (int(job) & 0xFFF)

    def _emit(self, *command: str | int | float) -> None:
        """Queue one command; consecutive LPUSH/ZADD to one key share a command."""
        last = self._out[-1] if self._out else None
        if last is not None and command[0] in ("LPUSH", "ZADD") and last[:2] == command[:2]:
            self._out[-1] = (*last, *command[2:])
            return
        self._out.append(command)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth for small means, a rounded normal for large ones)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
