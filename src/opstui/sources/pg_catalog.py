"""What a PostgreSQL server says about the names a statement uses: may it run a side effect?

DESIGN.md section 6.1: a SQL step or probe is a read only when every function it can make the
server run is non-volatile in that server's pg_proc, or on HARMLESS. pg_proc and pg_operator
are read once per connection (per PostgresClient) and cached, as Redis's COMMAND INFO is; a
name or oid the cache does not know makes it read again once (a function created since), and
then still unknown is a problem: it cannot be proven. The relations and types a statement
names are looked up at classification time in one query that follows what reading them runs:
view rewrite rules (recursively through nested views, via pg_depend), inheritance children and
partitions, row-level-security policies, foreign tables (a wrapper such as file_fdw with
`program` runs a program on SELECT), and the functions of user-defined types (I/O, casts,
domain constraints). Everything here runs inside run_readonly: a READ ONLY transaction.
"""

from __future__ import annotations

import re
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opstui.sources.postgres_client import PostgresClient
from opstui.sqlcheck import COMPARISONS, Name, SqlProblem, Statement, body_calls

if TYPE_CHECKING:
    from asyncpg import Record
    from asyncpg.pool import PoolConnectionProxy

FIRST_NORMAL_OID = 16384
"""PostgreSQL's FirstNormalObjectId: objects below it were made by initdb (built in)."""

HARMLESS: dict[str, str] = {
    "clock_timestamp": "reads the clock",
    "timeofday": "reads the clock",
    "random": "a pseudo-random number; changes nothing",
    "gen_random_uuid": "a random UUID; changes nothing",
    "pg_database_size": "sums file sizes on disk",
    "pg_relation_size": "stats a relation's files",
    "pg_table_size": "stats a table's files",
    "pg_indexes_size": "stats index files",
    "pg_total_relation_size": "stats a relation's files",
    "pg_tablespace_size": "sums file sizes on disk",
    "pg_is_in_recovery": "reads the recovery state",
    "pg_current_wal_lsn": "reads the WAL position",
    "pg_current_wal_insert_lsn": "reads the WAL position",
    "pg_current_wal_flush_lsn": "reads the WAL position",
    "pg_last_wal_receive_lsn": "reads the standby's WAL position",
    "pg_last_wal_replay_lsn": "reads the standby's WAL position",
    "pg_last_xact_replay_timestamp": "reads the standby's replay time",
    "pg_blocking_pids": "reads the lock table",
    "pg_lock_status": "reads the lock table (the pg_locks view)",
    "pg_notification_queue_usage": "reads the NOTIFY queue's fill",
    "pg_sleep": "waits (statement_timeout bounds it); changes nothing",
    "pg_sleep_for": "waits (statement_timeout bounds it); changes nothing",
    "pg_sleep_until": "waits (statement_timeout bounds it); changes nothing",
    "bernoulli": "TABLESAMPLE method: returns a sampler",
    "system": "TABLESAMPLE method: returns a sampler",
}
"""Volatile pg_catalog functions (built in, oid < 16384) reviewed as free of side effects:
volatile only because their answer changes between calls. A function of the same name in any
other schema is judged by its own volatility."""

HARMLESS_EXTENSION: dict[tuple[str, str], str] = {
    ("pg_stat_statements", "pg_stat_statements"): "reads the statement statistics",
    ("pg_stat_statements", "pg_stat_statements_info"): "reads the statistics' own counters",
}
"""(extension, function) pairs reviewed as reads; membership is pg_depend's, which only the
extension's owner can change. pg_stat_statements_reset is not here: it resets."""

PROCS_SQL = """
SELECT p.oid::int8 AS oid, n.nspname, p.proname, p.provolatile::text AS volatile,
       p.pronargs::int AS nargs, e.extname, l.lanname,
       CASE WHEN a.aggfnoid IS NOT NULL THEN
         ARRAY[a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn, a.aggdeserialfn,
               a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn]::oid[]::int8[]
       END AS parts
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
LEFT JOIN pg_aggregate a ON a.aggfnoid = p.oid
LEFT JOIN pg_language l ON l.oid = p.prolang
LEFT JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
     AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
LEFT JOIN pg_extension e ON e.oid = d.refobjid
"""

OPERATORS_SQL = """
SELECT o.oid::int8 AS oid, n.nspname, o.oprname, o.oprcode::oid::int8 AS code,
       o.oprrest::oid::int8 AS rest, o.oprjoin::oid::int8 AS join
FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
"""

FACTS_SQL = """
WITH RECURSIVE
wanted(sch, nam) AS (SELECT * FROM unnest($1::text[], $2::text[])),
named AS (
  SELECT c.oid, w.sch, w.nam FROM wanted w
  JOIN pg_class c ON c.relname = w.nam
  JOIN pg_namespace n ON n.oid = c.relnamespace AND (w.sch = '' OR n.nspname = w.sch)
),
reached(oid, via, depth) AS (
  SELECT oid, oid, 0 FROM named
  UNION
  SELECT e.child, r.via, r.depth + 1 FROM reached r CROSS JOIN LATERAL (
    SELECT d.refobjid AS child FROM pg_rewrite w
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid
         AND d.refclassid = 'pg_class'::regclass
    WHERE w.ev_class = r.oid AND r.oid >= 16384 AND d.refobjid <> r.oid
    UNION ALL
    SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = r.oid
    UNION ALL
    SELECT d.refobjid FROM pg_policy p
    JOIN pg_depend d ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid
         AND d.refclassid = 'pg_class'::regclass
    WHERE p.polrelid = r.oid AND d.refobjid <> r.oid
  ) e
  WHERE r.depth < 32
),
rels AS (SELECT DISTINCT oid, via FROM reached),
typ_named AS (
  SELECT t.oid, w.sch, w.nam FROM unnest($3::text[], $4::text[]) w(sch, nam)
  JOIN pg_type t ON t.typname = w.nam
  JOIN pg_namespace n ON n.oid = t.typnamespace AND (w.sch = '' OR n.nspname = w.sch)
),
types(oid, depth) AS (
  SELECT oid, 0 FROM typ_named
  UNION
  SELECT a.atttypid, 0 FROM pg_attribute a JOIN rels r ON a.attrelid = r.oid
  WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION
  SELECT x.child, t.depth + 1 FROM types t JOIN pg_type y ON y.oid = t.oid
  CROSS JOIN LATERAL (VALUES (y.typelem), (y.typbasetype)) x(child)
  WHERE x.child <> 0 AND t.depth < 8
),
trees(label, tree) AS (
  SELECT 'view ' || r.via::regclass::text, w.ev_action::text FROM rels r
  JOIN pg_rewrite w ON w.ev_class = r.oid
  WHERE r.oid >= 16384
  UNION ALL
  SELECT 'policy ' || p.polname || ' on ' || p.polrelid::regclass::text,
         concat(p.polqual::text, ' ', p.polwithcheck::text)
  FROM rels r JOIN pg_policy p ON p.polrelid = r.oid
  UNION ALL
  SELECT 'domain ' || format_type(k.contypid, NULL), k.conbin::text FROM pg_constraint k
  WHERE k.contypid IN (SELECT oid FROM types) AND k.conbin IS NOT NULL
),
fns(label, fn) AS (
  SELECT 'type ' || format_type(t.oid, NULL),
         unnest(ARRAY[t.typinput, t.typoutput, t.typreceive, t.typsend]::oid[])
  FROM pg_type t WHERE t.oid IN (SELECT oid FROM types) AND t.oid >= 16384
  UNION ALL
  SELECT 'cast to ' || format_type(c.casttarget, NULL), c.castfunc FROM pg_cast c
  WHERE c.casttarget IN (SELECT oid FROM typ_named) AND c.castfunc <> 0
)
SELECT 'named' AS tag, sch AS a, nam AS b, NULL::text AS c, NULL::int8 AS fn FROM named
UNION ALL
SELECT 'type', sch, nam, NULL, NULL FROM typ_named
UNION ALL
SELECT 'relation', r.via::regclass::text, r.oid::regclass::text, c.relkind::text, r.oid::int8
FROM rels r JOIN pg_class c ON c.oid = r.oid
UNION ALL
SELECT 'function', label, NULL, NULL, fn::int8 FROM fns WHERE fn <> 0
UNION ALL
SELECT 'tree', label, tree, NULL, NULL FROM trees
"""

TRIAL_SQL = """
WITH RECURSIVE
target AS (
  SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relname = $2 AND ($1 = '' OR n.nspname = $1)
),
tables(oid, depth) AS (
  SELECT oid, 0 FROM target
  UNION
  SELECT e.child, t.depth + 1 FROM tables t CROSS JOIN LATERAL (
    SELECT k.conrelid AS child FROM pg_constraint k
    WHERE k.confrelid = t.oid AND k.contype = 'f'
      AND (k.confdeltype IN ('c', 'n', 'd') OR k.confupdtype IN ('c', 'n', 'd'))
    UNION ALL
    SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = t.oid
  ) e
  WHERE t.depth < 16
),
tabs AS (SELECT oid, min(depth) AS depth FROM tables GROUP BY oid)
SELECT 'table' AS tag, t.oid::regclass::text AS rel, c.relkind::text AS what, NULL::text AS tree,
       t.depth
FROM tabs t JOIN pg_class c ON c.oid = t.oid
UNION ALL
SELECT 'trigger', t.oid::regclass::text, g.tgname, NULL, t.depth FROM tabs t
JOIN pg_trigger g ON g.tgrelid = t.oid WHERE NOT g.tgisinternal
UNION ALL
SELECT 'rule', t.oid::regclass::text, w.rulename, NULL, t.depth FROM tabs t
JOIN pg_rewrite w ON w.ev_class = t.oid
UNION ALL
SELECT 'identity', t.oid::regclass::text, a.attname, NULL, t.depth FROM tabs t
JOIN pg_attribute a ON a.attrelid = t.oid WHERE a.attidentity <> '' AND NOT a.attisdropped
UNION ALL
SELECT 'default of column', t.oid::regclass::text, a.attname, f.adbin::text, t.depth FROM tabs t
JOIN pg_attrdef f ON f.adrelid = t.oid
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = f.adnum
UNION ALL
SELECT 'constraint', t.oid::regclass::text, k.conname, k.conbin::text, t.depth FROM tabs t
JOIN pg_constraint k ON k.conrelid = t.oid WHERE k.conbin IS NOT NULL
UNION ALL
SELECT 'domain constraint', t.oid::regclass::text, k.conname, k.conbin::text, t.depth FROM tabs t
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_constraint k ON k.contypid = a.atttypid WHERE k.conbin IS NOT NULL
"""

_RELKINDS = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "S": "sequence",
    "c": "composite type",
    "i": "index",
    "I": "partitioned index",
    "t": "TOAST table",
}


@dataclass(frozen=True, slots=True)
class Proc:
    oid: int
    schema: str
    name: str
    volatile: str
    """pg_proc.provolatile: i(mmutable), s(table) or v(olatile)."""
    nargs: int
    extension: str | None
    parts: tuple[int, ...] = ()
    """An aggregate's support functions: its own provolatile says nothing about them (an
    aggregate is listed immutable whatever its transition function does)."""
    language: str = "internal"

    @property
    def declared_calm(self) -> bool:
        """A user's own function declared STABLE or IMMUTABLE: a declaration PostgreSQL does
        not enforce (such a function may call a volatile one), so its body is read too."""
        calm = self.volatile != "v" and not self.parts  # an aggregate: its parts are checked
        return calm and not self.builtin and self.extension is None

    @property
    def builtin(self) -> bool:
        return self.oid < FIRST_NORMAL_OID

    @property
    def shown(self) -> str:
        return self.name if self.schema == "pg_catalog" else f"{self.schema}.{self.name}"

    def harmless(self) -> str | None:
        """Why this volatile function has no side effect, when it is on a reviewed list."""
        if self.builtin and self.schema == "pg_catalog":
            return HARMLESS.get(self.name)
        if self.extension is not None:
            return HARMLESS_EXTENSION.get((self.extension, self.name))
        return None

    def problem(self) -> str | None:
        """None when calling it cannot change anything; else "calls f (volatile)"."""
        if self.volatile != "v" or self.harmless() is not None:
            return None
        return f"calls {self.shown} (volatile)"


@dataclass(frozen=True, slots=True)
class Operator:
    schema: str
    name: str
    functions: tuple[int, ...]
    """oprcode, and the planner's estimators oprrest/oprjoin when set."""


@dataclass
class Catalog:
    """pg_proc and pg_operator of one server, as read once."""

    procs: dict[int, Proc] = field(default_factory=dict)
    by_name: dict[str, list[Proc]] = field(default_factory=lambda: defaultdict(list))
    operators: dict[str, list[Operator]] = field(default_factory=lambda: defaultdict(list))
    operator_oids: dict[int, Operator] = field(default_factory=dict)

    def named(self, name: Name) -> list[Proc]:
        schema, word = name
        return [p for p in self.by_name.get(word, ()) if schema is None or p.schema == schema]

    def operators_named(self, name: Name) -> list[Operator]:
        schema, word = name
        return [o for o in self.operators.get(word, ()) if schema is None or o.schema == schema]


UNKNOWN = "(cannot be proven a read)"
DECLARED = "(declared "
"""Marks a problem found in the body of a function declared STABLE or IMMUTABLE."""
"""Ends a problem about a name the server does not know (yet): worth asking again later."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """What the catalog says about one statement."""

    problems: tuple[str, ...]
    """Each way it may run a side effect or cannot be proven not to; empty: a provable read
    (when its shape is a read)."""
    harmless: tuple[str, ...] = ()
    """Volatile functions it calls that are on a reviewed list."""
    functions: int = 0
    """How many functions it calls, directly or through what it reads."""

    @property
    def plannable(self) -> bool:
        """Whether planning it (EXPLAIN without ANALYZE) runs nothing unproven. The planner
        never runs a volatile function, but folds IMMUTABLE calls and evaluates STABLE ones
        for estimates: a function whose declaration its body contradicts would run."""
        return not any(DECLARED in p for p in self.problems)

    @property
    def settled(self) -> bool:
        """False when a problem is only a name the server does not know: a migration may
        create it, so the question is worth asking again."""
        return not any(p.endswith(UNKNOWN) for p in self.problems)


@dataclass(frozen=True, slots=True)
class Trial:
    """Whether a rolled-back trial of a write can act outside its transaction."""

    problems: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return not self.problems


_CATALOGS: weakref.WeakKeyDictionary[PostgresClient, Catalog] = weakref.WeakKeyDictionary()


async def catalog_of(
    client: PostgresClient, *, time_limit: float | None = None, refresh: bool = False
) -> Catalog:
    """The client's cached catalog, read (in a READ ONLY transaction) on first use."""
    cached = _CATALOGS.get(client)
    if cached is not None and not refresh:
        return cached

    async def read(conn: PoolConnectionProxy[Record]) -> Catalog:
        catalog = Catalog()
        for row in await conn.fetch(PROCS_SQL):
            proc = Proc(
                int(row["oid"]),
                str(row["nspname"]),
                str(row["proname"]),
                str(row["volatile"]),
                int(row["nargs"]),
                row["extname"],
                tuple(int(o) for o in row["parts"] or () if o),
                str(row["lanname"] or "internal"),
            )
            catalog.procs[proc.oid] = proc
            catalog.by_name[proc.name].append(proc)
        for row in await conn.fetch(OPERATORS_SQL):
            codes = tuple(int(row[k]) for k in ("code", "rest", "join") if int(row[k]) != 0)
            operator = Operator(str(row["nspname"]), str(row["oprname"]), codes)
            catalog.operators[operator.name].append(operator)
            catalog.operator_oids[int(row["oid"])] = operator
        return catalog

    catalog = await client.run_readonly(read, time_limit=time_limit)
    _CATALOGS[client] = catalog
    return catalog


async def judge(
    client: PostgresClient, statement: Statement, *, time_limit: float | None = None
) -> Judgement:
    """Every way `statement` could make the server run a side effect, from the catalog."""
    catalog = await catalog_of(client, time_limit=time_limit)
    if _needs_refresh(catalog, statement):
        catalog = await catalog_of(client, time_limit=time_limit, refresh=True)
    problems: list[str] = []
    harmless: list[str] = []
    checked: set[int] = set()

    def check(proc: Proc, context: str = "") -> None:
        if proc.oid in checked:
            return
        checked.add(proc.oid)
        reason = proc.harmless()
        if proc.volatile == "v" and reason is not None:
            harmless.append(proc.shown)
        problem = proc.problem()
        if problem is not None:
            problems.append(f"{context}{problem}")
        for oid in proc.parts:
            part = catalog.procs.get(oid)
            if part is None:
                problems.append(f"aggregate {proc.shown} runs unknown function oid {oid}")
            else:
                check(part, f"{context}aggregate {proc.shown} ")

    for name in sorted(statement.functions, key=_sort_key):
        procs = catalog.named(name)
        if not procs:
            problems.append(f"calls unknown function {_shown(name)} {UNKNOWN}")
        for proc in procs:
            check(proc)
    for name in sorted(statement.operators, key=_sort_key):
        operators = catalog.operators_named(name)
        if not operators and name[1] not in COMPARISONS:
            problems.append(f"uses unknown operator {_shown(name)} {UNKNOWN}")
        for operator in operators:
            for oid in operator.functions:
                code = catalog.procs.get(oid)
                if code is None:
                    problems.append(f"operator {operator.name} runs unknown function oid {oid}")
                else:
                    check(code, f"operator {operator.schema}.{operator.name} ")
    for word in sorted(statement.attribute_calls):
        for proc in catalog.by_name.get(word, ()):
            if proc.nargs == 1:
                check(proc, f"x.{word} may call {word}(x): ")
    if statement.relations or statement.types:
        rows = await _facts(client, statement, time_limit)
        problems += await _relation_problems(client, catalog, statement, rows, check, time_limit)
    read: set[int] = set()
    for _ in range(BODY_DEPTH):  # the bodies of calm-declared functions, and theirs in turn
        pending = [
            calm
            for calm in (catalog.procs.get(oid) for oid in sorted(checked - read))
            if calm is not None and calm.declared_calm
        ]
        if not pending:
            break
        read.update(calm.oid for calm in pending)
        bodies = await _bodies(client, [calm.oid for calm in pending], time_limit)
        for calm in pending:
            word = "IMMUTABLE" if calm.volatile == "i" else "STABLE"
            context = f"{calm.shown} {DECLARED}{word}) "
            try:
                source, definition = bodies[calm.oid]
                named_calls, named_operators = body_calls(calm.language, source, definition)
            except (KeyError, SqlProblem) as exc:
                problems.append(f"{context}cannot be checked: {exc}")
                continue
            for name in sorted(named_calls, key=_sort_key):
                called = catalog.named(name)
                if not called:
                    problems.append(f"{context}calls unknown function {_shown(name)} {UNKNOWN}")
                for callee in called:
                    check(callee, context)
            for name in sorted(named_operators, key=_sort_key):
                for used in catalog.operators_named(name):
                    for oid in used.functions:
                        code = catalog.procs.get(oid)
                        if code is not None:
                            check(code, f"{context}operator {used.name} ")
    else:
        problems.append("functions call functions deeper than opstui reads: cannot be proven")
    return Judgement(tuple(dict.fromkeys(problems)), tuple(dict.fromkeys(harmless)), len(checked))


BODY_DEPTH = 6
"""How deep calls of calm-declared functions are followed before giving up (as mutating)."""

BODIES_SQL = """
SELECT p.oid::int8 AS oid, p.prosrc, pg_get_functiondef(p.oid) AS definition
FROM pg_proc p WHERE p.oid = ANY($1::int8[]::oid[])
"""


async def _bodies(
    client: PostgresClient, oids: list[int], time_limit: float | None
) -> dict[int, tuple[str, str]]:
    async def read(conn: PoolConnectionProxy[Record]) -> dict[int, tuple[str, str]]:
        rows = await conn.fetch(BODIES_SQL, oids)
        return {int(r["oid"]): (str(r["prosrc"] or ""), str(r["definition"] or "")) for r in rows}

    return await client.run_readonly(read, time_limit=time_limit)


def _needs_refresh(catalog: Catalog, statement: Statement) -> bool:
    return any(not catalog.named(name) for name in statement.functions)


async def _facts(
    client: PostgresClient, statement: Statement, time_limit: float | None
) -> list[Record]:
    relations = sorted(statement.relations, key=_sort_key)
    types = sorted(statement.types, key=_sort_key)

    async def read(conn: PoolConnectionProxy[Record]) -> list[Record]:
        rows: list[Record] = await conn.fetch(
            FACTS_SQL,
            [s or "" for s, _ in relations],
            [n for _, n in relations],
            [s or "" for s, _ in types],
            [n for _, n in types],
        )
        return rows

    return await client.run_readonly(read, time_limit=time_limit)


async def _relation_problems(
    client: PostgresClient,
    catalog: Catalog,
    statement: Statement,
    rows: list[Record],
    check: Any,
    time_limit: float | None,
) -> list[str]:
    problems: list[str] = []
    found_relations = {(r["a"] or None, r["b"]) for r in rows if r["tag"] == "named"}
    found_types = {(r["a"] or None, r["b"]) for r in rows if r["tag"] == "type"}
    for name in sorted(statement.relations - found_relations, key=_sort_key):
        if name[0] is None and name[1] in statement.ctes:
            continue  # a WITH query of the statement itself
        problems.append(f"reads unknown relation {_shown(name)} {UNKNOWN}")
    for name in sorted(statement.types - found_types, key=_sort_key):
        problems.append(f"uses unknown type {_shown(name)} {UNKNOWN}")
    for row in rows:
        if row["tag"] == "relation" and row["c"] == "f":
            via = "" if row["a"] == row["b"] else f"{row['a']} reads "
            problems.append(
                f"{via}foreign table {row['b']} (a foreign table is not provably a read: its "
                "wrapper may run a program or reach another server)"
            )
    oids = [int(row["fn"]) for row in rows if row["tag"] == "function"]
    trees = [(str(row["a"]), str(row["b"])) for row in rows if row["tag"] == "tree"]
    if any(oid not in catalog.procs for oid in oids) or any(
        proc is None for _, tree in trees for proc in tree_functions(catalog, tree)
    ):
        catalog = await catalog_of(client, time_limit=time_limit, refresh=True)
    for row in rows:
        if row["tag"] != "function":
            continue
        found = catalog.procs.get(int(row["fn"]))
        if found is None:
            problems.append(f"{row['a']}: runs unknown function oid {row['fn']}")
        else:
            check(found, f"{row['a']}: ")
    for label, tree in trees:
        for proc in tree_functions(catalog, tree):
            if proc is None:
                problems.append(f"{label}: runs a function the catalog does not list")
            else:
                check(proc, f"{label}: ")
    return problems


_TREE_FUNCTION = re.compile(r":(?:funcid|opfuncid|aggfnoid|winfnoid|hashfuncid|negfuncid) (\d+)")
_TREE_OPERATOR = re.compile(r":opno (\d+)")
_TREE_OPERATORS = re.compile(r":opnos \(o ([\d ]*)\)")


def tree_functions(catalog: Catalog, tree: str) -> list[Proc | None]:
    """Every function a stored expression (pg_node_tree text: a view's rule, a policy, a
    default, a constraint) calls, by oid, directly or through an operator; None for an oid
    the catalog does not list. pg_depend cannot tell this: it records no dependency on a
    built-in (pinned) function such as pg_terminate_backend."""
    oids = {int(m) for m in _TREE_FUNCTION.findall(tree)}
    operators = {int(m) for m in _TREE_OPERATOR.findall(tree)}
    for group in _TREE_OPERATORS.findall(tree):
        operators.update(int(x) for x in group.split())
    for oid in operators:
        operator = catalog.operator_oids.get(oid)
        if operator is None:
            oids.add(-1)
        else:
            oids.update(operator.functions)
    oids.discard(0)
    return [catalog.procs.get(oid) for oid in sorted(oids)]


async def trial_facts(
    client: PostgresClient,
    statement: Statement,
    *,
    time_limit: float | None = None,
) -> Trial:
    """Whether writing the statement's target in a rolled-back transaction stays inside it: a
    plain table with no user trigger, no rule, no constraint calling a volatile function, and
    (where the statement fills defaults: INSERT, MERGE, UPDATE ... = DEFAULT) no identity
    column or default calling one (nextval advances a sequence, which a rollback does not
    undo); the same for every table an ON DELETE/UPDATE action reaches from it."""
    assert statement.target is not None
    target = statement.target
    fills_defaults = statement.command in ("INSERT", "MERGE") or statement.uses_default
    catalog = await catalog_of(client, time_limit=time_limit)
    schema, name = target

    async def read(conn: PoolConnectionProxy[Record]) -> list[Record]:
        rows: list[Record] = await conn.fetch(TRIAL_SQL, schema or "", name)
        return rows

    rows = await client.run_readonly(read, time_limit=time_limit)
    problems: list[str] = []
    tables = [r for r in rows if r["tag"] == "table"]
    if not tables:
        problems.append(f"{_shown(target)} is not a table this connection can see")
    for row in rows:
        tag, rel, what = row["tag"], row["rel"], row["what"]
        if tag in ("identity", "default of column") and row["depth"] == 0 and not fills_defaults:
            continue  # this statement never fills the target's defaults
        if tag == "table" and what != "r":
            problems.append(f"{rel} is a {_RELKINDS.get(what, what)}, not a plain table")
        elif tag == "trigger":
            problems.append(f"{rel} has trigger {what}")
        elif tag == "rule":
            problems.append(f"{rel} has rule {what}")
        elif tag == "identity":
            problems.append(f"{rel}.{what} is an identity column (its sequence would advance)")
        elif row["tree"] is not None:
            for proc in tree_functions(catalog, row["tree"]):
                if proc is None:
                    problems.append(f"{tag} {rel}.{what} calls an unknown function")
                elif proc.problem() is not None:
                    problems.append(f"{tag} {rel}.{what} {proc.problem()}")
    return Trial(tuple(dict.fromkeys(problems)))


def _shown(name: Name) -> str:
    return name[1] if name[0] is None else f"{name[0]}.{name[1]}"


def _sort_key(name: Name) -> tuple[str, str]:
    return (name[0] or "", name[1])


def relkind_word(kind: str) -> str:
    return _RELKINDS.get(kind, kind)
