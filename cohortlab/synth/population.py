"""People and their events, as numpy arrays, one chunk of people at a time.

Randomness is a pure function of ``(seed, stream, index)`` (SplitMix64), so a person's
attributes and events do not depend on the chunking, the machine or the thread count.
Nothing here loops over people or events in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cohortlab.synth.world import APP_OPEN, EVENT_NAMES, SIGN_IN, WorldConfig, epoch

DAY = 86400

# `$mparticle_user_id` written by app code: bucket codes
B_NONE, B_SDK_OK, B_FLOAT, B_UNDEFINED, B_EMPTY, B_NULL, B_OTHER_WS = range(7)
BUCKET_NAMES = ("none", "sdk_ok", "float", "junk_undefined", "junk_empty", "null", "other_workspace")
# uid kinds (what an event's $user_id / distinct_id is): 0 = device, 1 = MPID, 2 = customer id, 3 = email
UK_DEVICE, UK_MPID, UK_CUSTOMER, UK_EMAIL = range(4)
_EIT_UK = {"mparticle_id": UK_MPID, "customer_id": UK_CUSTOMER, "email": UK_EMAIL}
# `$mparticle_user_id` value kinds: 0 = absent, 1 = the exact MPID, 2 = the app's (sdk) value
MK_ABSENT, MK_EXACT, MK_SDK = range(3)


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))




def _stream_key(seed: int, stream: str) -> np.uint64:
    h = np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
    for ch in stream.encode():
        h = _splitmix(np.array([h ^ np.uint64(ch)], dtype=np.uint64))[0]
    return h


def bits(seed: int, stream: str, idx: np.ndarray) -> np.ndarray:
    """64 random bits per index (uint64)."""
    key = _stream_key(seed, stream)
    with np.errstate(over="ignore"):
        return _splitmix(_splitmix(idx.astype(np.uint64) ^ key) + key)


def uniform(seed: int, stream: str, idx: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) per index."""
    return (bits(seed, stream, idx) >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def mpid_of(seed: int, pid: np.ndarray, workspace: int = 0) -> np.ndarray:
    """The MPID of each person: a bijection of ``pid`` (so MPIDs never collide), spread over the
    whole signed 64-bit range. ``workspace=1`` gives MPIDs of another workspace, disjoint from
    workspace 0's for fewer than 2^62 people."""
    off = np.uint64((int(_stream_key(seed, "mpid")) + workspace * (1 << 62)) & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        return _splitmix(pid.astype(np.uint64) + off).view(np.int64)


@dataclass
class People:
    pid: np.ndarray          # int64
    mpid: np.ndarray         # int64
    other_mpid: np.ndarray   # int64 (another workspace)
    platform: np.ndarray     # int8 index into PLATFORMS
    first_t: np.ndarray      # int64 epoch s: arrival (first event)
    end_t: np.ndarray        # int64 epoch s: end of active life
    n: np.ndarray            # int64 events
    logged: np.ndarray       # bool
    login_k: np.ndarray      # int64 index of the "Sign In" event, -1 when never
    has_email: np.ndarray    # bool
    gamma: np.ndarray        # float64 activity shape
    bucket: np.ndarray       # int8 B_*
    fname: np.ndarray        # int64 index into FIRST_NAMES
    lname: np.ndarray        # int64 index into LAST_NAMES
    churned: np.ndarray      # bool
    tier: np.ndarray         # int8


PLATFORMS = ("web", "iphone", "android")


def _pick(u: np.ndarray, shares: list[float]) -> np.ndarray:
    c = np.cumsum(np.asarray(shares, dtype=np.float64))
    c = c / c[-1]
    return np.minimum(np.searchsorted(c, u, side="right"), len(shares) - 1).astype(np.int8)


def people(cfg: WorldConfig, seed: int, lo: int, hi: int, n_first: int, n_last: int) -> People:
    """People ``lo .. hi-1``."""
    pid = np.arange(lo, hi, dtype=np.int64)
    u = lambda s: uniform(seed, s, pid)  # noqa: E731
    start, end = epoch(cfg.start), epoch(cfg.end)
    span = end - start
    first_t = start + np.floor(u("arrival") * span).astype(np.int64)
    churned = u("churn") < cfg.churn_share
    life = np.floor((1.0 - np.log1p(-u("life")) * cfg.churn_mean_days) * DAY).astype(np.int64)
    tail = np.floor(u("tail") * 2 * DAY).astype(np.int64)
    end_t = np.where(churned, np.minimum(first_t + life, end - 1), end - 1 - tail)
    end_t = np.maximum(end_t, first_t)
    tier = _pick(u("tier"), [t.share for t in cfg.tiers])
    rmin = np.array([t.rate_min for t in cfg.tiers])[tier]
    rmax = np.array([t.rate_max for t in cfg.tiers])[tier]
    rate = rmin + u("rate") * (rmax - rmin)
    n = np.floor(rate * (end_t - first_t) / (30 * DAY) + u("count")).astype(np.int64)
    n = np.clip(n, 1, cfg.max_events_per_user)
    logged = u("login") < cfg.login_share
    login_k = np.where(logged, np.floor(u("login_k") * n * 0.5).astype(np.int64), -1)
    has_email = logged & (u("email") < cfg.email_share)
    gamma = np.exp((2.0 * u("gamma") - 1.0) * cfg.activity_skew)
    shares = [cfg.sdk_ok_share, cfg.float_share, cfg.junk_share / 2, cfg.junk_share / 2,
              cfg.null_share, cfg.other_workspace_share]
    ub = u("mpuid_writer")
    edges = np.cumsum(shares)
    bucket = np.where(ub < edges[-1], np.searchsorted(edges, ub, side="right") + 1, B_NONE).astype(np.int8)
    # order of `shares` -> codes: sdk_ok, float, undefined, empty, null, other_ws
    plat = _pick(u("platform"), [cfg.platform_shares.get(p, 0.0) for p in PLATFORMS])
    return People(
        pid=pid, mpid=mpid_of(seed, pid), other_mpid=mpid_of(seed, pid, workspace=1),
        platform=plat, first_t=first_t, end_t=end_t, n=n, logged=logged, login_k=login_k,
        has_email=has_email, gamma=gamma, bucket=bucket,
        fname=(bits(seed, "fname", pid) % np.uint64(n_first)).astype(np.int64),
        lname=(bits(seed, "lname", pid) % np.uint64(n_last)).astype(np.int64),
        churned=churned, tier=tier,
    )


@dataclass
class Events:
    """Events of a chunk of people, ordered by (person, k); ``p`` indexes the chunk's people."""

    p: np.ndarray       # int64 index into the chunk's People
    k: np.ndarray       # int64 event number of the person (time order)
    t: np.ndarray       # int64 epoch seconds
    ev: np.ndarray      # int8 index into EVENT_NAMES
    uk: np.ndarray      # int8 what $user_id is (0 = none)
    dk: np.ndarray      # int8 what distinct_id is (0 = $device:)
    mk: np.ndarray      # int8 event property $mparticle_user_id: MK_*
    ua: np.ndarray      # int8 user attribute $mparticle_user_id sent with the people update: MK_*
    prof: np.ndarray    # bool: sends a people (profile) update
    dup: np.ndarray     # bool: exported twice
    rnd: np.ndarray     # uint64 random bits (insert id, amounts)


def eit_kind_at(cfg: WorldConfig, t: np.ndarray) -> np.ndarray:
    """The uid kind the EIT in force at ``t`` gives (before considering login)."""
    out = np.full(t.shape, _EIT_UK[cfg.eit[0].type], dtype=np.int8)
    for step in cfg.eit[1:]:
        out = np.where(t >= epoch(step.start), np.int8(_EIT_UK[step.type]), out)
    return out


def events(cfg: WorldConfig, seed: int, P: People) -> tuple[Events, np.ndarray]:
    """The chunk's events, and per person the uid kind of the first event with a $user_id
    (the canonical distinct_id of its device events; 0 when none)."""
    n = P.n
    total = int(n.sum())
    p = np.repeat(np.arange(len(n), dtype=np.int64), n)
    starts = np.cumsum(n) - n
    k = np.arange(total, dtype=np.int64) - np.repeat(starts, n)
    gpid = P.pid[p]
    eidx = gpid.astype(np.uint64) * np.uint64(1 << 20) + k.astype(np.uint64)
    ut = uniform(seed, "event_time", eidx)
    x = (k + np.where(k == 0, 0.0, ut)) / n[p]
    span = (P.end_t - P.first_t)[p]
    t = P.first_t[p] + np.floor(span * np.power(x, P.gamma[p])).astype(np.int64)
    t = np.minimum(t, P.end_t[p])
    names = [nm for nm in EVENT_NAMES if nm in cfg.event_weights]
    codes = np.array([EVENT_NAMES.index(nm) for nm in names], dtype=np.int8)
    ev = codes[_pick(uniform(seed, "event_name", eidx), [cfg.event_weights[nm] for nm in names])]
    ev = np.where(k == 0, np.int8(APP_OPEN), ev)
    logged = P.logged[p]
    after_login = logged & (k >= P.login_k[p])
    ev = np.where(logged & (k == P.login_k[p]), np.int8(SIGN_IN), ev).astype(np.int8)
    eit = eit_kind_at(cfg, t)
    has_email = P.has_email[p]
    uk = np.where(
        eit == UK_MPID, UK_MPID,
        np.where((eit == UK_CUSTOMER) & after_login, UK_CUSTOMER,
                 np.where((eit == UK_EMAIL) & after_login & has_email, UK_EMAIL, UK_DEVICE)),
    ).astype(np.int8)
    # first event with a $user_id, per person (times are non-decreasing in k)
    first_uk = np.zeros(len(n), dtype=np.int8)
    if cfg.simplified_id_merge:
        hit = np.flatnonzero(uk > 0)
        pos = np.searchsorted(hit, starts)
        ok = pos < len(hit)
        ok[ok] = hit[pos[ok]] < (starts + n)[ok]
        first_uk[ok] = uk[hit[pos[ok]]]
    dk = np.where(uk > 0, uk, first_uk[p]).astype(np.int8)
    # $mparticle_user_id: remediation (exact) > app code (sdk value) > automatic event property
    bucket = P.bucket[p]
    sdk_from = epoch(cfg.sdk_mpuid_from or cfg.start)
    rem = np.zeros(total, dtype=bool) if cfg.remediation is None else t >= epoch(cfg.remediation.start)
    sdk = (bucket != B_NONE) & (t >= sdk_from)
    auto = np.zeros(total, dtype=bool) if cfg.event_mpuid_from is None else t >= epoch(cfg.event_mpuid_from)
    ua = np.where(rem, MK_EXACT, np.where(sdk, MK_SDK, MK_ABSENT)).astype(np.int8)
    mk = np.where(ua > 0, ua, np.where(auto, MK_EXACT, MK_ABSENT)).astype(np.int8)
    prof = after_login & (uk > 0)
    dup = uniform(seed, "duplicate", eidx) < cfg.duplicate_event_share
    return (
        Events(p=p, k=k, t=t, ev=ev, uk=uk, dk=dk, mk=mk, ua=ua, prof=prof, dup=dup,
               rnd=bits(seed, "event_bits", eidx)),
        first_uk,
    )
