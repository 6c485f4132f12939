"""The proxy's HTTP/1.1 response reader (its lean LiveKit client reads answers with it)."""

from __future__ import annotations

import pytest

from voiceops.proxy.twirp_http import MAX_BODY_BYTES, Answer, ResponseReader, UpstreamGone

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/protobuf\r\n"


def feed_bytewise(data: bytes) -> list[Answer | None]:
    reader = ResponseReader()
    return [reader.feed(data[i:i + 1]) for i in range(len(data))]


def test_content_length_body_completes_only_at_its_last_byte():
    """Fed one byte at a time, the answer appears exactly when the body is complete."""
    raw = HEAD + b"Content-Length: 5\r\n\r\nhello"
    got = feed_bytewise(raw)
    assert got[:-1] == [None] * (len(raw) - 1)
    answer = got[-1]
    assert answer is not None and answer.status == 200 and answer.body == b"hello"
    assert answer.keep_alive and answer.headers["content-type"] == "application/protobuf"


def test_chunked_body_with_extensions_and_trailers():
    """Chunks (with an extension) are joined; trailers after the last chunk end the answer."""
    raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n")
    reader = ResponseReader()
    assert reader.feed(raw[:20]) is None
    answer = reader.feed(raw[20:])
    assert answer is not None and answer.body == b"abcde" and answer.keep_alive
    assert feed_bytewise(raw)[-1] == answer


def test_body_to_the_end_of_the_connection():
    """Without length or chunking the body ends with the connection (never reused)."""
    reader = ResponseReader()
    assert reader.feed(b"HTTP/1.1 500 Internal\r\n\r\noops") is None
    answer = reader.feed_eof()
    assert answer is not None and answer.status == 500 and answer.body == b"oops"
    assert not answer.keep_alive


def test_connection_close_and_http10_are_not_kept_alive():
    """`Connection: close`, or HTTP/1.0 without keep-alive, ends the connection's use."""
    close = ResponseReader().feed(HEAD + b"Connection: close\r\nContent-Length: 0\r\n\r\n")
    old = ResponseReader().feed(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert close is not None and not close.keep_alive
    assert old is not None and not old.keep_alive


def test_interim_answer_is_skipped_and_204_has_no_body():
    """A 100 Continue before the answer is skipped; a 204 is complete at its head."""
    answer = ResponseReader().feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    assert answer is not None and answer.status == 204 and answer.body == b""


def test_an_early_end_is_not_an_answer():
    """The connection ending mid-body is no answer (the caller reports LiveKit gone)."""
    reader = ResponseReader()
    assert reader.feed(HEAD + b"Content-Length: 9\r\n\r\nhal") is None
    assert reader.feed_eof() is None


@pytest.mark.parametrize("raw", [
    b"SSH-2.0-OpenSSH\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY_BYTES + 1),
])
def test_what_is_not_a_readable_answer_is_refused(raw: bytes):
    """Not HTTP, a malformed header or length, an unknown coding, an oversized body: refused."""
    with pytest.raises(UpstreamGone):
        ResponseReader().feed(raw)
