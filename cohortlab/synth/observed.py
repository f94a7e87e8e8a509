"""The observed mParticle state of a synthetic world (docs/rules.md#observed-state) and the
expected result of ``cohortlab verify`` on it.

The generator plays the feed itself, independently of ``cohortlab.simulation``: a dynamic sync
from the first snapshot, every 15 minutes, so a run falls on every snapshot time and sees its
membership; the first run sends every member (``true``), each later snapshot's run sends the
removed members (``false``) then the added ones (``true``): a profile ends ``true`` when one of
its distinct_ids was added in its last write's run. A member writes to the MPID its identifier
resolves to at the run that sends it (identifiers at the time they are sent, the default
``resolution_time = send``: the first snapshot's run, or the one it enters at; a remove writes to
what the add was sent to); nothing else writes.

What mParticle shows (the Profile API snapshot in ``mparticle/profiles.jsonl``, taken at
``observed_at`` = halfway between the last two snapshots) differs from that simulation by causes
planted at known people:

* the real feed was **paused** from just before the second-to-last snapshot until after
  ``observed_at``: the snapshot shows the writes up to the third-to-last snapshot only
  (``pause_not_modelled`` where the missing run should have written ``true``);
* the snapshot is **older than the last run** (at the last snapshot):
  ``snapshot_before_last_run`` when verify simulates up to the last snapshot, for a profile
  whose value that run changed (``changed_si``) and which showed the value the simulation held
  at the capture (its state after the second-to-last snapshot's run); one it only wrote again (a
  distinct_id of its person added while another one stays a member), or one the snapshot shows
  otherwise than the simulation held it then (a change the pause kept from it), disagrees for
  another cause, judged on the value at the capture;
* a share of people (``observed_old_name_share``) carry the attribute under the older name
  ``Mixpanel - {cohort_name}`` (``attribute_name_differs``);
* a share of people (``observed_missing_share``) are missing from the snapshot: their profile is
  only in ``mparticle/profiles/identities-only.jsonl``, without cohort attributes
  (``profile_missing_in_snapshot``).

``truth_verify.parquet`` has one row per (cohort, profile) that verify lists (simulated or
observed, see :data:`VERIFY_COLUMNS`); the manifest's ``expected_verify`` has the confusion table
and cause counts per cohort, with the parameters to pass (``snapshot_at`` = ``observed_at``,
``at`` = the last snapshot); a cohort no profile of the snapshot carries is marked
``"refused": "no observed state"``, as verify refuses it.
"""

from __future__ import annotations

VERIFY_COLUMNS = ("cohort_name", "mpid", "person_id", "simulated", "observed", "cause", "in_snapshot",
                  "other_name", "other_value", "last_write_si", "changed_si", "at_capture")
OLD_TEMPLATE = "Mixpanel - {cohort_name}"


def plan(n_snapshots: int) -> tuple[int, int] | None:
    """(index of the paused snapshot run, index of the last run the snapshot shows), or None
    when there are too few snapshots to plant a pause (then the snapshot shows every run)."""
    if n_snapshots < 3:
        return None
    return n_snapshots - 2, n_snapshots - 3


def feed_writes_sql(keep_from: int, last_si: int) -> str:
    """Per chunk: (ci, mpid, pid, si, value) — the feed's write on each profile at each snapshot
    run, from ``c_mem`` (ci, si, pid, dk), ``ps``, ``c_pf``, ``c_ers`` (pid, dk, si, mk_last: the
    event rule at snapshot ``si``).

    Identifiers at the time they are sent (docs/rules.md#resolution-time): a member's identifier
    is decided at the run that sends it, the first snapshot's (the first full sync) or the one of
    the snapshot it enters at, from the profile and the events at or before that run; it stays
    until the member is sent again (a remove writes ``false`` to what its stint's add was sent
    to). The profile's ``$mparticle_user_id`` is one version (it does not change over time); the
    event rule reads the latest event since the cutoff at or before the run; the fallback is the
    distinct_id. A stint matches when that identifier is its person's exact MPID text and that
    profile exists (``last_ev_t >= keep_from``); an unmatched stint writes nothing."""
    return f"""
    WITH members AS (SELECT DISTINCT ci, si, pid, dk FROM c_mem),
    stints AS (
      SELECT *, max(CASE WHEN enters THEN si END) OVER (
                  PARTITION BY ci, pid, dk ORDER BY si ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS sent_si
      FROM (SELECT ci, si, pid, dk,
                   lag(si) OVER w IS DISTINCT FROM si - 1 AS enters,
                   si < {last_si} AND lead(si) OVER w IS DISTINCT FROM si + 1 AS leaves_next
            FROM members WINDOW w AS (PARTITION BY ci, pid, dk ORDER BY si))
    ),
    sent AS (
      SELECT s.ci, s.si AS sent_si, s.pid, s.dk, p.mpid
      FROM stints s JOIN ps p ON p.pid = s.pid
      LEFT JOIN c_pf pf ON pf.pid = s.pid AND pf.uk = s.dk
      LEFT JOIN c_ers er ON er.pid = s.pid AND er.dk = s.dk AND er.si = s.si
      WHERE s.enters AND p.last_ev_t >= {keep_from}
        AND coalesce(pf.mpuid, CASE er.mk_last WHEN 1 THEN p.mpid_txt WHEN 2 THEN p.sdk_value END,
                     CASE s.dk WHEN 1 THEN p.mpid_txt END) = p.mpid_txt
    ),
    changes AS (
      SELECT ci, si, pid, dk, sent_si, 1 AS added FROM stints WHERE enters
      UNION ALL SELECT ci, si + 1, pid, dk, sent_si, 0 FROM stints WHERE leaves_next
    )
    SELECT c.ci, t.mpid, c.pid, c.si, max(c.added) = 1 AS value
    FROM changes c JOIN sent t USING (ci, pid, dk, sent_si)
    GROUP BY c.ci, t.mpid, c.pid, c.si
    """


def state_sql(through_si: int) -> str:
    """(ci, mpid, pid, value, si, changed_si): each profile's last write at or before snapshot
    ``through_si``, and the write that gave it that value (the first, or one of the other value
    than the write before: the later ones wrote it again)."""
    return f"""
    SELECT ci, mpid, any_value(pid) AS pid, arg_max(value, si) AS value, max(si) AS si,
           max(CASE WHEN prev IS NULL OR prev <> value THEN si END) AS changed_si
    FROM (SELECT *, lag(value) OVER (PARTITION BY ci, mpid ORDER BY si) AS prev
          FROM c_writes WHERE si <= {through_si}) w
    GROUP BY ci, mpid
    """


def verify_truth_sql(last_si: int, obs_si: int, names_values: str) -> str:
    """Per chunk: the rows of ``truth_verify.parquet`` (:data:`VERIFY_COLUMNS`, ``cohort_name``
    from ``names_values`` (ci, name, json_name, json_old, old_name)), from ``c_writes`` and ``c_plant``
    (pid, plant: 0 none, 1 older attribute name, 2 missing from the snapshot). The cause is the
    first of docs/rules.md#observed-state that applies, from what the generator planted.

    The snapshot is captured (``observed_at``) after the second-to-last snapshot's run and before
    the last one's when a pause is planted (``obs_si < last_si``; else at the last snapshot, after
    every run): a profile the last run changed was captured before that change (``late``), and its
    value at the capture (``at_capture``) is its state after the second-to-last snapshot's run."""
    planned = obs_si < last_si
    return f"""
    WITH n AS (SELECT * FROM (VALUES {names_values}) v(ci, cohort_name, json_name, json_old, old_name)),
    sim AS ({state_sql(last_si)}),
    obs AS ({state_sql(obs_si)}),
    cap AS ({state_sql(last_si - 1)}),
    rows AS (
      SELECT s.ci, s.mpid, s.pid, CASE WHEN s.value THEN 'true' ELSE 'false' END AS simulated, s.si AS last_write_si,
             s.changed_si, {'TRUE' if planned else 'FALSE'} AND s.changed_si = {last_si} AS late,
             coalesce(pl.plant, 0) AS plant,
             CASE WHEN o.mpid IS NULL THEN NULL WHEN o.value THEN 'true' ELSE 'false' END AS obs_value,
             CASE WHEN c.mpid IS NULL THEN 'absent' WHEN c.value THEN 'true' ELSE 'false' END AS cap_value
      FROM sim s LEFT JOIN obs o ON o.ci = s.ci AND o.mpid = s.mpid
      LEFT JOIN cap c ON c.ci = s.ci AND c.mpid = s.mpid
      LEFT JOIN c_plant pl ON pl.pid = s.pid
    ),
    valued AS (
      SELECT *, plant <> 2 AS in_snapshot,
             CASE WHEN plant = 0 AND obs_value IS NOT NULL THEN obs_value ELSE 'absent' END AS observed,
             CASE WHEN plant = 1 AND obs_value IS NOT NULL THEN obs_value END AS other_value,
             CASE WHEN late THEN cap_value ELSE simulated END AS at_capture
      FROM rows
    )
    SELECT n.cohort_name, v.mpid, v.pid AS person_id, v.simulated, v.observed,
           CASE WHEN v.simulated = v.observed THEN NULL
                WHEN v.late AND v.at_capture = v.observed THEN 'snapshot_before_last_run'
                WHEN v.in_snapshot AND v.other_value IS NOT NULL THEN 'attribute_name_differs'
                WHEN NOT v.in_snapshot THEN 'profile_missing_in_snapshot'
                WHEN v.at_capture = 'true' THEN 'pause_not_modelled'
                ELSE 'unexplained' END AS cause,
           v.in_snapshot,
           CASE WHEN v.other_value IS NOT NULL THEN n.old_name END AS other_name,
           v.other_value, v.last_write_si, v.changed_si, v.at_capture
    FROM valued v JOIN n ON n.ci = v.ci
    """


def observed_attributes_sql(obs_si: int, names_values: str) -> str:
    """Per chunk: (pid, attrs, last_write_si) — the JSON members (``"name":true,``) that the
    snapshot's ``user_attributes`` carry for each person, each followed by a comma."""
    return f"""
    WITH n AS (SELECT * FROM (VALUES {names_values}) v(ci, cohort_name, json_name, json_old, old_name)),
    obs AS ({state_sql(obs_si)})
    SELECT o.pid, string_agg(concat(CASE WHEN coalesce(pl.plant, 0) = 1 THEN n.json_old ELSE n.json_name END, ':',
                                    CASE WHEN o.value THEN 'true' ELSE 'false' END, ','), '' ORDER BY o.ci) AS attrs,
           max(o.si) AS last_write_si
    FROM obs o JOIN n ON n.ci = o.ci LEFT JOIN c_plant pl ON pl.pid = o.pid
    WHERE coalesce(pl.plant, 0) <> 2  -- missing from the snapshot: no cohort attribute anywhere
    GROUP BY o.pid
    """


def names_values(cohort_names: list[str]) -> str:
    """VALUES rows (ci, cohort_name, json_name, json_old, old_name) for the cohorts."""
    import json

    from cohortlab.pipeline import sql_str

    rows = []
    for ci, name in enumerate(cohort_names):
        old = OLD_TEMPLATE.format(cohort_name=name)
        rows.append(f"({ci}, {sql_str(name)}, {sql_str(json.dumps(name))}, {sql_str(json.dumps(old))}, {sql_str(old)})")
    return ", ".join(rows)
