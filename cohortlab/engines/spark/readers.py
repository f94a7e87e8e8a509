"""Getting canonical tables into Spark.

* :func:`export_canonical` (DuckDB side, no PySpark): ``COPY`` every canonical table of a
  cohortlab database to ``<out>/<table>.parquet``. Types are kept (MPIDs stay ``BIGINT`` = Parquet
  INT64; timestamps are naive UTC microseconds; JSON columns are written as text, which is what
  Spark reads them as). ``cohortlab export --db FILE --out DIR`` calls it;
  ``SparkEngine.read_canonical(DIR)`` reads the result.
* :func:`read_mixpanel_events` / :func:`read_mparticle_profiles` (Spark side): Spark-native
  readers for the two biggest inputs, with explicit schemas, producing the canonical columns.
  MPIDs are read as text and cast to BIGINT only when they are valid (never through a double).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from cohortlab import progress
from cohortlab import schema as _schema
from cohortlab.output_files import written_whole
from cohortlab.pipeline import sql_str
from cohortlab.privacy import META_TABLE

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from cohortlab.engines.base import Engine




def export_canonical(
    engine: "Engine",
    out_dir: str | os.PathLike,
    *,
    tables: Iterable[str] | None = None,
    overwrite: bool = False,
    compression: str = "zstd",
) -> dict[str, int]:
    """Write each canonical table of a DuckDB ``engine`` to ``out_dir/<table>.parquet``.

    Returns ``{table: rows}``. An unknown table name, or an existing file (unless ``overwrite``),
    is an error before anything is written or any folder made; a table the database does not
    hold is skipped. A failed or interrupted export removes the files (and the folder) it added. A whole export (``tables=None``) also writes the database's pseudonym key,
    ``cohortlab_meta.parquet``, which :meth:`SparkEngine.read_canonical` reads back, so that
    personal values get the same pseudonyms on Spark as in the DuckDB outputs.
    """
    out = Path(out_dir)
    names = list(tables) if tables is not None else list(_schema.TABLES)
    unknown = [n for n in names if n not in _schema.TABLES]
    if unknown:
        raise ValueError(f"not canonical tables: {', '.join(unknown)} (known: {', '.join(_schema.TABLES)})")
    names = [n for n in names if engine.table_exists(n)]
    if tables is None and engine.table_exists(META_TABLE):
        names.append(META_TABLE)  # the pseudonym key: the same pseudonyms on Spark as on DuckDB
    # lexists: a link that points nowhere is the user's too, never replaced without overwrite
    existing = [str(out / f"{n}.parquet") for n in names if os.path.lexists(out / f"{n}.parquet")]
    if existing and not overwrite:  # checked for every table before anything is written
        more = f"; {len(existing) - 1} more table file(s) too" if len(existing) > 1 else ""
        raise FileExistsError(f"{existing[0]} exists{more} (use --overwrite; overwrite=True in Python)")
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    new: list[Path] = []  # the files this export adds (not those it replaces)
    try:
        for name in names:
            target = out / f"{name}.parquet"
            cols = "name, value" if name == META_TABLE else ", ".join(
                f"CAST({c} AS VARCHAR) AS {c}" if t.upper() == "JSON" else c
                for c, t, _ in _schema.TABLES[name].columns
            )
            progress.step(name)  # a step of `cohortlab export`'s progress line
            if not os.path.lexists(target):
                new.append(target)
            # a killed export (or a full disk) never leaves a truncated <table>.parquet that looks
            # complete (and that a re-run refuses to replace)
            with written_whole(target) as part:
                engine.execute(
                    f"COPY (SELECT {cols} FROM {name}) TO {sql_str(part)} (FORMAT parquet, COMPRESSION {compression})"
                )
            counts[name] = engine.count(name)
    except BaseException:
        # stopped (Ctrl-C, SIGTERM) or failed: the tables it added go, so that the next run (a cron
        # job's retry) is not refused for files of a half-done export ("... exists; use --overwrite")
        from cohortlab.output_files import remove_written

        remove_written(out, [t.name for t in new], made=made)
        raise
    return counts


# ---------------------------------------------------------------------- Spark-native readers
# Explicit schemas: every identifier as text (a JSON number above 2^53 is kept digit for digit by
# Spark's JSON reader when the field is declared a string), then cast deliberately.

_MIXPANEL_EVENT_DDL = (
    "event STRING, properties STRUCT<"
    "time: STRING, distinct_id: STRING, `$user_id`: STRING, `$device_id`: STRING, "
    "`$insert_id`: STRING, `$mparticle_user_id`: STRING>"
)


def read_mixpanel_events(spark: "SparkSession", paths: str | list[str], *, time_unit: str = "auto",
                         timezone: str | None = None) -> "DataFrame":
    """Mixpanel raw export JSONL -> the ``mp_events`` columns, in order (``load_id`` and ``line`` NULL).

    ``time`` is epoch seconds (fractional allowed) or milliseconds (``time_unit="ms"``, or
    ``"auto"``: values above 1e11 are milliseconds), as the DuckDB loader reads it; with
    ``timezone`` (a project created before 2023: docs/loading.md#project-time-zone) the times are
    that zone's wall clock, stored in UTC (``to_utc_timestamp``: in a repeated hour, the earlier
    instant, as the DuckDB loader takes it); ``properties``
    is the raw properties object as JSON text; ``distinct_id`` falls back to ``$user_id`` then
    ``'$device:' || $device_id``. ``$mparticle_user_id`` is read as text: strings and integers of
    any size keep their exact digits; a JSON *float* token is re-spelled by Spark's JSON parser
    (``1.2e18`` -> ``1.2E18``; the DuckDB loader keeps ``1.2e18``): either way it is not a valid
    MPID and classifies as ``malformed_mparticle_user_id``. Deduplication and quarantine are the
    DuckDB loader's job; this reader is for data too large for one machine.
    """
    from pyspark.sql import functions as F

    raw = spark.read.schema("value STRING").text(paths)
    parsed = raw.select(
        F.from_json("value", _MIXPANEL_EVENT_DDL).alias("j"),
        F.get_json_object("value", "$.properties").alias("properties_json"),
        F.input_file_name().alias("source_file"),
    ).where(F.col("j").isNotNull() & F.col("j.event").isNotNull())
    p = F.col("j.properties")
    num = p["time"].try_cast("double") if hasattr(p["time"], "try_cast") else F.expr("try_cast(j.properties.time AS DOUBLE)")
    # as the DuckDB loader: round(num * 1e6) microseconds (1e3 for milliseconds), range-checked
    mult = {"s": F.lit(1e6), "ms": F.lit(1e3)}.get(time_unit, F.when(F.abs(num) > 1e11, F.lit(1e3)).otherwise(F.lit(1e6)))
    micros = F.round(num * mult)
    ts = F.when(micros.between(-62135596800e6, 253402300799e6), F.timestamp_micros(micros.cast("bigint")))
    if timezone is not None:
        from cohortlab.loaders.time_zone import WALL_CLOCK_RANGE, pop_timezone, wall_clock

        zone = wall_clock(pop_timezone("read_mixpanel_events", {"timezone": timezone}))
        if zone is not None:  # (the session time zone is UTC: ts's wall clock is the exported one)
            edge = ts.between(*(F.lit(t).cast("timestamp") for t in WALL_CLOCK_RANGE))
            ts = F.when(edge, F.to_utc_timestamp(ts, zone))
    ts = ts.cast("timestamp_ntz")

    def text(c):
        return F.when(c != "", c)

    did = F.coalesce(
        text(p["distinct_id"]), text(p["$user_id"]),
        F.concat(F.lit("$device:"), text(p["$device_id"])),
    )
    return _canonical_columns(parsed.select(
        F.col("j.event").alias("event"),
        ts.alias("time"),
        did.alias("distinct_id"),
        p["$insert_id"].alias("insert_id"),
        p["$device_id"].alias("device_id"),
        p["$user_id"].alias("user_id"),
        p["$mparticle_user_id"].alias("mparticle_user_id"),
        F.col("properties_json").alias("properties"),
        F.col("source_file"),
    ).where(F.col("time").isNotNull()), "mp_events")


def _canonical_columns(df: "DataFrame", table: str) -> "DataFrame":
    """``df`` with exactly the columns of the canonical ``table``, in its order: the provenance
    columns a reader does not know (``load_id``, ``line``, ...) as typed NULLs, so that
    ``register_df`` gives the core SQL every column it reads (verify reads
    ``mpa_profiles.load_id``)."""
    from pyspark.sql import functions as F

    from cohortlab.engines.spark.dialect import spark_type

    return df.select(*[
        F.col(c) if c in df.columns else F.lit(None).cast(spark_type(t)).alias(c)
        for c, t, _ in _schema.TABLES[table].columns
    ])


_PROFILE_DDL = (
    "mpid STRING, created_timestamp_ms STRING, last_stored_timestamp_ms STRING, is_opted_out STRING, "
    "user_identities STRING, device_identities STRING"
)

_MPID_RE = r"^-?[0-9]+$"


def _identities(raw_col, kind: str):
    """Identity entries of a Profile API ``user_identities``/``device_identities`` value, which
    is either a list of ``{type, value}`` objects or a ``{type: value}`` map -> rows of
    (kind, identity_type, value) with the loader's normalised identity type names."""
    from pyspark.sql import functions as F

    from cohortlab.identity_types import IDENTITY_TYPE_ALIASES

    as_list = F.from_json(raw_col, "ARRAY<STRUCT<type: STRING, value: STRING>>")
    as_map = F.map_entries(F.from_json(raw_col, "MAP<STRING, STRING>"))
    entries = F.when(F.ltrim(raw_col).startswith("["), as_list).otherwise(
        F.transform(as_map, lambda e: F.struct(e["key"].alias("type"), e["value"].alias("value")))
    )
    return entries, F.create_map(*[F.lit(x) for kv in sorted(IDENTITY_TYPE_ALIASES.items()) for x in kv])


def read_mparticle_profiles(spark: "SparkSession", paths: str | list[str]) -> dict[str, "DataFrame"]:
    """mParticle Profile API JSONL (one profile object per line) -> ``{"mpa_profiles": ...,
    "mpa_identities": ...}`` with the canonical columns, in order (provenance columns NULL).

    Explicit schema; the MPID is read as text (a JSON number above 2^53 keeps its digits) and cast
    to BIGINT only when it is a valid int64. ``user_identities``/``device_identities`` may be lists
    of ``{type, value}`` or ``{type: value}`` maps; identity types are normalised as the DuckDB
    loader does (``customerid`` -> ``customer_id``). Profiles with an invalid MPID are dropped here
    (the DuckDB loader quarantines them with a reason); a later line does not replace an earlier
    one of the same MPID (load with the DuckDB loader when that matters).
    """
    from pyspark.sql import functions as F

    raw = spark.read.schema("value STRING").text(paths)
    j = raw.select(F.from_json("value", _PROFILE_DDL).alias("j")).select("j.*")
    mpid_text = F.trim(F.col("mpid"))
    j = j.withColumn(
        "mpid",
        F.when(mpid_text.rlike(_MPID_RE), F.expr("try_cast(trim(mpid) AS BIGINT)")),
    ).where(F.col("mpid").isNotNull())

    def ms(c):
        return F.timestamp_millis(F.expr(f"try_cast({c} AS BIGINT)")).cast("timestamp_ntz")

    profiles = j.select(
        "mpid",
        ms("created_timestamp_ms").alias("created_at"),
        ms("last_stored_timestamp_ms").alias("last_stored_at"),
        F.expr("try_cast(is_opted_out AS BOOLEAN)").alias("is_opted_out"),
        F.lit(None).cast("string").alias("environment"),
        F.lit("profile_api").alias("source"),
    )
    parts = []
    for col, kind in (("user_identities", "user"), ("device_identities", "device")):
        entries, aliases = _identities(F.col(col), kind)
        e = j.select("mpid", F.explode(entries).alias("i")).where(F.col("i.value").isNotNull())
        clean = F.regexp_replace(F.lower(F.trim(F.col("i.type"))), "[ -]", "_")
        parts.append(
            e.select(
                "mpid",
                F.lit(kind).alias("kind"),
                F.coalesce(F.element_at(aliases, clean), clean).alias("identity_type"),
                F.col("i.value").alias("value"),
            )
        )
    return {"mpa_profiles": _canonical_columns(profiles, "mpa_profiles"),
            "mpa_identities": _canonical_columns(parts[0].unionByName(parts[1]), "mpa_identities")}


def open_spark_engine(source: str | os.PathLike, *, master: str | None = None, spark: "SparkSession | None" = None):
    """A :class:`~cohortlab.engines.spark.SparkEngine` holding the canonical tables of ``source``:
    a folder of canonical Parquet/Delta tables (``cohortlab export``), or a DuckDB file, whose
    canonical tables are first exported to the engine's scratch folder (and whose pseudonym key
    is kept, so that personal values get the database's pseudonyms). ``master`` defaults to
    ``$COHORTLAB_SPARK_MASTER`` or ``local[2]``. Closing the engine stops a session it started."""
    from cohortlab.engines.duckdb import DuckDBEngine
    from cohortlab.engines.spark import SparkEngine

    src = Path(source)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such database or folder")
    engine = SparkEngine(spark, master=master)
    try:
        if src.is_dir():
            engine.read_canonical(src)
        else:
            duck = DuckDBEngine(src, read_only=True)
            try:  # with the pseudonym key (cohortlab_meta.parquet), which read_canonical reads back
                export_canonical(duck, engine.scratch_dir / "canonical")
            finally:
                duck.close()
            engine.read_canonical(engine.scratch_dir / "canonical")
    except BaseException:  # a folder it cannot read (a float MPID column, an id column missing): no session left
        engine.close()
        raise
    return engine
