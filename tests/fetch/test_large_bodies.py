"""An answer that decompresses to more than cohortlab reads: the fetch stops with an error that
names the endpoint, after reading only the first part of the stream (a gzip bomb fills no memory)."""

import zlib

import httpx
import pytest

from cohortlab.errors import CohortlabError
from cohortlab.fetch.http import HttpClient, no_sleep_policy


def bomb(status: int, pulled: list[int], megabytes: int = 40):
    """A transport answering ``status`` with a gzip stream of ``[`` + spaces + ``]``, ``megabytes``
    MiB once decompressed, sent in 1 MiB blocks; ``pulled`` counts the blocks the client read."""
    def chunks():
        z = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        yield z.compress(b"[")
        block = b" " * (1024 * 1024)
        for _ in range(megabytes):
            pulled.append(1)
            yield z.compress(block) + z.flush(zlib.Z_SYNC_FLUSH)
        yield z.compress(b"]") + z.flush()

    return httpx.MockTransport(lambda request: httpx.Response(
        status, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}, content=chunks()))


def client(transport) -> HttpClient:
    http = HttpClient("mixpanel", transport=transport, policy=no_sleep_policy(retries=0))
    http.max_json_body = 3 * 1024 * 1024
    return http


def test_a_json_answer_larger_than_the_cap_once_decompressed_stops_the_fetch_after_reading_the_cap():
    pulled: list[int] = []
    http = client(bomb(200, pulled))
    with pytest.raises(CohortlabError) as e:
        http.request("GET", "https://mixpanel.example/api/query/engage", consume=http.json_body)
    assert str(e.value) == ("mixpanel: the answer on /api/query/engage is larger than 3 MiB once decompressed "
                            "(HTTP 200): not read further. No page of these endpoints is that large: check the "
                            "URL, or a proxy between this machine and the service")
    assert len(pulled) <= 5  # of 40 blocks: the stream was left, not read to its end


def test_an_answer_under_the_cap_is_read_whole():
    pulled: list[int] = []
    http = client(bomb(200, pulled, megabytes=2))
    _, raw = http.request("GET", "https://mixpanel.example/api/query/engage", consume=http.json_body)
    assert raw == b"[" + b" " * (2 * 1024 * 1024) + b"]" and len(pulled) == 2


def test_an_error_answer_is_read_only_as_far_as_its_message_needs():
    pulled: list[int] = []
    http = client(bomb(400, pulled))
    with pytest.raises(CohortlabError, match=r"^mixpanel: HTTP 400 on /api/query/engage"):
        http.request("GET", "https://mixpanel.example/api/query/engage", consume=http.json_body)
    assert len(pulled) <= 2
