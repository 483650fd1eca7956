"""What one SQL statement is and what it could run, read by PostgreSQL's own parser (pglast).

Pure: no I/O, so config/ (validate: exactly one statement; a probe must be a plain read) and
sources/ (the catalog check) share one reading of the text. The parse says which command it is
and collects every name through which the server could run a function: function calls,
operators (explicit, and the comparison operators that ORDER BY, GROUP BY, DISTINCT, IN and
joins use implicitly), relations (a view runs its rewrite rule, a foreign table its wrapper, a
policy its expressions), type names (a cast to a user type runs its functions) and the
`t.f` attribute notation, which calls `f(t)` when `t` has no column `f`. Whether those names
are safe is the server's catalog to say (sources/pg_catalog.py): unknown is never safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pglast import ast

Name = tuple[str | None, str]
"""(schema or None when unqualified, name)."""

COMPARISONS = frozenset({"=", "<>", "<", ">", "<=", ">="})
"""Operators a statement may use without spelling them (sorts, grouping, IN, joins, CASE)."""

READ_COMMANDS = frozenset({"SELECT", "VALUES", "TABLE", "SHOW", "EXPLAIN"})
TRIAL_COMMANDS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE"})
"""Statements a preview may run in a rolled-back transaction, when the catalog allows."""
EXPLAINABLE = frozenset({"SELECT", "VALUES", "TABLE", "INSERT", "UPDATE", "DELETE", "MERGE"})
"""Statements a preview may EXPLAIN (without ANALYZE: nothing runs)."""

_COMMANDS = {
    "VariableShowStmt": "SHOW",
    "VariableSetStmt": "SET",
    "InsertStmt": "INSERT",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "MergeStmt": "MERGE",
    "CopyStmt": "COPY",
    "CallStmt": "CALL",
    "DoStmt": "DO",
    "ListenStmt": "LISTEN",
    "UnlistenStmt": "UNLISTEN",
    "NotifyStmt": "NOTIFY",
    "VacuumStmt": "VACUUM",
    "TransactionStmt": "a transaction command",
    "ExplainStmt": "EXPLAIN",
    "TruncateStmt": "TRUNCATE",
    "CreateTableAsStmt": "CREATE TABLE AS",
    "ExecuteStmt": "EXECUTE",
    "LockStmt": "LOCK",
    "DeclareCursorStmt": "DECLARE",
}
_BETWEEN = ("<=", ">=")
_FALSE = frozenset({"false", "off", "0", "no"})


class SqlProblem(ValueError):
    """The text is not exactly one statement PostgreSQL can parse; one line, why."""


@dataclass(frozen=True, slots=True)
class Statement:
    """One parsed statement: its command, whether its shape is a plain read, and every name
    through which it could make the server run a function."""

    command: str
    """SELECT, VALUES, TABLE, SHOW, EXPLAIN, UPDATE, COPY, ..."""
    text: str
    """The statement's own text (without a trailing `;` or what follows it)."""
    not_read: str | None
    """Why its shape is not a plain read ("UPDATE writes", "locking clause FOR UPDATE"...);
    None for a plain read (whose functions the catalog must still clear)."""
    functions: frozenset[Name]
    operators: frozenset[Name]
    relations: frozenset[Name]
    types: frozenset[Name]
    attribute_calls: frozenset[str]
    """Names used as `x.name` or `(x).name`: a one-argument function of that name would run."""
    ctes: frozenset[str]
    target: Name | None = None
    """The table an INSERT/UPDATE/DELETE/MERGE writes."""
    data_modifying_cte: bool = False
    into: bool = False
    """SELECT INTO: it creates a table."""
    uses_default: bool = False
    """`SET col = DEFAULT` or `VALUES (DEFAULT)`: column defaults run."""

    @property
    def read(self) -> bool:
        return self.not_read is None

    @property
    def trial_shape(self) -> bool:
        """A single INSERT/UPDATE/DELETE/MERGE with no other write inside it."""
        return self.command in TRIAL_COMMANDS and not self.data_modifying_cte

    @property
    def calls_anything(self) -> bool:
        return bool(self.functions or self.relations or self.types or self.attribute_calls)


def parse_statement(sql: str) -> Statement:
    """The one statement in `sql`; SqlProblem when it is empty, several, or does not parse."""
    import pglast
    from pglast.parser import ParseError

    try:
        raws = pglast.parse_sql(sql)
    except ParseError as exc:
        raise SqlProblem(f"SQL does not parse: {_one_line(str(exc))}") from None
    if not raws:
        raise SqlProblem("SQL has no statement")
    if len(raws) > 1:
        raise SqlProblem(
            f"SQL has {len(raws)} statements; a step or probe runs exactly one "
            "(each runs through the extended protocol, and a second could escape the "
            "transaction opstui puts it in)"
        )
    raw = raws[0]
    if raw.stmt is None:
        raise SqlProblem("SQL has no statement")
    start = raw.stmt_location or 0
    length = raw.stmt_len or len(sql) - start
    return _statement(raw.stmt, sql[start : start + length].strip())


def check_plain_read(sql: str) -> Statement:
    """For probes: a plain read, or ValueError saying why it is not."""
    statement = parse_statement(sql)
    if statement.not_read is not None:
        raise SqlProblem(
            "an sql probe must be a plain read (SELECT, VALUES, TABLE, SHOW, EXPLAIN without "
            f"ANALYZE): {statement.not_read}"
        )
    return statement


def body_calls(
    language: str, source: str, definition: str
) -> tuple[frozenset[Name], frozenset[Name]]:
    """The functions and the operators a LANGUAGE sql or plpgsql body uses, so a function
    declared STABLE or IMMUTABLE is held to what it does. SqlProblem when it cannot be read in
    full: dynamic SQL (plpgsql EXECUTE), a body that does not parse, another language."""
    import pglast
    from pglast.parser import ParseError

    found = _Collector()
    try:
        if language == "sql":
            found.walk(pglast.parse_sql(source if source.strip() else definition))
        elif language == "plpgsql":
            for query in _plpgsql_queries(pglast.parse_plpgsql(definition)):
                found.walk(pglast.parse_sql(query))
        else:
            raise SqlProblem(f"a {language} body cannot be read")
    except ParseError as exc:
        raise SqlProblem(f"its body does not parse: {_one_line(str(exc))}") from None
    return frozenset(found.functions), frozenset(found.operators)


_DYNAMIC = ("PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors")


def _plpgsql_queries(tree: Any) -> list[str]:
    """Every SQL text of a PL/pgSQL function, as statements pglast can parse."""
    queries: list[str] = []
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                if key in _DYNAMIC or (key == "PLpgSQL_stmt_open" and "dynquery" in value):
                    raise SqlProblem("it runs dynamic SQL (EXECUTE), which cannot be read")
                if key == "PLpgSQL_expr" and isinstance(value, dict):
                    queries.append(_expr_statement(str(value.get("query", "")), value))
                else:
                    stack.append(value)
    return queries


def _expr_statement(query: str, expr: dict[str, Any]) -> str:
    mode = int(expr.get("parseMode", 0))
    if mode == 0:
        return query
    if mode >= 3 and ":=" in query:  # `target := expression`
        query = query.split(":=", 1)[1]
    return f"SELECT {query}"


# --- reading the tree ---------------------------------------------------------------------------


def _command(node: ast.Node) -> str:
    name = type(node).__name__
    if name == "SelectStmt":
        return _select_word(node)
    if name in _COMMANDS:
        return _COMMANDS[name]
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name.removesuffix("Stmt")).upper()
    return words or name


def _select_word(node: Any) -> str:
    if getattr(node, "valuesLists", None):
        return "VALUES"
    return "SELECT"


def _statement(node: ast.Node, text: str) -> Statement:
    found = _Collector()
    found.walk(node)
    command = _command(node)
    not_read = _shape_problem(node, command, found)
    target = _target(node)
    return Statement(
        command=command,
        text=text,
        not_read=not_read,
        functions=frozenset(found.functions),
        operators=frozenset(found.operators),
        relations=frozenset(found.relations),
        types=frozenset(found.types),
        attribute_calls=frozenset(found.attributes),
        ctes=frozenset(found.ctes),
        target=target,
        data_modifying_cte=found.modifying_cte is not None,
        into=found.select_into,
        uses_default=found.uses_default,
    )


def _shape_problem(node: ast.Node, command: str, found: _Collector) -> str | None:
    kind = type(node).__name__
    if kind == "ExplainStmt":
        if _explain_analyze(node):
            return "EXPLAIN ANALYZE runs the statement"
        inner = getattr(node, "query", None)
        if inner is None:
            return "EXPLAIN of nothing"
        inner_command = _command(inner)
        problem = _shape_problem(inner, inner_command, found)
        return None if problem is None else f"EXPLAIN of a statement that is not a read: {problem}"
    if kind == "VariableShowStmt":
        return None
    if kind != "SelectStmt":
        if command == "COPY":
            return "COPY is not a plain read (it can write a file or run a program on the server)"
        if command in TRIAL_COMMANDS or command in ("TRUNCATE", "CREATE TABLE AS"):
            return f"{command} writes"
        return f"{command} is not a read"
    if found.modifying_cte is not None:
        return f"a data-modifying CTE ({found.modifying_cte})"
    if found.select_into:
        return "SELECT INTO creates a table"
    if found.locking is not None:
        return f"locking clause {found.locking} takes row locks"
    return None


def _explain_analyze(node: Any) -> bool:
    for option in getattr(node, "options", None) or ():
        if getattr(option, "defname", "") != "analyze":
            continue
        arg = getattr(option, "arg", None)
        if arg is None:
            return True
        value = getattr(arg, "sval", getattr(arg, "ival", getattr(arg, "boolval", None)))
        if str(value).lower() not in _FALSE:
            return True
    return False


def _target(node: Any) -> Name | None:
    relation = getattr(node, "relation", None) if type(node).__name__ in _DML_NODES else None
    if relation is None:
        return None
    return (getattr(relation, "schemaname", None), str(relation.relname))


_DML_NODES = frozenset({"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"})
_LOCKS = {
    "LCS_FORKEYSHARE": "FOR KEY SHARE",
    "LCS_FORSHARE": "FOR SHARE",
    "LCS_FORNOKEYUPDATE": "FOR NO KEY UPDATE",
    "LCS_FORUPDATE": "FOR UPDATE",
}


class _Collector:
    """Walks every node once, gathering names and the shape facts of reads."""

    def __init__(self) -> None:
        self.functions: set[Name] = set()
        self.operators: set[Name] = set(_unqualified(COMPARISONS))
        self.relations: set[Name] = set()
        self.types: set[Name] = set()
        self.attributes: set[str] = set()
        self.ctes: set[str] = set()
        self.modifying_cte: str | None = None
        self.select_into = False
        self.locking: str | None = None
        self.uses_default = False

    def walk(self, value: Any) -> None:
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, list | tuple):
                stack.extend(item)
                continue
            slots = getattr(type(item), "__slots__", None)
            if not isinstance(slots, dict):
                continue
            self._visit(item)
            for name in slots:
                child = getattr(item, name, None)
                if child is not None and not isinstance(child, str | int | float | bool):
                    stack.append(child)

    def _visit(self, node: Any) -> None:
        kind = type(node).__name__
        if kind == "FuncCall":
            self.functions.add(_name(node.funcname))
        elif kind == "A_Expr":
            self._operator(node)
        elif kind == "SubLink" and getattr(node, "operName", None):
            self.operators.add(_name(node.operName))
        elif kind == "SortBy" and getattr(node, "useOp", None):
            self.operators.add(_name(node.useOp))
        elif kind == "RangeVar":
            self.relations.add((getattr(node, "schemaname", None), str(node.relname)))
        elif kind == "TypeName" and getattr(node, "names", None):
            self.types.add(_name(node.names))
        elif kind == "RangeTableSample":
            self.functions.add(_name(node.method))
        elif kind == "ColumnRef":
            fields = [f for f in node.fields or () if type(f).__name__ == "String"]
            if len(node.fields or ()) >= 2 and fields:
                self.attributes.add(str(fields[-1].sval))
        elif kind == "A_Indirection":
            for part in node.indirection or ():
                if type(part).__name__ == "String":
                    self.attributes.add(str(part.sval))
        elif kind == "CommonTableExpr":
            self.ctes.add(str(node.ctename))
            query = node.ctequery
            if query is not None and type(query).__name__ != "SelectStmt":
                self.modifying_cte = self.modifying_cte or _command(query)
        elif kind == "SetToDefault":
            self.uses_default = True
        elif kind == "SelectStmt":
            if getattr(node, "intoClause", None) is not None:
                self.select_into = True
            for clause in getattr(node, "lockingClause", None) or ():
                strength = getattr(clause.strength, "name", str(clause.strength))
                self.locking = self.locking or _LOCKS.get(strength, "FOR UPDATE")

    def _operator(self, node: Any) -> None:
        kind = getattr(node.kind, "name", str(node.kind))
        if "BETWEEN" in kind:
            self.operators.update(_unqualified(_BETWEEN))
            return
        if node.name:
            self.operators.add(_name(node.name))


def _unqualified(names: Any) -> set[Name]:
    return {(None, name) for name in names}


def _name(parts: Any) -> Name:
    words = [str(getattr(p, "sval", p)) for p in parts or ()]
    if not words:
        return (None, "")
    if len(words) == 1:
        return (None, words[0])
    return (words[-2], words[-1])


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]
