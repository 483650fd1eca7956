"""Keep the garbage collector's full passes short in a long-running dashboard.

A dashboard of 200 panels holds ~300,000 long-lived objects (Textual creates a DOM node per
component class of every widget). CPython's full collections walk all of them, every few
seconds under polling load, and took 150-280 ms each: a frozen frame, and a confirm modal
drawn a quarter second late. Once the widgets are built they live as long as the layout, so
we move them out of the collector's sight with `gc.freeze()`; when the layout is rebuilt
(resize, view change) we unfreeze, collect the old layout's garbage, and freeze the new one.
Measured with 200 probes polling: full passes 9 ms instead of ~190 ms.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect everything that is garbage now, then freeze what is left as permanent."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def release() -> None:
    """Give frozen objects back to the collector (on exit, or in tests)."""
    gc.unfreeze()
