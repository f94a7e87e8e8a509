"""An answer that decompresses to more than cohortlab reads: the fetch stops with an error that
names the endpoint, after reading only the first part of the stream (a gzip bomb fills no memory)."""

import gzip
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


def answer(body: bytes, encoding: str, status: int = 200):
    return httpx.MockTransport(lambda request: httpx.Response(
        status, headers={"Content-Encoding": encoding, "Content-Type": "application/json"}, content=iter([body])))


def test_two_gzip_layers_are_refused_before_anything_is_decompressed():
    """httpx undoes stacked encodings itself, each chunk whole: 3 KB of gzip-of-gzip was 2 GiB in
    one piece, 4.2 GB of memory before the cap was looked at (red team)."""
    http = client(answer(gzip.compress(gzip.compress(b"[" + b" " * 1000 + b"]")), "gzip, gzip"))
    with pytest.raises(CohortlabError, match=r"^mixpanel: the answer on /api/query/engage has Content-Encoding "
                                             r"'gzip, gzip', which cohortlab does not read \(gzip or deflate, once\)$"):
        http.request("GET", "https://mixpanel.example/api/query/engage", consume=http.json_body)
    assert sum(http.stats.retries.values()) == 0  # not retried: the same answer would come again


def small_window(data: bytes) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 9)  # its header's first byte is 0x18, not 0x78
    return z.compress(data) + z.flush()


@pytest.mark.parametrize("encoding, body", [
    ("gzip", gzip.compress(b'{"results": [1, ', mtime=0) + gzip.compress(b'2]}', mtime=0) + b"\0\0"),  # two members, padding
    ("deflate", zlib.compress(b'{"results": [1, 2]}')),                      # zlib-wrapped, as HTTP says
    ("deflate", zlib.compress(b'{"results": [1, 2]}')[2:-4]),                # raw deflate, as some servers send
    ("identity", b'{"results": [1, 2]}'),
    ("deflate", small_window(b'{"results": [1, 2]}')),                     # zlib with a 512-byte window
], ids=["gzip-members", "deflate-zlib", "deflate-raw", "identity", "deflate-zlib-small-window"])
def test_one_layer_of_gzip_or_deflate_is_read_whole(encoding, body):
    http = client(answer(body, encoding))
    _, raw = http.request("GET", "https://mixpanel.example/api/query/engage", consume=http.json_body)
    assert raw == b'{"results": [1, 2]}'


def test_a_gzip_stream_that_does_not_decompress_is_retried_then_refused():
    http = HttpClient("mixpanel", transport=answer(b"\x1f\x8b\x08\x00garbage", "gzip"), policy=no_sleep_policy(retries=2))
    with pytest.raises(CohortlabError, match=r"giving up after 3 attempts: undecodable body on /api/query/engage"):
        http.request("GET", "https://mixpanel.example/api/query/engage", consume=http.json_body)
    assert http.stats.retries["bad_body"] == 2


def test_only_the_encodings_it_reads_are_asked_for():
    """httpx asks for br and zstd when their modules are installed, which read_capped refuses."""
    seen = []
    http = client(httpx.MockTransport(lambda request: seen.append(request.headers["Accept-Encoding"])
                                      or httpx.Response(200, content=iter([b"{}"]))))
    http.request("GET", "https://mixpanel.example/api/query/engage", consume=http.json_body)
    assert seen == ["gzip, deflate"]


def test_padding_after_the_gzip_stream_ends_the_body_without_reading_it():
    """Every chunk after the end was added to zlib's unused_data, copied each time: 64 MB of
    zeros took 22 s and 128 MB of memory (red team)."""
    pulled: list[int] = []

    def chunks():
        yield gzip.compress(b'{"ok": 1}', mtime=0)
        for _ in range(64):
            pulled.append(1)
            yield bytes(1024 * 1024)

    http = client(httpx.MockTransport(lambda request: httpx.Response(
        200, headers={"Content-Encoding": "gzip"}, content=chunks())))
    _, raw = http.request("GET", "https://mixpanel.example/api/query/engage", consume=http.json_body)
    assert raw == b'{"ok": 1}' and len(pulled) <= 1


@pytest.mark.parametrize("body", [zlib.compress(b'{"results": [1, 2]}'), zlib.compress(b'{"results": [1, 2]}')[2:-4],
                                  small_window(b'{"results": [1, 2]}')], ids=["zlib", "raw", "zlib-small-window"])
def test_a_deflate_body_in_one_byte_pieces_is_read_whole(body):
    """Zlib or raw was decided on the first piece received: a first piece of one byte went to zlib,
    and a raw stream failed on the next ('incorrect header check'; red team)."""
    http = client(httpx.MockTransport(lambda request: httpx.Response(
        200, headers={"Content-Encoding": "deflate"}, content=iter([body[i:i + 1] for i in range(len(body))]))))
    _, raw = http.request("GET", "https://mixpanel.example/api/query/engage", consume=http.json_body)
    assert raw == b'{"results": [1, 2]}'
