"""The canonical tables: the one place where their columns and types are defined.

Loaders (``cohortlab.loaders``) write these tables; everything downstream (resolution,
sync simulation, metrics, notebooks) reads only these tables, never raw files.

Conventions
-----------
* Time is UTC everywhere and stored as ``TIMESTAMP`` (naive, meaning UTC).
* MPIDs are ``BIGINT`` (signed int64). They never pass through a float.
* Mixpanel identifiers (``distinct_id``, ``$mparticle_user_id``) are ``VARCHAR`` exactly as
  exported: an integer ``$distinct_id`` is kept as its decimal text; a junk
  ``$mparticle_user_id`` (``"undefined"``, ``""``, ``1.2e18``) is data, kept as text, and
  classified by the simulation (docs/rules.md#gap-reasons), not by the loader.
* ``load_id``, ``source_file`` and ``line`` on every loaded row point back to the input record
  (``line`` is the 1-based line of a JSONL/CSV file, or the 1-based record number inside a
  JSON document).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    columns: tuple[tuple[str, str, str], ...]  # (name, type, doc)

    def ddl(self) -> str:
        cols = ",\n  ".join(f"{c} {t}" for c, t, _ in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {cols}\n)"

    @property
    def column_names(self) -> list[str]:
        return [c for c, _, _ in self.columns]


_PROVENANCE = (
    ("load_id", "BIGINT", "the load that wrote the row (see `loads`)"),
    ("source_file", "VARCHAR", "input file path"),
    ("line", "BIGINT", "1-based line (JSONL/CSV) or record number (JSON document)"),
)

TABLES: dict[str, Table] = {}


def _table(name: str, doc: str, *columns: tuple[str, str, str], provenance: bool = True) -> Table:
    t = Table(name, doc, tuple(columns) + (_PROVENANCE if provenance else ()))
    TABLES[name] = t
    return t


# --------------------------------------------------------------------------- bookkeeping
LOADS = _table(
    "loads",
    "One row per loaded input file. `fingerprint` makes loading the same content twice a no-op.",
    ("load_id", "BIGINT", "sequential id"),
    ("kind", "VARCHAR", "loader kind, e.g. mixpanel-events"),
    ("source_file", "VARCHAR", "input file path"),
    ("fingerprint", "VARCHAR", "hash of kind + relevant options + file content"),
    ("options", "JSON", "loader options that shaped the rows (as_of, cohort, time unit, ...)"),
    ("loaded_at", "TIMESTAMP", "wall-clock UTC time of the load"),
    ("rows_read", "BIGINT", "records read from the file"),
    ("loaded", "BIGINT", "records written to canonical tables"),
    ("deduplicated", "BIGINT", "records dropped as duplicates (of the file or of earlier loads)"),
    ("quarantined", "BIGINT", "records written to `rejects`"),
    ("loader_version", "INTEGER", "LOADER_VERSION of the cohortlab that read the file: a database holding loads of "
                                  "an older one is refused (its loaders read some files differently)"),
    provenance=False,
)

REJECTS = _table(
    "rejects",
    "Quarantined input records: never silently dropped. rows_read = loaded + deduplicated + quarantined.",
    ("load_id", "BIGINT", "the load that read the record"),
    ("kind", "VARCHAR", "loader kind"),
    ("source_file", "VARCHAR", "input file path"),
    ("line", "BIGINT", "1-based line or record number"),
    ("reason", "VARCHAR", "short machine-friendly reason, e.g. malformed_json, missing_time"),
    ("raw", "VARCHAR", "the raw record text (truncated to 2000 characters)"),
    provenance=False,
)

# --------------------------------------------------------------------------- Mixpanel
MP_EVENTS = _table(
    "mp_events",
    "Mixpanel raw event export (JSONL). De-duplicated on (event, distinct_id, time, insert_id).",
    ("event", "VARCHAR", "event name"),
    ("time", "TIMESTAMP", "UTC; from properties.time (epoch s, fractional allowed, or ms)"),
    ("distinct_id", "VARCHAR", "properties.distinct_id, else $user_id, else '$device:' || $device_id"),
    ("insert_id", "VARCHAR", "properties.$insert_id"),
    ("device_id", "VARCHAR", "properties.$device_id"),
    ("user_id", "VARCHAR", "properties.$user_id"),
    ("mparticle_user_id", "VARCHAR", "event property $mparticle_user_id as exported text; NULL if absent/null"),
    ("properties", "JSON", "all properties as exported (loader option properties=all); by default NULL, "
                           "except {\"$mparticle_user_id\": token} when that value is a JSON float"),
)

MP_PROFILES = _table(
    "mp_profiles",
    "Mixpanel user profiles (Engage pages or JSONL of result objects). One row per distinct_id; "
    "a later load replaces the earlier row of the same distinct_id.",
    ("distinct_id", "VARCHAR", "$distinct_id (an integer is kept as its decimal text)"),
    ("mparticle_user_id", "VARCHAR", "$properties.$mparticle_user_id as exported text; NULL if absent/null"),
    ("email", "VARCHAR", "$properties.$email (personal data: never shown in reports by default)"),
    ("phone", "VARCHAR", "$properties.$phone (personal data)"),
    ("created", "TIMESTAMP", "$properties.$created (UTC)"),
    ("last_seen", "TIMESTAMP", "$properties.$last_seen (UTC)"),
    ("properties", "JSON", "all $properties as exported"),
)

MP_PROFILE_HISTORY = _table(
    "mp_profile_history",
    "Every Mixpanel profile as loaded, one row per (load, distinct_id): the profile history that "
    "send-time resolution reads (docs/rules.md). `mp_profiles` stays the latest row per distinct_id.",
    ("distinct_id", "VARCHAR", "$distinct_id (an integer is kept as its decimal text)"),
    ("mparticle_user_id", "VARCHAR", "$properties.$mparticle_user_id as exported text; NULL if absent/null"),
    ("mparticle_user_id_type", "VARCHAR", "JSON type of $mparticle_user_id (VARCHAR, DOUBLE, UBIGINT, ...)"),
    ("email", "VARCHAR", "$properties.$email (personal data)"),
    ("last_seen", "TIMESTAMP", "$properties.$last_seen (UTC)"),
    ("as_of", "TIMESTAMP", "the profile as of this UTC time (the load's as_of; NULL: the load's loaded_at counts)"),
)

MP_COHORTS = _table(
    "mp_cohorts",
    "Mixpanel cohorts (from /cohorts/list, or registered by a members/webhook load).",
    ("cohort_id", "VARCHAR", "cohort id as text (ids arrive as numbers or strings)"),
    ("name", "VARCHAR", "cohort name"),
    ("description", "VARCHAR", "description"),
    ("count", "BIGINT", "member count reported by Mixpanel"),
    ("created", "TIMESTAMP", "creation time (UTC)"),
    ("is_visible", "BOOLEAN", "is_visible"),
    ("project_id", "VARCHAR", "project id as text"),
)

MP_COHORT_SNAPSHOTS = _table(
    "mp_cohort_snapshots",
    "One row per cohort membership snapshot (one load of a members file).",
    ("snapshot_id", "BIGINT", "equals the load_id of the members load"),
    ("cohort_id", "VARCHAR", "cohort id as text (NULL if only the name is known)"),
    ("cohort_name", "VARCHAR", "cohort name"),
    ("as_of", "TIMESTAMP", "membership as of this UTC time"),
    ("member_count", "BIGINT", "distinct members in the snapshot"),
)

MP_COHORT_MEMBERS = _table(
    "mp_cohort_members",
    "Members of each snapshot: one row per (snapshot_id, distinct_id).",
    ("snapshot_id", "BIGINT", "mp_cohort_snapshots.snapshot_id"),
    ("cohort_name", "VARCHAR", "denormalised from the snapshot"),
    ("as_of", "TIMESTAMP", "denormalised from the snapshot"),
    ("distinct_id", "VARCHAR", "member distinct_id"),
)

MP_WEBHOOK_PAGES = _table(
    "mp_webhook_pages",
    "Cohort-sync webhook payloads (one row per page), in replay order (received_at, seq). "
    "Pages sharing (session_id, action) form one message. An identical replayed page is deduplicated.",
    ("seq", "BIGINT", "global replay order"),
    ("received_at", "TIMESTAMP", "UTC receive time"),
    ("action", "VARCHAR", "members | add_members | remove_members"),
    ("cohort_id", "VARCHAR", "parameters.mixpanel_cohort_id as text"),
    ("cohort_name", "VARCHAR", "parameters.mixpanel_cohort_name"),
    ("session_id", "VARCHAR", "parameters.mixpanel_session_id"),
    ("page_count", "INTEGER", "parameters.page_info.page_count (1-based)"),
    ("total_pages", "INTEGER", "parameters.page_info.total_pages"),
    ("member_count", "BIGINT", "members on this page"),
)

MP_WEBHOOK_MEMBERS = _table(
    "mp_webhook_members",
    "Members carried by each webhook page.",
    ("seq", "BIGINT", "mp_webhook_pages.seq"),
    ("distinct_id", "VARCHAR", "mixpanel_distinct_id (or $distinct_id)"),
    ("email", "VARCHAR", "email / $email (personal data)"),
    ("properties", "JSON", "the whole member object as sent"),
)

# --------------------------------------------------------------------------- mParticle
MPA_PROFILES = _table(
    "mpa_profiles",
    "mParticle profiles (Profile API JSON, Events API batches, CSV): one row per MPID. A profile "
    "exists for the simulation iff its MPID is here. A later load replaces the same MPID.",
    ("mpid", "BIGINT", "mParticle ID, signed int64"),
    ("created_at", "TIMESTAMP", "created_timestamp_ms (UTC)"),
    ("last_stored_at", "TIMESTAMP", "last_stored_timestamp_ms (UTC)"),
    ("is_opted_out", "BOOLEAN", "is_opted_out"),
    ("environment", "VARCHAR", "production | development (batches)"),
    ("source", "VARCHAR", "profile_api | batches | csv"),
)

MPA_IDENTITIES = _table(
    "mpa_identities",
    "Identities of each profile. identity_type uses Events API names: customer_id, email, other, "
    "other_id_2 .. other_id_10, mobile_number, ... (IDSync spellings such as customerid are normalised).",
    ("mpid", "BIGINT", "profile MPID"),
    ("kind", "VARCHAR", "user | device"),
    ("identity_type", "VARCHAR", "normalised identity type, lower case"),
    ("value", "VARCHAR", "identity value exactly as exported"),
)

MPA_ATTRIBUTES = _table(
    "mpa_attributes",
    "User attributes of each profile (the observed mParticle state).",
    ("mpid", "BIGINT", "profile MPID"),
    ("name", "VARCHAR", "attribute name (case-sensitive)"),
    ("value", "JSON", "value as exported (string, number, boolean, list or null)"),
    ("value_bool", "BOOLEAN", "true/'true'/'True' -> TRUE, false/'false'/'False' -> FALSE, else NULL"),
)

MPA_SNAPSHOT_NAMES = _table(
    "mpa_snapshot_names",
    "The user attribute names each mParticle profile snapshot load read, one row per load and name, also "
    "those of records a newer snapshot of the same MPID keeps: the loads that carry a cohort attribute "
    "(docs/simulate.md#verify), whichever of their records were kept.",
    ("name", "VARCHAR", "attribute name (case-sensitive)"),
)

MPA_AUDIENCES = _table(
    "mpa_audiences",
    "Audience memberships reported by the Profile API.",
    ("mpid", "BIGINT", "profile MPID"),
    ("audience_id", "BIGINT", "audience id"),
    ("audience_name", "VARCHAR", "audience name"),
    ("expiration_at", "TIMESTAMP", "expiration_timestamp_ms (UTC), NULL = none"),
)


MPA_BATCH_KEYS = _table(
    "mpa_batch_keys",
    "Events API batches applied by mparticle-batches. A batch seen again in a later load (the same "
    "source_request_id, or the same content, e.g. a gzip copy under another name) is a replay: it "
    "counts as deduplicated and changes nothing.",
    ("batch_key", "VARCHAR", "source_request_id, or 'content:' + a hash of the batch's fields"),
    ("mpid", "BIGINT", "the batch's MPID"),
    ("batch_time", "TIMESTAMP", "timestamp_unixtime_ms of the batch (UTC), NULL when absent"),
)

MPA_BATCH_TIMES = _table(
    "mpa_batch_times",
    "Per profile and identity or attribute: the time of the batch that last set or removed it. A "
    "batch older than that, loaded later, does not overwrite it (batches apply in their own time order).",
    ("mpid", "BIGINT", "profile MPID"),
    ("item", "VARCHAR", "'identity:<kind>:<type>', 'attribute:<name>' or 'environment'"),
    ("batch_time", "TIMESTAMP", "order time of the latest timed batch that touched it (UTC; a batch without a "
                                "time keeps it); NULL: no time, load order applies"),
)


# The version of what the loaders read from a file. Bump it when a loader reads the same bytes into
# other rows (a fix of what a record means, e.g. a members CSV's `remove` rows are no longer
# members): a database loaded by an earlier version is then refused (outdated, check_current),
# because loading the same file again is skipped (its fingerprint is unchanged) and the old rows
# would stay. A database loaded before the version was recorded has no column loads.loader_version.
# 2: a members file name's time honours its offset; an mParticle epoch-ms time outside the years
#    1-9999 is no time (it was stored as year 10000 and more)
# 3: a user_attributes key repeated in one mParticle record gives one attribute, its first value;
#    an mParticle CSV header that repeats a column reads its first column; a schematized Data
#    Pipelines row's mp_insert_id / mp_user_id / mp_device_id and mp_mparticle_user_id_string are
#    read
# 4: mparticle-parquet names attribute columns without the spaces around them and ignores a column
#    repeating an earlier one (also in another case: `Email` after `email`, read by DuckDB as
#    `Email_1`), as mparticle-csv does; a Parquet file's key=value partition folders are
#    no columns; an mparticle-csv cell \N is no value; a whole scaled DECIMAL MPID is that integer;
#    the pipeline kinds read upper-case Parquet column names; Engage pages of one listing saved one
#    per file and loaded together are one snapshot; a folder's .txt mParticle S3 batches load
# 5: a members CSV distinct_id \N is no id; a CSV row repeating the header (mixpanel-members,
#    mparticle-csv) is skipped; a webhook payload a receiver stored under "body" is read; an Excel
#    "sep=X" first line names the delimiter; a folder skips Databricks _started_/_committed_
#    markers; a members CSV's id and as_of columns are found in any case
# 6: a byte order mark right after an Excel "sep=X" line is no part of the first column's name; a
#    cohort id written as a whole JSON float (1002.0) is that integer (1002); a lone surrogate
#    escape ("\ud83d") is read as its text instead of refusing its record or document
# 9: of identical webhook pages (a page delivered again), mixpanel-webhooks keeps the earliest
#    receive time, also of a copy stored by an earlier load: a later copy written or loaded first
#    kept its own time
# 10: mixpanel-members with -o cohort_id alone on pages naming that id records the pages' cohort
#    name; mparticle-parquet reads two attribute columns named alike but for case as
#    two attributes, not the second as a repeat
# 11: an mParticle identity "" is no identity; a JSON-float mParticle identity keeps the file's
#    token; a record of the other mParticle JSON kind is quarantined; a members CSV row with an
#    unknown operation is quarantined bad_operation
# 12: an Events API batch whose device_info holds true/false, an object or a list under a device
#    id key is quarantined invalid_identities (it was applied without that key); an Engage page
#    whose "results" is null is a page of no results (it was quarantined missing_distinct_id; a
#    members file of such pages was refused); a Firehose request (a firehose_version key) is
#    quarantined firehose_request by mparticle-batches (it was applied as a batch) and
#    mparticle-profiles (it was events_api_batch)
# 13: a mixpanel-pipeline-events row without a properties column (a connector's flattened export:
#    Stitch's tap-mixpanel, Airbyte) is its own properties, and tap-mixpanel's mp_reserved_<name>
#    columns are read as $<name> in both pipeline kinds; a record without $properties holding an
#    /engage operation ($set ...) is quarantined profile_update by mixpanel-profiles and
#    mixpanel-members; an IDSync answer (matched_identities) is quarantined idsync_response by
#    both mParticle JSON loaders; a raw export whose cut-off last record has
#    "terminated early" appended to it stops the mixpanel-events load (it was one malformed_json
#    line); a mixpanel-profiles record without $properties but with keys besides $distinct_id is
#    quarantined flattened_profile (it was a profile with no properties)
# 14: a mixpanel-members file whose records are all quarantined, not all removed_member, writes
#    no snapshot (it wrote one of 0 members, which removed every member at its time)
# 15: a record in Airbyte's envelope ({"_airbyte_ab_id", ..., "_airbyte_data": {...}}) is read
#    inside it by both pipeline kinds and mixpanel-cohorts (it was quarantined: missing_event,
#    missing_distinct_id; a cohorts file was refused)
# 16: a Firehose request or an IDSync answer is quarantined firehose_request / idsync_response by
#    both mParticle JSON loaders whatever its mpid (one without a valid top-level mpid, such as a
#    Firehose audience_membership_change_request, was missing_mpid / invalid_mpid); a time text
#    with its zone after a space or as "UTC" ("… -0800", "… UTC": warehouses' unloads) is that
#    instant (a pipeline event was quarantined bad_time, a profile date or receive time unread)
# 17: mparticle-batches: an untimed batch without a source_request_id is no replay by its
#    content, and keeps the item's batch time; a batch older (by its own time) than the as_of of
#    the snapshot holding its profile changes nothing of it, and a snapshot with an as_of keeps
#    what newer batches set (the same profile in any load order); mparticle-profiles quarantines events_api_batch
#    on any batch-only key (source_request_id, timestamp_unixtime_ms, ...), not only events and
#    device_info; mparticle-csv and -parquet record their attribute columns in mpa_snapshot_names
#    also when no row has a value; an mParticle identity list entry whose encoding names a hash
#    (md5, sha1, sha256) is not loaded; a mixpanel-webhooks page without a session_id is the same page only
#    at the same receive time; an as_of / received_at of eight digits (20260301) is that date; a
#    JSON-float identifier keeps its token beside an integer of the same float value
LOADER_VERSION = 17


# the identifier columns: a table read from files without one of them is refused, never read as
# NULLs (every row would lose its identifier: engines/spark read_canonical)
IDENTIFIER_COLUMNS = ("distinct_id", "mpid", "mparticle_user_id")


def identifier_columns(table: str) -> list[str]:
    """The columns of the canonical table ``table`` that hold identifiers
    (:data:`IDENTIFIER_COLUMNS`), in the table's order."""
    return [c for c in TABLES[table].column_names if c in IDENTIFIER_COLUMNS]


def create_all(execute) -> None:
    """Create every canonical table that does not exist yet (``execute`` runs one SQL string)."""
    for t in TABLES.values():
        execute(t.ddl())
    execute("CREATE SEQUENCE IF NOT EXISTS load_id_seq START 1")
    execute("CREATE SEQUENCE IF NOT EXISTS webhook_seq START 1")


def _columns(query_rows) -> dict[str, set[str]]:
    """{table: its columns} of the database's schema ``main``."""
    have: dict[str, set[str]] = {}
    for table, column in query_rows(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'"
    ):
        have.setdefault(table, set()).add(column)
    return have


def _loads_read_by(query_rows, have: dict[str, set[str]], op: str, which: str) -> list[str]:
    """``["N of its loads were read by <which> loaders, version V (this one's: W)"]`` for the loads
    whose ``loader_version`` is ``op`` (``<`` or ``>``) this version's, else ``[]``."""
    if "loader_version" not in have.get("loads", ()):
        return []
    ((n, version),) = query_rows(
        f"SELECT count(*), max(loader_version) FROM loads WHERE loader_version {op} {int(LOADER_VERSION)}")
    return [f"{n:,} of its loads were read by {which} loaders, version {version} (this one's: {LOADER_VERSION})"] if n else []


def outdated(query_rows) -> str | None:
    """What makes a database's canonical tables older than this version's (``query_rows`` runs
    one SQL string and returns its rows): ``"mp_events has no column properties"``, or None when
    every canonical table it holds has all its columns (a missing table is created by
    :func:`create_all`; a missing column is not: the loaders and the simulation would fail on it)
    and no load was read by loaders older than :data:`LOADER_VERSION` (their rows may differ
    from what this version reads, and loading the same files again would skip them)."""
    have = _columns(query_rows)
    problems = []
    for t in TABLES.values():
        missing = [c for c in t.column_names if t.name in have and c not in have[t.name]]
        if missing:
            problems.append(f"{t.name} has no column {', '.join(missing)}")
    if not problems:
        problems += _loads_read_by(query_rows, have, "<", "older")
    return "; ".join(problems) or None


def newer(query_rows) -> str | None:
    """What makes a database's canonical tables newer than this version's (a database loaded by
    a later cohortlab, opened by this one): a canonical table with a column this version does not
    know (its loaders would fail on it), or a load read by loaders newer than
    :data:`LOADER_VERSION`; None when neither."""
    have = _columns(query_rows)
    problems = []
    for t in TABLES.values():
        unknown = sorted(have.get(t.name, set()) - set(t.column_names))
        if unknown:
            problems.append(f"{t.name} has a column {', '.join(unknown)} this version does not know")
    problems += _loads_read_by(query_rows, have, ">", "newer")
    return "; ".join(problems) or None


def check_current(query_rows, database) -> None:
    """Raise a :class:`~cohortlab.errors.DatabaseError` naming ``database`` when its canonical
    tables are older than this version's (:func:`outdated`) or newer (:func:`newer`): one line,
    not a binder error later."""
    from cohortlab.errors import DatabaseError

    problem = outdated(query_rows)
    if problem:
        raise DatabaseError(f"{database}: its tables were written by an older cohortlab ({problem}): "
                            "load the exports into a new database file")
    problem = newer(query_rows)
    if problem:
        raise DatabaseError(f"{database}: its tables were written by a newer cohortlab ({problem}): "
                            "use that version, or load the exports into a new database file")


def table_names(path) -> set[str] | None:
    """The tables of the DuckDB file ``path`` (schema ``main``), read without writing anything;
    None when it cannot be read now (not a DuckDB file, or locked by a writer: the caller's own
    open then says so)."""
    from cohortlab.engines.duckdb import other_format_problem
    from cohortlab.engines.untrusted import read_only_look

    if other_format_problem(str(path)):  # the open that follows says what it is, without a download
        return None
    con = read_only_look(path)
    if con is None:
        return None
    try:
        return {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
    finally:
        con.close()


def not_loaded_problem(path) -> str | None:
    """One line when the DuckDB file ``path`` holds no loaded data a reading command may open
    (writing the schema into it): tables, none of them a canonical one (another program's
    database), or no table at all (an empty file); None otherwise, also when it cannot be read
    now (the command's own open says why). The file is opened once, read-only."""
    names = table_names(path)
    if names == set():
        return (f"{path}: an empty database, nothing loaded (load data first with `cohortlab load --db {path} "
                "...`)")
    if names and not names & set(TABLES):
        return not_cohortlab_message(path)
    return None


def not_cohortlab_message(path) -> str:
    return (f"{path}: not a cohortlab database (none of its tables is one that `cohortlab load` writes): "
            "load the exports into it first")


def describe() -> str:
    """Markdown description of all canonical tables (used by `cohortlab info --schema` and docs)."""
    out = []
    for t in TABLES.values():
        out.append(f"### `{t.name}`\n{t.doc}\n\n| column | type | meaning |\n|---|---|---|")
        out += [f"| `{c}` | {ty} | {d} |" for c, ty, d in t.columns]
        out.append("")
    return "\n".join(out)
