"""An HTTP/1.1 response read incrementally from a connection: status, headers, and a body
framed by Content-Length, chunked transfer coding, or the connection's end. Pure: bytes in,
an :class:`Answer` out once the response is complete."""

from __future__ import annotations

from dataclasses import dataclass

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 32 * 1024 * 1024  # a ListRooms of many rooms stays far below this
_NO_BODY = frozenset((204, 304))


class UpstreamGone(ConnectionError):
    """The connection to LiveKit failed, closed early, or spoke something that is not HTTP."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes
    keep_alive: bool


class ResponseReader:
    def __init__(self) -> None:
        self._buf = bytearray()
        self._status = 0
        self._headers: dict[str, str] = {}
        self._keep_alive = True
        self._length: int | None = None  # body bytes still expected; None: chunked or to EOF
        self._chunked = False
        self._body = bytearray()
        self._in_body = False

    def feed(self, data: bytes) -> Answer | None:
        """The answer once complete, else None (wants more bytes)."""
        self._buf += data
        if not self._in_body and not self._read_head():
            return None
        if self._chunked:
            return self._read_chunks()
        if self._length is None:
            self._body += self._buf
            self._buf.clear()
            self._check_size(len(self._body))
            return None
        if len(self._buf) < self._length:
            return None
        self._body += self._buf[:self._length]
        return self._answer()

    def feed_eof(self) -> Answer | None:
        """The connection ended: complete only for a body framed by the connection's end."""
        if self._in_body and not self._chunked and self._length is None:
            self._keep_alive = False
            return self._answer()
        return None

    def _read_head(self) -> bool:
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD_BYTES:
                    raise UpstreamGone("LiveKit's answer has an oversized header")
                return False
            lines = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
            del self._buf[:end + 4]
            version, status = _status_line(lines[0])
            if 100 <= status < 200:
                continue  # an interim answer (100 Continue): the real one follows
            self._status = status
            self._headers = _headers(lines[1:])
            self._frame(version)
            self._in_body = True
            return True

    def _frame(self, version: str) -> None:
        connection = self._headers.get("connection", "").lower()
        self._keep_alive = ("close" not in connection if version == "HTTP/1.1"
                            else "keep-alive" in connection)
        coding = self._headers.get("transfer-encoding", "").lower()
        if self._status in _NO_BODY:
            self._length = 0
        elif coding:
            if coding.rsplit(",", 1)[-1].strip() != "chunked":
                raise UpstreamGone(f"LiveKit answered in a transfer coding not read here: {coding}")
            self._chunked = True
        elif "content-length" in self._headers:
            try:
                self._length = int(self._headers["content-length"])
            except ValueError:
                raise UpstreamGone("LiveKit's answer has a bad Content-Length") from None
            if self._length < 0:
                raise UpstreamGone("LiveKit's answer has a bad Content-Length")
            self._check_size(self._length)
        else:
            self._length, self._keep_alive = None, False  # the body ends with the connection

    def _read_chunks(self) -> Answer | None:
        while True:
            line_end = self._buf.find(b"\r\n")
            if line_end < 0:
                return None
            if self._length is None:  # at a chunk-size line
                size_text = bytes(self._buf[:line_end]).split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise UpstreamGone("LiveKit's chunked answer is malformed") from None
                if size == 0:  # the last chunk: done at the blank line after any trailers
                    return self._answer() if self._buf.find(b"\r\n\r\n", line_end) >= 0 else None
                self._check_size(len(self._body) + size)
                del self._buf[:line_end + 2]
                self._length = size
            if len(self._buf) < self._length + 2:
                return None
            self._body += self._buf[:self._length]
            del self._buf[:self._length + 2]
            self._length = None

    def _answer(self) -> Answer:
        return Answer(self._status, self._headers, bytes(self._body), self._keep_alive)

    @staticmethod
    def _check_size(size: int) -> None:
        if size > MAX_BODY_BYTES:
            raise UpstreamGone(f"LiveKit's answer is over {MAX_BODY_BYTES} bytes")


def _status_line(line: str) -> tuple[str, int]:
    version, _, rest = line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise UpstreamGone("LiveKit answered something that is not HTTP/1.x")
    return version, int(code)


def _headers(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            raise UpstreamGone("LiveKit's answer has a malformed header line")
        out[name.strip().lower()] = value.strip()
    return out
