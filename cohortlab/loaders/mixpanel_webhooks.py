"""``mixpanel-webhooks``: Mixpanel cohort-sync webhook payloads into ``mp_webhook_pages`` and
``mp_webhook_members``, in replay order.

A payload is ``{"action": "members" | "add_members" | "remove_members", "parameters":
{"mixpanel_project_id", "mixpanel_cohort_id", "mixpanel_cohort_name",
"mixpanel_cohort_description", "mixpanel_session_id", "page_info": {"total_pages",
"page_count"}, "members": [{"mixpanel_distinct_id" (or "$distinct_id"), "email" (or "$email"),
"first_name", ...}]}}``. Files: one payload per file (pretty-printed OK), a JSON array of
payloads, or JSONL. Ids may be strings or numbers (stored as text); extra keys are kept in
``mp_webhook_members.properties`` or ignored. A receiver's wrapper of the request (a record
without ``action`` whose ``body`` is the payload, or a JSON string holding it, beside keys such
as ``headers``) is read as its payload, on its own line, with the wrapper's ``received_at`` when
the payload has none; the wrapper's other keys are not read.

Receive time: option ``received_at`` (every record of the file), else a top-level
``"received_at"`` key on the record (ISO string, no zone = UTC, or epoch seconds/ms), else a
time in the file's name (``payload_2026-03-01T00-15-00Z.json``, read as a folder reads a members
file's: :func:`cohortlab.loaders.folder.as_of_from_name`; a receiver that names each request's
file by its time, and the ``folder`` kind, which takes no ``-o received_at``). A record without
a receive time is a LoadError naming the file and record.

One record = one page = one row read. ``seq`` follows the file order (the replay order). A page
identical to a page already stored or earlier in the file (same cohort, session_id, action,
page_count and member set; without a session_id, also the same receive time: such pages of one
content received apart are two messages) is deduplicated: replaying the same page changes nothing. Of such
copies the earliest receive time is kept (a stored page takes a copy's earlier one), so that a
message's time does not depend on the order in which its deliveries were written or loaded. A
member listed twice in one page is stored once, with its first entry, and the load warns (how
many entries, the first page's line). A missing
``members`` key is an empty page (Mixpanel makes empty diff calls); a ``members`` array beside
``parameters`` (a receiver that stored the payload that way) holds the page's members, and members
in both places are ``bad_members``. The cohort is registered in
``mp_cohorts`` when unknown and the payload names it (a payload with an id alone is stored; the
cohort's name then comes from the cohort list, which the simulation asks for).

The pages of one message (cohort, session_id, action) say how many they are
(``page_info.total_pages``) and which each is (``page_count``, from 1). After the call's last file
(:meth:`MixpanelWebhooksLoader.finish`: a message's pages may be in several files), a message the
call stored pages of whose stored pages (of any load) have fewer distinct page_count values than
its total_pages warns (:func:`_missing_pages_warnings`): a ``members`` message replaces the whole
list, so without its missing pages the cohort shrinks. Pages without a session_id are not counted.

Quarantine reasons: malformed_json, not_an_object, bad_action, bad_parameters, missing_cohort,
bad_members (``members`` not an array, a member not an object or without a distinct id). A
bad_members page is quarantined whole, its valid members too; the load warns which entries of
it are wrong (their place in the array and what is wrong, never a value: ``_bad_members_warning``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from cohortlab.errors import LoadError
from cohortlab.loaders.base import FileContext, FileResult, Loader
from cohortlab.times import BASIC_DATE_SQL
from cohortlab.loaders.files import sniff_json_layout
from cohortlab.pipeline import sql_list
from cohortlab.loaders.mixpanel_common import (
    NUMERIC_JSON_TYPES,
    cohort_id_sql,
    doc_no_sql,
    epoch_to_timestamp_sql,
    id_text_sql,
    json_number_sql,
    missing_ranges,
    number_ranges,
    parse_utc,
    parsed_records_sql,
    raw_text_sql,
    recover_float_tokens,
    register_cohorts,
    text_time_sql,
)

ACTIONS = ("members", "add_members", "remove_members")

_PATHS = [
    "$.action",  # 1
    "$.parameters.mixpanel_cohort_id",  # 2
    "$.parameters.mixpanel_cohort_name",  # 3
    "$.parameters.mixpanel_session_id",  # 4
    "$.parameters.page_info.page_count",  # 5
    "$.parameters.page_info.total_pages",  # 6
    "$.received_at",  # 7
    "$.parameters.mixpanel_cohort_description",  # 8
    "$.parameters.mixpanel_project_id",  # 9
]
# a receiver that stored the request (``{"headers": {...}, "body": <payload>}``): the payload is
# its "body", an object or a JSON string holding one, read in place of the record (read with the
# paths above, as index 10: a record with an "action" of its own is a payload, not a wrapper)
_BODY = "$.body"
# only the JSON types of these (a page's parameters hold all its members: never copied whole);
# a payload seen with its members beside "parameters" instead of inside carries them at "$.members"
_TYPE_PATHS = ["$.parameters", "$.parameters.members", "$.members"]


def _unwrapped_records_sql(records: str) -> str:
    """The records of ``records`` (line, raw, malformed, is_obj, v: the values of ``_PATHS`` and
    ``_BODY``) with a receiver's wrapper replaced by the payload it holds: a record without an
    ``action`` whose ``body`` is an object, or a string holding a JSON object, is read as that
    object (``raw`` its text, ``v`` its values; its line stays the wrapper's), with the wrapper's
    ``received_at`` when the payload has none (the time the receiver stored beside it).
    ``record_raw`` is the record as the file writes it (a reject's text); ``wrapped`` tells such
    a record."""
    body = ("CASE json_type(v[10]) WHEN 'OBJECT' THEN v[10]::VARCHAR WHEN 'VARCHAR' THEN "
            "CASE WHEN json_type(TRY_CAST(json_extract_string(v[10], '$') AS JSON)) = 'OBJECT' "
            "THEN json_extract_string(v[10], '$') END END")
    own_rx = "b[7] IS NOT NULL AND json_type(b[7]) <> 'NULL'"  # the payload's own received_at (index 7)
    return f"""
        SELECT line, CASE WHEN wrapped THEN body ELSE raw END AS raw, raw AS record_raw, malformed, is_obj,
               CASE WHEN wrapped THEN list_concat(b[1:6], [CASE WHEN {own_rx} THEN b[7] ELSE v[7] END], b[8:9])
                    ELSE v[1:9] END AS v,
               wrapped
        FROM (SELECT *, CASE WHEN wrapped THEN json_extract(body, {sql_list(_PATHS)}) END AS b
              FROM (SELECT *, coalesce(is_obj AND (v[1] IS NULL OR json_type(v[1]) = 'NULL') AND body IS NOT NULL,
                                       FALSE) AS wrapped
                    FROM (SELECT *, CASE WHEN is_obj AND v[10] IS NOT NULL THEN {body} END AS body FROM ({records}))))"""


class MixpanelWebhooksLoader(Loader):
    kind = "mixpanel-webhooks"
    description = "cohort-sync webhook payloads, in replay order"

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - {"received_at"})
        if unknown:
            raise ValueError(f"{self.kind}: unknown option(s) {unknown}; known: received_at")
        out: dict[str, Any] = {}
        if options.get("received_at") not in (None, ""):
            out["received_at"] = parse_utc(options["received_at"], f"{self.kind}: received_at").isoformat()
        return out

    def finish(self, engine, load_ids: list[int]) -> list[str]:
        """After the call's last file (a message's pages may be in several files of it): a warning
        for each message the call stored pages of that misses pages (:func:`_missing_pages_warnings`)."""
        return list(super().finish(engine, load_ids) or []) + _missing_pages_warnings(engine, load_ids)

    def load_file(self, ctx: FileContext) -> FileResult:
        eng = ctx.engine
        st = f"_mp_wh_{ctx.load_id}"
        layout = sniff_json_layout(ctx.text_path())
        actions = "(" + ", ".join(f"'{a}'" for a in ACTIONS) + ")"
        opt_rx = ctx.options.get("received_at")
        if opt_rx is not None:
            rx_sql = f"TIMESTAMP '{opt_rx}'"
        else:
            from cohortlab.loaders.folder import as_of_from_name

            rx_num, rx_text = json_number_sql("v[7]"), text_time_sql("json_extract_string(v[7], '$')")
            named = as_of_from_name(ctx.path.name)  # aware ISO text: as naive UTC, as the column
            # eight digits that form a date (a string or an integer): that date, not epoch seconds
            rx_basic = BASIC_DATE_SQL.format(t="trim(json_extract_string(v[7], '$'))")
            rx_sql = (
                f"CASE WHEN json_type(v[7]) IN ('VARCHAR', 'UBIGINT', 'BIGINT') AND {rx_basic} IS NOT NULL "
                f"THEN {rx_basic} "
                f"WHEN json_type(v[7]) IN {NUMERIC_JSON_TYPES} "
                f"  OR TRY_CAST(json_extract_string(v[7], '$') AS DOUBLE) IS NOT NULL "
                f"THEN {epoch_to_timestamp_sql(rx_num)} "
                + (f"WHEN v[7] IS NULL OR json_type(v[7]) = 'NULL' THEN TIMESTAMP '{named[:19]}' " if named else "")
                + f"ELSE {rx_text} END"
            )
        # the page columns, each record parsed straight from its text; neither the page text nor
        # its members are kept or copied (a page can hold thousands of members: a few copies of
        # every page of a 2,048-record chunk would not fit a small memory_limit)
        records = _unwrapped_records_sql(parsed_records_sql(ctx, layout, _PATHS + [_BODY]))
        types = sql_list(_TYPE_PATHS)
        eng.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {st} AS
            WITH p AS (
                SELECT line, wrapped, CASE WHEN NOT malformed THEN CASE WHEN is_obj THEN 'OBJECT' ELSE 'OTHER' END END AS jt,
                       CASE WHEN is_obj THEN v END AS v,
                       CASE WHEN is_obj THEN json_type(raw, {types}) END AS t
                FROM ({records})
            )
            SELECT line, jt,
                   {raw_text_sql('v[1]')} AS action,
                   t[1] AS params_type,
                   {cohort_id_sql('v[2]')} AS cohort_id,
                   nullif({raw_text_sql('v[3]')}, '') AS cohort_name,
                   {id_text_sql('v[4]')} AS session_id,
                   TRY_CAST({raw_text_sql('v[5]')} AS INTEGER) AS page_count,
                   TRY_CAST({raw_text_sql('v[6]')} AS INTEGER) AS total_pages,
                   -- the members: in "parameters", else beside it (never both: bad_members)
                   CASE WHEN t[2] IS NULL OR t[2] = 'NULL' THEN t[3] ELSE t[2] END AS members_type,
                   CASE WHEN t[2] IS NULL OR t[2] = 'NULL' THEN '$.members[*]'
                        ELSE '$.parameters.members[*]' END AS members_path,
                   t[2] IS NOT NULL AND t[2] <> 'NULL' AND t[3] IS NOT NULL AND t[3] <> 'NULL'
                     AS members_twice,
                   v[7] IS NOT NULL AND json_type(v[7]) <> 'NULL' AS has_rx,
                   {rx_sql} AS received_at,
                   {raw_text_sql('v[8]')} AS description,
                   {id_text_sql('v[9]')} AS project_id,
                   wrapped
            FROM p
            """
        )
        bad_rx = eng.query_rows(
            f"SELECT line, has_rx, wrapped FROM {st} WHERE jt = 'OBJECT' AND received_at IS NULL ORDER BY line LIMIT 1"
        )
        if bad_rx:
            line, has_rx, wrapped = bad_rx[0]
            raise LoadError(
                ctx.path,
                ("received_at is not an ISO-8601 time or epoch number" if has_rx else
                 "no receive time: pass -o received_at=2026-03-01T00:00:00Z (one load of the file), "
                 "put the time in the file's name (payload_2026-03-01T00-15-00Z.json: also in a folder), "
                 'or add a top-level "received_at" key to each payload'
                 + (' (or beside the "body" that holds it)' if wrapped else "")),
                line=int(line),
            )
        # members, one row per (page, member entry): the records are parsed again, streaming (a
        # semi join: the records are never held); a second pass only when a page carries its
        # members beside "parameters"
        paths = ["$.parameters.members[*]"]
        if eng.query_rows(f"SELECT 1 FROM {st} WHERE members_type = 'ARRAY' AND NOT members_twice "
                          f"AND members_path = '$.members[*]' LIMIT 1"):
            paths.append("$.members[*]")
        elems = " UNION ALL ".join(
            f"SELECT r.line, json_extract(r.raw, '{path}') AS elems FROM ({records}) r SEMI JOIN {st} s "
            f"ON s.line = r.line AND s.members_type = 'ARRAY' AND NOT s.members_twice AND s.members_path = '{path}'"
            for path in paths
        )
        mid = id_text_sql("mv[1]")
        mid2 = id_text_sql("mv[2]")
        eng.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {st}_m AS
            SELECT line, idx, line::VARCHAR || ':' || idx AS mkey, json_type(value) AS mt,
                   coalesce({mid}, {mid2}) AS distinct_id,
                   json_type(mv[1]) AS mid_type, CASE WHEN {mid} IS NULL THEN json_type(mv[2]) END AS mid2_type,
                   coalesce(nullif(mv[3]->>'$', ''), nullif(mv[4]->>'$', '')) AS email,
                   value AS properties
            FROM (
                SELECT *, json_extract(value, ['$.mixpanel_distinct_id', '$."$distinct_id"', '$.email',
                                               '$."$email"']) AS mv
                FROM (
                    -- unnest of a list, not a json_each lateral join (quadratic on many pages)
                    SELECT line, unnest(elems) AS value, generate_subscripts(elems, 1) AS idx
                    FROM ({elems})
                )
            )
            """
        )
        # a JSON-float distinct_id: its exported token, before the pages' signatures are taken
        for typ, json_key in (("mid_type", "mixpanel_distinct_id"), ("mid2_type", "$distinct_id")):
            recover_float_tokens(ctx, layout, f"{st}_m", key="mkey", doc_no=doc_no_sql(layout), ord_="idx",
                                 typ=typ, text="distinct_id", json_key=json_key)
        eng.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {st}_p AS
            SELECT s.*,
                   CASE WHEN jt IS NULL THEN 'malformed_json'
                        WHEN jt <> 'OBJECT' THEN 'not_an_object'
                        WHEN action IS NULL OR action NOT IN {actions} THEN 'bad_action'
                        WHEN params_type IS DISTINCT FROM 'OBJECT' THEN 'bad_parameters'
                        WHEN cohort_id IS NULL AND cohort_name IS NULL THEN 'missing_cohort'
                        WHEN members_type IS NOT NULL AND members_type NOT IN ('ARRAY', 'NULL')
                          OR members_twice OR coalesce(m.bad, 0) > 0 THEN 'bad_members'
                   END AS reason,
                   coalesce(m.sig, md5('')) AS sig, coalesce(m.n, 0) AS member_count,
                   coalesce(m.repeats, 0) AS repeats
            FROM {st} s LEFT JOIN (
                SELECT line,
                       count(*) FILTER (WHERE mt IS DISTINCT FROM 'OBJECT' OR distinct_id IS NULL) AS bad,
                       count(DISTINCT distinct_id) AS n,
                       -- entries of a member already listed in the page (stored once: its warning)
                       count(distinct_id) - count(DISTINCT distinct_id) AS repeats,
                       md5(coalesce(string_agg(DISTINCT distinct_id, chr(31) ORDER BY distinct_id), '')) AS sig
                FROM {st}_m GROUP BY line
            ) m ON m.line = s.line
            """
        )
        # the text of rejected records, read again from the file only when there are some
        quarantined = Counter()
        if eng.query_rows(f"SELECT 1 FROM {st}_p WHERE reason IS NOT NULL LIMIT 1"):
            quarantined = ctx.reject(
                f"SELECT p.line, p.reason, r.record_raw AS raw FROM {st}_p p JOIN ({records}) r USING (line) "
                f"WHERE p.reason IS NOT NULL"
            )
        # deduplicate: one page of each key within the file, the one received first (a page delivered
        # again later, written before it, does not move its message's time), and nothing already
        # stored; a stored copy received later than this file's takes the earlier receive time, so
        # that a message takes effect at its first page's first receipt whatever the load order
        # (docs/rules.md#membership)
        # A page without a session_id names no message: the same page is then also received at the
        # same time (`alone_at`); two pages of one content received apart are two messages (a
        # member removed, added, and removed again), not a replay
        key = ("cohort_id", "cohort_name", "session_id", "action", "page_count", "alone_at")
        alone_at = "CASE WHEN {a}.session_id IS NULL THEN {a}.received_at END"
        same = " AND ".join(f"s.{k} IS NOT DISTINCT FROM f.{k}" for k in key)
        stored_same = " AND ".join(f"f.{k} IS NOT DISTINCT FROM "
                                   + (alone_at.format(a="w") if k == "alone_at" else f"w.{k}") for k in key)
        eng.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {st}_first AS
            SELECT *, {alone_at.format(a=st + "_p")} AS alone_at FROM {st}_p WHERE reason IS NULL
            QUALIFY row_number() OVER (PARTITION BY {', '.join(key[:-1])}, alone_at, sig
                                       ORDER BY received_at, line) = 1
            """
        )
        eng.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {st}_stored AS
            SELECT s.seq, s.received_at, s.sig, f.line, f.received_at AS file_received_at FROM (
                SELECT w.seq, w.received_at, w.cohort_id, w.cohort_name, w.session_id, w.action, w.page_count,
                       {alone_at.format(a="w")} AS alone_at, md5(coalesce(string_agg(DISTINCT m.distinct_id, chr(31) ORDER BY m.distinct_id), '')) AS sig
                FROM mp_webhook_pages w LEFT JOIN mp_webhook_members m ON m.seq = w.seq
                WHERE EXISTS (SELECT 1 FROM {st}_first f WHERE {stored_same})
                GROUP BY ALL
            ) s JOIN {st}_first f ON {same} AND s.sig = f.sig
            """
        )
        eng.execute(
            f"""
            UPDATE mp_webhook_pages AS w SET received_at = e.received_at
            FROM (SELECT seq, min(file_received_at) AS received_at FROM {st}_stored GROUP BY seq) e
            WHERE w.seq = e.seq AND e.received_at < w.received_at
            """
        )
        eng.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {st}_new AS
            SELECT f.*, row_number() OVER (ORDER BY f.line) AS rn FROM {st}_first f
            WHERE f.line NOT IN (SELECT line FROM {st}_stored)
            """
        )
        n_new = int(eng.query_rows(f"SELECT count(*) FROM {st}_new")[0][0])
        if n_new:
            # seq in file order: take n consecutive values of webhook_seq
            first_seq = int(eng.query_rows("SELECT nextval('webhook_seq')")[0][0])
            if n_new > 1:
                last = int(eng.query_rows(f"SELECT max(nextval('webhook_seq')) FROM range({n_new - 1})")[0][0])
                if last != first_seq + n_new - 1:  # pragma: no cover - sequence with an increment
                    raise LoadError(ctx.path, "webhook_seq did not hand out consecutive values")
            eng.execute(
                f"""
                INSERT INTO mp_webhook_pages (seq, received_at, action, cohort_id, cohort_name,
                    session_id, page_count, total_pages, member_count, load_id, source_file, line)
                SELECT {first_seq} + rn - 1, received_at, action, cohort_id, cohort_name, session_id,
                       page_count, total_pages, member_count, ?, ?, line
                FROM {st}_new
                """,
                [ctx.load_id, str(ctx.path)],
            )
            eng.execute(
                f"""
                INSERT INTO mp_webhook_members (seq, distinct_id, email, properties, load_id,
                                                source_file, line)
                SELECT {first_seq} + n.rn - 1, m.distinct_id, m.email, m.properties, ?, ?, m.line
                FROM {st}_new n JOIN {st}_m m ON m.line = n.line
                -- a member listed twice in a page is stored once (the first entry); the repeats
                -- are found on (line, idx, distinct_id) alone, not by sorting whole entries
                ANTI JOIN (SELECT line, idx FROM {st}_m
                           QUALIFY row_number() OVER (PARTITION BY line, distinct_id ORDER BY idx) > 1) d
                  ON d.line = m.line AND d.idx = m.idx
                """,
                [ctx.load_id, str(ctx.path)],
            )
            register_cohorts(
                ctx,
                f"SELECT cohort_id, cohort_name AS name, description, project_id, "
                f"line FROM {st}_new",
            )
        rows_read, valid = eng.query_rows(
            f"SELECT count(*), count(*) FILTER (WHERE reason IS NULL) FROM {st}_p"
        )[0]
        warnings = _bad_members_warning(ctx, f"{st}_p", f"{st}_m") + _repeated_members_warning(ctx, f"{st}_p")
        for suffix in ("", "_m", "_p", "_first", "_stored", "_new"):
            eng.execute(f"DROP TABLE {st}{suffix}")
        return FileResult(rows_read=int(rows_read), loaded=n_new, deduplicated=int(valid) - n_new,
                          quarantined=Counter(quarantined), warnings=warnings)


# what a JSON value is, by its json_type, in a bad_members warning (never the value)
_JSON_TYPE_WORDS = {"VARCHAR": "a string", "BIGINT": "a number", "UBIGINT": "a number", "HUGEINT": "a number",
                    "DOUBLE": "a number", "BOOLEAN": "true or false", "ARRAY": "an array", "OBJECT": "an object",
                    "NULL": "null"}
_SHOWN_PAGES = 3  # bad_members pages a warning describes (the first in the file)
_SHOWN_MEMBERS = 3  # wrong entries it names in each


def _bad_member_words(mt: str | None, mid_type: str | None, mid2_type: str | None) -> str:
    """What is wrong with a member entry of a bad_members page: its JSON type (``mt``), or, of an
    object, its ``mixpanel_distinct_id`` (type ``mid_type``) and ``$distinct_id`` (``mid2_type``,
    read when the first gives no id)."""
    if mt != "OBJECT":
        return f"is not an object ({_JSON_TYPE_WORDS.get(mt, mt)})"
    for key, typ in (("mixpanel_distinct_id", mid_type), ("$distinct_id", mid2_type)):
        if typ not in (None, "NULL"):
            if typ == "VARCHAR":
                return f"has an empty {key}"
            return f"has a {key} that is {_JSON_TYPE_WORDS.get(typ, typ)}, not a string or number"
    return "has no mixpanel_distinct_id or $distinct_id"


def _bad_members_warning(ctx: FileContext, pages: str, members: str) -> list[str]:
    """A warning when pages of the staged ``pages`` table were quarantined ``bad_members``: each
    page is quarantined whole, and its reason does not say which of its (maybe thousands of)
    entries is wrong. The warning names the first pages' lines and, for each, its wrong entries
    (the first few: their place in the array, 1-based and as the array's 0-based index, and what
    is wrong: a JSON type, a missing or unusable distinct id), or what is wrong with its
    ``members`` as a whole; never a value (ids and emails are personal data)."""
    eng = ctx.engine
    (total,), = eng.query_rows(f"SELECT count(*) FROM {pages} WHERE reason = 'bad_members'")
    if not total:
        return []
    shown = eng.query_rows(
        f"SELECT line, members_type, members_twice, members_path, wrapped FROM {pages} "
        f"WHERE reason = 'bad_members' ORDER BY line LIMIT {_SHOWN_PAGES}")
    lines = ", ".join(str(int(r[0])) for r in shown)
    wrong: dict[int, list[tuple]] = {}
    for line, idx, mt, mid_type, mid2_type, n_bad, n in eng.query_rows(
        f"""
        SELECT line, idx, mt, mid_type, mid2_type, n_bad, n FROM (
            SELECT *, count(*) FILTER (WHERE bad) OVER (PARTITION BY line) AS n_bad,
                   count(*) OVER (PARTITION BY line) AS n
            FROM (SELECT line, idx, mt, mid_type, mid2_type,
                         mt IS DISTINCT FROM 'OBJECT' OR distinct_id IS NULL AS bad
                  FROM {members} WHERE line IN ({lines})))
        WHERE bad QUALIFY row_number() OVER (PARTITION BY line ORDER BY idx) <= {_SHOWN_MEMBERS}
        ORDER BY line, idx
        """
    ):
        wrong.setdefault(int(line), []).append((int(idx), mt, mid_type, mid2_type, int(n_bad), int(n)))
    said = []
    for line, members_type, twice, path, wrapped in shown:
        array = ("body." if wrapped else "") + path.removeprefix("$.").removesuffix("[*]")
        if twice:
            said.append(f"line {line}: members are both in parameters and beside it")
        elif members_type not in ("ARRAY", "NULL", None):
            said.append(f"line {line}: {array} is not an array ({_JSON_TYPE_WORDS.get(members_type, members_type)})")
        else:
            entries = wrong.get(int(line), [])
            n_bad, n = (entries[0][4], entries[0][5]) if entries else (0, 0)
            words = [f"member {idx}{f' of {n:,}' if n_bad == 1 else ''} ({array}[{idx - 1}]) "
                     f"{_bad_member_words(mt, mid_type, mid2_type)}" for idx, mt, mid_type, mid2_type, *_ in entries]
            more = n_bad - len(entries)
            said.append(f"line {line}: " + (f"{n_bad:,} of its {n:,} members: " if n_bad > 1 else "")
                        + (", ".join(words) or "a member is wrong") + (f", and {more:,} more" if more else ""))
    rest = int(total) - len(shown)
    if rest:
        (first_rest,), = eng.query_rows(
            f"SELECT line FROM {pages} WHERE reason = 'bad_members' AND line > {int(shown[-1][0])} ORDER BY line LIMIT 1")
        said.append(f"and {rest:,} more page{'s' if rest > 1 else ''} (the first on line {first_rest})")
    pages_words = f"{int(total):,} pages quarantined (bad_members), each" if total > 1 else \
        "a page quarantined (bad_members),"
    return [f"{ctx.path}: {pages_words} whole with its valid members: " + "; ".join(said)]


def _repeated_members_warning(ctx: FileContext, pages: str) -> list[str]:
    """A warning when pages of the staged ``pages`` table (not quarantined) list a member more than
    once: a page's members are a set, so each is stored once, with its first entry; the warning
    says how many entries that left out and the first page's line, never a member."""
    (n, pages_with, first), = ctx.engine.query_rows(
        f"SELECT coalesce(sum(repeats), 0), count(*) FILTER (WHERE repeats > 0), min(line) FILTER (WHERE repeats > 0) "
        f"FROM {pages} WHERE reason IS NULL")
    if not n:
        return []
    where = f"a page (line {first})" if pages_with == 1 else f"{int(pages_with):,} pages (the first on line {first})"
    return [f"{ctx.path}: members listed more than once in {where}: {int(n):,} repeated "
            f"entr{'y' if n == 1 else 'ies'} not stored; each member is stored once, with its first entry "
            f"(a page's members are a set)"]


_SHOWN_MESSAGES = 10  # incomplete messages warned about one by one; the others in one warning
_WHAT_IS_LOST = {
    "members": "a members message replaces the whole member list, so the members of the missing pages "
               "are taken as removed (the cohort shrinks)",
    "add_members": "the members the missing pages add are not added",
    "remove_members": "the members the missing pages remove stay members",
}


def _missing_pages_warnings(engine, load_ids: list[int]) -> list[str]:
    """The warnings of the messages (cohort, ``mixpanel_session_id``, action) that the load of
    ``load_ids`` stored pages of and whose pages stored (by this load or an earlier one: a message
    completed by a later load warns no more) have fewer distinct ``page_count`` values than its
    ``total_pages``. Each names the files of this load holding the message's pages, the cohort,
    the session, the pages stored and missing (``page_count`` is 1-based), and what the missing
    pages change; never a member. A page without a session_id names no message: not counted."""
    ids = ", ".join(str(int(i)) for i in load_ids)
    cohort = "coalesce('id ' || cohort_id, 'name ' || cohort_name)"  # a cohort: its id, else its name
    rows = engine.query_rows(
        f"""
        SELECT any_value(cohort_id), max(cohort_name), session_id, action, max(total_pages),
               coalesce(list(DISTINCT page_count ORDER BY page_count)
                        FILTER (WHERE page_count BETWEEN 1 AND total_pages), []),
               list(source_file ORDER BY seq) FILTER (WHERE load_id IN ({ids})), min(seq) AS first
        FROM mp_webhook_pages
        WHERE session_id IS NOT NULL AND ({cohort}, session_id, action) IN (
            SELECT ({cohort}, session_id, action) FROM mp_webhook_pages
            WHERE load_id IN ({ids}) AND session_id IS NOT NULL)
        GROUP BY {cohort}, session_id, action
        -- the pages 1 to total_pages stored (a page_count beyond them fills no gap)
        HAVING count(DISTINCT page_count) FILTER (WHERE page_count BETWEEN 1 AND total_pages) < max(total_pages)
        ORDER BY first
        """
    )
    out = []
    for cohort_id, name, session, action, total, seen, files, _ in rows[:_SHOWN_MESSAGES]:
        files = list(dict.fromkeys(files))
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3:,} more file(s)" if len(files) > 3 else "")
        who = repr(name) if name is not None else f"cohort_id {cohort_id}"
        missing = missing_ranges(seen, 1, int(total))
        out.append(
            f"{shown}: the {action} message of {who} (session_id {session}) has {len(seen):,} of its {int(total):,} "
            f"pages stored (page_count {number_ranges(seen) or 'none'}); missing: page(s) {missing}: "
            f"{_WHAT_IS_LOST.get(action, 'the missing pages are not applied')}. Load every page of the message "
            f"(the receiver's other files, a redelivery)")
    if len(rows) > _SHOWN_MESSAGES:
        rest = rows[_SHOWN_MESSAGES:]
        files = list(dict.fromkeys(f for r in rest for f in r[6]))
        out.append(f"{', '.join(files[:3])}{f' and {len(files) - 3:,} more file(s)' if len(files) > 3 else ''}: "
                   f"{len(rest):,} more webhook message(s) miss pages (fewer pages stored than their total_pages)")
    return out

