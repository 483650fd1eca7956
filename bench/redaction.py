"""Redaction bench: what the engine's scrub of every poll outcome costs (DESIGN.md 6.6, 10).

Every reading and error goes through the config's Redactor before the tracker sees it. This
times scrub_outcome on a health reading with a 1 KiB body (components, facts) and on a
ProbeError, for a config with --secrets secrets (each gives ~4 encoded forms), against a
same-run anchor: json.loads of the same body, which the health source does on every poll.

    python bench/redaction.py [--secrets 5] [--number 20000]
"""

from __future__ import annotations

import argparse
import json
import timeit

from opstui.engine.scheduler import scrub_outcome
from opstui.redaction import Redactor
from opstui.sources.base import Component, ProbeError, Reading

BODY = '{"status":"pass","checks":{"db":[{"status":"pass","observedValue":12}]}}'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=5)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()

    secrets = [f"secret-value-{i:02d}-xYz!@#" for i in range(args.secrets)]
    redactor = Redactor(secrets)
    raw = "[" + ",".join([BODY] * 13) + "]"
    reading = Reading(
        value=1.0,
        fields={"status": "pass", "latency": 3.0},
        raw=raw,
        components=(Component("db", None, "up", "12ms"),) * 5,
        facts=(("checks", "5 up"),) * 6,
    )
    error = ProbeError('SQL 22P02: invalid input syntax for type integer: "x"', detail="x" * 200)
    n = args.number
    anchor = timeit.timeit(lambda: json.loads(raw), number=n) / n * 1e6
    on_reading = timeit.timeit(lambda: scrub_outcome(reading, redactor), number=n) / n * 1e6
    on_error = timeit.timeit(lambda: scrub_outcome(error, redactor), number=n) / n * 1e6
    built = timeit.timeit(lambda: Redactor(secrets), number=50) / 50 * 1e3
    print(f"{args.secrets} secrets, {len(redactor.forms)} forms, body {len(raw)} bytes")
    print(f"anchor json.loads(body):  {anchor:7.1f} us")
    print(f"scrub_outcome(reading):   {on_reading:7.1f} us  ({on_reading / anchor:.2f}x anchor)")
    print(f"scrub_outcome(error):     {on_error:7.1f} us  ({on_error / anchor:.2f}x anchor)")
    print(f"building the redactor:    {built:7.2f} ms  (once per config)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
