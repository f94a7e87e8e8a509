"""mParticle event batches written to object storage (the S3 / Google Cloud Storage outputs: one
forwarded Events API batch per line, gzip) load with the existing ``mparticle-batches`` loader:
the outgoing-JSON envelope (``batch_id``, ``message_id``, ``message_type``, ``schema_version``,
``user_identities`` as a list of ``{identity_type, identity}``) is read, nothing else is needed."""

from __future__ import annotations

import json
from datetime import datetime

# the batch loader has no fast path:
# its tests run once per path it has (conftest.parse_path checks it)
PARSE_PATHS = ("whole", "parallel")

KIND = "mparticle-batches"
BIG = 9080350317581165123


def _batch(n: int, mpid, **kw) -> dict:
    return {
        "events": [{"data": {"event_name": "Purchase", "timestamp_unixtime_ms": 1772928000000 + n,
                             "custom_event_type": "transaction"}, "event_type": "custom_event"}],
        "source_request_id": f"req-{n}", "batch_id": 1000 + n, "message_id": f"m-{n}",
        "message_type": "events", "schema_version": 2, "timestamp_unixtime_ms": 1772928000000 + n,
        "mpid": mpid, "environment": "production",
        "source_info": {"channel": "server_to_server", "is_historical": False},
        **kw,
    }


def test_storage_output_lines_load_as_batches(lab, q, write, balanced):
    lines = [
        _batch(1, BIG, user_identities=[{"identity_type": "customer_id", "identity": "cust-2",
                                         "timestamp_unixtime_ms": 1772928000000}],
               user_attributes={"Power Users": True}),
        _batch(2, -7346244611012968789, user_identities=[{"identity_type": "email", "identity": "ann@example.com"}],
               user_attributes={"plan": "pro"}, device_info={"platform": "Android", "android_uuid": "8789c459016a94b0"}),
        _batch(2, -7346244611012968789),  # the same source_request_id again: mParticle drops it
        _batch(3, BIG, user_attributes={"Power Users": False}),
    ]
    p = write("s3/2026/03/08/mparticle-batches-0001.json.gz",
              "".join(json.dumps(b) + "\n" for b in lines), gz=True)
    r = balanced(lab.load(KIND, p))
    assert (r.rows_read, r.loaded, r.deduplicated, r.n_quarantined) == (4, 3, 1, 0)
    assert q("SELECT mpid, source, last_stored_at FROM mpa_profiles") == [
        (-7346244611012968789, "batches", datetime(2026, 3, 8, 0, 0, 0, 2000)),
        (BIG, "batches", datetime(2026, 3, 8, 0, 0, 0, 3000)),
    ]
    assert q("SELECT mpid, kind, identity_type, value FROM mpa_identities") == [
        (-7346244611012968789, "device", "android_uuid", "8789c459016a94b0"),
        (-7346244611012968789, "user", "email", "ann@example.com"),
        (BIG, "user", "customer_id", "cust-2"),
    ]
    assert q("SELECT mpid, name, value_bool FROM mpa_attributes") == [
        (-7346244611012968789, "plan", None), (BIG, "Power Users", False)]  # batches apply in order
    assert lab.load(KIND, p).skipped == [str(p)]
