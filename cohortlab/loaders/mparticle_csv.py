"""mParticle profile snapshot as CSV → ``mpa_profiles``, ``mpa_identities``, ``mpa_attributes``
(kind ``mparticle-csv``).

One row per profile, a header line naming the columns (gzip detected by content):

* ``mpid`` (option ``mpid_column`` renames it; matched case-insensitively): read as text and
  validated exactly as int64 — an empty cell (or ``\\N``) is quarantined ``missing_mpid``,
  anything else that is not a valid MPID ``invalid_mpid``. No such column → :class:`LoadError` naming the file and
  the columns found.
* identity columns, named by identity type in any known spelling: user identities
  (``customer_id``, ``email``, ``other``, ``other_id_2`` … ``other_id_10``, ``mobile_number``,
  ``phone_number_2``, ``customerid``, ``other2`` …) and device identities (``ios_idfv``,
  ``ios_idfa``, ``android_uuid``, ``android_id``, ``push_token`` …); the type stored is the
  normalised Events API name. An empty cell is no identity, nor is ``\\N`` (the NULL a warehouse
  unload writes: Snowflake's default, Hive, Spark). A cell ``NULL`` (any case) is text: loaded as
  written, with a warning (an SQL NULL an export wrote as text?).
* every other column is a user attribute (option ``attributes``: a list, or a comma-separated
  string, restricts the attribute columns to those named; an empty string loads none). The value
  is stored as a JSON string; ``value_bool`` is TRUE for ``true``/``True``/``TRUE``, FALSE for
  ``false``/…, else NULL. An empty cell (or ``\\N``) is no attribute.

A header that repeats a column (the same name, or the same identity type or attribute name once
normalised) reads its first column; the later ones are ignored with a warning. A row that repeats
the header (part files joined: ``cat part_*.csv``) is no record: skipped, with a warning.

``line`` is the 1-based line of the row, the header being line 1 (line 2 after an Excel ``sep=X``
first line, which is skipped and names the delimiter; exact unless the file has blank lines or
quoted values spanning lines). A later snapshot (by its ``as_of``, else its load time) replaces every row of the
same MPID (the row is a snapshot of the profile: ``_mparticle.replace_profiles``); several rows of one MPID in a file: the last one wins, the
others count as ``deduplicated``.
"""

from __future__ import annotations

import re
from typing import Any

from cohortlab.identifiers import is_valid_mpid_sql
from cohortlab.loaders._mparticle import (
    Temp, count, profile_columns, repeated_columns_warning, replace_profiles, text_bool_sql,
)
from cohortlab.errors import LoadError
from cohortlab.loaders.base import (
    FileContext, FileResult, Loader, csv_read_sql, pop_as_of, repeated_header_sql, repeated_header_warning,
)
from cohortlab.loaders.files import csv_header, head_text
from cohortlab.pipeline import sql_ident, sql_str


# the cells that are no value: empty, and ``\N``, the NULL of warehouse unloads (Snowflake's
# default NULL_IF, Hive and Spark text tables, MySQL and PostgreSQL text dumps); loaded as text it
# was an identity (``customer_id`` = ``\N`` for every profile without one) or an attribute value
_NO_VALUE = "('', '\\N')"
# the start of a JSON document: an object, or an array of values (a CSV header may begin "[mpid]")
_JSON_START = re.compile(r'\{\s*("|\})|\[\s*([\[{"\]0-9-]|$)')


def _null_identities_warning(ctx: FileContext, identities: str) -> list[str]:
    """A warning when identity cells are the text ``NULL`` in any case: how some exports write an
    SQL NULL (SQL Server Management Studio's results, a ``NULL_IF=('NULL')`` unload). Identities
    are exact, so they load as written, but then every profile without one holds the same
    identity (``customer_id`` = ``NULL``): the warning names the identity types, the number of
    cells and the first one's line, never another value."""
    n, line, types = ctx.engine.query_rows(
        f"SELECT count(*), min(line), list(DISTINCT identity_type ORDER BY identity_type) FROM {identities} "
        f"WHERE upper(value) = 'NULL'")[0]
    if not n:
        return []
    return [f"{ctx.path}: {n:,} identity cell(s) are the text NULL ({', '.join(types)}; line {line}): an SQL NULL "
            f"written as text? Loaded as written, so each such profile holds that identity; export with NULL as "
            f"an empty field or \\N, which are no value"]


def _col(i: int) -> str:
    """The working name of the CSV's i-th column (0-based)."""
    return f"c{i + 1}"



class MParticleCsvLoader(Loader):
    kind = "mparticle-csv"
    description = "a profile snapshot CSV (mpid column and others)"

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        opts = dict(options)
        mpid_column = str(opts.pop("mpid_column", "mpid")).strip()
        attributes = opts.pop("attributes", None)
        as_of = pop_as_of(opts, self.kind)
        if opts:
            raise ValueError(
                f"{self.kind}: unknown option(s) {sorted(opts)}; expected mpid_column, attributes, as_of"
            )
        if not mpid_column:
            raise ValueError(f"{self.kind}: mpid_column must not be empty")
        if isinstance(attributes, str):
            attributes = [a.strip() for a in attributes.split(",") if a.strip()]
        elif attributes is not None:
            attributes = [str(a) for a in attributes]
        return {"mpid_column": mpid_column, "attributes": attributes, **as_of}


    def load_file(self, ctx: FileContext) -> FileResult:
        head = head_text(ctx.path, 4096).lstrip("\ufeff \t\r\n")
        if not head:
            raise LoadError(ctx.path, "empty file")
        # another format given to this kind: said so, not read as a CSV whose header is its bytes
        if head.startswith("PAR1"):  # Parquet's magic (head_text decompresses a gzip file first)
            raise LoadError(ctx.path, "a Parquet file (PAR1 header), not a CSV: load it with mparticle-parquet")
        if _JSON_START.match(head):  # not a header named "[mpid]"
            raise LoadError(ctx.path, f"JSON, not a CSV (the file starts with {head[0]!r}): load Profile API answers "
                                      "with mparticle-profiles, Events API batches with mparticle-batches")
        tmp = Temp(ctx)
        result = self._load(ctx, tmp)
        tmp.drop_all()  # on error the load's transaction rolls back, temp tables included
        return result

    def _load(self, ctx: FileContext, tmp: Temp) -> FileResult:
        head = csv_header(ctx.text_path(csv=True))
        columns = head.columns
        want = self.options["mpid_column"]
        mpid_col = next((c for c in columns if c == want), None) or next(
            (c for c in columns if c.strip().lower() == want.lower()), None
        )
        if mpid_col is None:
            raise LoadError(
                ctx.path, f"no {want!r} column (option mpid_column); columns found: {', '.join(columns)}"
            )
        # a header that repeats a column (the same name, or the same identity type or attribute
        # name once normalised: "email, Email", "Power Users, Power Users "): its first column is
        # read and the later ones are ignored, with a warning (one value per identity type and
        # attribute: reading both stored two values for one name, each the last column's)
        ids, attrs, ignored = profile_columns(columns, mpid_col)
        identity_cols = [(c, kind, t) for _, c, kind, t in ids]
        attr_cols = [c for _, c, _ in attrs]
        if self.options["attributes"] is not None:
            wanted = set(self.options["attributes"])  # a header named as written, or without its spaces
            names = set(attr_cols) | {c.strip() for c in attr_cols}
            missing = [a for a in self.options["attributes"] if a not in names]
            if missing:
                raise LoadError(
                    ctx.path,
                    f"attribute column(s) {', '.join(missing)} not found (option attributes); "
                    f"attribute columns found: {', '.join(attr_cols) or 'none'}",
                )
            attr_cols = [c for c in attr_cols if c in wanted or c.strip() in wanted]

        # the file's columns are read under positional names (c1 … cN): `ref` maps a header to its
        # position's name, so a header named like a working column (__reason, __line) cannot clash
        pos: dict[str, str] = {}
        for i, c in enumerate(columns):
            pos.setdefault(c, _col(i))  # a repeated name: its first column

        def ref(c: str) -> str:
            return sql_ident(pos[c])

        raw = "json_object(" + ", ".join(f"{sql_str(c)}, {ref(c)}" for c in columns) + ")::VARCHAR"
        m = ref(mpid_col)
        rows = tmp.create(
            "rows",
            f"SELECT row_number() OVER () + {1 + head.skip} AS __line, * FROM {csv_read_sql(ctx, head)}",
        )
        # the header repeated where joined part files began (cat part_*.csv): no record, skipped
        # with a warning (it was quarantined invalid_mpid, one per part)
        header = repeated_header_sql(head)
        n_headers, first_header = ctx.engine.query_rows(f"SELECT count(*), min(__line) FROM {rows} WHERE {header}")[0]
        if n_headers:
            ctx.engine.execute(f"DELETE FROM {rows} WHERE {header}")
        checked = tmp.create(
            "checked",
            f"""
            SELECT *, CASE WHEN __reason IS NULL THEN CAST({m} AS BIGINT) END AS __mpid FROM (
              SELECT *, CASE WHEN {m} IS NULL OR {m} IN {_NO_VALUE} THEN 'missing_mpid'
                             WHEN NOT {is_valid_mpid_sql(m)} THEN 'invalid_mpid' END AS __reason
              FROM {rows})""",
        )
        quarantined = ctx.reject(f"SELECT __line AS line, __reason AS reason, {raw} AS raw FROM {checked} WHERE __reason IS NOT NULL")
        winners = tmp.create(
            "winners",
            f"""
            SELECT * FROM (
              SELECT *, row_number() OVER (PARTITION BY __mpid ORDER BY __line DESC) AS __rn
              FROM {checked} WHERE __reason IS NULL
            ) WHERE __rn = 1""",
        )
        profiles = tmp.create(
            "profiles",
            f"SELECT __mpid AS mpid, NULL::TIMESTAMP AS created_at, NULL::TIMESTAMP AS last_stored_at, "
            f"NULL::BOOLEAN AS is_opted_out, NULL::VARCHAR AS environment, 'csv' AS source, __line AS line "
            f"FROM {winners}",
        )
        identities = None
        if identity_cols:
            identities = tmp.create(
                "identities",
                " UNION ALL ".join(
                    f"SELECT __mpid AS mpid, '{kind}' AS kind, {sql_str(t)} AS identity_type, "
                    f"{ref(c)} AS value, __line AS line FROM {winners} "
                    f"WHERE {ref(c)} IS NOT NULL AND {ref(c)} NOT IN {_NO_VALUE}"
                    for c, kind, t in identity_cols
                ),
            )
        attributes = None
        if attr_cols:
            attributes = tmp.create(
                "attributes",
                " UNION ALL ".join(
                    # the name without the spaces around it (a "mpid, Power Users" header), as an
                    # identity column's type is read; true / false with spaces around it is a boolean
                    f"SELECT __mpid AS mpid, {sql_str(c.strip())} AS name, to_json({ref(c)}) AS value, "
                    f"{text_bool_sql(f'trim({ref(c)})')} AS value_bool, __line AS line "
                    f"FROM {winners} WHERE {ref(c)} IS NOT NULL AND {ref(c)} NOT IN {_NO_VALUE}"
                    for c in attr_cols
                ),
            )
        superseded = replace_profiles(ctx, profiles, identities, attributes, None,
                                      columns=[c.strip() for c in attr_cols], header_line=1 + head.skip)

        rows_read = count(ctx, f"SELECT 1 FROM {rows}")
        loaded = count(ctx, f"SELECT 1 FROM {winners}") - superseded  # as de-duplicated
        valid = count(ctx, f"SELECT 1 FROM {checked} WHERE __reason IS NULL")
        warnings = repeated_columns_warning(ctx, ignored) + repeated_header_warning(ctx, n_headers, first_header)
        if identities is not None:
            warnings += _null_identities_warning(ctx, identities)
        return FileResult(rows_read=rows_read, loaded=loaded, deduplicated=valid - loaded,
                          quarantined=quarantined, warnings=warnings)
