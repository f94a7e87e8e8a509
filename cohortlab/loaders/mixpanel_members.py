"""``mixpanel-members``: one cohort membership snapshot per file, into ``mp_cohort_snapshots``
and ``mp_cohort_members`` (``snapshot_id`` = the load id).

Accepted inputs (gzip detected by content):

* Engage pages fetched with ``filter_by_cohort`` (the shapes of ``mixpanel-profiles``: pages,
  pretty-printed or not, an array of pages, or JSONL of result objects). A page may carry extra
  top-level keys ``"as_of"`` (ISO string) and ``"filter_by_cohort"`` (the request parameter: a
  JSON string such as ``'{"id": 1000}'`` or an object, optionally with ``"name"``).
* CSV with a header and a distinct_id column: option ``column``, default the first of
  ``distinct_id``, ``$distinct_id``, ``mixpanel_distinct_id`` present (a header name matched as
  written, else in any case, without the spaces around it: ``DISTINCT_ID``). An optional ``as_of``
  column (one value for the whole file) gives the snapshot time. An ``operation`` column (the
  CSV a cohort sync's export offers: ``add``, ``no-op``, ``remove``) marks the users who left
  the cohort: a ``remove`` row is not a member (quarantined ``removed_member``), and a row of any
  other operation (an empty cell included) is quarantined ``bad_operation``. A row whose id is
  empty or ``\\N`` (a warehouse unload's NULL) has none (quarantined ``missing_distinct_id``).

The pages of one Engage listing saved one per file (one ``session_id``) and loaded in one call
are one snapshot (the first file's, whatever their order); later pages loaded without the
listing's page 0 warn that their snapshot holds part of the cohort. A page file without a
``session_id`` (a client that leaves it out of the last page) joins the one listing of the same cohort and as_of time read
in the same call whose page numbers it does not repeat. After the call's last file (:meth:`finish`)
each listing read with its page 0 is checked against Engage's paging rule (the next page is fetched
while a page holds ``page_size`` results): a gap in its page numbers, or a full highest page while
its pages hold fewer results than ``total`` (or give no total), warns that its snapshot holds part
of the cohort (:func:`_partial_listing_warning`; pages whose results reach the total end it).

Options (they override what the file says): ``cohort`` (a name, or the id of a cohort in
``mp_cohorts``), ``cohort_id`` (with ``cohort``: that id's snapshot under that name, a new name
being a rename; refused when the name is another cohort's current name or id), ``as_of`` (ISO-8601 string or datetime; no zone = UTC),
``column`` (CSV), ``header`` (CSV: ``false`` for a file without a header line, its first line a row and
``column`` a position, default 1). Without an as_of time the load fails (``as_of is required``). A cohort unknown
by name is registered in ``mp_cohorts``; when its name is close to a known cohort's (difflib, case
ignored: ``power userz`` and ``Power Users``) the load warns naming the near matches, and under
``strict`` / ``--strict`` it fails instead (a typo must not start a new cohort silently).

CSV: the delimiter comes from the header line (none for a one-column file: ids such as
``auth0|5f1a2b`` stay whole), or from an Excel ``sep=X`` first line, which is skipped (the header
is then line 2); a row with more or fewer fields than the header fails the load.
``line`` is the 1-based number of the row, the header being line 1: the physical line unless a
quoted value above it spans lines (the row after an id ``"multi\nline"`` is numbered one less than
its physical line: records are counted), as for ``mparticle-csv``. A row that repeats the header
(part files joined: ``cat part_*.csv``) is no record: skipped, with a warning, as in ``mparticle-csv``.

Members are distinct per snapshot (repeats count as deduplicated). When Engage results carry a
non-empty ``$properties`` object, those profiles are also upserted into ``mp_profiles`` with the
same rules as ``mixpanel-profiles`` (a later load replaces the same distinct_id; note that
``output_properties`` may have limited what a page carries). A page file whose pages all have
``"results": []`` (or ``null``) is a valid snapshot of 0 members; so is a CSV with a header and no rows.
A file with records, none of them a member (all quarantined, not all ``removed_member``), writes no
snapshot (:func:`no_membership`), with a warning.

JSONL of bare results and CSV are read by the typed fast path (:mod:`cohortlab.loaders.fast`)
when every record can be taken exactly (a CSV: every row has an id); any other file by the exact
path, with the same rows.

Quarantine reasons: malformed_json, not_an_object, missing_distinct_id, bad_distinct_id,
bad_properties, profile_update (an /engage update, as in mixpanel-profiles), removed_member,
bad_operation (CSV).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cohortlab.cohort_names import cohort_names_by_id, ids_of_name
from cohortlab.loaders import fast
from cohortlab.errors import LoadError, close_names
from cohortlab.loaders.base import (
    FileContext, FileResult, Loader, csv_read_sql, header_cell_is_name_sql, pop_as_of, repeated_header_sql,
    repeated_header_warning,
)
from cohortlab.loaders.files import CsvHead, csv_header, head_text
from cohortlab.pipeline import sql_str
from cohortlab.times import format_time
from cohortlab.loaders.mixpanel_common import (
    PAGE_PATHS,
    ProfileUpserts,
    cohort_id_sql,
    drop_engage_stage,
    engage_page_sql,
    id_text_sql,
    missing_ranges,
    number_ranges,
    parse_utc,
    profile_time_warnings,
    register_cohorts,
    stage_engage_results,
    upsert_profiles,
)

DEFAULT_COLUMNS = ("distinct_id", "$distinct_id", "mixpanel_distinct_id")
_OPTIONS = ("cohort", "cohort_id", "as_of", "column", "header")


def _near_cohorts(ctx: FileContext, name: str) -> list[str]:
    """Known cohort names (cohorts list and snapshots) close to ``name`` (:func:`close_names`:
    case and surrounding spaces ignored), closest first."""
    known = [r[0] for r in ctx.engine.query_rows(
        "SELECT name FROM mp_cohorts WHERE name IS NOT NULL UNION SELECT cohort_name FROM mp_cohort_snapshots "
        "WHERE cohort_name IS NOT NULL"
    )]
    return close_names(name, known)


def _csv_id_sql(cell: str) -> str:
    """SQL: the distinct_id of a CSV cell, trimmed; NULL (no id: ``missing_distinct_id``) for an
    empty cell and for ``\\N``, the NULL a warehouse unload writes (Snowflake's default, Hive,
    Spark), which ``mparticle-csv`` reads as no value too (``NULL`` and ``null`` stay text). The
    exact and the fast path both read the id with it."""
    return f"CASE WHEN trim({cell}) NOT IN ('', '\\N') THEN trim({cell}) END"


def _column(cols: list[str], names) -> int | None:
    """The position of the first of ``names`` in the header ``cols``: as written, else with the
    spaces around it and its case ignored (a warehouse unload's ``DISTINCT_ID``, ``AS_OF``);
    None when neither."""
    for fold in (lambda c: c, lambda c: c.strip().lower()):
        folded = [fold(c) for c in cols]
        for name in names:
            if fold(name) in folded:
                return folded.index(fold(name))
    return None


def _looks_like_id(s: str) -> bool:
    return s.lstrip("-").isdigit()


def everyone_left(quarantined: Counter) -> bool:
    """Whether every quarantined record of a file left the cohort (``removed_member``): a sync
    export whose rows all remove a member is a cohort of 0 members, a file of the kind all the same."""
    return set(quarantined) == {"removed_member"}


def no_membership(rows_read: int, members: int, quarantined: Counter) -> bool:
    """Whether a file of ``rows_read`` records, ``members`` of them members, says nothing of the
    cohort's membership: it has records, none is a member, and not because everyone left
    (:func:`everyone_left`). Such a file writes no snapshot (docs/loading.md#mixpanel-members)."""
    return rows_read > 0 and members == 0 and not everyone_left(quarantined)


@dataclass
class _Listing:
    """An Engage listing (the pages of one paging session) read in one load call: its snapshot
    (None until a file of it names a member) and the page numbers read (also those of files that
    added no snapshot: a first page whose records all were quarantined). For the check made after
    the call's last file (:func:`_partial_listing_warning`): its files, cohort name, session_id,
    and each numbered page's (results, page_size, total)."""

    snapshot_id: int | None = None
    pages: set[int] = field(default_factory=set)
    files: list[str] = field(default_factory=list)
    cohort_name: str | None = None
    session_id: str | None = None
    sizes: dict[int, tuple] = field(default_factory=dict)

    def read(self, path: str, cohort_name: str, meta: dict[str, Any]) -> None:
        """Add a page file's pages (its ``meta`` from ``_stage_json``)."""
        self.pages.update(meta.get("pages") or ())
        if path not in self.files:
            self.files.append(path)
        self.cohort_name = cohort_name
        self.session_id = self.session_id or meta.get("session_id")
        for page, size in (meta.get("page_sizes") or {}).items():
            self.sizes[page] = _most(self.sizes.get(page), size)


def _most(a: tuple | None, b: tuple) -> tuple:
    """Two readings of one page's (results, page_size, total) as one: each the larger known."""
    return tuple(max((x for x in pair if x is not None), default=None) for pair in zip(a or (None,) * len(b), b))


_SHOWN_FILES = 3  # files of a listing a warning names
# what a warning of part of a listing advises: a page file loaded before is skipped (its fingerprint),
# so loading the folder again into the same database would make the later pages a snapshot of their own
LISTING_ADVICE = ("load every page file of the listing in one call (their folder), into a database that holds "
                  "none of them (a file loaded before is skipped)")


def _partial_listing_warning(listing: _Listing) -> list[str]:
    """The warning of an Engage listing read in one load call that is visibly incomplete (Engage's
    paging rule: the next page, same session_id and page + 1, is fetched while a page holds
    page_size results): its page numbers leave a gap (0 and 2 without 1), or its highest page is
    full (results >= page_size) and the results of its pages (members and quarantined records,
    each page once), with a full page for each page of a gap, are fewer than its ``total``, or it
    gives no total. A last full page whose
    results reach the total is the real last page (the total a multiple of page_size: the empty
    page after it, which a client may not save, adds nothing). A listing without its page 0 (none
    of the call's files holds it, in whatever order they came) warns that it holds later pages
    only; one that wrote no snapshot has none. Names the files, the cohort and the pages, never a
    member."""
    if listing.snapshot_id is None or not listing.pages:
        return []
    files = ", ".join(listing.files[:_SHOWN_FILES]) + (
        f" and {len(listing.files) - _SHOWN_FILES:,} more file(s)" if len(listing.files) > _SHOWN_FILES else "")
    if 0 not in listing.pages:
        return [f"{files}: {'holds' if len(listing.files) == 1 else 'hold'} Engage page(s) "
                f"{number_ranges(listing.pages)} of a listing but not its first page (page 0): its snapshot of "
                f"{listing.cohort_name!r} holds part of the cohort; {LISTING_ADVICE}"]
    last = max(listing.pages)
    missing = missing_ranges(listing.pages, 0, last)
    n, page_size, _ = listing.sizes.get(last, (None, None, None))
    page_size = page_size or max((s[1] for s in listing.sizes.values() if s[1] is not None), default=None)
    total = max((s[2] for s in listing.sizes.values() if s[2] is not None), default=None)
    results = sum(s[0] or 0 for s in listing.sizes.values())
    full = page_size is not None and n is not None and n >= page_size
    # the results the missing pages of a gap would hold (full pages: each a page_size): a total
    # short by no more than that says nothing of pages after the last one
    gap_results = ((last + 1) - len({p for p in listing.pages if 0 <= p <= last})) * (page_size or 0)
    after = full and (total is None or results + gap_results < total)
    if not missing and not after:
        return []
    what = []
    if missing:
        what.append(f"page(s) {missing}")
    if after:
        of_total = (f"the pages hold {results:,} of the listing's total of {total:,} results" if total is not None else
                    "the pages give no total; a listing ends with a page of fewer results, an empty one when the "
                    "cohort's size is a multiple of page_size")
        what.append(f"the page(s) after page {last} (it is full: {n:,} results, page_size {page_size:,}; {of_total})")
    session = f" (session_id {listing.session_id})" if listing.session_id is not None else ""
    part = "probably holds" if not missing and total is None else "holds"
    return [f"{files}: the Engage listing of {listing.cohort_name!r}{session} read in this load has page(s) "
            f"{number_ranges(listing.pages)}; missing: {'; '.join(what)}. Its snapshot {part} part of the cohort: "
            f"{LISTING_ADVICE}"]


class MixpanelMembersLoader(ProfileUpserts, Loader):
    kind = "mixpanel-members"
    description = "a cohort snapshot per file: Engage pages, CSV"

    def validate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ValueError(f"{self.kind}: unknown option(s) {unknown}; known: {', '.join(_OPTIONS)}")
        out: dict[str, Any] = {}
        for k in ("cohort", "cohort_id", "column"):
            v = options.get(k)
            if v is not None and str(v).strip() != "":
                # a name as given: "Churn Risk " (a space is part of a Mixpanel cohort's name) became
                # "Churn Risk", a cohort without an id, and the listed one had no snapshots; a name
                # close to a known one is warned about (did you mean)
                out[k] = str(v) if k in ("cohort", "column") else str(v).strip()
        header = str(options.get("header", "true")).strip().lower()
        if header not in ("true", "false"):
            raise ValueError(f"{self.kind}: header must be true or false, got {options.get('header')!r}")
        if header == "false":  # a CSV without a header: its column by position (default 1)
            out["header"] = False  # only then, so that the fingerprints of earlier loads stay theirs
            column = out.get("column", "1").strip()
            if not column.isdigit() or int(column) < 1:
                raise ValueError(f"{self.kind}: with header=false, column is the distinct_id column's position "
                                 f"(1 for the first), got {out['column']!r}")
            out["column"] = column
        return {**out, **pop_as_of(dict(options), self.kind)}

    def begin(self, engine) -> None:
        super().begin(engine)
        # (session_id, cohort_id, cohort_name, as_of) -> the Engage listing read in this call (one
        # object under several keys when a page without a session_id joined it)
        self._listings: dict[tuple, _Listing] = {}
        # every listing of pages read in this call, once (also one under no key: a session-less
        # page that repeats a page number), for the check after the last file (finish)
        self._paged: dict[int, _Listing] = {}

    def finish(self, engine, load_ids: list[int]) -> list[str]:
        """After the call's last file: a warning for each Engage listing that is visibly
        incomplete (:func:`_partial_listing_warning`), its pages perhaps spread over many files."""
        warnings = list(super().finish(engine, load_ids) or [])
        for listing in self._paged.values():
            warnings += _partial_listing_warning(listing)
        return warnings

    def _listing_of(self, session: str | None, pages: set[int], rest: tuple) -> _Listing:
        """The Engage listing a file of pages belongs to (a new one of its own for a file that
        names no session and no page, or repeats a page of the session-less listing read before).
        ``rest`` is (cohort_id, cohort_name, as_of): one listing never spans two cohorts or times.
        A file of pages without a session_id joins the one listing of ``rest`` whose pages it does
        not repeat; a file with one joins a listing read before without any (the first page saved
        without it), so that the order of the files does not matter."""
        if session is None and not pages:
            return _Listing()
        key = (session, *rest)
        if key in self._listings:
            found = self._listings[key]
            return found if session is not None or not found.pages & pages else _Listing()
        others = {id(v): v for k, v in self._listings.items()
                  if k[1:] == rest and (session is None or k[0] is None) and not v.pages & pages}
        found = next(iter(others.values())) if len(others) == 1 else _Listing()
        self._listings[key] = found
        return found

    # ------------------------------------------------------------------ per file
    def load_file(self, ctx: FileContext) -> FileResult:
        eng = ctx.engine
        st = f"_mp_mem_{ctx.load_id}"
        head = head_text(ctx.path).lstrip("\ufeff \t\r\n")
        if not head:
            raise LoadError(ctx.path, "empty file")
        if head[0] in "{[":
            meta, has_pages = self._stage_json(ctx, st)
        else:
            meta, has_pages = self._stage_csv(ctx, st)

        warnings: list[str] = []
        cohort_id, cohort_name = self._resolve_cohort(ctx, meta.get("cohort_id"), meta.get("cohort_name"), warnings)
        as_of = self._resolve_as_of(ctx, meta.get("as_of"))

        if meta.get("layout") == "csv":
            warnings += repeated_header_warning(ctx, *meta["repeated_headers"])
            warnings += self._spreadsheet_numbers(ctx, st)
            warnings += self._null_texts(ctx, st)
        quarantined = ctx.reject(f"SELECT line, reason, raw FROM {st} WHERE reason IS NOT NULL")
        rows_read, valid, distinct = eng.query_rows(
            f"SELECT count(*), count(*) FILTER (WHERE reason IS NULL), "
            f"count(DISTINCT distinct_id) FILTER (WHERE reason IS NULL) FROM {st}"
        )[0]
        # Engage pages of one listing (one session_id) saved as several files and loaded in one
        # call are one snapshot: a file of a session seen earlier in this call adds its members to
        # that file's snapshot (each file its own snapshot gave the cohort only the last page's
        # members, the snapshots having one as_of)
        listing = self._listing_of(meta.get("session_id"), set(meta.get("pages") or ()),
                                   (cohort_id, cohort_name, as_of))
        snapshot_id = ctx.load_id if listing.snapshot_id is None else listing.snapshot_id
        same = None
        # (an empty file too: a header-only CSV empties the cohort, and one at the time of a snapshot
        # with members replaces it; records that name no member write no snapshot, below)
        if listing.snapshot_id is None and (valid or not rows_read):
            same = self._same_snapshot(ctx, st, cohort_id, cohort_name, as_of, int(distinct),
                                       standalone=not meta.get("session_id") and not meta.get("pages"),
                                       warnings=warnings)
            if same is not None:  # the snapshot loaded before, as other bytes: its members are not added again
                snapshot_id = listing.snapshot_id = same
        if meta.get("pages"):
            listing.read(str(ctx.path), cohort_name, meta)
            self._paged.setdefault(id(listing), listing)
        loaded = int(distinct)
        if snapshot_id == ctx.load_id and no_membership(int(rows_read), int(valid), quarantined):
            # records, none of them a member, and not because they left the cohort: the file says
            # nothing of the membership, and a snapshot of 0 members would remove every member
            warnings.append(
                f"{ctx.path}: none of its {int(rows_read):,} records names a member (see the quarantine): it "
                f"writes no snapshot of {cohort_name!r} (one of 0 members would remove every member)")
            drop_engage_stage(ctx, st)
            return FileResult(rows_read=int(rows_read), loaded=0, deduplicated=0, quarantined=Counter(quarantined),
                              warnings=warnings)
        if snapshot_id == ctx.load_id:
            eng.execute(
                "INSERT INTO mp_cohort_snapshots (snapshot_id, cohort_id, cohort_name, as_of, member_count, "
                "load_id, source_file, line) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                [ctx.load_id, cohort_id, cohort_name, as_of, int(distinct), ctx.load_id, str(ctx.path)],
            )
            listing.snapshot_id = ctx.load_id
        eng.execute(
            f"""
            INSERT INTO mp_cohort_members (snapshot_id, cohort_name, as_of, distinct_id,
                                           load_id, source_file, line)
            SELECT ?, ?, ?, distinct_id, ?, ?, {"line" if valid == distinct else "min(line)"}
            FROM {st} WHERE reason IS NULL
            {"" if snapshot_id == ctx.load_id else
             f"AND distinct_id NOT IN (SELECT distinct_id FROM mp_cohort_members WHERE snapshot_id = {int(snapshot_id)})"}
            {"" if valid == distinct else "GROUP BY distinct_id"}
            """,
            [snapshot_id, cohort_name, as_of, ctx.load_id, str(ctx.path)],
        )
        if snapshot_id != ctx.load_id:  # members already in the listing's earlier pages: de-duplicated
            (loaded,) = eng.query_rows(
                f"SELECT count(*) FROM mp_cohort_members WHERE snapshot_id = {int(snapshot_id)} "
                f"AND load_id = {int(ctx.load_id)}")[0]
            eng.execute(
                f"UPDATE mp_cohort_snapshots SET member_count = (SELECT count(*) FROM mp_cohort_members "
                f"WHERE snapshot_id = {int(snapshot_id)}) WHERE snapshot_id = {int(snapshot_id)}")
        if meta.get("profiles") and same is None:  # a snapshot loaded before as other bytes: its profiles were too
            profiles = f"SELECT * FROM {st} WHERE reason IS NULL AND has_properties"
            upsert_profiles(ctx, profiles, as_of=as_of)
            warnings += profile_time_warnings(ctx, profiles)
        register_cohorts(
            ctx,
            f"SELECT {sql_str(cohort_id) if cohort_id is not None else 'NULL'}::VARCHAR AS cohort_id, "
            f"{sql_str(cohort_name)} AS name, NULL::VARCHAR AS description, "
            f"NULL::VARCHAR AS project_id, NULL::BIGINT AS line",
        )
        drop_engage_stage(ctx, st)
        return FileResult(
            rows_read=int(rows_read),
            loaded=int(loaded),
            deduplicated=int(valid) - int(loaded),
            quarantined=Counter(quarantined),
            allow_empty=int(rows_read) == 0 and has_pages,
            all_quarantined_is_expected=everyone_left(quarantined),
            warnings=warnings,
        )

    @staticmethod
    def _same_snapshot(ctx: FileContext, st: str, cohort_id, cohort_name: str, as_of, members: int, *,
                       standalone: bool, warnings: list[str]) -> int | None:
        """The snapshot of this cohort at this as-of time that a load before this file wrote, when
        it holds exactly this file's members: the same snapshot as other bytes (a gzip or CRLF
        copy, a CSV given by cohort id after its folder gave it by name), which the fingerprint,
        a hash of the bytes, cannot see. None otherwise; then a ``standalone`` file (not a page of
        an Engage listing, whose other pages may follow) that differs is warned about: it replaces
        that snapshot (the later load is the one simulated), as a partial re-download would."""
        rows = ctx.engine.query_rows(
            "SELECT snapshot_id, member_count FROM mp_cohort_snapshots "
            "WHERE as_of = ? AND snapshot_id < ? "
            # the same cohort: its id, else (a snapshot loaded by name only) its name
            "AND (cohort_id = ? OR (cohort_name = ? AND (cohort_id IS NULL OR ?::VARCHAR IS NULL))) "
            "ORDER BY snapshot_id DESC LIMIT 1",
            [as_of, ctx.load_id, cohort_id, cohort_name, cohort_id])
        if not rows:
            return None
        earlier, count = int(rows[0][0]), int(rows[0][1])
        (missing,) = ctx.engine.query_rows(
            f"SELECT count(DISTINCT s.distinct_id) FROM {st} s WHERE s.reason IS NULL AND s.distinct_id NOT IN "
            f"(SELECT distinct_id FROM mp_cohort_members WHERE snapshot_id = {earlier})")[0]
        if count == members and missing == 0:
            return earlier
        if standalone:
            warnings.append(
                f"{ctx.path}: a snapshot of {cohort_name!r} at {format_time(as_of)} was loaded before with other "
                f"members ({count:,}; this file has {members:,}, {int(missing):,} of them new): this one replaces it "
                f"(the later load is the one simulated)")
        return None

    # ------------------------------------------------------------------ inputs
    def _stage_json(self, ctx: FileContext, st: str) -> tuple[dict[str, Any], bool]:
        eng = ctx.engine
        layout = stage_engage_results(ctx, st)
        # page-level keys of the pages only: v = [as_of, filter_by_cohort, (status, error,)
        # session_id, page, page_size, total], and n = the number of a page's results (the
        # paging rule: a page of page_size results may have a next one); the results (already
        # staged) are not copied out again
        keys = ("json_extract(j, ['$.as_of', '$.filter_by_cohort', '$.status', '$.error', '$.session_id', '$.page', "
                "'$.page_size', '$.total'])")
        if eng.query_rows("SELECT 1 FROM duckdb_tables() WHERE table_name = ? AND temporary", [f"{st}_rows"]):
            # staged in parallel: the page keys and sizes are already extracted (the fast path's
            # table, of bare results, has no page)
            recs = f"SELECT TRUE AS is_page, page_keys, n FROM {st}_rows WHERE is_page"
            keys = "page_keys"
        else:
            # the results' number from the values engage_page_sql reads (p[1]: the results)
            n = "CASE WHEN json_type(p[1]) = 'ARRAY' THEN json_array_length(p[1]) END AS n"
            if layout == "jsonl":
                recs = (f"SELECT {engage_page_sql('p')} AS is_page, j, {n} "
                        f"FROM (SELECT try(json_extract(raw, {PAGE_PATHS})) AS p, raw AS j "
                        f"FROM ({ctx.lines_sql()}) WHERE raw IS NOT NULL AND trim(raw) <> '')")
            else:
                recs = (f"SELECT {engage_page_sql('p')} AS is_page, j, {n} "
                        f"FROM (SELECT json_extract(j, {PAGE_PATHS}) AS p, j FROM ({ctx.json_records_sql()}))")
        fbc = (
            "CASE json_type(v[2]) WHEN 'VARCHAR' THEN TRY_CAST(json_extract_string(v[2], '$') AS JSON) "
            "WHEN 'OBJECT' THEN v[2] END"
        )
        rows = eng.query_rows(
            f"""
            SELECT DISTINCT
                   CASE json_type(v[1]) WHEN 'VARCHAR' THEN json_extract_string(v[1], '$')
                        WHEN 'NULL' THEN NULL ELSE v[1]::VARCHAR END AS as_of,
                   {cohort_id_sql(f"json_extract({fbc}, '$.id')")} AS cohort_id,
                   nullif(json_extract_string({fbc}, '$.name'), '') AS cohort_name,
                   json_type(v[2]) IS NOT NULL AND json_type(v[2]) <> 'NULL' AND {fbc} IS NULL AS bad_fbc,
                   {id_text_sql('v[5]')} AS session_id,
                   CASE WHEN json_type(v[6]) IN ('UBIGINT', 'BIGINT') THEN v[6]::VARCHAR::BIGINT END AS page,
                   CASE WHEN json_type(v[7]) IN ('UBIGINT', 'BIGINT') THEN v[7]::VARCHAR::BIGINT END AS page_size,
                   CASE WHEN json_type(v[8]) IN ('UBIGINT', 'BIGINT') THEN v[8]::VARCHAR::BIGINT END AS total,
                   coalesce(n, 0) AS n
            FROM (SELECT {keys} AS v, n FROM ({recs}) WHERE is_page)
            """
        )
        has_pages = bool(rows)
        meta: dict[str, Any] = {"layout": layout}
        if any(r[3] for r in rows):
            raise LoadError(ctx.path, "filter_by_cohort is neither a JSON object nor a JSON string "
                                      "holding one")
        for i, key in ((0, "as_of"), (1, "cohort_id"), (2, "cohort_name")):
            values = {r[i] for r in rows if r[i] is not None}
            if key == "as_of":
                values = set(_one_per_instant(values))
            if len(values) > 1:
                raise LoadError(ctx.path, f"pages disagree on {key}: {sorted(values)}")
            if values:
                meta[key] = values.pop()
        # the Engage paging session and page numbers of the pages: pages of one listing saved as
        # several files (page_0.json, page_1.json, ...) are one snapshot (load_file)
        sessions = {r[4] for r in rows if r[4] is not None}
        if len(sessions) == 1:
            meta["session_id"] = sessions.pop()
        meta["pages"] = sorted({r[5] for r in rows if r[5] is not None})
        # each numbered page's results, page_size and total (a page repeated in the file: the most)
        sizes: dict[int, tuple] = {}
        for *_, page, page_size, total, n in rows:
            if page is not None:
                sizes[page] = _most(sizes.get(page), (int(n), page_size, total))
        meta["page_sizes"] = sizes
        meta["profiles"] = bool(
            eng.query_rows(f"SELECT 1 FROM {st} WHERE reason IS NULL AND has_properties LIMIT 1")
        )
        return meta, has_pages

    def _stage_csv(self, ctx: FileContext, st: str) -> tuple[dict[str, Any], bool]:
        eng = ctx.engine
        # the dialect comes from the header line (a one-column file has no delimiter: ids such
        # as auth0|5f1a2b stay whole); columns are read by position (c1 … cN)
        head = csv_header(ctx.text_path(csv=True))
        column = ctx.options.get("column")
        if ctx.options.get("header") is False:  # no header: the first line is a row, columns by position
            head = head.without_header()
            if int(column) > len(head.columns):
                raise LoadError(ctx.path, f"no column {column}: the first row has {len(head.columns)} column(s)",
                                line=head.first_row_line)
        cols = head.columns
        src = csv_read_sql(ctx, head)
        # the id column (and as_of) as written, else in another case or with spaces around it
        at = _column(cols, DEFAULT_COLUMNS if column is None else [column])
        if at is None and column is None:
            raise LoadError(ctx.path, f"no distinct_id column: expected one of "
                                      f"{', '.join(DEFAULT_COLUMNS)} (or pass -o column=NAME; a file without a "
                                      f"header: -o header=false); the header has {cols}", line=1 + head.skip)
        if at is None:
            raise LoadError(ctx.path, f"no column {column!r}; the header has {cols}", line=1 + head.skip)
        column = cols[at]
        qc = f"c{at + 1}"
        # as_of and operation columns are named: none in a file without a header
        as_of_at = _column(cols, ["as_of"]) if head.header else None
        # the CSV of a cohort sync's export (Integrations > the cohort) lists the users sent with an
        # "operation" column: add (entered), no-op (stayed) or remove (left the cohort: not a member)
        op = next((f"c{i + 1}" for i, c in enumerate(cols) if c.strip().lower() == "operation"), None) \
            if head.header else None
        if fast.enabled() and op is None:
            meta = self._stage_csv_fast(ctx, st, src, qc, column,
                                        f"c{as_of_at + 1}" if as_of_at is not None else None, head)
            if meta is not None:
                return meta, True
        # line = position + the lines before the first row (the header, a sep= line:
        # first_row_line - 1); the raw row only for rejects: a JSON object
        # of the header's names and the row's values (as mparticle-csv keeps them). A row that
        # repeats the header (part files joined: cat part_*.csv) is no record: left out of the
        # stage, counted for a warning (it was a member named "distinct_id")
        row_json = "json_object(" + ", ".join(f"{sql_str(c)}, t.c{i + 1}" for i, c in enumerate(cols)) + ")::VARCHAR"
        # the operation's reason: NULL for a member (add, no-op), else removed_member or, for any
        # other value (an empty cell included), bad_operation: which it means is unknown
        op_reason = (f"CASE lower(trim(t.{op})) WHEN 'add' THEN NULL WHEN 'no-op' THEN NULL "
                     f"WHEN 'remove' THEN 'removed_member' ELSE 'bad_operation' END" if op else "NULL")
        header = repeated_header_sql(head, "t.") if head.header else "FALSE"
        rows = (
            f"SELECT CASE WHEN header THEN NULL WHEN distinct_id IS NULL THEN 'missing_distinct_id' "
            f"ELSE op_reason END AS reason, "
            f"CASE WHEN NOT header AND (distinct_id IS NULL OR op_reason IS NOT NULL) THEN {row_json} END AS raw, "
            f"distinct_id, header "
            f"FROM (SELECT t.*, {_csv_id_sql(f't.{qc}')} AS distinct_id, {op_reason} AS op_reason, "
            f"{header} AS header FROM {src} t) t"
        )
        stage_cols = "reason, raw, distinct_id, NULL::JSON AS properties, FALSE AS has_properties"
        line = ctx.numbered_table(f"{st}_rows", rows)
        if line is not None:
            line = f"{line} + {head.first_row_line - 1}"
        else:
            eng.execute(f"CREATE OR REPLACE TEMP TABLE {st}_rows AS SELECT row_number() OVER () + "
                        f"{head.first_row_line - 1} AS line, * FROM ({rows})")
            line = "line"
        eng.execute(f"CREATE OR REPLACE TEMP VIEW {st} AS SELECT {line} AS line, "
                    f"NULL::BIGINT AS doc_no, {stage_cols} FROM {st}_rows WHERE NOT header")
        meta: dict[str, Any] = {"layout": "csv"}
        meta["repeated_headers"] = eng.query_rows(f"SELECT count(*), min({line}) FROM {st}_rows WHERE header")[0]
        if as_of_at is not None:
            a = f"t.c{as_of_at + 1}"
            meta.update(_csv_as_of(ctx, f"SELECT trim({a}) AS as_of FROM {src} t WHERE NOT {header}"))
        return meta, True

    def _stage_csv_fast(self, ctx: FileContext, st: str, src: str, qc: str, column: str,
                        as_of_col: str | None, head: CsvHead) -> dict | None:
        """The typed fast path of a members CSV (:mod:`cohortlab.loaders.fast`): one ``read_csv``
        of the id column (and the as_of column) into ``{st}_rows``, numbered by position as the
        exact path numbers rows (line = position - 1 + ``head.first_row_line``), and
        the view ``st`` over it; the as_of
        value comes from the same read. Returns the file's meta, or None (nothing left behind)
        when a row has no id (the exact path quarantines it with its text), a row's id is the
        column's name (a repeated header? the exact path tells) or positions cannot be trusted."""
        eng = ctx.engine
        rows = f"{st}_rows"
        as_of = f", trim(t.{as_of_col}) AS as_of" if as_of_col else ""
        repeats = f" OR {header_cell_is_name_sql('distinct_id', column)}" if head.header else ""
        position = fast.accepted(ctx, rows, f"SELECT {_csv_id_sql(f't.{qc}')} AS distinct_id{as_of} FROM {src} t",
                                 rejected=f"distinct_id IS NULL{repeats}",
                                 why="a row without a distinct_id, or one that may repeat the header", per_line=False)
        if position is None:
            return None
        eng.execute(f"CREATE OR REPLACE TEMP VIEW {st} AS SELECT {position} + {head.first_row_line - 1} AS line, "
                    f"NULL::BIGINT AS doc_no, NULL::VARCHAR AS reason, NULL::VARCHAR AS raw, distinct_id, "
                    f"NULL::JSON AS properties, FALSE AS has_properties FROM {rows}")
        meta: dict[str, Any] = {"layout": "csv", "repeated_headers": (0, None)}
        if as_of_col:
            meta.update(_csv_as_of(ctx, f"SELECT as_of FROM {rows}"))
        return meta

    @staticmethod
    def _spreadsheet_numbers(ctx: FileContext, st: str) -> list[str]:
        """A warning when distinct_ids of a CSV are numbers in scientific notation (``1.23457E+18``,
        ``1,23457E+18``, ``-9.08035E+18``: one digit, a fraction, an exponent with its sign): what a
        spreadsheet writes for a long numeric id it opened, or a float column (pandas' float64, a
        DOUBLE) for one it held, its digits lost. The rows still load
        as written."""
        n, first = ctx.engine.query_rows(
            f"SELECT count(*), min(distinct_id) FROM {st} WHERE reason IS NULL AND "
            f"regexp_full_match(distinct_id, '-?[0-9]([.,][0-9]+)?[eE][+-][0-9]{{1,3}}')")[0]
        if not n:
            return []
        return [f"{ctx.path}: {n} distinct_id(s) are numbers in scientific notation (such as {first!r}): a "
                f"spreadsheet, or a float column (pandas, a DOUBLE), rewrote them and their digits are lost, so "
                f"they probably name no user; export the cohort again and keep the ids as text (do not open the "
                f"file in a spreadsheet, or import the column as text; pandas: dtype=str)"]

    @staticmethod
    def _null_texts(ctx: FileContext, st: str) -> list[str]:
        """A warning when distinct_ids of a CSV are the text ``NULL`` in any case: how some exports
        write an SQL NULL (SQL Server Management Studio's results, a ``NULL_IF=('NULL')`` unload).
        A distinct_id is free text, so the rows still load, as members of that id (exact about
        identifiers; ``\\N`` and an empty cell are no id), though it is probably no user's."""
        n, line = ctx.engine.query_rows(
            f"SELECT count(*), min(line) FROM {st} WHERE reason IS NULL AND upper(distinct_id) = 'NULL'")[0]
        if not n:
            return []
        return [f"{ctx.path}: {n:,} distinct_id(s) are the text NULL (line {line}): an SQL NULL written as text? "
                f"Loaded as members of that id (probably no user's); export the cohort with NULL "
                f"as an empty field or \\N, which are no id"]

    # ------------------------------------------------------------------ cohort and time
    def _resolve_cohort(self, ctx: FileContext, file_id: str | None,
                        file_name: str | None, warnings: list[str]) -> tuple[str | None, str]:
        q = ctx.engine.query_rows
        cid: str | None = ctx.options.get("cohort_id")
        name: str | None = None
        opt = ctx.options.get("cohort")
        known_id = False
        if cid is not None and opt is not None:  # both given: a name of that cohort, or a new one (a rename)
            known_id = self._check_cohort_name(ctx, cid, opt)
        if opt is not None:
            by_name = q("SELECT cohort_id FROM mp_cohorts WHERE name = ? LIMIT 1", [opt])
            if by_name:
                name = opt
                cid = cid or self._id_of_name(ctx, opt, "-o cohort=")
            else:
                by_id = q("SELECT name FROM mp_cohorts WHERE cohort_id = ? LIMIT 1", [opt])
                if by_id:
                    cid, name = opt, by_id[0][0]
                elif _looks_like_id(opt):
                    raise LoadError(ctx.path, f"cohort {opt!r} is not a cohort name and no cohort has "
                                              "this id in mp_cohorts: load the /cohorts/list export "
                                              "first (mixpanel-cohorts) or pass the cohort name")
                else:
                    name = opt
                    near = [] if known_id else _near_cohorts(ctx, opt)  # a known id: no new cohort
                    if near:
                        warnings.append(
                            f"{ctx.path}: cohort {opt!r} is not a known cohort, so a new cohort is created; "
                            f"did you mean {' or '.join(repr(n) for n in near)}?"
                        )
        if cid is None and name is None:
            cid, name = file_id, file_name
        if name is None and cid is not None and file_name is not None and file_id == cid:
            name = file_name  # the page's own filter_by_cohort names this id: its name at the snapshot's time
        if name is None and cid is not None:
            rows = q("SELECT name FROM mp_cohorts WHERE cohort_id = ? LIMIT 1", [cid])
            if not rows:
                raise LoadError(ctx.path, f"cohort id {cid!r} is unknown (not in mp_cohorts): load the "
                                          "/cohorts/list export first (mixpanel-cohorts) or pass "
                                          "-o cohort=NAME")
            name = rows[0][0]
        if name is None:
            raise LoadError(ctx.path, "the cohort is unknown: pass -o cohort=NAME (or -o cohort_id=ID), "
                                      "or fetch the pages with filter_by_cohort in the file")
        if cid is None:
            cid = self._id_of_name(ctx, name, "-o cohort=" if opt is not None else "the file's cohort ")
        return cid, name

    @staticmethod
    def _id_of_name(ctx: FileContext, name: str, given: str) -> str | None:
        """The id of the cohort named ``name`` (:func:`ids_of_name`: the cohort whose current name it
        is, else the one that had it), None when no cohort with an id is so named. A name several
        cohorts hold (Mixpanel allows two cohorts one name) is refused with their ids, as
        ``simulate`` refuses it (docs/rules.md#renamed-cohorts): the snapshot would go to one of
        them unnoticed."""
        ids = ids_of_name(cohort_names_by_id(ctx.engine), name)
        if len(ids) > 1:
            raise LoadError(ctx.path, f"{given}{name!r} is the name of several cohorts (ids {', '.join(ids)}): "
                                      f"pass the cohort's id instead (-o cohort_id=ID). A cohort's name is that "
                                      f"of its latest snapshot or webhook page, else the cohort list's: a cohort "
                                      f"renamed since keeps its old name until data of a later time names it")
        return ids[0] if ids else None

    @staticmethod
    def _check_cohort_name(ctx: FileContext, cid: str, opt: str) -> bool:
        """``-o cohort=NAME -o cohort_id=ID`` (docs/loading.md#mixpanel-members): the file is that
        id's snapshot, named NAME. NAME may be any name the id is recorded under (the cohort list's,
        a snapshot's or a webhook page's), or a new one: the cohort was renamed (the snapshot
        carries the new name at its as-of time, the cohort list stays as it was loaded,
        docs/rules.md#renamed-cohorts). Refused when NAME is another cohort's id, or the current
        name of another cohort and no name of this one: the options then name two cohorts, and a
        typo in one would write this snapshot under the other's name. True when the id is known."""
        names = cohort_names_by_id(ctx.engine)
        current, mine = names.get(cid, (None, []))
        holders = [] if opt == cid or opt in mine else sorted(
            i for i, (now, _) in names.items() if i != cid and opt in (i, now))
        if holders:
            what = (f"{opt!r} is another cohort's id" if opt in holders else
                    f"{opt!r} is the name of cohort_id {', '.join(holders)}")
            mine_now = f"; cohort_id {cid} is {current!r}" if current is not None else ""
            raise LoadError(ctx.path, f"-o cohort={opt!r} and -o cohort_id={cid} name different cohorts "
                                      f"({what}{mine_now}): pass one of them (when both cohorts are named "
                                      f"{opt!r} now, load the current cohort list first: mixpanel-cohorts)")
        return current is not None

    def _resolve_as_of(self, ctx: FileContext, file_as_of: str | None) -> datetime:
        value = ctx.options.get("as_of") or file_as_of
        if value is None:
            raise LoadError(ctx.path, "as_of is required: pass -o as_of=2026-03-01T00:00:00Z "
                                      "(or put an \"as_of\" key in the pages / an as_of column in the CSV)")
        try:
            return parse_utc(value, "as_of")
        except ValueError as e:
            raise LoadError(ctx.path, str(e)) from None


def _csv_as_of(ctx: FileContext, rows: str) -> dict[str, str]:
    """``{"as_of": value}`` from the as_of column of a members CSV (``rows``: a query with one
    column ``as_of``, the trimmed cells of the rows that are records), ``{}`` when every cell is
    empty; an error when the cells name several instants: one file is one snapshot. Both parse
    paths (the fast and the exact one) read the file's as_of here."""
    values = _one_per_instant([r[0] for r in ctx.engine.query_rows(
        f"SELECT DISTINCT as_of FROM ({rows}) WHERE nullif(as_of, '') IS NOT NULL")])
    if len(values) > 1:
        raise LoadError(ctx.path, f"the as_of column has several values {sorted(values)[:5]}: "
                                  "one file is one snapshot")
    return {"as_of": values[0]} if values else {}


def _one_per_instant(values) -> list[str]:
    """The as_of values of a file's pages or rows, one per instant they name: the same time
    spelled two ways (``2026-03-01T00:00:00Z``, ``2026-03-01 00:00:00``,
    ``2026-03-01T05:30:00+05:30``) is one snapshot time, not pages that disagree. A
    value that is no time stays as it is (the load then says so)."""
    out: dict[Any, str] = {}
    for v in sorted(values, key=str):
        try:
            key = parse_utc(v, "as_of")
        except ValueError:
            key = v
        out.setdefault(key, v)
    return list(out.values())


__all__ = ["MixpanelMembersLoader"]
