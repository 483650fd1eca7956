"""SQL previews only read: the confirm modal and `opstui run` show them before anyone confirms.

A rolled-back trial runs only for a single INSERT/UPDATE/DELETE/MERGE on a plain table where
nothing acts outside the transaction. Each write below has something that would (a sequence,
a trigger writing through dblink, a volatile function, a cascade into a table with a trigger,
a view over the side effect, an operator over it, a policy calling it): its preview must be
an EXPLAIN estimate saying why it was not run, and the server must be exactly as before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from opstui.actions.base import Classification
from opstui.actions.executors.sql import ESTIMATED, MEASURED, SqlExecutor
from opstui.sources.registry import ClientPool
from tests.actions.support import make_runner
from tests.security.sql_servers import (  # noqa: F401 (the fixtures armed and witness)
    Armed,
    Witness,
    armed_server,
    attack_config,
    bare_context,
    bare_sql_step,
    snapshot,
    untouched,
    witness_pair,
)

PREVIEW_ATTACKS: dict[str, tuple[str, str]] = {
    # id: (a write the config declares mutating, why its preview must not run it)
    "insert_serial": ("INSERT INTO counter_t (v) VALUES ('x')", "calls nextval (volatile)"),
    "insert_trigger": ("INSERT INTO trig_t VALUES (1)", "trig_t has trigger trig_side"),
    "update_calls_dblink": (
        "UPDATE t SET v = side_effect()::text WHERE id = 1",
        "calls public.side_effect (volatile)",
    ),
    "delete_cascades_to_trigger": (
        "DELETE FROM parent_c WHERE id = 1",
        "child_c has trigger child_side",
    ),
    "insert_from_view": (
        "INSERT INTO t SELECT 9, x::text FROM v_side",
        "view v_side: calls public.side_effect",
    ),
    "update_operator": ("UPDATE t SET v = 'y' WHERE id === 1", "operator public.==="),
    "update_nextval": (
        "UPDATE t SET v = nextval('seq')::text WHERE id = 1",
        "calls nextval (volatile)",
    ),
    "merge_trigger": (
        "MERGE INTO trig_t USING (VALUES (1)) AS s(id) ON trig_t.id = s.id "
        "WHEN NOT MATCHED THEN INSERT VALUES (s.id)",
        "trig_t has trigger trig_side",
    ),
    "update_rls_policy": ("UPDATE rls_t SET id = 2", "policy rls_side on rls_t"),
    "update_to_default": (
        "UPDATE counter_t SET id = DEFAULT WHERE v = 'none'",
        "default of column counter_t.id calls nextval (volatile)",
    ),
}


@pytest.mark.parametrize("attack", sorted(PREVIEW_ATTACKS))
async def test_a_write_that_could_act_outside_is_estimated_not_run(
    armed: Armed, witness: Witness, tmp_path: Path, attack: str
) -> None:
    sql, why = PREVIEW_ATTACKS[attack]
    before = await untouched(armed, witness)
    parts = make_runner(attack_config(armed.dsn, sql, mutating=True), tmp_path)
    try:
        step = await parts.runner.prepare_action("attack", "go")
        assert (await parts.runner.classify(step)).mutating
        preview = await parts.runner.preview(step)
        assert preview is not None and preview.error is None, preview
        assert ESTIMATED in preview.lines[0] and MEASURED not in " ".join(preview.lines)
        assert preview.lines[1].startswith("not run: ") and why in preview.lines[1]
    finally:
        await parts.close()
    assert await snapshot(armed, witness) == before


async def test_a_plain_update_is_measured_and_rolled_back(
    armed: Armed, witness: Witness, tmp_path: Path
) -> None:
    before = await untouched(armed, witness)
    sql = "UPDATE t SET v = 'y' WHERE id <= 2"
    parts = make_runner(attack_config(armed.dsn, sql, mutating=True), tmp_path)
    try:
        step = await parts.runner.prepare_action("attack", "go")
        preview = await parts.runner.preview(step)
        assert preview is not None and preview.lines == (f"UPDATE affects 2 rows ({MEASURED})",)
    finally:
        await parts.close()
    assert await snapshot(armed, witness) == before


async def test_a_delete_from_a_serial_table_is_measured(
    armed: Armed, witness: Witness, tmp_path: Path
) -> None:
    """A DELETE never fills a default: the serial column's nextval cannot run."""
    before = await untouched(armed, witness)
    sql = "DELETE FROM counter_t WHERE id < 0"
    parts = make_runner(attack_config(armed.dsn, sql, mutating=True), tmp_path)
    try:
        preview = await parts.runner.preview(await parts.runner.prepare_action("attack", "go"))
        assert preview is not None and preview.lines == (f"DELETE affects 0 rows ({MEASURED})",)
    finally:
        await parts.close()
    assert await snapshot(armed, witness) == before


async def test_copy_has_no_preview(armed: Armed, witness: Witness, tmp_path: Path) -> None:
    before = await untouched(armed, witness)
    sql = f"COPY (SELECT 1) TO PROGRAM 'touch {armed.markers}/copy'"
    parts = make_runner(attack_config(armed.dsn, sql, mutating=True), tmp_path)
    try:
        preview = await parts.runner.preview(await parts.runner.prepare_action("attack", "go"))
        assert preview is not None
        assert preview.lines == ("no preview: COPY cannot be measured without running it",)
    finally:
        await parts.close()
    assert await snapshot(armed, witness) == before


async def test_an_estimate_binds_args_and_runs_read_only(armed: Armed) -> None:
    before = await untouched(armed)
    pool = ClientPool()
    sql = "INSERT INTO counter_t (v) VALUES ($1)"
    step = bare_sql_step(sql, ["x"], mutating=True)
    try:
        preview = await SqlExecutor().preview(step, bare_context(armed, pool))
        assert preview is not None
        assert preview.lines[0] == f"INSERT affects about 1 row ({ESTIMATED})"
        verdict = await SqlExecutor().classify(step, bare_context(armed, pool))
        assert verdict.classification is Classification.MUTATING
    finally:
        await pool.aclose()
    assert await snapshot(armed) == before
