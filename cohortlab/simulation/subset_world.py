"""Rule, SDK code and the EIT switch simulated on the members they may move
(docs/simulate.md#remedies-subset).

A remedy that changes the inputs of some members (C) is simulated on those members and the
members sharing a profile with them (REL), on those members' rows only (:class:`SubsetWorld`):
exact, the same audience as a simulation of every member
(:func:`cohortlab.simulation.remedies.value_remedies` with ``_full=True``, the reference the tests
compare with). The remedy's rows replace the stored ones for one simulation through a temporary
table of the same name (:func:`shadowed`, DuckDB engine); :func:`share_world` copies the stored
rows once for several worlds. Used by :mod:`cohortlab.simulation.remedies`.
"""

from __future__ import annotations

import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

from cohortlab.engines.base import Engine
from cohortlab.settings import SyncSettings
from cohortlab.simulation.last_run_reexport import profile_key
from cohortlab.simulation.resolution import ProfileHistory
from cohortlab.simulation.simulate import SimulationResult, new_run_id
from cohortlab.simulation.sync import Names, run_sync

if TYPE_CHECKING:  # remedies imports this module: the context is an annotation only here
    from cohortlab.simulation.remedies import RemedyContext


@dataclass(frozen=True)
class Valued:
    """What a simulation with a remedy gives at ``at``: the audience, and the people in it (the
    MPIDs of the members' users whose attribute is ``true``)."""

    audience: int
    people: int


def members_user_sql(alias: str, persons: str) -> str:
    """SQL predicate: the profile ``alias`` (of an ``attribute_state``: is_orphan, mpid) is a
    members' user's (``persons``: distinct_id, mpid)."""
    return f"NOT {alias}.is_orphan AND {alias}.mpid IN (SELECT mpid FROM {persons} WHERE mpid IS NOT NULL)"


def people_true_sql(state: str, persons: str) -> str:
    """The number of members' users (``persons``: distinct_id, mpid) whose profile is ``true`` in
    ``state`` (an ``attribute_state`` table: is_orphan, mpid, value)."""
    return f"SELECT count(*) FROM {state} a WHERE a.value AND {members_user_sql('a', persons)}"


def temp_name(prefix: str = "rem") -> str:
    """A new name for a scratch table of the remedies (``_remedy_<prefix>_<8 hex>``)."""
    return f"_remedy_{prefix}_{uuid.uuid4().hex[:8]}"


# ----------------------------------------------------------------------------- shadow tables
@contextmanager
def shadowed(engine: Engine, name: str, select_sql: str) -> Iterator[None]:
    """For the duration of the block, the unqualified table ``name`` reads the rows of
    ``select_sql`` (a temporary table of that name shadows the stored one; DuckDB)."""
    if getattr(engine, "name", "duckdb") != "duckdb":
        raise NotImplementedError(
            f"valuing this remedy replaces the table {name} for one simulation; the {engine.name} engine "
            "cannot do that yet (use the DuckDB engine)")
    scratch = temp_name("shadow")
    engine.execute(f"CREATE TEMP TABLE {scratch} AS {select_sql}")
    try:
        engine.execute(f"ALTER TABLE {scratch} RENAME TO {name}")
    except BaseException:
        engine.execute(f"DROP TABLE IF EXISTS temp.main.{scratch}")
        raise
    try:
        yield
    finally:
        engine.execute(f"DROP TABLE IF EXISTS temp.main.{name}")


# ----------------------------------------------------------------------------- the subset simulation
_SUBSET_TABLES = ("targets", "attribute_state", "resolved")
DERIVE_TABLES = (*_SUBSET_TABLES, "runs", "transitions", "state")  # derive_last_run_reexport


def subset_ready(base: Any, tables: tuple[str, ...] = _SUBSET_TABLES) -> bool:
    """The baseline keeps the tables the subset simulation reads (a full simulation does)."""
    return base is not None and all(t in base.table_names for t in tables)


# the inputs read per member (joined on the member's distinct_id); everything else the simulation
# reads (snapshots, webhook pages, loads, mParticle profiles and identities) is read whole
MEMBER_TABLES = ("mp_profile_history", "mp_profiles", "mp_events", "mp_cohort_members", "mp_webhook_members")
# the columns the world keeps: every one of a table a remedy replaces (its rows are the stored
# ones with a change, checked column for column), only those the simulation reads of the events
# (the resolution's event identities and last activity: cohortlab/simulation/resolution.py)
_WORLD_COLUMNS = {"mp_events": "distinct_id, time, mparticle_user_id, properties"}


@contextmanager
def _viewed(engine: Engine, name: str, table: str) -> Iterator[None]:
    """For the duration of the block the unqualified ``name`` reads ``table`` (a temporary view)."""
    engine.execute(f"CREATE TEMP VIEW {name} AS SELECT * FROM {table}")
    try:
        yield
    finally:
        engine.execute(f"DROP VIEW IF EXISTS temp.main.{name}")


class SubsetWorld:
    """The subset simulations of one :func:`cohortlab.simulation.remedies.value_remedies` call
    (docs/simulate.md#remedies).

    Each remedy registers (:meth:`add`) the members whose inputs it changes (C) and the profiles
    they likely write to with the remedy; :meth:`build` then derives

    * P: those profiles (``is_orphan``, MPID or orphan identifier) and every profile a member of
      C writes to in any baseline (``bases``: the simulation as configured, and with the
      re-export);
    * REL: C and every member that writes to a profile of P in a baseline;
    * the world: the stored rows of ``MEMBER_TABLES`` of the members of REL (and of ``keep``:
      rows a remedy copies, e.g. the old profiles' membership for the EIT switch), once.

    :meth:`audience` simulates REL alone (``run_sync(only=...)``) on the world, with the
    remedy's rows in place of the stored ones. Members outside C have the inputs of the
    baseline, so they make the same decisions and write to the same profiles; every member
    that writes to a profile of P in the remedy is in REL, so the profiles of P get the state of
    the full simulation, as long as C writes to no profile outside P: checked after each run
    (P and the world are extended and the remedy simulated again when it does). A profile
    outside P is written by the same members with the same decisions as in the baseline: its
    state is the baseline's. Hence the audience with the remedy is the baseline's minus the
    profiles of P true in the baseline plus those true in the subset simulation."""

    def __init__(self, ctx: RemedyContext, bases: list[SimulationResult]) -> None:
        self.ctx, self.bases = ctx, bases
        self.changed, self.profiles = temp_name("changed"), temp_name("profiles")
        self.rel, self.keep = temp_name("related"), temp_name("keep")
        # the tables this simulation reads: mp_profiles only without a history, one membership table
        read = {"mp_profile_history", "mp_events",
                "mp_cohort_members" if ctx.ref.source == "snapshots" else "mp_webhook_members"}
        if ctx.history == "none":
            read.add("mp_profiles")
        self.world = {t: temp_name("world") for t in MEMBER_TABLES if t in read}
        self.owns_world = True  # False: the world's tables are another SubsetWorld's (share_world)
        e = ctx.engine
        e.materialise(self.changed, "SELECT CAST(NULL AS VARCHAR) AS distinct_id WHERE FALSE", temp=True)
        e.materialise(self.keep, "SELECT CAST(NULL AS VARCHAR) AS distinct_id WHERE FALSE", temp=True)
        e.materialise(self.profiles, "SELECT CAST(NULL AS BOOLEAN) AS is_orphan, CAST(NULL AS VARCHAR) AS pkey "
                                     "WHERE FALSE", temp=True)

    def add(self, changed_sql: str, guess_sql: str | None = None, keep_sql: str | None = None) -> None:
        """C += ``changed_sql`` (``distinct_id``); P += ``guess_sql`` (``is_orphan, pkey``); the
        world keeps the stored rows of ``keep_sql`` (``distinct_id``) too."""
        e = self.ctx.engine
        e.execute(f"INSERT INTO {self.changed} SELECT DISTINCT distinct_id FROM ({changed_sql}) c "
                  "WHERE distinct_id IS NOT NULL")
        if guess_sql:
            e.execute(f"INSERT INTO {self.profiles} SELECT CAST(is_orphan AS BOOLEAN), CAST(pkey AS VARCHAR) "
                      f"FROM ({guess_sql}) g")
        if keep_sql:
            e.execute(f"INSERT INTO {self.keep} SELECT DISTINCT distinct_id FROM ({keep_sql}) k "
                      "WHERE distinct_id IS NOT NULL")

    def build(self, copy: bool = True) -> None:
        """P, REL and (``copy``) the world from what was added (again after P grew)."""
        e = self.ctx.engine
        key = profile_key("t")
        base_p = " UNION ALL ".join(
            f"SELECT t.is_orphan, {key} FROM {b.table_names['targets']} t "
            f"JOIN {self.changed} c ON c.distinct_id = t.distinct_id" for b in self.bases)
        e.materialise(self.profiles, f"SELECT DISTINCT is_orphan, pkey FROM (SELECT * FROM {self.profiles} "
                                     f"UNION ALL {base_p}) x", temp=True)
        writers = " UNION ".join(
            f"SELECT t.distinct_id FROM {b.table_names['targets']} t "
            f"JOIN {self.profiles} p ON p.is_orphan = t.is_orphan AND p.pkey = {key}" for b in self.bases)
        e.materialise(self.rel, f"SELECT distinct_id FROM {self.changed} UNION {writers}", temp=True)
        if copy:
            if not self.owns_world:  # never overwrite a shared world: a world of its own
                self.world, self.owns_world = {t: temp_name("world") for t in self.world}, True
            self.copy_rows(self.held())

    def held(self) -> str:
        """The members whose rows the world must hold: REL and ``keep``."""
        return f"SELECT distinct_id FROM {self.rel} UNION SELECT distinct_id FROM {self.keep}"

    def copy_rows(self, held: str) -> None:
        for t, w in self.world.items():
            self.ctx.engine.materialise(w, f"SELECT {_WORLD_COLUMNS.get(t, '*')} FROM {t} WHERE distinct_id IN ({held})",
                                        temp=True)

    @contextmanager
    def inputs(self, remedied: dict[str, str]) -> Iterator[None]:
        """The world in place of the stored ``MEMBER_TABLES`` the simulation reads (not
        ``mp_profiles`` when there is a history, not the other source's membership table);
        ``remedied``: {table: rows} (read from the world, see :meth:`table`) in place of the
        world's rows of that table."""
        with ExitStack() as stack:
            for t in self.world:
                if t in remedied:
                    stack.enter_context(shadowed(self.ctx.engine, t, remedied[t]))
                else:
                    stack.enter_context(_viewed(self.ctx.engine, t, self.world[t]))
            yield

    def table(self, name: str) -> str:
        """The world's table holding the stored rows of ``name`` (one of ``MEMBER_TABLES``)."""
        return self.world[name]

    def value(self, base: SimulationResult, settings: SyncSettings, changed_sql: str, history: ProfileHistory,
              remedied: Callable[[], dict[str, str]] = dict, inside: Callable[[], None] | None = None) -> Valued:
        """The audience at ``at``, and the members' users in it (:class:`Valued`), with the remedy
        whose changed members are ``changed_sql`` (they
        were added), simulated with ``settings`` (those of ``base``, or a remedy's own EIT
        timeline) on the world with ``remedied()`` (class docstring). ``history``:
        :func:`profile_history_kind` of the remedied inputs, whole. ``inside()`` runs in the
        world after each simulation (the last call is the one of the answer)."""
        e, ctx = self.ctx.engine, self.ctx
        key = profile_key("t")
        if int(e.query_rows(f"SELECT count(*) FROM ({changed_sql}) c")[0][0]) == 0:
            return ctx.valued(base)  # nothing changes
        while True:
            n = Names(f"sim_{new_run_id()}_rem_")
            run = None
            try:
                with self.inputs(remedied()):
                    run = run_sync(e, ctx.ref, ctx.at, settings, names=n, only=self.rel, history=history,
                                   skip=("resolution", "timeline"))  # only the attribute state is read
                    if inside is not None:
                        inside()
                missed = f"""
                    SELECT t.is_orphan, {key} AS pkey
                    FROM {n.targets} t JOIN ({changed_sql}) c ON c.distinct_id = t.distinct_id
                    EXCEPT SELECT is_orphan, pkey FROM {self.profiles}
                """
                if int(e.query_rows(f"SELECT count(*) FROM ({missed}) m")[0][0]):
                    e.execute(f"INSERT INTO {self.profiles} {missed}")  # C writes elsewhere with the remedy
                    self.build()
                    continue
                # the profiles of P take their state from the subset; the others keep the baseline's
                true_in = ("SELECT count(*) FROM {t} a JOIN " + self.profiles +
                           " p ON p.is_orphan = a.is_orphan AND p.pkey = " + profile_key("a", "mpid") + " WHERE a.value")
                people_in = true_in + f" AND {members_user_sql('a', ctx.persons)}"
                b, a = base.table_names["attribute_state"], n.attribute_state
                before, after, people_before, people_after = e.query_rows(
                    f"SELECT ({true_in.format(t=b)}), ({true_in.format(t=a)}), "
                    f"({people_in.format(t=b)}), ({people_in.format(t=a)})")[0]
                return Valued(base.audience - int(before) + int(after),
                              ctx.people(base) - int(people_before) + int(people_after))
            finally:
                for step in (run.step_counts if run is not None else ()):
                    e.execute(f"DROP TABLE IF EXISTS {n.prefix}{step}")

    def drop(self) -> None:
        world = list(self.world.values()) if self.owns_world else []
        for t in (self.changed, self.profiles, self.rel, self.keep, *world):
            self.ctx.engine.drop(t)


def share_world(worlds: list[SubsetWorld]) -> None:
    """Build every world, copying the stored rows once for all of them (the union of the members
    each must hold): each still simulates its own REL only, and a member's simulation reads its
    own rows only, so the other members' rows change nothing. Drop the first one last."""
    for w in worlds:
        w.build(copy=False)
    first = worlds[0]
    first.copy_rows(" UNION ".join(w.held() for w in worlds))
    for w in worlds[1:]:
        w.world, w.owns_world = dict(first.world), False


__all__ = ["DERIVE_TABLES", "MEMBER_TABLES", "SubsetWorld", "Valued", "members_user_sql", "people_true_sql",
           "share_world", "shadowed", "subset_ready", "temp_name"]
