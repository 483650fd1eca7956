"""The statement alone (opstui/sqlcheck.py, no server): exactly one statement, and which
shapes are plain reads. The catalog's part is tested against a real server elsewhere."""

from __future__ import annotations

import pytest

from opstui.sqlcheck import SqlProblem, check_plain_read, parse_statement

READ_SHAPES = [
    "SELECT 1",
    "select count(*) from t where v = $1",
    "VALUES (1), (2)",
    "TABLE t",
    "SHOW work_mem",
    "EXPLAIN SELECT * FROM t",
    "EXPLAIN (ANALYZE false, FORMAT JSON) SELECT * FROM t",
    "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
    "SELECT 1;",
    "-- a comment\nSELECT 1 /* and another */",
]

NOT_READS = {
    "UPDATE t SET v = 1": "UPDATE writes",
    "INSERT INTO t VALUES (1)": "INSERT writes",
    "DELETE FROM t": "DELETE writes",
    "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE": "MERGE writes",
    "COPY t TO STDOUT": "COPY is not a plain read",
    "SELECT * FROM t FOR UPDATE": "locking clause FOR UPDATE",
    "SELECT * FROM t FOR SHARE SKIP LOCKED": "locking clause FOR SHARE",
    "SELECT * FROM t FOR NO KEY UPDATE": "locking clause FOR NO KEY UPDATE",
    "SELECT * FROM t FOR KEY SHARE": "locking clause FOR KEY SHARE",
    "SELECT 1 INTO TEMP x": "SELECT INTO creates a table",
    "WITH d AS (UPDATE t SET v = 1 RETURNING *) SELECT * FROM d": "a data-modifying CTE (UPDATE)",
    "SELECT * FROM (WITH d AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM d) s": (
        "a data-modifying CTE (INSERT)"
    ),
    "EXPLAIN ANALYZE SELECT 1": "EXPLAIN ANALYZE runs the statement",
    "EXPLAIN (ANALYZE) SELECT 1": "EXPLAIN ANALYZE runs the statement",
    "EXPLAIN (ANALYZE on) SELECT 1": "EXPLAIN ANALYZE runs the statement",
    "EXPLAIN UPDATE t SET v = 1": "EXPLAIN of a statement that is not a read: UPDATE writes",
    "SET statement_timeout = 0": "SET is not a read",
    "LISTEN c": "LISTEN is not a read",
    "NOTIFY c": "NOTIFY is not a read",
    "VACUUM t": "VACUUM is not a read",
    "CALL p()": "CALL is not a read",
    "DO $$ BEGIN END $$": "DO is not a read",
    "LOCK TABLE t": "LOCK is not a read",
    "PREPARE q AS UPDATE t SET v = 1": "PREPARE is not a read",
    "EXECUTE q": "EXECUTE is not a read",
    "DECLARE c CURSOR FOR SELECT 1": "DECLARE is not a read",
    "REFRESH MATERIALIZED VIEW m": "REFRESH MAT VIEW is not a read",
    "CREATE TABLE x AS SELECT 1": "CREATE TABLE AS writes",
    "TRUNCATE t": "TRUNCATE writes",
    "COMMIT": "a transaction command is not a read",
}

NOT_ONE = {
    "COMMIT; UPDATE t SET v = 'x' WHERE id = 3": "SQL has 2 statements",
    "ROLLBACK; INSERT INTO t VALUES (99, 'x')": "SQL has 2 statements",
    "SELECT 1; SELECT 2; SELECT 3": "SQL has 3 statements",
    "": "SQL has no statement",
    "  -- only a comment": "SQL has no statement",
    "SELEC 1": "SQL does not parse: syntax error",
}


@pytest.mark.parametrize("sql", READ_SHAPES)
def test_plain_read_shapes(sql: str) -> None:
    assert check_plain_read(sql).not_read is None


@pytest.mark.parametrize("sql", sorted(NOT_READS))
def test_other_shapes_are_not_reads(sql: str) -> None:
    statement = parse_statement(sql)
    assert statement.not_read is not None and statement.not_read.startswith(NOT_READS[sql])
    with pytest.raises(SqlProblem, match="an sql probe must be a plain read"):
        check_plain_read(sql)


@pytest.mark.parametrize("sql", sorted(NOT_ONE))
def test_exactly_one_statement(sql: str) -> None:
    with pytest.raises(SqlProblem) as caught:
        parse_statement(sql)
    assert str(caught.value).startswith(NOT_ONE[sql])


def test_names_that_could_run_a_function() -> None:
    statement = parse_statement(
        "SELECT s.f(1), t.g, (t).h, a OPERATOR(s.===) b, 'x'::s.typ, x BETWEEN 1 AND 2 "
        "FROM s.t, u TABLESAMPLE bernoulli (1) ORDER BY 1 USING ~<~"
    )
    assert ("s", "f") in statement.functions and (None, "bernoulli") in statement.functions
    assert {("s", "==="), (None, "~<~"), (None, "<="), (None, ">=")} <= statement.operators
    assert statement.relations == {("s", "t"), (None, "u")}
    assert ("s", "typ") in statement.types
    assert {"g", "h"} <= statement.attribute_calls
    assert statement.text.startswith("SELECT s.f(1)")


def test_the_statement_text_drops_what_follows_it() -> None:
    assert parse_statement("UPDATE t SET v = 1 WHERE id = $1;").text == (
        "UPDATE t SET v = 1 WHERE id = $1"
    )
    statement = parse_statement("DELETE FROM s.t WHERE id = 1")
    assert statement.target == ("s", "t") and statement.trial_shape
    assert not parse_statement(
        "WITH d AS (DELETE FROM t RETURNING *) INSERT INTO u TABLE d"
    ).trial_shape
