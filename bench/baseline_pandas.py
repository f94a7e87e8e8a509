"""pandas baseline for ``cohortlab bench``: the same member outcomes, written as an analyst would
in a notebook.

Reads a ``cohortlab synth`` world (or exports laid out the same way) with ``pd.read_json`` /
``pd.read_csv`` (JSONL in chunks, keeping only the keys needed) and classifies every member of
each cohort's latest snapshot per docs/rules.md#resolution with the default settings (``fallback="data"``,
``event_identity_cutoff`` 2026-01-15, ``protection="only_update"``).

    python bench/baseline_pandas.py WORLD_DIR [--out counts.json] [--chunksize 500000]

MPIDs stay exact integers: identifiers are text (``dtype=str``) until they are checked against
the docs/rules.md#mpid pattern and int64 range, then ``Int64`` (never float64); ``mpid`` from the mParticle
JSON is an int64 column straight from the JSON parser, and the float-rounded values used for
``mpid_precision_loss`` are computed on purpose (``int(float(mpid))``), not by accident.

Output (printed and written): per cohort the as-of time, the member count and the counts of
(identifier_source, status, gap_reason), in the same shape as ``baseline_duckdb.py``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

CUTOFF_EPOCH = 1768435200  # 2026-01-15T00:00:00Z
TS_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})Z")
INT64_MAX = "9223372036854775807"


def _norm(s: str) -> str:
    return "".join(c for c in s.lower() if c.isalnum())


def _files(folder: Path, *patterns: str) -> list[Path]:
    out: list[Path] = []
    for pat in patterns:
        out += sorted(p for p in folder.glob(pat) if p.is_file())
    return out


def read_jsonl(path: Path, chunksize: int):
    """Chunks of a JSONL file (gzip by extension), no type guessing."""
    return pd.read_json(path, lines=True, chunksize=chunksize, dtype=False, compression="infer")


def as_text(s: pd.Series) -> pd.Series:
    """Identifier text: strings as they are, JSON integers as their exact decimal text."""
    return s.map(lambda v: v if isinstance(v, str) or v is None else str(v), na_action="ignore").astype(object)


def to_mpid(s: pd.Series) -> pd.Series:
    """docs/rules.md#mpid: text → Int64 when it is -?[0-9]+ within int64, else <NA>. No float on the way."""
    t = s.fillna("").astype(str)
    ok = t.str.fullmatch(r"-?[0-9]+").to_numpy(dtype=bool)
    digits = t.str.lstrip("-").str.lstrip("0")
    n = digits.str.len().to_numpy()
    limit = np.where(t.str.startswith("-").to_numpy(dtype=bool), "9223372036854775808", INT64_MAX)
    in_range = (n < 19) | ((n == 19) & (digits.to_numpy(dtype=object) <= limit.astype(object)))
    return t.where(ok & in_range).astype("Int64")


def latest_snapshots(world: Path) -> list[tuple[str, str, Path]]:
    names = {}
    cf = world / "mixpanel" / "cohorts.json"
    if cf.exists():
        names = {_norm(c["name"]): c["name"] for c in json.loads(cf.read_text())}
    out = []
    for d in sorted((world / "mixpanel" / "members").iterdir()):
        files = [f for f in d.iterdir() if f.is_file() and TS_RE.search(f.name)]
        if files:
            f = max(files, key=lambda p: TS_RE.search(p.name).groups())
            y, mo, da, h, mi, s = TS_RE.search(f.name).groups()
            out.append((names.get(_norm(d.name), d.name), f"{y}-{mo}-{da}T{h}:{mi}:{s}", f))
    return out


def read_members(f: Path) -> pd.Series:
    if f.name.endswith((".csv", ".csv.gz")):
        ids = pd.read_csv(f, dtype=str, keep_default_na=False)["distinct_id"]
    else:  # Engage pages, one per line
        ids = pd.concat([pd.Series([r["$distinct_id"] for r in page["results"]], dtype=object)
                         for page in (json.loads(line) for line in f.read_text().splitlines() if line.strip())])
        ids = as_text(ids)
    ids = ids[ids.notna() & (ids != "")]
    return ids.drop_duplicates().reset_index(drop=True)


def read_mparticle_mpids(world: Path, chunksize: int) -> pd.Series:
    parts = []
    for f in _files(world / "mparticle", "profiles.jsonl", "profiles.jsonl.gz", "profiles/*.json*"):
        for chunk in read_jsonl(f, chunksize):
            parts.append(chunk["mpid"].astype("Int64"))  # int64 from the JSON parser: exact
    return pd.concat(parts, ignore_index=True).dropna().drop_duplicates()


def read_profiles(world: Path, chunksize: int) -> pd.DataFrame:
    mp = world / "mixpanel"
    frames = []
    for f in _files(mp, "profiles/*.jsonl", "profiles/*.jsonl.gz"):
        for chunk in read_jsonl(f, chunksize):
            frames.append(pd.DataFrame({"distinct_id": as_text(chunk["$distinct_id"]),
                                        "mpuid": as_text(chunk["$properties"].str.get("$mparticle_user_id"))}))
    for f in _files(mp, "profiles/*.json", "profiles/*.json.gz"):
        page = pd.read_json(f, typ="series", dtype=False)
        res = pd.DataFrame(list(page["results"]))
        frames.append(pd.DataFrame({"distinct_id": as_text(res["$distinct_id"]),
                                    "mpuid": as_text(res["$properties"].str.get("$mparticle_user_id"))}))
    return pd.concat(frames, ignore_index=True)


def read_events(world: Path, chunksize: int, member_ids: set) -> pd.DataFrame:
    """Events since the cutoff carrying $mparticle_user_id, of cohort members only."""
    cols = ["time", "distinct_id", "$user_id", "$device_id", "$mparticle_user_id"]
    keep = []
    for f in _files(world / "mixpanel" / "events", "*.jsonl", "*.jsonl.gz", "*.json", "*.json.gz"):
        for chunk in read_jsonl(f, chunksize):
            p = pd.DataFrame.from_records(chunk["properties"].tolist(), columns=cols)
            did = as_text(p["distinct_id"]).replace("", None)
            did = did.fillna(as_text(p["$user_id"]).replace("", None))
            did = did.fillna("$device:" + as_text(p["$device_id"]).replace("", None))
            p = pd.DataFrame({"distinct_id": did, "t": pd.to_numeric(p["time"]),
                              "mpuid": as_text(p["$mparticle_user_id"])})
            p = p[(p["t"] >= CUTOFF_EPOCH) & p["mpuid"].notna() & p["distinct_id"].isin(member_ids)]
            keep.append(p)
    return pd.concat(keep, ignore_index=True)


def classify(members: pd.DataFrame, profiles: pd.DataFrame, events: pd.DataFrame, mpids: pd.Series) -> pd.DataFrame:
    """members: (cohort, as_of, as_of_epoch, distinct_id) → one row per member with the outcome."""
    profiles = profiles.drop_duplicates("distinct_id", keep="last")
    ev = events.merge(members[["cohort", "distinct_id", "as_of_epoch"]], on="distinct_id")
    ev = ev[ev["t"] <= ev["as_of_epoch"]]
    ev = ev.sort_values(["cohort", "distinct_id", "t", "mpuid"]).drop_duplicates(["cohort", "distinct_id"], keep="last")
    df = members.merge(profiles, on="distinct_id", how="left")
    df = df.merge(ev[["cohort", "distinct_id", "mpuid"]].rename(columns={"mpuid": "event_mpuid"}),
                  on=["cohort", "distinct_id"], how="left")
    df["identifier_source"] = np.select(
        [df["mpuid"].notna(), df["event_mpuid"].notna()], ["mparticle_user_id", "event_property"], "distinct_id")
    df["identifier"] = df["mpuid"].fillna(df["event_mpuid"]).fillna(df["distinct_id"])
    cand = to_mpid(df["identifier"])
    existing = pd.Index(mpids.astype("int64"))
    f = existing.to_numpy().astype(np.float64)           # int(float(mpid)), docs/rules.md#mpid precision loss
    f = f[f < 2.0**63]
    float_rounded = pd.Index(np.unique(f.astype(np.int64)))
    found = cand.isin(existing).fillna(False).astype(bool)
    lost = cand.isin(float_rounded).fillna(False).astype(bool)
    df["status"] = np.where(found, "matched", "unmatched")
    df["gap_reason"] = np.select(
        [found, cand.isna() & (df["identifier_source"] != "distinct_id"), cand.isna(), lost],
        [None, "malformed_mparticle_user_id", "distinct_id_not_mpid", "mpid_precision_loss"],
        "mpid_not_found").astype(object)
    df.loc[found, "gap_reason"] = None
    return df


def run(world: str | Path, chunksize: int = 500_000) -> dict:
    t0 = time.perf_counter()
    world = Path(world)
    snaps = latest_snapshots(world)
    members = pd.concat([
        pd.DataFrame({"cohort": cohort, "as_of": as_of, "distinct_id": read_members(f)}) for cohort, as_of, f in snaps
    ], ignore_index=True)
    members["as_of_epoch"] = (pd.to_datetime(members["as_of"], utc=True)
                              - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(seconds=1)
    mpids = read_mparticle_mpids(world, chunksize)
    profiles = read_profiles(world, chunksize)
    events = read_events(world, chunksize, set(members["distinct_id"]))
    df = classify(members, profiles, events, mpids)
    counts: dict = {}
    g = df.groupby(["cohort", "as_of", "identifier_source", "status", df["gap_reason"].fillna("")]).size()
    for (cohort, as_of, src, status, gap), n in g.items():
        c = counts.setdefault(cohort, {"as_of": as_of, "members": 0, "outcomes": {}})
        c["members"] += int(n)
        c["outcomes"][f"{src}|{status}|{gap}"] = int(n)
    for c in counts.values():
        c["outcomes"] = dict(sorted(c["outcomes"].items()))
    return {"baseline": "pandas", "seconds": round(time.perf_counter() - t0, 3), "counts": dict(sorted(counts.items()))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("world")
    ap.add_argument("--out")
    ap.add_argument("--chunksize", type=int, default=500_000)
    a = ap.parse_args(argv)
    res = run(a.world, a.chunksize)
    text = json.dumps(res, indent=2)
    if a.out:
        Path(a.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
