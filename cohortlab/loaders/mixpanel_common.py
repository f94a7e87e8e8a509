"""SQL building blocks shared by the Mixpanel loaders (DuckDB dialect).

* :func:`id_text_sql` / :func:`raw_text_sql`: a JSON value as identifier text, never through a
  float (DuckDB keeps the exact text of JSON integers, even above 2^53).
* :func:`recover_float_tokens`: DuckDB re-serialises JSON *floats* (``1.2e18`` becomes
  ``1200000000000000000.0``). For the few rows whose ``$mparticle_user_id`` is a JSON float the
  exact token is read back from the file text with a regular expression.
* :func:`upsert_profiles`: the "upsert Mixpanel profiles from a relation" step used by the
  profiles loader and by the members loader (Engage pages carry ``$properties``).
* :func:`stage_engage_results`: Engage response pages and/or bare result objects, one row per
  profile, numbered in document order (shared by the profiles and members loaders).

Everything is set-based; nothing loops over records in Python.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from cohortlab.loaders.base import FileContext, LoadError, sniff_json_layout

NUMERIC_JSON_TYPES = "('BIGINT', 'UBIGINT', 'HUGEINT', 'DOUBLE')"

# Matches every `"$mparticle_user_id": <value>` key in a JSON text and captures the numeric token
# (empty for a non-numeric value). The number of matches is the number of occurrences of the key.
MPUID_TOKEN_RE = r'"\$mparticle_user_id"\s*:\s*(-?[0-9.eE+\-]*)'


def id_text_sql(v: str) -> str:
    """Identifier text of JSON value ``v``: a string as is, a number as its exact JSON text;
    NULL for absent, JSON null, the empty string, booleans, objects and arrays."""
    return (
        f"CASE json_type({v}) WHEN 'VARCHAR' THEN nullif(json_extract_string({v}, '$'), '') "
        f"WHEN 'BIGINT' THEN {v}::VARCHAR WHEN 'UBIGINT' THEN {v}::VARCHAR "
        f"WHEN 'HUGEINT' THEN {v}::VARCHAR WHEN 'DOUBLE' THEN {v}::VARCHAR END"
    )


def raw_text_sql(v: str) -> str:
    """Text of JSON value ``v`` "as exported": a string as is (also ``""``), anything else as its
    JSON text (``true``, ``{}``, numbers); NULL only for absent or JSON null."""
    return (
        f"CASE json_type({v}) WHEN 'VARCHAR' THEN json_extract_string({v}, '$') "
        f"WHEN 'NULL' THEN NULL ELSE {v}::VARCHAR END"
    )


def str_sql(v: str) -> str:
    """A JSON value as plain text (strings unquoted), NULL for absent/null."""
    return raw_text_sql(v)


def utc_timestamp_sql(v: str) -> str:
    """TIMESTAMP (UTC) from a JSON value holding an ISO-8601 string (no zone = UTC; an offset is
    honoured). Other types and unparsable strings give NULL."""
    return (
        f"CASE WHEN json_type({v}) = 'VARCHAR' THEN "
        f"timezone('UTC', TRY_CAST(trim(json_extract_string({v}, '$')) AS TIMESTAMPTZ)) END"
    )


def epoch_to_timestamp_sql(num: str, unit: str = "auto") -> str:
    """TIMESTAMP (UTC) from a DOUBLE epoch ``num`` in seconds, milliseconds or auto (> 1e11 = ms);
    NULL when not finite or outside the TIMESTAMP range."""
    mult = {"s": "1e6", "ms": "1e3"}.get(unit, f"(CASE WHEN abs({num}) > 1e11 THEN 1e3 ELSE 1e6 END)")
    micros = f"round({num} * {mult})"
    return (
        f"CASE WHEN {micros} BETWEEN -62135596800e6 AND 253402300799e6 "
        f"THEN make_timestamp(CAST({micros} AS BIGINT)) END"
    )


def json_number_sql(v: str) -> str:
    """DOUBLE from a JSON number or a numeric string; NULL otherwise."""
    return (
        f"CASE WHEN json_type({v}) IN {NUMERIC_JSON_TYPES} THEN TRY_CAST({v}::VARCHAR AS DOUBLE) "
        f"WHEN json_type({v}) = 'VARCHAR' THEN TRY_CAST(trim(json_extract_string({v}, '$')) AS DOUBLE) END"
    )


def parse_utc(value: Any, what: str) -> datetime:
    """An ISO-8601 string (``Z``/offset honoured, none = UTC), a datetime, or epoch s/ms → naive UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        v = float(value)
        dt = datetime.fromtimestamp(v / 1000 if abs(v) > 1e11 else v, tz=timezone.utc)
    elif isinstance(value, str) and value.strip():
        s = value.strip()
        try:
            num = float(s)
        except ValueError:
            num = None
        if num is not None:
            return parse_utc(num, what)
        try:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"{what}: cannot parse {value!r} as an ISO-8601 time") from None
    else:
        raise ValueError(f"{what}: expected an ISO-8601 time, got {value!r}")
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt


# --------------------------------------------------------------------------- exact float tokens
def doc_texts_sql(ctx: FileContext, layout: str) -> str:
    """SELECT (doc_no, text): the exact text of each document of the file. For JSONL a document
    is a line (doc_no = line); for a JSON array file the whole array is document 1."""
    if layout == "jsonl":
        return f"SELECT line AS doc_no, raw AS text FROM ({ctx.lines_sql()})"
    return (
        "SELECT row_number() OVER () AS doc_no, json::VARCHAR AS text FROM read_json_objects("
        f"{ctx.file_sql}, format='unstructured', compression='{ctx.compression}', "
        f"maximum_object_size={1024 * 1024 * 1024})"
    )


def doc_no_sql(layout: str, line: str = "line") -> str:
    """The doc_no (see :func:`doc_texts_sql`) of a record of ``ctx.json_records_sql()``."""
    return "1" if layout == "array" else line


def recover_float_tokens(ctx: FileContext, layout: str, stage: str, *, key: str, doc_no: str,
                         ord_: str, typ: str, text: str) -> int:
    """Replace ``stage.text`` by the exact JSON token for rows whose ``$mparticle_user_id`` is a
    JSON float (``typ = 'DOUBLE'``). Returns the number of rows fixed.

    ``stage`` must hold every record of the file (rejected ones too) with the columns named by
    ``key`` (unique row key), ``doc_no`` (document holding the record), ``ord_`` (document order),
    ``typ`` (json_type of the value, NULL when the key is absent) and ``text``.
    The k-th record having the key in a document takes the k-th occurrence of the key in the text;
    a token is used only when the occurrences and records line up and the token has the same
    numeric value, otherwise DuckDB's text is kept."""
    eng = ctx.engine
    if not eng.query_rows(f"SELECT 1 FROM {stage} WHERE {typ} = 'DOUBLE' LIMIT 1"):
        return 0
    fix = f"_mp_fix_{ctx.load_id}"
    eng.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {fix} AS
        WITH need AS (SELECT DISTINCT {doc_no} AS doc_no FROM {stage} WHERE {typ} = 'DOUBLE'),
        toks AS (
            SELECT d.doc_no, regexp_extract_all(d.text, '{MPUID_TOKEN_RE}', 1) AS toks
            FROM ({doc_texts_sql(ctx, layout)}) d WHERE d.doc_no IN (SELECT doc_no FROM need)
        ),
        present AS (
            SELECT {key} AS k, {doc_no} AS doc_no, {typ} AS typ, {text} AS txt,
                   row_number() OVER (PARTITION BY {doc_no} ORDER BY {ord_}) AS n,
                   count(*) OVER (PARTITION BY {doc_no}) AS total
            FROM {stage} WHERE {typ} IS NOT NULL AND {doc_no} IN (SELECT doc_no FROM need)
        )
        SELECT p.k, t.toks[p.n] AS token
        FROM present p JOIN toks t ON t.doc_no = p.doc_no
        WHERE p.typ = 'DOUBLE' AND len(t.toks) = p.total
          AND TRY_CAST(t.toks[p.n] AS DOUBLE) = TRY_CAST(p.txt AS DOUBLE)
        """
    )
    n = int(eng.query_rows(f"SELECT count(*) FROM {fix}")[0][0])
    if n:
        eng.execute(f"UPDATE {stage} SET {text} = f.token FROM {fix} f WHERE {stage}.{key} = f.k")
    eng.execute(f"DROP TABLE {fix}")
    return n


# --------------------------------------------------------------------------- Engage results
def stage_engage_results(ctx: FileContext, st: str) -> str:
    """Create temp table ``st`` with one row per Engage result of the file, in one pass:
    (line, doc_no, reason, raw, distinct_id, properties, has_properties). Returns the layout.

    Records may be Engage response pages (``{"results": [...]}``; each element is a result) or
    bare result objects (``{"$distinct_id": ..., "$properties": {...}}``). ``line`` is the record's
    line for a bare result, and the 1-based position across the file (document order, counting
    the results of pages only) for a page's result. ``raw`` is kept for rejected rows only.
    Raises LoadError for a page with a ``status`` other than ``"ok"``, and for a file with JSON
    objects none of which is a page or a result object."""
    layout = sniff_json_layout(ctx.path)
    records = ctx.json_records_sql()
    doc_no = "1" if layout == "array" else "rec_line"
    ctx.engine.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {st} AS
        WITH rec AS (
            SELECT line, raw, j, json_extract(j, ['$.results', '$."$distinct_id"', '$."$properties"']) AS v
            FROM ({records})
        ),
        pages AS (
            SELECT line, v[1] AS results, json_array_length(v[1]) AS n
            FROM rec WHERE json_type(v[1]) = 'ARRAY'
        ),
        page_pos AS (
            -- unnest of a list, not a json_each lateral join: the latter is quadratic here
            SELECT line, json_extract(results, '$[*]') AS elems,
                   sum(n) OVER (ORDER BY line ROWS UNBOUNDED PRECEDING) - n AS before
            FROM pages
        ),
        page_items AS (
            SELECT line, before, unnest(elems) AS value, generate_subscripts(elems, 1) AS k FROM page_pos
        ),
        items AS (
            -- bare records (results, and records that are not pages: rejected)
            SELECT line, line AS rec_line, raw, v[2] AS idv, v[3] AS pv,
                   CASE WHEN j IS NULL THEN 'malformed_json'
                        WHEN v[2] IS NOT NULL THEN 'result'
                        WHEN json_type(j) <> 'OBJECT' THEN 'not_an_object'
                        ELSE 'unrecognised' END AS kind
            FROM rec WHERE json_type(v[1]) IS DISTINCT FROM 'ARRAY'
            UNION ALL
            -- the results of pages
            SELECT before + k, line, value::VARCHAR, iv[1], iv[2],
                   CASE WHEN iv[1] IS NOT NULL OR iv[2] IS NOT NULL OR json_type(value) = 'OBJECT'
                        THEN 'result' ELSE 'not_an_object' END
            FROM (SELECT *, json_extract(value, ['$."$distinct_id"', '$."$properties"']) AS iv FROM page_items)
        ),
        cls AS (
            SELECT *, {id_text_sql('idv')} AS distinct_id, json_type(idv) AS id_type, json_type(pv) AS props_type
            FROM items
        ),
        res AS (
            SELECT line, {doc_no}::BIGINT AS doc_no, raw, distinct_id, pv, props_type, kind,
                   CASE WHEN kind IN ('malformed_json', 'not_an_object') THEN kind
                        WHEN distinct_id IS NOT NULL THEN
                            CASE WHEN props_type IS NOT NULL AND props_type NOT IN ('OBJECT', 'NULL')
                                 THEN 'bad_properties' END
                        WHEN id_type IN ('BOOLEAN', 'OBJECT', 'ARRAY') THEN 'bad_distinct_id'
                        ELSE 'missing_distinct_id' END AS reason
            FROM cls
        )
        SELECT line, doc_no, reason, kind,
               CASE WHEN reason IS NOT NULL THEN raw END AS raw, distinct_id,
               CASE WHEN props_type = 'OBJECT' THEN pv ELSE '{{}}'::JSON END AS properties,
               coalesce(props_type = 'OBJECT' AND pv::VARCHAR <> '{{}}', FALSE) AS has_properties
        FROM res
        """
    )
    _check_engage_stage(ctx, st)
    return layout


def _check_engage_stage(ctx: FileContext, st: str) -> None:
    eng = ctx.engine
    recognised, unrecognised = eng.query_rows(
        f"SELECT count(*) FILTER (WHERE kind = 'result'), count(*) FILTER (WHERE kind = 'unrecognised') FROM {st}"
    )[0]
    if not unrecognised:
        return
    bad = eng.query_rows(
        f"""
        SELECT line, json_extract_string(raw, '$.status'), coalesce(json_extract_string(raw, '$.error'), '')
        FROM {st}
        WHERE kind = 'unrecognised' AND json_type(raw, '$.status') = 'VARCHAR'
          AND json_extract_string(raw, '$.status') <> 'ok'
        ORDER BY line LIMIT 1
        """
    )
    if bad:
        line, status, error = bad[0]
        raise LoadError(ctx.path, f"Engage response with status {status!r}: {error}".rstrip(": "), line=int(line))
    if not recognised:
        raise LoadError(
            ctx.path,
            f"unrecognised format for {ctx.kind}: expected Engage response pages "
            '({"results": [...]}) or result objects ({"$distinct_id": ..., "$properties": {...}})',
        )


# --------------------------------------------------------------------------- profile upsert
def upsert_profiles(ctx: FileContext, relation: str, *, layout: str | None = None,
                    doc_no: str | None = None) -> tuple[int, int]:
    """Upsert Mixpanel profiles from ``relation`` = (line, distinct_id VARCHAR, properties JSON).

    Within the relation the last row of a distinct_id (highest ``line``) wins; a profile already
    in ``mp_profiles`` with the same distinct_id is replaced (delete + insert, inside the load's
    transaction). Columns derived from ``properties``: ``$mparticle_user_id`` (text as exported;
    a JSON float keeps its exact token when ``layout``/``doc_no`` let us find it in the file),
    ``$email``, ``$phone``, ``$created``, ``$last_seen`` (ISO strings, UTC; odd types → NULL).
    Returns (loaded, deduplicated): distinct profiles written, and rows superseded within the
    relation."""
    eng = ctx.engine
    st = f"_mp_prof_{ctx.load_id}"
    doc_expr = doc_no or "NULL::BIGINT"
    eng.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {st} AS
        SELECT line, distinct_id, properties, {doc_expr} AS doc_no,
               json_type(m) AS mp_type,
               CASE WHEN json_type(m) <> 'NULL' THEN json_extract_string(m, '$') END AS mparticle_user_id,
               v[1] AS email, v[2] AS phone,
               timezone('UTC', TRY_CAST(trim(v[3]) AS TIMESTAMPTZ)) AS created,
               timezone('UTC', TRY_CAST(trim(v[4]) AS TIMESTAMPTZ)) AS last_seen
        FROM (
            SELECT *, json_extract(properties, '$."$mparticle_user_id"') AS m,
                   -- strings as is; other types as JSON text (dates of another type then fail the cast: NULL)
                   json_extract_string(properties, ['$."$email"', '$."$phone"', '$."$created"', '$."$last_seen"']) AS v
            FROM ({relation})
        )
        """
    )
    if layout is not None and doc_no is not None:
        recover_float_tokens(ctx, layout, st, key="line", doc_no="doc_no", ord_="line",
                             typ="mp_type", text="mparticle_user_id")
    total, distinct = eng.query_rows(f"SELECT count(*), count(DISTINCT distinct_id) FROM {st}")[0]
    src = st
    if total != distinct:  # the last row of a distinct_id wins
        src = f"{st}_last"
        eng.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {src} AS
            SELECT * FROM {st} QUALIFY row_number() OVER (PARTITION BY distinct_id ORDER BY line DESC) = 1
            """
        )
    if eng.query_rows("SELECT 1 FROM mp_profiles LIMIT 1"):
        eng.execute(f"DELETE FROM mp_profiles WHERE distinct_id IN (SELECT distinct_id FROM {src})")
    eng.execute(
        f"""
        INSERT INTO mp_profiles (distinct_id, mparticle_user_id, email, phone, created, last_seen,
                                 properties, load_id, source_file, line)
        SELECT distinct_id, mparticle_user_id, email, phone, created, last_seen, properties,
               ?, ?, line
        FROM {src}
        """,
        [ctx.load_id, str(ctx.path)],
    )
    eng.execute(f"DROP TABLE {st}")
    if src != st:
        eng.execute(f"DROP TABLE {src}")
    return int(distinct), int(total) - int(distinct)


def register_cohorts(ctx: FileContext, relation: str) -> int:
    """Insert into mp_cohorts the cohorts of ``relation`` = (cohort_id, name, description,
    project_id, line) that are unknown: no row with the same name, nor with the same non-null id.
    Returns the number registered."""
    eng = ctx.engine
    before = int(eng.query_rows("SELECT count(*) FROM mp_cohorts")[0][0])
    eng.execute(
        f"""
        INSERT INTO mp_cohorts (cohort_id, name, description, count, created, is_visible,
                                project_id, load_id, source_file, line)
        SELECT cohort_id, name, description, NULL, NULL, NULL, project_id, ?, ?, line
        FROM ({relation}) r
        WHERE r.name IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM mp_cohorts c
                          WHERE c.name = r.name OR (r.cohort_id IS NOT NULL AND c.cohort_id = r.cohort_id))
        QUALIFY row_number() OVER (PARTITION BY r.name ORDER BY r.line) = 1
        """,
        [ctx.load_id, str(ctx.path)],
    )
    return int(eng.query_rows("SELECT count(*) FROM mp_cohorts")[0][0]) - before


def layout_of(ctx: FileContext) -> str:
    return sniff_json_layout(ctx.path)


__all__ = [
    "id_text_sql",
    "raw_text_sql",
    "utc_timestamp_sql",
    "epoch_to_timestamp_sql",
    "json_number_sql",
    "parse_utc",
    "recover_float_tokens",
    "stage_engage_results",
    "upsert_profiles",
    "register_cohorts",
    "layout_of",
]
