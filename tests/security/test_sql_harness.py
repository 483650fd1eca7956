"""The harness can fail: each attack of test_sql_attacks.py, run straight on the server (not
through opstui), changes something `snapshot` reads. Without this, "the state is unchanged"
could be true of a snapshot that sees nothing. Its own server (module scope), since these
attacks land."""

from __future__ import annotations

import asyncpg
import pytest

from tests.security.sql_servers import (  # noqa: F401 (the fixtures armed and witness)
    ATTACKS,
    Armed,
    Witness,
    armed_server,
    snapshot,
    untouched,
    witness_pair,
)

NO_EFFECT = {"rls_policy"}
"""Superusers bypass row-level security: its policy never runs for the test's user (the attack
is still classified mutating, which test_sql_attacks.py asserts)."""

RESTORE = """
INSERT INTO t SELECT i, 'orig' FROM generate_series(1, 5) AS i
ON CONFLICT (id) DO UPDATE SET v = excluded.v
"""


async def test_a_fresh_server_is_untouched(armed: Armed) -> None:
    await untouched(armed)


@pytest.mark.parametrize("attack", sorted(set(ATTACKS) - NO_EFFECT))
async def test_the_snapshot_sees_the_attack_land(
    armed: Armed, witness: Witness, attack: str
) -> None:
    conn = await asyncpg.connect(armed.dsn, timeout=10)
    try:
        await conn.execute(RESTORE)  # an earlier attack here may have written the same rows
        before = await snapshot(armed, witness)
        await conn.execute(ATTACKS[attack][0].replace("{markers}", str(armed.markers)))
    finally:
        await conn.close()
    after = await snapshot(armed, witness)
    changed = {key for key in before if before[key] != after[key]}
    assert changed, f"{attack} left no trace the snapshot can see"

