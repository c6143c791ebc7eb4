"""The transaction a read model's handler and its readers get (`Tx`), over a library cursor.

SQL uses ``:name`` parameters and runs unchanged on SQLite and PostgreSQL (rewritten to
``%(name)s`` there); rows come back as dicts by column (docs/read-models.md)."""

from __future__ import annotations

import logging
import re
import sqlite3
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, Literal, Protocol

import psycopg
from eventsourcing import persistence as es_persistence

Dialect = Literal["sqlite", "postgres"]
log = logging.getLogger(__name__)

#: Errors that say the database is unreachable or busy, not that the event is bad.
TRANSIENT = (
    es_persistence.OperationalError,
    es_persistence.InterfaceError,
    psycopg.OperationalError,
    sqlite3.OperationalError,
)


class Tx(Protocol):
    """The handler's transaction. SQL uses ``:name`` parameters and runs unchanged on SQLite
    and PostgreSQL (rewritten to ``%(name)s`` there); `dialect` is for the rare statement that
    must differ."""

    dialect: Dialect

    def execute(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Any]: ...

    def executemany(self, statement: str, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def insert_many(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
        *,
        on_conflict: str = "",
    ) -> None: ...

    def update_many(
        self,
        table: str,
        keys: Sequence[str],
        columns: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
    ) -> None: ...

    def after_commit(self, callback: Callable[[], None]) -> None: ...


#: Most values in one ``IN (...)`` list (SQLite allows 32,766 variables; smaller lists keep
#: statements cacheable and plans cheap).
MAX_IN = 500


def in_clause(values: Sequence[Any], name: str = "v") -> tuple[str, dict[str, Any]]:
    """``"(:v0, :v1, ...)"`` and its parameters, for ``WHERE x IN <clause>`` on both dialects.
    At most MAX_IN values: split longer lists with `chunks`."""
    if not 0 < len(values) <= MAX_IN:
        raise ValueError(f"an IN list takes 1 to {MAX_IN} values, not {len(values)}")
    params = {f"{name}{i}": value for i, value in enumerate(values)}
    return "(" + ", ".join(f":{key}" for key in params) + ")", params


def chunks(values: Sequence[Any], size: int = MAX_IN) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


_PARAM = re.compile(r"(?<!:):(\w+)")

#: From this many rows on, insert_many and update_many go through COPY on PostgreSQL (below,
#: one pipelined statement per row costs less than the staging table's extra statements).
COPY_FROM_ROWS = 64


@lru_cache(maxsize=1024)
def _to_pyformat(statement: str) -> str:
    # Cached: a batch runs the same few statements thousands of times.
    return _PARAM.sub(r"%(\1)s", statement)


def _is_query(statement: str) -> bool:
    """Whether a statement returns rows (the library's SQLite cursor has no `description`)."""
    head = statement.lstrip().split(None, 1)[0].upper()
    return head in ("SELECT", "WITH", "VALUES") or " RETURNING " in statement.upper()


class CursorTx:
    """`Tx` over a library cursor (SQLite's wrapper or psycopg's)."""

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self._cursor = cursor
        self.dialect: Dialect = dialect
        self._rewrite: Callable[[str], str] = _to_pyformat if dialect == "postgres" else str
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once this transaction has committed (never if it rolls back):
        e.g. to wake a worker that reads what the transaction wrote."""
        self._after_commit.append(callback)

    def committed(self) -> None:
        for callback in self._after_commit:
            try:
                callback()
            except Exception:  # the commit stands: a failing callback must not undo the apply
                log.exception("after-commit callback %r failed", callback)
        self._after_commit.clear()

    def execute(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        self._cursor.execute(self._rewrite(statement), params or {})
        if not _is_query(statement):
            return []
        return list(self._cursor.fetchall())

    def executemany(self, statement: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """One statement for many rows: psycopg 3 sends them in pipeline mode (one round trip
        for all), SQLite steps one prepared statement."""
        if not rows:
            return
        if len(rows) == 1:  # a pipeline's extra sync costs more than it saves for one row
            self._cursor.execute(self._rewrite(statement), rows[0])
            return
        self._cursor.executemany(self._rewrite(statement), rows)

    def insert_many(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
        *,
        on_conflict: str = "",
    ) -> None:
        """``INSERT INTO table (columns) ... on_conflict`` for every row (dicts by column).
        Table and column names are the code's own, never input."""
        if not rows:
            return
        if self.dialect == "postgres" and len(rows) >= COPY_FROM_ROWS:
            stage = self._staged(table, columns, rows)
            self._cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"SELECT {', '.join(columns)} FROM {stage} {on_conflict}"
            )
            return
        values = ", ".join(f":{column}" for column in columns)
        self.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) {on_conflict}", rows
        )

    def update_many(
        self,
        table: str,
        keys: Sequence[str],
        columns: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
    ) -> None:
        """``UPDATE table SET columns WHERE keys`` for every row (dicts by column). A row
        whose keys match nothing changes nothing; keys should be unique among the rows."""
        if not rows:
            return
        if self.dialect == "postgres" and len(rows) >= COPY_FROM_ROWS:
            stage = self._staged(table, [*keys, *columns], rows)
            assignments = ", ".join(f"{column} = s.{column}" for column in columns)
            matches = " AND ".join(f"t.{key} = s.{key}" for key in keys)
            self._cursor.execute(
                f"UPDATE {table} AS t SET {assignments} FROM {stage} AS s WHERE {matches}"
            )
            return
        assignments = ", ".join(f"{column} = :{column}" for column in columns)
        matches = " AND ".join(f"{key} = :{key}" for key in keys)
        self.executemany(f"UPDATE {table} SET {assignments} WHERE {matches}", rows)

    def _staged(self, table: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
        """COPY the rows into a temporary table shaped like ``table``'s ``columns``, emptied
        at commit; its name. COPY sends every row in one stream, parsed by the server in
        bulk: measured about twice as fast as pipelined INSERTs for thousands of rows."""
        stage = f"stage_{table}_{zlib.crc32(','.join(columns).encode()):08x}"
        names = ", ".join(columns)
        self._cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
            f"SELECT {names} FROM {table} WITH NO DATA"
        )
        with self._cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[column] for column in columns])
        return stage
