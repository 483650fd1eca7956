"""What bounding a template costs: one normal render through `render_text` (sandbox, size
checks, the trace-function deadline) against the same compiled template rendered by plain
Jinja2 in the same run (the anchor), and against the bounded stream without the deadline.

    .venv/bin/python bench/templates.py [--renders N]

Prints microseconds per render and the ratio to the anchor, for a path template and a
numeric param default like the examples'.
"""

from __future__ import annotations

import argparse
import timeit
from typing import Any

from opstui.actions import templates

TEXTS = (
    "rate_limit:auth.login:{{ params.org }}",
    "{{ probes.ecs.fields.desired * 2 }}",
)
CONTEXT: dict[str, Any] = {
    "params": {"org": "acme", "count": 3},
    "probes": {"ecs": {"value": 4, "fields": {"desired": 4}, "state": "ok"}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=20000)
    n = parser.parse_args().renders
    for text in TEXTS:
        template = templates.compile_template(text)
        templates.render_text(text, CONTEXT, "bench")

        def per_render(run: Any) -> float:
            return min(timeit.repeat(run, number=n, repeat=3)) / n * 1e6

        anchor = per_render(lambda: template.render(**CONTEXT))  # noqa: B023
        stream = per_render(lambda: templates._render_stream(template, CONTEXT))  # noqa: B023
        bounded = per_render(lambda: templates.render_text(text, CONTEXT, "bench"))  # noqa: B023
        print(
            f"{text!r}: plain jinja {anchor:.1f} us; bounded, no deadline {stream:.1f} us "
            f"({stream / anchor:.2f}x); render_text with deadline {bounded:.1f} us "
            f"({bounded / anchor:.2f}x, +{bounded - anchor:.1f} us)"
        )


if __name__ == "__main__":
    main()
