"""``python -m bench.status_poller SOCKET``: ask ``GET /status`` every 20 ms until stdin
closes, then print each answer's latency (ms; -1 for a failure) as JSON. A process of its
own, so the benchmark's busy client cannot delay the asking (the GIL) and inflate the figure."""

from __future__ import annotations

import json
import sys
import threading
import time

from voiceops.testing.harness import UnixHTTPConnection

INTERVAL_S = 0.02


def ask(path: str) -> float:
    start = time.perf_counter()
    conn = UnixHTTPConnection(path)
    try:
        conn.request("GET", "/status")
        resp = conn.getresponse()
        resp.read()
        ok = resp.status == 200
    except OSError:
        ok = False
    finally:
        conn.close()
    return (time.perf_counter() - start) * 1e3 if ok else -1.0


def main() -> None:
    path = sys.argv[1]
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    out: list[float] = []
    print("ready", flush=True)
    while not done.wait(INTERVAL_S):
        out.append(ask(path))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
