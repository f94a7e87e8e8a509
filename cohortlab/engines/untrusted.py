"""A database file is data, never code: the objects in a DuckDB file that run SQL of their own.

A ``.duckdb`` file may come from someone else (a colleague's ``lab.duckdb``, a report's
``data.duckdb``, an ``observed_db``). DuckDB stores more than tables in it:

* a **view** runs its query whenever it is read. A view named ``mp_cohorts`` in place of the table
  would run inside ``cohortlab info``, ``simulate`` or ``report``, and its query may read any file
  the user can (``read_text('~/.ssh/id_rsa')``, ``/proc/self/environ``: the fetch secrets) and
  show it as a cohort name;
* a **macro** named after a built-in function (``lower``, ``regexp_matches``, ``read_json``)
  takes that function's place in every query of the connection, the attached file's macros
  included.

cohortlab writes tables only (its views are temporary, in memory), so a database holding a view,
or a macro named after a built-in function (in any letter case: DuckDB looks names up without
it), is refused when it is opened, with a line that names the objects and how to remove them.
The check comes before any query that reads what the file holds, and it runs with the search
path on DuckDB's own catalog (:func:`builtins_only`): the file's macros could otherwise stand in
for the very functions the check calls (``duckdb_views``, ``duckdb_functions``, ``lower``). (The
look for a cut-short file first reads the file's size, with ``pragma_database_size`` inside
:func:`builtins_only`, and checks only a short file: ``cohortlab.cli.app.truncated``.) Keep views of your own as ``CREATE TEMP VIEW`` or in another
database; a macro of another name is left alone (cohortlab never calls it). Extensions are never
installed from the network by a query (``autoinstall_known_extensions``): the ones cohortlab
uses are part of DuckDB.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from cohortlab.errors import DatabaseError
from cohortlab.escaping import one_line
from cohortlab.pipeline import sql_ident


def no_network_installs(con) -> None:
    """No query of ``con`` installs an extension from the network. Set on the open connection
    (a ``config=`` of ``duckdb.connect`` would make every later connection to the same file in
    this process, without it, fail); the setting is the database instance's."""
    con.execute("SET autoinstall_known_extensions = false")


@contextmanager
def builtins_only(con):
    """Queries of ``con`` inside resolve their functions, tables and views in DuckDB's own catalog
    (``system.main``), never in a database file's macros; the search path is reset after."""
    con.execute("SET search_path = 'system.main'")
    try:
        yield con
    finally:
        con.execute("RESET search_path")


_VIEWS_SQL = """
SELECT 'view', CASE WHEN schema_name = 'main' THEN '' ELSE schema_name END, view_name
FROM duckdb_views()
WHERE NOT internal AND NOT temporary AND database_name = ?
"""

# the file's macros, then, only when it has any, those named after a built-in function: listing
# DuckDB's functions (some 3,300) is most of the check's cost, 12 ms each time on a laptop, and
# a file cohortlab wrote has no macro
_MACROS_SQL = """
SELECT DISTINCT CASE WHEN function_type = 'table_macro' THEN 'table macro' ELSE 'macro' END,
       CASE WHEN schema_name = 'main' THEN '' ELSE schema_name END, function_name
FROM duckdb_functions()
WHERE NOT internal AND database_name = ?
"""

_BUILTIN_NAMES_SQL = """
SELECT name FROM (SELECT unnest(CAST(? AS VARCHAR[])) AS name)
WHERE lower(name) IN (SELECT lower(function_name) FROM duckdb_functions() WHERE internal)
"""


def objects_that_run_sql(con, catalog: str | None = None) -> list[tuple[str, str]]:
    """``(kind, name)`` of the views, and the macros named after a built-in function, stored in
    the attached database ``catalog`` (None: the connection's one database file); ``name`` is
    ``schema.name`` outside the schema ``main``."""
    return [(kind, f"{schema}.{name}" if schema else name) for kind, schema, name in _objects(con, catalog)]


def _objects(con, catalog: str | None) -> list[tuple[str, str, str]]:
    """``(kind, schema or '' for main, name)`` of :func:`objects_that_run_sql`."""
    with builtins_only(con):
        if catalog is None:
            catalog = con.execute("SELECT database_name FROM duckdb_databases() WHERE NOT internal "
                                  "ORDER BY database_name LIMIT 1").fetchone()[0]
        found = [tuple(row) for row in con.execute(_VIEWS_SQL, [catalog]).fetchall()]
        macros = [tuple(row) for row in con.execute(_MACROS_SQL, [catalog]).fetchall()]
        if macros:
            names = sorted({name for _, _, name in macros})
            builtin = {row[0] for row in con.execute(_BUILTIN_NAMES_SQL, [names]).fetchall()}
            found += [m for m in macros if m[2] in builtin]
    # views first, then table macros, then macros; by schema and name within each
    return sorted(sorted(found, key=lambda r: (r[1], r[2])), key=lambda r: r[0], reverse=True)


def read_only_look(path: str | os.PathLike, *, checked: bool = True):
    """A read-only connection to the DuckDB file ``path``, for a look a command takes before its
    own open (the file's tables, its size), or None when it cannot be opened now or holds an
    object that runs SQL: the command's own open then says why. The caller closes it.

    ``checked=False`` leaves out the check for objects that run SQL, for a caller whose first
    queries run inside :func:`builtins_only` and read DuckDB's own functions only (the file's size
    in its header); it calls :func:`objects_that_run_sql` itself before it reads anything else."""
    import duckdb

    from cohortlab.engines.duckdb import other_format_problem

    if other_format_problem(str(path)):  # DuckDB would look for an extension to open it (a SQLite file: seconds)
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None
    try:
        no_network_installs(con)
        if not checked or not objects_that_run_sql(con):  # the first query on the file
            return con
    except duckdb.Error:
        pass
    con.close()
    return None


def check_database(con, catalog: str | None, path: str) -> None:
    """Raise :class:`DatabaseError` when the database ``path`` (attached as ``catalog``; None: the
    connection's own file) holds an object that runs SQL of its own when cohortlab reads it (see
    the module docstring). Call it before any other query on the file."""
    found = _objects(con, catalog)
    if not found:
        return
    shown = ", ".join(f"{kind} {one_line(f'{schema}.{name}' if schema else name)!r}" for kind, schema, name in found[:5])
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    kind, schema, name = found[0]
    drop = ("DROP VIEW" if kind == "view" else "DROP MACRO TABLE" if kind == "table macro" else "DROP MACRO") + \
        " " + ".".join(sql_ident(part) for part in ([schema] if schema else []) + [name])
    each = "each" if len(found) > 1 else "it"
    raise DatabaseError(
        f"{path}: holds {shown}{more}, which would run SQL of its own (it may read any file) whenever "
        f"cohortlab reads the database; cohortlab's own databases hold tables only. Open a database cohortlab "
        f"wrote, or, if you trust the file, drop {each} ({one_line(drop)}; in Python: duckdb.connect(path)"
        f".execute(statement)); keep views of your own as TEMP views or in another database, and macros under "
        f"a name no built-in function has")


__all__ = ["builtins_only", "check_database", "no_network_installs", "objects_that_run_sql", "read_only_look"]
