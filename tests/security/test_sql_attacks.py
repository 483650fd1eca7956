"""SQL that tries to pass as a read, against a real PostgreSQL (tests/security/sql_servers.py).

Every attack is tried four ways through the Runner (the one gate): as an action the config did
not declare mutating, run without a token; under read-only mode with a token; as a diagnose
step (the TUI runs those by itself when a runbook opens); and through the preview of an action
declared `mutating: true` (which runs before any confirmation). And once as an `sql` probe:
refused at load when its shape is not a read, otherwise an ERR reading that is never sent.
Each asserts the server's state afterwards: rows, the dblink sink, sequences, marker files,
the victim backend, the LISTENer, the stats reset time, the config load time, the relations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from opstui.actions.runner import Refused
from opstui.config.kinds.postgres import PostgresConnection, SqlProbe
from opstui.sources.base import ProbeError
from opstui.sources.registry import ClientPool
from opstui.sources.sql import SqlSource
from tests.actions.support import make_runner
from tests.security.sql_servers import (  # noqa: F401 (the fixtures armed and witness)
    ATTACKS,
    SHAPES,
    Armed,
    Witness,
    armed_server,
    attack_config,
    snapshot,
    untouched,
    witness_pair,
)

MEASURED = "measured in a rolled-back transaction"

def sql_of(armed: Armed, attack: str) -> str:
    return ATTACKS[attack][0].replace("{markers}", str(armed.markers))


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_without_a_token_nothing_runs(
    armed: Armed, witness: Witness, tmp_path: Path, attack: str
) -> None:
    before = await untouched(armed, witness)
    parts = make_runner(attack_config(armed.dsn, sql_of(armed, attack)), tmp_path)
    try:
        step = await parts.runner.prepare_action("attack", "go")
        verdict = await parts.runner.classify(step)
        assert verdict.mutating and ATTACKS[attack][1] in verdict.reason
        assert verdict.overruled is not None  # the config did not declare it mutating
        with pytest.raises(Refused, match="needs a confirmation"):
            await parts.runner.run(step)
    finally:
        await parts.close()
    assert await snapshot(armed, witness) == before


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_read_only_mode_refuses_even_with_a_token(
    armed: Armed, witness: Witness, tmp_path: Path, attack: str
) -> None:
    before = await untouched(armed, witness)
    parts = make_runner(attack_config(armed.dsn, sql_of(armed, attack)), tmp_path, read_only=True)
    try:
        step = await parts.runner.prepare_action("attack", "go")
        token = parts.runner.confirm(step, via="--yes")
        with pytest.raises(Refused, match="read-only mode"):
            await parts.runner.run(step, token=token)
        preview = await parts.runner.preview(step)
        assert preview is not None and preview.error is not None and not preview.lines
    finally:
        await parts.close()
    assert await snapshot(armed, witness) == before


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_as_a_diagnose_step_it_is_refused(
    armed: Armed, witness: Witness, tmp_path: Path, attack: str
) -> None:
    before = await untouched(armed, witness)
    parts = make_runner(attack_config(armed.dsn, sql_of(armed, attack)), tmp_path)
    try:
        step = await parts.runner.prepare_diagnose("attack", 0)
        with pytest.raises(Refused):
            await parts.runner.run(step)  # what the runbook screen does when it opens
    finally:
        await parts.close()
    assert await snapshot(armed, witness) == before


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_the_preview_of_a_declared_mutation_only_reads(
    armed: Armed, witness: Witness, tmp_path: Path, attack: str
) -> None:
    before = await untouched(armed, witness)
    config = attack_config(armed.dsn, sql_of(armed, attack), mutating=True)
    parts = make_runner(config, tmp_path)
    try:
        step = await parts.runner.prepare_action("attack", "go")
        preview = await parts.runner.preview(step)
        assert preview is not None
        text = " ".join(preview.lines)
        if attack == "update":  # a plain table and nothing volatile: the one measured trial
            assert text == f"UPDATE affects 1 row ({MEASURED})"
        else:
            assert MEASURED not in text and (preview.lines or preview.error)
    finally:
        await parts.close()
    assert await snapshot(armed, witness) == before


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_as_a_probe_it_never_runs(armed: Armed, witness: Witness, attack: str) -> None:
    before = await untouched(armed, witness)
    sql, reason = ATTACKS[attack][0].replace("{markers}", str(armed.markers)), ATTACKS[attack][1]
    probe_data: dict[str, Any] = {"id": "p", "kind": "sql", "connection": "db", "query": sql}
    if attack in SHAPES:
        with pytest.raises(ValidationError, match="an sql probe must be a plain read"):
            SqlProbe.model_validate(probe_data)
        assert await snapshot(armed, witness) == before
        return
    probe = SqlProbe.model_validate(probe_data)
    connection = PostgresConnection.model_validate({"kind": "postgres", "dsn": armed.dsn})
    pool = ClientPool()
    try:
        source = SqlSource.build(probe, connection, pool)
        for _ in range(2):  # every poll: refused, never sent
            with pytest.raises(ProbeError) as caught:
                await source.poll()
            assert caught.value.reason.startswith("not a provable read: ")
            assert reason in caught.value.reason
    finally:
        await pool.aclose()
    assert await snapshot(armed, witness) == before
