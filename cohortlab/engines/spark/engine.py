"""Spark engine: runs the SAME core SQL as DuckDB, translated once per statement by sqlglot.

    from cohortlab import Lab, SparkEngine
    engine = SparkEngine(spark)                  # an existing session (Databricks, spark-submit)
    engine = SparkEngine(master="local[2]")      # or a local one (COHORTLAB_SPARK_MASTER)
    engine.read_canonical("export/")             # Parquet/Delta written by `cohortlab export`
    lab = Lab(engine=engine)

What it does (docs/spark.md#guarantees):

* **Translation.** Every statement is DuckDB dialect; it is parsed and generated for Spark by
  sqlglot (``read="duckdb"``, ``write=CohortSpark``, ``unsupported_level=ErrorLevel.RAISE``),
  once per distinct SQL string (cached). Fixes live in :mod:`cohortlab.engines.spark.dialect`.
* **Time zone.** ``spark.sql.session.timeZone`` is pinned to ``UTC``, also on a session passed
  in (its previous value is kept in :attr:`SparkEngine.previous_time_zone`): cohortlab's
  timestamps are naive UTC, and Spark renders/parses ``TIMESTAMP`` in the session zone.
* **Tables are temporary views.** ``materialise`` (``CREATE OR REPLACE TABLE x AS``) computes
  the result eagerly, breaks its lineage (``lineage=``: ``local_checkpoint`` default,
  ``checkpoint``, ``persist`` or ``parquet``) and exposes it as a temp view, so chains of steps do
  not grow one huge plan. ``CREATE TABLE`` with columns makes an empty typed view (the canonical
  tables the ``Lab`` creates); sequences, indexes and transactions are no-ops (Spark has none;
  ``transaction()`` is a no-op context). The core writes whole tables only, so ``INSERT``,
  ``DELETE`` and ``UPDATE`` are refused with a clear error (load data with the DuckDB loaders,
  ``cohortlab export``, then :meth:`SparkEngine.read_canonical`).
* **Pipeline statements.** Spark inlines a CTE at every reference; a ``WITH`` statement (a
  :class:`~cohortlab.pipeline.Pipeline`) is therefore run step by step as temp views, a step read
  more than once being cached for the statement (:class:`~cohortlab.engines.spark.dialect.SparkPlan`).
* **Parameters** (``?``) are bound as SQL literals in the parsed tree before translation, so a
  naive ``datetime`` means UTC as it does in DuckDB (not the Python process's local zone).
* **Exact integers.** Results come back through Arrow: BIGINT stays int64 (pandas ``Int64``
  when nullable), never a float (``toPandas()`` would turn nullable longs into float64).
"""

from __future__ import annotations

import datetime as _dt
import decimal
import os
import re
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import pandas as pd
import pyarrow as pa
from sqlglot import exp

from cohortlab import progress
from cohortlab import schema as _schema
from cohortlab.engines.base import Engine
from cohortlab.engines.spark.arrow import _naive_utc, arrow_to_pandas, pandas_to_arrow
from cohortlab.privacy import META_TABLE
from cohortlab.engines.spark.dialect import (
    SparkPlan,
    expression_to_spark,
    parse_cached,
    plan_query,
    plan_sql,
    spark_type,
    to_spark,
)

try:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.storagelevel import StorageLevel
except ImportError as _e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "SparkEngine needs PySpark: pip install 'cohortlab[spark]' (and a Java 17 runtime)"
    ) from _e

DEFAULT_MASTER = "local[2]"
LINEAGE_METHODS = ("local_checkpoint", "checkpoint", "persist", "parquet")


# a URI with a scheme (dbfs:/x, s3://b/x, file:///x), not a Windows drive (C:\\x)
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")

# the master URLs Spark takes (its "Master URLs" documentation)
_MASTER_RE = re.compile(r"local(\[(\*|\d+)(,\d+)?\])?|local-cluster\[[\d ,]+\]|(spark|k8s|mesos)://\S+|yarn")


def resolved_master(master: str | None = None) -> str:
    """The Spark master a session starts with: ``master``, else ``$COHORTLAB_SPARK_MASTER``, else
    :data:`DEFAULT_MASTER`."""
    return master or os.environ.get("COHORTLAB_SPARK_MASTER") or DEFAULT_MASTER


def master_problem(master: str) -> str | None:
    """Why ``master`` is no Spark master URL (None when it is one)."""
    if _MASTER_RE.fullmatch(str(master).strip()):
        return None
    return (f"spark master {str(master)[:80]!r} is not a master URL: local, local[N], local[*], spark://HOST:PORT, "
            "yarn or k8s://HOST:PORT (--spark-master, COHORTLAB_SPARK_MASTER)")


def local_session(
    master: str | None = None,
    *,
    scratch_dir: str | os.PathLike | None = None,
    shuffle_partitions: int = 2,
    adaptive: bool = False,
    driver_memory: str | None = None,
    app_name: str = "cohortlab",
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """A SparkSession tuned for one machine (tests, laptops): UI off, few shuffle partitions,
    UTC, warehouse/Derby/checkpoints in ``scratch_dir``. ``master`` defaults to
    ``$COHORTLAB_SPARK_MASTER`` or ``local[2]``."""
    master = resolved_master(master)
    problem = master_problem(master)
    if problem:  # before the JVM starts: it printed a Java stack trace, then a Python one
        from cohortlab.errors import SettingsError

        raise SettingsError(problem)
    scratch = Path(scratch_dir or tempfile.mkdtemp(prefix="cohortlab-spark-"))
    scratch.mkdir(parents=True, exist_ok=True)
    b = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.default.parallelism", str(shuffle_partitions))
        .config("spark.sql.adaptive.enabled", "true" if adaptive else "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        .config("spark.local.dir", str(scratch / "local"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={scratch / 'derby'}")
    )
    if driver_memory:
        b = b.config("spark.driver.memory", driver_memory)
    for k, v in (conf or {}).items():
        b = b.config(k, v)
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext.setCheckpointDir(str(scratch / "checkpoints"))
    return spark


class SparkEngine(Engine):
    """Run cohortlab on Spark. See the module docstring."""

    name = "spark"

    def __init__(
        self,
        spark: SparkSession | None = None,
        *,
        master: str | None = None,
        scratch_dir: str | os.PathLike | None = None,
        lineage: str = "local_checkpoint",
        shuffle_partitions: int = 2,
        adaptive: bool = False,
        conf: Mapping[str, str] | None = None,
        cte_lineage: str = "cache",
    ) -> None:
        if cte_lineage not in ("cache", "break"):
            raise ValueError("cte_lineage must be 'cache' or 'break'")
        if lineage not in LINEAGE_METHODS:
            raise ValueError(f"lineage must be one of {LINEAGE_METHODS}, got {lineage!r}")
        self._own_scratch = scratch_dir is None
        self.scratch_dir = Path(scratch_dir or tempfile.mkdtemp(prefix="cohortlab-spark-"))
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        if spark is None:  # a session already running in this process (notebook, test) is reused
            spark = SparkSession.getActiveSession()
        self._own_session = spark is None
        if spark is None:
            spark = local_session(
                master,
                scratch_dir=self.scratch_dir,
                shuffle_partitions=shuffle_partitions,
                adaptive=adaptive,
                conf=conf,
            )
        self.spark = spark
        self.previous_time_zone = spark.conf.get("spark.sql.session.timeZone", None)
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        self.lineage = lineage
        self.database = None
        self._frames: dict[str, DataFrame] = {}  # materialised views, to release on replace
        self._cached: dict[int, list[DataFrame]] = {}  # CTEs cached while one statement runs
        self._views: set[str] = set()  # temp views registered by this engine (dropped on close)
        self.cte_lineage = cte_lineage

    # ------------------------------------------------------------------ translation
    @staticmethod
    def translate(sql: str) -> list[str]:
        """DuckDB-dialect SQL -> Spark SQL statements (cached; raises on unsupported constructs)."""
        return to_spark(sql)

    def _trees(self, sql: str, params: list[Any] | None = None) -> list[exp.Expression]:
        """Parse DuckDB SQL; bound parameters become literals (in placeholder order)."""
        trees = list(parse_cached(sql))
        if not params:
            return trees
        values = iter(params)
        out = []
        for tree in trees:
            tree = tree.copy()
            for ph in list(tree.find_all(exp.Placeholder, bfs=False)):
                try:
                    ph.replace(_literal(next(values)))
                except StopIteration:
                    raise ValueError("fewer parameters than placeholders") from None
            out.append(tree)
        if next(values, _MISSING) is not _MISSING:
            raise ValueError("more parameters than placeholders")
        return out

    def _query(self, tree: exp.Expression, scratch: list[str]) -> DataFrame:
        """A DataFrame for one parsed query (see :class:`SparkPlan`)."""
        return self._run_plan(plan_query(tree), scratch)

    def _run_plan(self, plan: SparkPlan, scratch: list[str]) -> DataFrame:
        """Register the plan's step views (a step read more than once is cached, or its lineage
        broken with ``cte_lineage="break"``) and return the final DataFrame. The view names are
        appended to ``scratch`` for the caller to drop once the result is computed."""
        for view, sql, shared in plan.views:
            df = self.spark.sql(sql)
            if shared:
                if self.cte_lineage == "cache":
                    df = df.persist(StorageLevel.MEMORY_AND_DISK)  # computed once, by the first reader
                    self._cached.setdefault(id(scratch), []).append(df)
                else:
                    df = self._break_lineage(df, view)
                    df = df.toDF(*df.columns)
            df.createOrReplaceTempView(view)
            scratch.append(view)
        return self.spark.sql(plan.final)

    def _drop_scratch(self, scratch: list[str]) -> None:
        for v in scratch:
            self.spark.catalog.dropTempView(v)
        for df in self._cached.pop(id(scratch), []):
            _release(df)

    def _plan(self, sql: str, params: list[Any] | None = None) -> SparkPlan:
        if not params:
            return plan_sql(sql)  # translated once per distinct SQL string
        trees = self._trees(sql, params)
        if len(trees) != 1:
            raise ValueError(f"expected one query, got {len(trees)} statements")
        return plan_query(trees[0])

    @contextmanager
    def _df(self, sql: str, params: list[Any] | None = None) -> Iterator[DataFrame]:
        scratch: list[str] = []
        try:
            yield self._run_plan(self._plan(sql, params), scratch)
        finally:
            self._drop_scratch(scratch)

    def sql_df(self, sql: str, params: list[Any] | None = None) -> DataFrame:
        """A Spark DataFrame for a DuckDB-dialect query (lazy; for large results). Top-level
        CTEs are planned as in :meth:`materialise`; their temp views stay registered."""
        return self._run_plan(self._plan(sql, params), [])

    # ------------------------------------------------------------------ Engine API
    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        for tree in self._trees(sql, params):
            self._execute_tree(tree)

    def query_arrow(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        with self._df(sql, params) as df:
            return self._to_arrow(df)

    def query_df(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        return arrow_to_pandas(self.query_arrow(sql, params))

    def query_rows(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        t = _naive_utc(self.query_arrow(sql, params))
        cols = [c.to_pylist() for c in t.columns]
        return list(zip(*cols)) if cols else []

    def register(self, name: str, df: pd.DataFrame, schema: Any = None) -> None:
        """Expose a pandas DataFrame as temp view ``name``.

        The Spark schema is explicit: ``schema`` (a ``StructType`` or a DDL string such as
        ``"mpid BIGINT, value STRING"``), or else derived column by column from the pandas dtypes
        through Arrow (int64/Int64 -> BIGINT exactly, never via float). An object column of
        Python ints becomes BIGINT; anything ambiguous raises and asks for ``schema``.
        """
        table = pandas_to_arrow(df)
        sdf = self.spark.createDataFrame(table)
        if schema is not None:
            sdf = _cast_to(sdf, schema, name)
        self._replace_view(name, sdf, frame=None)

    def table_exists(self, name: str) -> bool:
        return bool(self.spark.catalog.tableExists(name))

    def count(self, name: str) -> int:
        return int(self.spark.table(name).count())

    def materialise(self, name: str, sql: str, temp: bool = False) -> None:
        progress.step(name)  # a step of a command's progress line, as on DuckDB
        with self._df(sql) as df:
            self._materialise_df(name, df)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Spark has no transactions: a no-op context (the loaders' all-or-nothing guarantee is
        DuckDB's; on Spark, tables are read from Parquet/Delta written elsewhere)."""
        yield

    def close(self) -> None:
        """Drop the temp views this engine registered (a shared session stays clean), release
        materialised data, stop the session if this engine started it, remove its scratch dir."""
        for name in sorted(self._views):
            self.spark.catalog.dropTempView(name)
        self._views.clear()
        for df in self._frames.values():
            _release(df)
        self._frames.clear()
        if self._own_session:
            self.spark.stop()
        if self._own_scratch:
            shutil.rmtree(self.scratch_dir, ignore_errors=True)

    # ------------------------------------------------------------------ tables
    def create_empty(self, name: str, columns: Iterable[tuple[str, str]]) -> None:
        """An empty temp view with the given (column, DuckDB type) list."""
        ddl = ", ".join(f"{c} {spark_type(t)}" for c, t in columns)
        self._replace_view(name, self.spark.createDataFrame([], schema=ddl), frame=None)

    def register_df(self, name: str, df: DataFrame, *, materialise: bool = False) -> None:
        """Expose a Spark DataFrame as temp view ``name`` (optionally materialised)."""
        if materialise:
            self._materialise_df(name, df)
        else:
            self._replace_view(name, df, frame=None)

    def read_canonical(
        self, source: str | os.PathLike | Mapping[str, str | os.PathLike], *, create_missing: bool = True
    ) -> list[str]:
        """Register canonical tables stored as Parquet (or Delta) under their canonical names.

        ``source`` is a directory written by ``cohortlab export`` (``<table>.parquet`` files or
        ``<table>/`` directories of Parquet parts or a Delta table), or a mapping
        ``{table name: path}``. Columns are cast to the canonical types of
        :mod:`cohortlab.schema` (MPIDs BIGINT). Canonical tables not found are created empty
        (``create_missing``); a folder holding none of them is a ``FileNotFoundError``. A
        folder's ``cohortlab_meta.parquet`` (the database's pseudonym key, written by
        ``cohortlab export``) is registered too. Returns the canonical names registered from files.
        """
        # a URI (dbfs:/..., s3://..., file:///...) is looked up through Spark's own file systems,
        # a plain path on the local disk (pathlib could not tell where dbfs:/ or s3:// lives)
        uri = isinstance(source, str) and _URI.match(source) is not None
        exists = self._uri_exists if uri else (lambda p: Path(p).exists())
        join = (lambda a, b: f"{str(a).rstrip('/')}/{b}") if uri else (lambda a, b: Path(a) / b)
        if isinstance(source, Mapping):
            paths = {k: (v if isinstance(v, str) and _URI.match(v) else Path(v)) for k, v in source.items()}
        else:
            root = source if uri else Path(source)
            if not (self._uri_exists(root) if uri else root.is_dir()):
                raise FileNotFoundError(f"{root}: not a directory")
            paths = {}
            for name in _schema.TABLES:
                for cand in (join(root, f"{name}.parquet"), join(root, name), join(root, f"{name}.delta")):
                    if exists(cand):
                        paths[name] = cand
                        break
            if not paths:  # a wrong folder (the export's parent, a typo) would read as an empty lab
                raise FileNotFoundError(
                    f"{root}: no canonical table in this folder (<table>.parquet, <table>/ or <table>.delta, "
                    "e.g. mp_events.parquet): give a folder written by `cohortlab export`")
        found = []
        for name, path in paths.items():
            if name not in _schema.TABLES:
                raise ValueError(f"{name!r} is not a canonical table ({', '.join(_schema.TABLES)})")
            is_uri = isinstance(path, str)
            if (self._uri_exists(f"{path.rstrip('/')}/_delta_log") if is_uri else (path / "_delta_log").is_dir()):
                sdf = self.spark.read.format("delta").load(str(path))
            else:
                sdf = self.spark.read.parquet(str(path))
            sdf = _cast_to(sdf, _canonical_ddl(name), name, required=_schema.identifier_columns(name), path=path)
            self._replace_view(name, sdf, frame=None)
            found.append(name)
        if not isinstance(source, Mapping) and exists(join(root, f"{META_TABLE}.parquet")):
            # the database's pseudonym key, written by `cohortlab export` (Lab then keeps it)
            meta = _cast_to(self.spark.read.parquet(str(join(root, f"{META_TABLE}.parquet"))),
                            "name STRING, value STRING", META_TABLE)
            self._replace_view(META_TABLE, meta, frame=None)
        if create_missing:
            for name, t in _schema.TABLES.items():
                if name not in paths and not self.table_exists(name):
                    self.create_empty(name, [(c, ty) for c, ty, _ in t.columns])
        return found

    # ------------------------------------------------------------------ internals
    def _uri_exists(self, uri: str) -> bool:
        """Whether ``uri`` names a file or folder, asked of the file system Spark reads it with
        (Hadoop's: dbfs, s3a, abfss, file, ...)."""
        jvm = self.spark.sparkContext._jvm
        path = jvm.org.apache.hadoop.fs.Path(uri)
        return bool(path.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration()).exists(path))

    def _to_arrow(self, df: DataFrame) -> pa.Table:
        to_arrow = getattr(df, "toArrow", None)
        if to_arrow is not None:  # PySpark >= 4.0
            return to_arrow()
        batches = df._collect_as_arrow()  # PySpark 3.5
        return pa.Table.from_batches(batches) if batches else pa.Table.from_pandas(df.limit(0).toPandas())

    def _break_lineage(self, df: DataFrame, name: str) -> DataFrame:
        if self.lineage == "local_checkpoint":
            return df.localCheckpoint(eager=True)
        if self.lineage == "checkpoint":
            return df.checkpoint(eager=True)
        if self.lineage == "persist":
            df = df.persist(StorageLevel.MEMORY_AND_DISK)
            df.count()
            return df
        path = self.scratch_dir / "tables" / f"{name}-{uuid.uuid4().hex[:12]}"
        df.write.parquet(str(path))
        return self.spark.read.parquet(str(path))

    def _materialise_df(self, name: str, df: DataFrame) -> None:
        df = self._break_lineage(df, name)
        # Fresh attribute ids: a checkpointed plan keeps the ids of its inputs, and a later join
        # of this table with one of those inputs would then see the "same" column on both sides
        # (UNRESOLVED_COLUMN on `f.distinct_id` when joining a step back to mp_events).
        df = df.toDF(*df.columns)
        self._replace_view(name, df, frame="own")

    def _replace_view(self, name: str, df: DataFrame, frame: str | None) -> None:
        old = self._frames.pop(name, None)
        df.createOrReplaceTempView(name)
        self._views.add(name)
        if frame:
            self._frames[name] = df
        if old is not None:
            _release(old)

    def drop(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)
        self._views.discard(name)
        old = self._frames.pop(name, None)
        if old is not None:
            _release(old)

    def _execute_tree(self, tree: exp.Expression) -> None:
        if isinstance(tree, exp.Create):
            kind = (tree.args.get("kind") or "").upper()
            target = tree.this
            if kind in ("SEQUENCE", "INDEX"):
                return  # no sequences or indexes in Spark: nothing to do
            if kind in ("TABLE", "VIEW"):
                table = target.this if isinstance(target, exp.Schema) else target
                name = table.name
                query = tree.expression
                exists_ok = bool(tree.args.get("exists"))
                if exists_ok and self.table_exists(name):
                    return
                if query is not None:
                    if kind == "TABLE":
                        scratch: list[str] = []
                        try:
                            self._materialise_df(name, self._query(query, scratch))
                        finally:
                            self._drop_scratch(scratch)
                    else:
                        self._replace_view(name, self._query(query, []), frame=None)
                    return
                if isinstance(target, exp.Schema):
                    cols = [
                        (cd.name, cd.args["kind"].sql(dialect="duckdb"))
                        for cd in target.expressions
                        if isinstance(cd, exp.ColumnDef)
                    ]
                    self.create_empty(name, cols)
                    return
            raise NotImplementedError(f"SparkEngine cannot run CREATE {kind}: {tree.sql('duckdb')[:200]}")
        if isinstance(tree, exp.Drop):
            kind = (tree.args.get("kind") or "").upper()
            if kind in ("TABLE", "VIEW"):
                for table in tree.find_all(exp.Table):
                    if self.table_exists(table.name):
                        self.drop(table.name)
                    elif not tree.args.get("exists"):
                        raise ValueError(f"no table {table.name!r}")
                return
            if kind in ("SEQUENCE", "INDEX", "MACRO"):
                return
        if isinstance(tree, exp.Transaction) or isinstance(tree, (exp.Commit, exp.Rollback)):
            return
        if isinstance(tree, (exp.Insert, exp.Delete, exp.Update, exp.Merge)):
            raise NotImplementedError(
                f"SparkEngine writes whole tables only (CREATE [OR REPLACE] TABLE ... AS SELECT), not "
                f"{tree.key.upper()}: {tree.sql('duckdb')[:120]}")
        for stmt in [expression_to_spark(tree)]:
            self.spark.sql(stmt)


# ---------------------------------------------------------------------- helpers
_MISSING = object()


def _literal(v: Any) -> exp.Expression:
    """A DuckDB-dialect literal for a bound parameter (so it is translated like written SQL)."""
    if v is None:
        return exp.null()
    if isinstance(v, bool):
        return exp.true() if v else exp.false()
    if isinstance(v, int):
        return exp.cast(exp.Literal.number(v), "BIGINT") if abs(v) > 2**31 - 1 else exp.Literal.number(v)
    if isinstance(v, (float, decimal.Decimal)):
        return exp.Literal.number(repr(v) if isinstance(v, float) else str(v))
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    if isinstance(v, _dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return exp.cast(exp.Literal.string(v.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(v, _dt.date):
        return exp.cast(exp.Literal.string(v.isoformat()), "DATE")
    if isinstance(v, _dt.timedelta):
        return exp.Interval(this=exp.Literal.string(str(int(v.total_seconds() * 1_000_000))), unit=exp.var("MICROSECOND"))
    if isinstance(v, str):
        return exp.Literal.string(v)
    raise TypeError(f"unsupported SQL parameter type {type(v).__name__}")


def _release(df: DataFrame) -> None:
    try:
        df.unpersist(blocking=False)
    except Exception:  # pragma: no cover - best effort
        pass


def _canonical_ddl(name: str) -> str:
    return ", ".join(f"{c} {spark_type(t)}" for c, t, _ in _schema.TABLES[name].columns)


def _cast_to(sdf: DataFrame, schema: Any, what: str = "", *, required: Iterable[str] = (),
             path: Any = None) -> DataFrame:
    """Select the columns of ``schema`` (StructType or DDL string) from ``sdf``, cast to its types;
    missing columns become typed NULLs, but for those of ``required`` (the table's identifiers),
    which are a ``ValueError`` naming ``what``, the column, ``path`` and the columns found: read
    as NULLs, every row would lose its identifier. Casting strings to BIGINT is exact (no float). A
    floating-point (or fractional DECIMAL) column for an integer one is refused (``TypeError``
    naming ``what``, the table): its MPIDs already went through a double and lost their last
    digits, and a cast would pass them on as exact (the DuckDB loaders quarantine them as
    ``invalid_mpid``, docs/loading.md)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DecimalType, DoubleType, FloatType, IntegralType, StructType

    st = schema if isinstance(schema, StructType) else StructType.fromDDL(schema)
    have = {c.lower(): c for c in sdf.columns}
    types = {f.name.lower(): f.dataType for f in sdf.schema.fields}
    lacking = [c for c in required if c.lower() not in have]
    if lacking:
        raise ValueError(
            f"{what + ': ' if what else ''}no column {', '.join(lacking)}"
            f"{f' in {path}' if path is not None else ''} (its columns: {', '.join(sdf.columns) or 'none'}): "
            "an identifier column cannot be read as NULL; rename the column, or write the table with "
            "`cohortlab export`")
    cols = []
    for f in st.fields:
        src = have.get(f.name.lower())
        t = types.get(f.name.lower())
        if isinstance(f.dataType, IntegralType) and (
            isinstance(t, (FloatType, DoubleType)) or (isinstance(t, DecimalType) and t.scale > 0)
        ):
            raise TypeError(
                f"{what + '.' if what else ''}{src}: a {t.simpleString()} column, where cohortlab expects "
                f"{f.dataType.simpleString()}: integers (MPIDs) stored as floating point have lost "
                "precision; write them as BIGINT (or text), e.g. with `cohortlab export`"
            )
        col = F.col(f"`{src}`") if src is not None else F.lit(None)
        cols.append(col.cast(f.dataType).alias(f.name))
    return sdf.select(*cols)
