"""Hints to the query planner that keep a statement on the plan its comment explains.

``fixed(n)``: a LIMIT written into the SQL instead of bound. asyncpg prepares each statement,
and from its sixth run PostgreSQL may switch to a generic plan, which cannot see a bound LIMIT
and plans as if every row were wanted: the reminder planning's batch of 1,000 went from 10 ms
to 4 s that way. The few distinct values (a batch size, a page) each get their own statement.

SQLite plans without statistics (the bot never runs ANALYZE), so a term it could answer from an
index sometimes makes it take that index over a better one, or read a whole ward through a
sort it did not need. ``unindexed(column)`` is SQLite's documented way to say "do not use an
index for this term" (a unary ``+``); other databases get the column as it is and plan from
their own statistics."""

from __future__ import annotations

from typing import Any

from sqlalchemy import literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class unindexed(FunctionElement[Any]):  # noqa: N801 - reads as a function in a query
    """``column``, which SQLite must not reach through an index for this term
    (https://www.sqlite.org/optoverview.html#disqualifying_where_clause_terms_using_unary_)."""

    inherit_cache = True

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _as_is(element: unindexed, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)  # type: ignore[no-any-return]


@compiles(unindexed, "sqlite")
def _sqlite(element: unindexed, compiler: Any, **kw: Any) -> str:
    return "+" + compiler.process(element.clauses, **kw)


def fixed(limit: int) -> Any:
    """``limit`` for ``.limit()``, written into the SQL (see the module)."""
    return literal_column(str(int(limit)))
