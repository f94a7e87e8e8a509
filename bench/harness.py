"""``cohortlab bench``: cohortlab against hand-written baselines, side by side, in the same run.

Generates a world with the generator (or reuses ``data=``), then times whole steps, each in a
fresh subprocess so that wall time and peak memory are per step:

==========  ====================================================================================
load        ``load_world`` of the whole folder into a new DuckDB file (every export kind)
resolve     resolution + sync + waterfall (+ gap summary) of every cohort at its latest
            snapshot, default settings (what ``cohortlab simulate`` computes), kept in the
            database (no DataFrame of the members is built)
timeline    a 30-day dynamic sync timeline at 15-minute cadence (2,881 runs) of the largest
            cohort ending at its latest snapshot, identifiers resolved at each send
verify      ``Lab.verify`` of the largest cohort (simulation included), then again with it cached;
            then the simulation is stored in the database and a new Lab verifies from it
            (``verify_stored_s``); the stored simulation is dropped at the end
explain     ``Lab.explain`` of one member of the largest cohort (nothing cached), then from a
            stored simulation of that cohort (``explain_stored_s``; dropped at the end)
migration   the EIT migration what-if, 4 plans (switch only, switch + Rule, Rule only, do
            nothing) over the 60 days before the latest snapshot
simulate    ``cohortlab simulate --db DB --cohort C --no-store`` of the largest cohort at its latest
            snapshot (the command as a user runs it: resolution, waterfall, timeline, printed;
            not stored, so that every other step and repeat starts from the same database)
classify    ``bench/baseline_classify.py``: ONE hand-written classification query on the loaded
            tables for the same cohort and snapshot (the reference for ``simulate``)
report_db   ``cohortlab report --db DB`` on the loaded database (four notebooks)
report      the full ``cohortlab report --data WORLD`` (loads the world again, four notebooks)
demo        ``cohortlab demo`` (generates its small default world, loads it, runs the report)
duckdb      ``bench/baseline_duckdb.py``: hand-written DuckDB, read the files + one query
pandas      ``bench/baseline_pandas.py``: the same in pandas, as in a notebook
==========  ====================================================================================

Peak memory of a step is its whole process tree: the larger of a psutil poll (sum of RSS of
the step's processes, every 100 ms: at 20 ms the poll itself took 1.9 CPU-s of a 30 s report on
two cores, and its wall time 1-2 s) and ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a measuring
wrapper whose only child is the step. Repeats interleave the steps (repeat 1: every step, then
repeat 2, ...) so that machine noise hits all of them alike; the table shows medians.

The member outcomes (identifier_source × status × gap_reason counts per cohort) of ``resolve``
and of both baselines must agree, or the benchmark fails (non-zero exit).

``python -m bench.harness measure OUT.json -- CMD...`` and ``python -m bench.harness step
NAME ...`` are the internal entry points the subprocesses use.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

STEPS = ("load", "resolve", "simulate", "classify", "timeline", "verify", "explain", "migration", "report_db", "report",
         "demo", "duckdb", "pandas")
COHORTLAB_STEPS = ("load", "resolve", "simulate", "timeline", "verify", "explain", "migration", "report_db", "report",
                   "demo")
# read the database the load step wrote
DB_STEPS = ("resolve", "simulate", "classify", "timeline", "verify", "explain", "migration", "report_db")
BASELINES = ("duckdb", "pandas")
STEP_LABELS = {
    "load": "load (all exports → DuckDB file)",
    "resolve": "resolution + waterfall (all cohorts)",
    "timeline": "30-day sync timeline, 15 min",
    "migration": "migration what-if, 4 plans × 60 d",
    "verify": "cohortlab verify (largest cohort)",
    "explain": "cohortlab explain (one member)",
    "simulate": "cohortlab simulate (1 snapshot)",
    "classify": "baseline: classification query on db",
    "report_db": "cohortlab report --db (loaded db)",
    "report": "full cohortlab report",
    "demo": "cohortlab demo (default world)",
    "duckdb": "baseline: hand-written DuckDB",
    "pandas": "baseline: pandas",
}
PANDAS_MAX_USERS = 2_000_000  # above this the pandas baseline needs more memory than a 24 GiB machine
TIMELINE_DAYS = 30
MIGRATION_DAYS = 60
DEFAULT_SWITCH = "2026-02-01"
MIB = 1024 * 1024

TARGETS = {
    "load_resolve_vs_duckdb": 1.5,   # (load + resolve) / duckdb baseline, at 1M and 10M users
    "pandas_speedup_1m": 10.0,       # pandas / (load + resolve), at 1M users
    "peak_rss_gib_10m": 2.0,         # every cohortlab step, at 10M users
    "simulate_vs_classify": 1.5,     # cohortlab simulate / hand-written query on the loaded tables
    "demo_seconds": 30.0,            # cohortlab demo end to end
    "report_db_seconds": 30.0,       # cohortlab report --db on the loaded world (1M users)
    "verify_seconds": 3.0,           # Lab.verify of a cohort of ~1M members
    "explain_seconds": 3.0,          # Lab.explain of one member of that cohort
    "timeline_send_seconds": 30.0,   # 30-day 15-minute timeline of ~1M members, identifiers at send time
}
# the timed call inside each step (seconds without Python start-up and opening the database)
INNER_KEYS = {"verify": "verify_s", "explain": "explain_s", "timeline": "timeline_s"}


class BenchError(RuntimeError):
    """The benchmark could not run, or cohortlab and a baseline disagree."""


def bench_dir() -> Path:
    """The project's ``bench/`` folder (baseline scripts)."""
    here = Path(__file__).resolve().parent
    if not (here / "baseline_duckdb.py").exists():
        raise BenchError(f"{here}: the baseline scripts are not there (cohortlab bench needs the source checkout)")
    return here


# ============================================================================ measuring wrapper
def measure(cmd: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
            log: str | os.PathLike | None = None, poll: float = 0.1) -> dict[str, Any]:
    """Run ``cmd`` (in this process) and return wall seconds, exit code and peak RSS (bytes) of
    its process tree. Call it in a fresh process so RUSAGE_CHILDREN is the step's alone. Each
    ``poll`` (seconds) lists the tree (psutil reads every process of the machine) and sums its
    RSS: every 20 ms that cost 1.9 CPU-s during a 30 s report, a step that keeps both cores busy
    (docs/benchmarks.md#poll)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a jupyter dependency
        psutil = None
    out = open(log, "ab") if log else subprocess.DEVNULL
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    peak = 0
    if psutil is not None:
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            root = None
        while proc.poll() is None and root is not None:
            total = 0
            try:
                procs = [root] + root.children(recursive=True)
            except psutil.Error:
                procs = []
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, total)
            time.sleep(poll)
    rc = proc.wait()
    wall = time.perf_counter() - t0
    if log:
        out.close()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    ru = usage.ru_maxrss
    ru_bytes = ru if sys.platform == "darwin" else ru * 1024
    # CPU seconds of the step (user + system, every thread): less sensitive than wall time to
    # other work on a shared machine
    return {"wall": wall, "rc": rc, "peak_rss": max(peak, ru_bytes), "poll_peak_rss": peak, "ru_maxrss": ru_bytes,
            "cpu": usage.ru_utime + usage.ru_stime}


# ============================================================================ steps (in a subprocess)
def _latest(engine, cohort: str):
    from cohortlab.simulation.membership import find_cohort

    return find_cohort(engine, cohort).last_time


def _counts_sql(engine, table: str = "resolution") -> dict[str, int]:
    rows = engine.query_rows(
        f"SELECT identifier_source, status, coalesce(gap_reason, ''), count(*) FROM {table} GROUP BY ALL"
    )
    return dict(sorted((f"{a}|{b}|{c}", int(n)) for a, b, c, n in rows))


def _lab(db: str, memory_limit: str | None = None, threads: str | None = None, use_stored: bool = True):
    from cohortlab.lab import Lab

    opts: dict[str, Any] = {"use_stored": use_stored}
    if memory_limit:
        opts["memory_limit"] = memory_limit
    if threads:
        opts["threads"] = int(threads)
    return Lab(db, **opts)


def largest_cohort(db: str) -> str:
    """The cohort with the most members at its latest snapshot (read-only, connection closed)."""
    import duckdb

    con = duckdb.connect(db, read_only=True)
    try:
        row = con.execute(
            """SELECT cohort_name FROM mp_cohort_snapshots
               QUALIFY row_number() OVER (PARTITION BY cohort_name ORDER BY as_of DESC, snapshot_id DESC) = 1
               ORDER BY member_count DESC, cohort_name LIMIT 1""").fetchone()
    finally:
        con.close()
    if not row:
        raise BenchError(f"{db}: no cohort snapshot loaded")
    return row[0]


def _cohorts(engine) -> list[str]:
    from cohortlab.simulation.membership import known_cohorts

    return known_cohorts(engine)


def step_load(db: str, data: str, **kw: Any) -> dict[str, Any]:
    from cohortlab.loaders.folder import load_world

    for p in (db, db + ".wal"):
        if os.path.exists(p):
            os.remove(p)
    with _lab(db, **kw) as lab:
        rep = load_world(lab, data)
        tables = lab.info()["tables"]
    return {"loaded": rep.by_kind(), "tables": tables}


def step_resolve(db: str, data: str | None = None, **kw: Any) -> dict[str, Any]:
    from cohortlab.simulation.simulate import simulate
    from cohortlab.simulation.waterfall import check_waterfall

    out: dict[str, Any] = {}
    with _lab(db, **kw) as lab:
        for cohort in _cohorts(lab.engine):
            result = simulate(lab.engine, cohort, settings={"resolution_time": "as_of"})  # what the baselines compute
            check_waterfall(result.waterfall)
            result.gap_summary  # noqa: B018  (read, as a report does)
            counts = _counts_sql(lab.engine, result.tables["resolution"].table_name)
            out[cohort] = {
                "as_of": result.at.strftime("%Y-%m-%dT%H:%M:%S"),
                "members": sum(counts.values()),
                "outcomes": counts,
                "waterfall": {r.step: int(r.count) for r in result.waterfall.itertuples()},
            }
            result.drop()
    return {"counts": out}


def step_timeline(db: str, data: str | None = None, cohort: str | None = None, days: str = str(TIMELINE_DAYS),
                  cadence: str = "15m", resolution_time: str = "send", **kw: Any) -> dict[str, Any]:
    """The dynamic sync timeline of the largest cohort over the ``days`` before its latest
    snapshot every ``cadence``, identifiers resolved at each send (default) or ``as_of``."""
    from cohortlab.simulation.simulate import simulate

    cohort = cohort or largest_cohort(db)
    with _lab(db, **kw) as lab:
        eng = lab.engine
        at = _latest(eng, cohort)
        settings = {"sync_type": "dynamic", "start": at - timedelta(days=int(days)), "cadence": cadence,
                    "resolution_time": resolution_time}
        t0 = time.perf_counter()
        result = simulate(eng, cohort, at, settings)
        runs, sent, members, last = eng.query_rows(
            "SELECT count(*), count(*) FILTER (WHERE adds > 0 OR removes > 0), max(members), "
            f"arg_max(members, run) FROM {result.tables['timeline'].table_name}")[0]
        seconds = time.perf_counter() - t0
        decisions = eng.count(result.table_names["decisions"])
        audience = result.audience
    return {"cohort": cohort, "resolution_time": resolution_time, "runs": int(runs), "runs_with_changes": int(sent),
            "max_members": int(members or 0), "members": int(last or 0), "decisions": int(decisions),
            "audience": int(audience), "timeline_s": round(seconds, 3)}


def _explain_user(db: str, cohort: str) -> tuple[str, int]:
    """(a member of ``cohort`` at its latest snapshot whose explanation has every part: the
    smallest distinct_id that has a Mixpanel profile, the members at that snapshot); read-only,
    connection closed."""
    import duckdb

    con = duckdb.connect(db, read_only=True)
    try:
        row = con.execute(
            """WITH latest AS (SELECT snapshot_id FROM mp_cohort_snapshots WHERE cohort_name = ?
                               ORDER BY as_of DESC, snapshot_id DESC LIMIT 1)
               SELECT min(m.distinct_id) FILTER (WHERE p.distinct_id IS NOT NULL), count(DISTINCT m.distinct_id)
               FROM mp_cohort_members m LEFT JOIN mp_profiles p ON p.distinct_id = m.distinct_id
               WHERE m.snapshot_id = (SELECT snapshot_id FROM latest)""", [cohort]).fetchone()
    finally:
        con.close()
    if not row or row[0] is None:
        raise BenchError(f"{db}: cohort {cohort!r} has no member with a profile at its latest snapshot")
    return row[0], int(row[1])


def step_verify(db: str, data: str | None = None, cohort: str | None = None, **kw: Any) -> dict[str, Any]:
    """``Lab.verify`` of the largest cohort (default settings: identifiers resolved at each send),
    as ``cohortlab verify --db DB --cohort C`` runs it on a database without a stored simulation
    (simulation included: ``verify_s``), then once more on the same Lab (the simulation cached:
    the comparison alone, ``verify_cached_s``). Then that simulation is stored in the database
    (``store_s``) and a new Lab verifies from the stored one (``verify_stored_s``: what
    ``cohortlab verify`` costs after ``cohortlab simulate --at <snapshot time>`` or an earlier
    verify); the stored simulation is dropped again."""
    cohort = cohort or largest_cohort(db)
    with _lab(db, use_stored=False, **kw) as lab:
        t0 = time.perf_counter()
        v = lab.verify(cohort)
        v.to_text()
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = lab.verify(cohort)
        again.to_text()
        cached = time.perf_counter() - t0
        members = lab.engine.count(v.simulation.tables["resolution"].table_name)
        summary = v.summary()
        t0 = time.perf_counter()
        lab.simulate(cohort, v.at, store=True)
        store_s = time.perf_counter() - t0
    try:
        with _lab(db, **kw) as lab:
            t0 = time.perf_counter()
            s = lab.verify(cohort)
            s.to_text()
            stored = time.perf_counter() - t0
            if not s.simulation.stored or s.summary() != summary:
                raise BenchError(f"verify of {cohort!r} from the stored simulation differs from the computed one")
    finally:
        with _lab(db, **kw) as lab:
            lab.drop_stored_simulations()
    return {"cohort": cohort, "members": int(members), "compared": int(v.compared),
            "disagreements": int(summary["disagreements"]), "observed_true": summary["observed_true"],
            "simulated_true": summary["simulated_true"], "verify_s": round(first, 3),
            "verify_cached_s": round(cached, 3), "store_s": round(store_s, 3), "verify_stored_s": round(stored, 3)}


def step_explain(db: str, data: str | None = None, cohort: str | None = None, user: str | None = None,
                 **kw: Any) -> dict[str, Any]:
    """``Lab.explain`` of one member of the largest cohort at its latest snapshot, as ``cohortlab
    explain`` runs it on a database without a stored simulation (nothing cached: the members that
    matter to the user are simulated; ``explain_s``), then, with the simulation of the cohort
    stored in the database (computed and stored first, not timed), by a new Lab
    (``explain_stored_s``); the stored simulation is dropped again. ``members``: the cohort's
    members at its latest snapshot."""
    from cohortlab.simulation.verify import VerifyError, observed_times

    cohort = cohort or largest_cohort(db)
    picked, members = _explain_user(db, cohort)
    user = user or picked
    with _lab(db, use_stored=False, **kw) as lab:
        t0 = time.perf_counter()
        x = lab.explain(cohort, user)
        text = x.to_text()
        first = time.perf_counter() - t0
        try:  # the time explain simulates at: the mParticle snapshot's, else the cohort's latest
            at = observed_times(lab.engine, cohort)[0]
        except VerifyError:
            at = None
        lab.simulate(cohort, at, store=True)
    try:
        with _lab(db, **kw) as lab:
            t0 = time.perf_counter()
            s = lab.explain(cohort, user)
            stored_text = s.to_text()
            stored = time.perf_counter() - t0
            if s.simulation != "stored" or stored_text != text:
                raise BenchError(f"explain of {user!r} from the stored simulation differs from the computed one")
    finally:
        with _lab(db, **kw) as lab:
            lab.drop_stored_simulations()
    return {"cohort": cohort, "members": members, "user_steps": len(x.steps),
            "kinds": sorted({s.kind for s in x.steps}), "explain_s": round(first, 3),
            "explain_stored_s": round(stored, 3)}


def migration_plans(switch: str = DEFAULT_SWITCH) -> list[dict[str, Any]]:
    """The four usual plans (as ``data/plans/standard.yaml``) with the world's switch date."""
    switch_tl = [{"since": None, "eit": "customer_id"}, {"since": switch, "eit": "mparticle_id"}]
    rule = [{"kind": "rule", "since": switch}]
    return [
        {"name": "switch only", "eit_timeline": switch_tl},
        {"name": "switch + Rule", "eit_timeline": switch_tl, "remediation": rule},
        {"name": "Rule only", "eit_timeline": "customer_id", "remediation": rule},
        {"name": "do nothing", "eit_timeline": "customer_id"},
    ]


def step_migration(db: str, data: str | None = None, **kw: Any) -> dict[str, Any]:
    from cohortlab.loaders.folder import world_hints

    hints = world_hints(data) if data else {}
    switch = str(hints.get("switch") or DEFAULT_SWITCH)[:10]
    with _lab(db, **kw) as lab:
        at = max(_latest(lab.engine, c) for c in _cohorts(lab.engine))
        daily = lab.compare_plans(migration_plans(switch), at - timedelta(days=MIGRATION_DAYS), at)
        summary = daily.attrs.get("summary")
    final = {}
    if summary is not None and len(summary):
        final = {r.plan: (None if r.final_match_rate != r.final_match_rate else round(float(r.final_match_rate), 4))
                 for r in summary.itertuples()}
    return {"plans": 4, "days": int(daily["day"].nunique()) if len(daily) else 0, "final_match_rate": final}


STEP_FUNCS: dict[str, Callable[..., dict[str, Any]]] = {
    "load": step_load,
    "resolve": step_resolve,
    "timeline": step_timeline,
    "migration": step_migration,
    "verify": step_verify,
    "explain": step_explain,
}


def _step_main(argv: list[str]) -> int:
    """``python -m bench.harness step NAME RESULT.json key=value...``"""
    name, result = argv[0], argv[1]
    kw = dict(a.split("=", 1) for a in argv[2:])
    t0 = time.perf_counter()
    out = STEP_FUNCS[name](**kw)
    out["seconds"] = round(time.perf_counter() - t0, 3)
    Path(result).write_text(json.dumps(out, default=str))
    return 0


def _measure_main(argv: list[str]) -> int:
    """``python -m bench.harness measure OUT.json LOG -- CMD...``"""
    out, log = argv[0], argv[1]
    cmd = argv[argv.index("--") + 1:]
    res = measure(cmd, log=log)
    Path(out).write_text(json.dumps(res))
    return 0


# ============================================================================ orchestration
@dataclass
class StepResult:
    name: str
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    inner: list[float] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)  # 1-minute load average when each repeat started
    status: str = "ok"
    detail: dict[str, Any] = field(default_factory=dict)
    details: list[dict[str, Any]] = field(default_factory=list)

    def median_of(self, key: str) -> float | None:
        vals = [float(d[key]) for d in self.details if d.get(key) is not None]
        return statistics.median(vals) if vals else None

    @property
    def wall(self) -> float | None:
        return statistics.median(self.walls) if self.walls else None

    @property
    def peak_mib(self) -> float | None:
        return max(self.peaks) / MIB if self.peaks else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": STEP_LABELS.get(self.name, self.name),
            "status": self.status,
            "median_wall_s": None if self.wall is None else round(self.wall, 3),
            "wall_s": [round(w, 3) for w in self.walls],
            "median_cpu_s": round(statistics.median(self.cpus), 3) if self.cpus else None,
            "cpu_s": [round(c, 3) for c in self.cpus],
            "load_average": self.loads,
            "inner_s": [round(w, 3) for w in self.inner],
            "peak_rss_mib": None if self.peak_mib is None else round(self.peak_mib, 1),
            "peak_rss_mib_each": [round(p / MIB, 1) for p in self.peaks],
            "detail": self.detail,
            **({f"median_{INNER_KEYS[self.name]}": round(self.median_of(INNER_KEYS[self.name]), 3),
                INNER_KEYS[self.name]: [d.get(INNER_KEYS[self.name]) for d in self.details]}
               if self.name in INNER_KEYS and self.median_of(INNER_KEYS[self.name]) is not None else {}),
        }


def compare_counts(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Differences between two {cohort: {as_of, members, outcomes}} maps (empty = agree)."""
    diffs = []
    for cohort in sorted(set(ours) | set(theirs)):
        a, b = ours.get(cohort), theirs.get(cohort)
        if a is None or b is None:
            diffs.append(f"{cohort}: only in {'the baseline' if a is None else 'cohortlab'}")
            continue
        if str(a["as_of"])[:19] != str(b["as_of"])[:19]:
            diffs.append(f"{cohort}: as_of {a['as_of']} vs {b['as_of']}")
        for key in sorted(set(a["outcomes"]) | set(b["outcomes"])):
            x, y = a["outcomes"].get(key, 0), b["outcomes"].get(key, 0)
            if x != y:
                diffs.append(f"{cohort}: {key}: cohortlab {x:,} vs baseline {y:,}")
    return diffs


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    try:
        import psutil

        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
        info["available_gib"] = round(psutil.virtual_memory().available / 2**30, 1)
    except ImportError:  # pragma: no cover
        pass
    try:
        import duckdb

        info["duckdb"] = duckdb.__version__
        import pandas

        info["pandas"] = pandas.__version__
    except ImportError:  # pragma: no cover
        pass
    try:
        root = Path(__file__).resolve().parent.parent
        info["commit"] = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                        text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):  # pragma: no cover
        info["commit"] = None
    return info


def _cohortlab_exe() -> list[str]:
    exe = Path(sys.executable).with_name("cohortlab")
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from cohortlab.cli import main; main()"]


def run_bench(
    users: int = 1_000_000,
    repeat: int = 3,
    scenario: str = "mid_migration",
    seed: int = 1,
    steps: list[str] | None = None,
    data: str | os.PathLike | None = None,
    keep: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    force_pandas: bool = False,
    gzip: bool | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the benchmark; returns the result dict (also written to ``out``). Raises
    :class:`BenchError` when a step fails or the outcome counts disagree (after writing ``out``)."""
    steps = list(steps or STEPS)
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise BenchError(f"unknown step(s) {unknown}; known: {', '.join(STEPS)}")
    steps = [s for s in STEPS if s in steps]  # canonical order (load first)
    if data is None:
        from cohortlab.synth.scenarios import SCENARIOS

        if scenario not in SCENARIOS:
            raise BenchError(f"unknown scenario {scenario!r}; expected one of {', '.join(SCENARIOS)}")
    if memory_limit:  # every step would fail on it, each with a traceback in its log
        from cohortlab.engines.duckdb import memory_limit_problem

        problem = memory_limit_problem(memory_limit)
        if problem:
            raise BenchError(f"memory_limit {memory_limit!r}: {problem}")
    bdir = bench_dir() if any(s in BASELINES or s == "classify" for s in steps) else None
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="cohortlab-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    db = str(work / "bench.duckdb")
    py = sys.executable
    result: dict[str, Any] = {
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
        "users": users, "scenario": scenario, "seed": seed, "repeat": repeat,
        "memory_limit": memory_limit, "threads": threads,
        "machine": _machine(), "load_average_start": list(os.getloadavg()),
        "targets": {}, "steps": {}, "agreement": {},
    }
    try:
        # ---------------------------------------------------------------- the world
        if data is None:
            from cohortlab.synth import generate

            world = work / "world"
            say(f"generating a {scenario} world of {users:,} users (seed {seed}) into {world} ...")
            t0 = time.perf_counter()
            generate(world, users=users, seed=seed, scenario=scenario, force=True, gzip=gzip)
            result["generate_s"] = round(time.perf_counter() - t0, 1)
            say(f"  generated in {result['generate_s']:.1f} s")
        else:
            world = Path(data)
            if not world.is_dir():
                raise BenchError(f"{world}: no such folder")
        result["data"] = str(world)
        try:
            manifest = json.loads((world / "manifest.json").read_text())
            result["world"] = {"users": manifest.get("users"), "scenario": manifest.get("scenario"),
                               "counts": {k: v for k, v in manifest.get("counts", {}).items()
                                          if isinstance(v, (int, float))}}
            users = int(manifest.get("users") or users)
            result["users"] = users
        except (OSError, ValueError):
            result["world"] = {}
        result["world"]["bytes"] = sum(p.stat().st_size for p in world.rglob("*") if p.is_file())

        results = {s: StepResult(s) for s in steps}
        if "pandas" in steps and users > PANDAS_MAX_USERS and not force_pandas:
            results["pandas"].status = "not run: needs more memory than the machine"
        if any(s in steps for s in DB_STEPS) and "load" not in steps \
                and not os.path.exists(db):
            raise BenchError(f"{db}: no database; include the load step (or --keep a folder that has one)")

        engine_kw = ([f"memory_limit={memory_limit}"] if memory_limit else []) + ([f"threads={threads}"] if threads else [])
        duckdb_opts = (["--memory-limit", memory_limit] if memory_limit else []) + \
                      (["--threads", str(threads)] if threads else [])

        cohort_of_db: dict[str, str] = {}

        def cohort() -> str:
            if "c" not in cohort_of_db:
                cohort_of_db["c"] = largest_cohort(db)
                result["simulate_cohort"] = cohort_of_db["c"]
            return cohort_of_db["c"]

        def command(name: str, rep: int) -> list[str]:
            res_file = str(work / f"{name}-{rep}.json")
            if name == "simulate":
                return [*_cohortlab_exe(), "simulate", "--db", db, "--cohort", cohort(), "--no-store"]
            if name == "classify":
                return [py, str(bdir / "baseline_classify.py"), db, "--cohort", cohort(), "--out", res_file,
                        *duckdb_opts]
            if name == "report_db":
                return [*_cohortlab_exe(), "report", "--db", db, "--out", str(work / "report-db"), "--overwrite"]
            if name in STEP_FUNCS:
                return [py, "-m", "bench.harness", "step", name, res_file, f"db={db}", f"data={world}", *engine_kw]
            if name == "report":
                return [*_cohortlab_exe(), "report", "--data", str(world), "--out", str(work / "report"), "--overwrite"]
            if name == "demo":
                return [*_cohortlab_exe(), "demo", "--out", str(work / "demo"), "--overwrite"]
            extra = duckdb_opts if name == "duckdb" else []
            return [py, str(bdir / f"baseline_{name}.py"), str(world), "--out", res_file, *extra]

        for rep in range(1, repeat + 1):
            for name in steps:
                r = results[name]
                if r.status != "ok":
                    continue
                if name in DB_STEPS and "load" in results \
                        and results["load"].status != "ok":  # it would read a half-loaded database
                    r.status = "skipped: the load step failed"
                    continue
                say(f"[{rep}/{repeat}] {name} ... (load average {os.getloadavg()[0]:.1f})")
                r.loads.append(round(os.getloadavg()[0], 2))
                mfile = work / f"measure-{name}-{rep}.json"
                log = logs / f"{name}-{rep}.log"
                subprocess.run([py, "-m", "bench.harness", "measure", str(mfile), str(log), "--",
                                *command(name, rep)], check=True)
                m = json.loads(mfile.read_text())
                if m["rc"] != 0:
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    if keep:
                        r.status = f"failed (exit {m['rc']}; log {log})"
                    else:  # the log goes with the temporary folder: its last line instead of its path
                        last = _last_line(tail)
                        r.status = (f"failed (exit {m['rc']}{': ' + last if last else ''}; "
                                    "the log was in a temporary folder, now removed: --keep DIR keeps it)")
                    say(f"  {name} FAILED (exit {m['rc']}):\n{tail}")
                    continue
                r.walls.append(m["wall"])
                r.peaks.append(m["peak_rss"])
                if m.get("cpu") is not None:
                    r.cpus.append(m["cpu"])
                rf = work / f"{name}-{rep}.json"
                if rf.exists():
                    detail = json.loads(rf.read_text())
                    if "seconds" in detail:
                        r.inner.append(float(detail["seconds"]))
                    r.detail = detail
                    r.details.append(detail)
                say(f"  {name}: {m['wall']:.1f} s, CPU {m.get('cpu', 0):.1f} s, peak {m['peak_rss'] / MIB:,.0f} MiB")

        # ---------------------------------------------------------------- agreement
        failures = [f"{s}: {r.status}" for s, r in results.items() if r.status.startswith("failed")]
        ours = results["resolve"].detail.get("counts") if "resolve" in results else None
        for b in BASELINES:
            if b in results and results[b].status == "ok" and results[b].detail.get("counts") is not None:
                theirs = results[b].detail["counts"]
                if ours is None:
                    result["agreement"][b] = "not checked (resolve step not run)"
                    continue
                diffs = compare_counts(ours, theirs)
                result["agreement"][b] = "agree" if not diffs else diffs
                if diffs:
                    failures.append(f"{b} baseline disagrees with cohortlab: " + "; ".join(diffs[:10]))
        if "classify" in results and results["classify"].status == "ok" and ours is not None:
            theirs = results["classify"].detail.get("counts") or {}
            diffs = compare_counts({c: ours[c] for c in theirs if c in ours}, theirs) if theirs else ["no counts"]
            result["agreement"]["classify"] = "agree" if not diffs else diffs
            if diffs:
                failures.append("classification query disagrees with cohortlab: " + "; ".join(diffs[:10]))
        result["steps"] = {s: r.to_dict() for s, r in results.items()}
        _ratios(result, results)
        result["targets"] = _verdicts(result, results, users)
        result["load_average_end"] = list(os.getloadavg())
        result["finished"] = datetime.now().astimezone().isoformat(timespec="seconds")
        if out:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            Path(out).write_text(json.dumps(result, indent=2, default=str))
        say(format_table(result))
        if failures:
            raise BenchError("benchmark failed:\n  " + "\n  ".join(failures))
        return result
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _last_line(text: str, limit: int = 300) -> str:
    """The last non-blank line of a log (a traceback's last line is the error), shortened to ``limit``."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return ""
    return lines[-1] if len(lines[-1]) <= limit else lines[-1][: limit - 3] + "..."


def _ratios(result: dict[str, Any], results: dict[str, StepResult]) -> None:
    base = {b: results[b].wall for b in BASELINES if b in results and results[b].wall}
    for name, d in result["steps"].items():
        w = results[name].wall
        for b, bw in base.items():
            d[f"ratio_{b}"] = None if w is None else round(w / bw, 3)
    lr = [results[s].wall for s in ("load", "resolve") if s in results]
    if len(lr) == 2 and all(lr):
        combined = {"label": "load + resolution + waterfall", "status": "ok", "median_wall_s": round(sum(lr), 3),
                    "peak_rss_mib": max(results["load"].peak_mib, results["resolve"].peak_mib)}
        for b, bw in base.items():
            combined[f"ratio_{b}"] = round(sum(lr) / bw, 3)
        result["load_plus_resolve"] = combined
    if all(s in results and results[s].wall for s in ("simulate", "classify")):
        ratio = round(results["simulate"].wall / results["classify"].wall, 3)
        result["steps"]["simulate"]["ratio_classify"] = ratio
        result["steps"]["classify"]["ratio_classify"] = 1.0


def _verdicts(result: dict[str, Any], results: dict[str, StepResult], users: int) -> dict[str, Any]:
    v: dict[str, Any] = {}
    lr = result.get("load_plus_resolve")
    if lr and lr.get("ratio_duckdb") is not None:
        ok = lr["ratio_duckdb"] <= TARGETS["load_resolve_vs_duckdb"]
        v["load_resolve_within_1.5x_duckdb"] = {"value": lr["ratio_duckdb"], "target": "<= 1.5", "met": ok}
    if lr and lr.get("ratio_pandas") is not None:
        speedup = round(1 / lr["ratio_pandas"], 2)
        v["10x_faster_than_pandas"] = {"value": speedup, "target": ">= 10", "met": speedup >= TARGETS["pandas_speedup_1m"]}
    peaks = {s: results[s].peak_mib for s in COHORTLAB_STEPS if s in results and results[s].peak_mib}
    failed = [s for s in COHORTLAB_STEPS if s in results and results[s].status != "ok"]
    if peaks:
        worst = max(peaks, key=peaks.get)
        notes = ["target stated at 10M users"] if users < 10_000_000 else []
        if failed:  # a step that did not finish has no peak to judge
            notes.append(f"not judged: {', '.join(failed)} failed")
        v["peak_memory_under_2_gib"] = {"value_mib": round(peaks[worst], 1), "step": worst, "target": "< 2048 MiB",
                                        "met": not failed and peaks[worst] < TARGETS["peak_rss_gib_10m"] * 1024,
                                        "note": "; ".join(notes)}
    sim = result["steps"].get("simulate", {}).get("ratio_classify")
    if sim is not None:
        v["simulate_within_1.5x_classify"] = {"value": sim, "target": "<= 1.5",
                                              "met": sim <= TARGETS["simulate_vs_classify"]}
    if "demo" in results and results["demo"].wall:
        v["demo_under_30_s"] = {"value": round(results["demo"].wall, 1), "target": "<= 30 s",
                                "met": results["demo"].wall <= TARGETS["demo_seconds"]}
    if "report_db" in results and results["report_db"].wall:
        v["report_db_under_30_s"] = {"value": round(results["report_db"].wall, 1), "target": "<= 30 s",
                                     "met": results["report_db"].wall <= TARGETS["report_db_seconds"],
                                     "note": "target stated at 1M users" if users != 1_000_000 else ""}
    for name, key, target in (("verify", "verify_s", "verify_seconds"), ("explain", "explain_s", "explain_seconds"),
                              ("verify", "verify_stored_s", "verify_seconds"),
                              ("explain", "explain_stored_s", "explain_seconds"),
                              ("timeline", "timeline_s", "timeline_send_seconds")):
        r = results.get(name)
        val = r.median_of(key) if r is not None else None
        if val is None:
            continue
        members = r.detail.get("members")
        note = f"{members:,} members" if members else ""
        if name == "timeline":
            note += f", {r.detail.get('runs', 0):,} runs, resolution_time {r.detail.get('resolution_time')}"
        label = f"{name}_stored" if key.endswith("_stored_s") else name  # from a stored simulation
        v[f"{label}_under_{TARGETS[target]:g}_s"] = {
            "value": round(val, 2), "target": f"<= {TARGETS[target]:g} s (the timed call; wall incl. start-up "
                                              f"{r.wall:.1f} s)", "met": val <= TARGETS[target], "note": note}
    return v


def format_table(result: dict[str, Any]) -> str:
    """The result as a fixed-width table (plus target verdicts)."""
    has_pd = any("ratio_pandas" in d for d in result["steps"].values())
    has_q = any("ratio_classify" in d for d in result["steps"].values())
    head = f"{'step':<40}{'wall s':>9}{'cpu s':>9}{'peak MiB':>10}{'× duckdb':>10}" + (f"{'× pandas':>10}" if has_pd else "") \
        + (f"{'× query':>10}" if has_q else "")
    lines = [f"cohortlab bench: {result['users']:,} users, scenario {result['scenario']}, "
             f"repeat {result['repeat']} (median wall time; peak RSS incl. children); load average "
             f"{' / '.join(f'{x:.1f}' for x in result.get('load_average_start', [])[:1] + result.get('load_average_end', [])[:1])}"
             f" (start / end)", head, "-" * len(head)]

    def fmt(x, spec):
        width = int("".join(c for c in spec.split(".")[0] if c.isdigit()) or 0)
        return f"{'—':>{width}}" if x is None else format(x, spec)

    rows = list(result["steps"].items())
    if result.get("load_plus_resolve"):
        idx = next((i for i, (s, _) in enumerate(rows) if s == "resolve"), len(rows) - 1) + 1
        rows.insert(idx, ("load+resolve", result["load_plus_resolve"]))
    for name, d in rows:
        label = d.get("label", name)
        if d.get("status", "ok") != "ok":
            lines.append(f"{label:<40}  {d['status']}")
            continue
        line = (f"{label:<40}{fmt(d.get('median_wall_s'), '9.2f')}{fmt(d.get('median_cpu_s'), '9.2f')}"
                f"{fmt(d.get('peak_rss_mib'), '10,.0f')}"
                f"{fmt(d.get('ratio_duckdb'), '10.2f')}")
        if has_pd:
            line += fmt(d.get("ratio_pandas"), "10.2f")
        if has_q:
            line += fmt(d.get("ratio_classify"), "10.2f")
        lines.append(line)
    if result.get("agreement"):
        lines.append("")
        for b, a in result["agreement"].items():
            lines.append(f"outcome counts vs {b} baseline: {a if isinstance(a, str) else 'DISAGREE'}")
    if result.get("targets"):
        lines.append("")
        for k, t in result["targets"].items():
            val = t.get("value", t.get("value_mib"))
            extra = f" ({t['step']})" if t.get("step") else ""
            note = f" [{t['note']}]" if t.get("note") else ""
            lines.append(f"target {k}: {val}{extra} vs {t['target']}: {'met' if t['met'] else 'MISSED'}{note}")
    return "\n".join(lines)


if __name__ == "__main__":
    _cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if _cmd == "measure":
        sys.exit(_measure_main(sys.argv[2:]))
    if _cmd == "step":
        sys.exit(_step_main(sys.argv[2:]))
    print("usage: python -m bench.harness measure OUT.json LOG -- CMD... | step NAME RESULT.json key=value...",
          file=sys.stderr)
    sys.exit(2)
