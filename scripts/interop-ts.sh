#!/usr/bin/env bash
# Run the official MeshAgent TypeScript client's own test suite (meshagent-ts, src/test/)
# against our local server. Usage: scripts/interop-ts.sh TS_DIR   (or `make interop-ts TS_DIR=...`)
#
# TS_DIR is a checkout of https://github.com/meshagent/meshagent-ts. Without node/npm, or when
# TS_DIR is not such a checkout, this prints `interop-ts: skipped: <reason>` and exits 0.
#
# Steps:
#  1. `npm install` in TS_DIR, only when node_modules is missing or package.json /
#     package-lock.json changed since the last install here (a stamp in node_modules).
#  2. `tsc -p tsconfig.node.json`: the CommonJS build into dist/node, tests included (skipped
#     when nothing changed since this script's last build). This is the part of its
#     `npm run build` (scripts/build.sh) that we need: that script also builds a sibling
#     package (../meshagent-entrypoint) that is not in the repository.
#  3. Start `meshagent-trio serve` on a free port with a fresh temporary data dir and freshly
#     generated credentials, and wait until `GET /` answers 200.
#  4. Run what its `run-tests.sh --skip-server-setup` runs after its build,
#     `mocha dist/node/test/*.js`, with MESHAGENT_API_URL, MESHAGENT_API_KEY,
#     MESHAGENT_PROJECT_ID, MESHAGENT_KEY_ID and MESHAGENT_SECRET set (every other
#     MESHAGENT_* variable of the caller is unset). run-tests.sh itself is not called because
#     it starts with `npm run build`.
#  5. Stop the server (always, via a trap) and print one line with the counts.
# Exit status: 0 when no test failed, 1 otherwise (2 when the harness itself failed).
#
# Environment knobs: MESHAGENT_TRIO_BIN (the virtualenv's bin directory, default .venv/bin of
# this repository), INTEROP_TS_TIMEOUT (seconds for the whole mocha run, default 900),
# INTEROP_TS_GREP (passed to mocha --grep), INTEROP_TS_LOG_LEVEL (the server's --log-level, INFO),
# INTEROP_TS_KEEP (1: keep the work directory with the server log even when all tests pass).
# On failure the work directory (server log, mocha output) is kept and its path printed.
set -euo pipefail

skip() {
    echo "interop-ts: skipped: $*"
    exit 0
}
die() {
    echo "interop-ts: error: $*" >&2
    exit 2
}

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${MESHAGENT_TRIO_BIN:-$REPO/.venv/bin}"
TS_DIR="${1:-}"

[ -n "$TS_DIR" ] || skip "no meshagent-ts checkout given (usage: scripts/interop-ts.sh TS_DIR, or make interop-ts TS_DIR=...)"
command -v node >/dev/null 2>&1 || skip "node is not installed"
command -v npm >/dev/null 2>&1 || skip "npm is not installed"
[ -d "$TS_DIR" ] || skip "$TS_DIR is not a directory"
TS_DIR="$(cd "$TS_DIR" && pwd)"
[ -f "$TS_DIR/package.json" ] || skip "$TS_DIR has no package.json"
TS_NAME="$(node -e 'try { console.log(require(process.argv[1]).name || "") } catch (e) { console.log("") }' "$TS_DIR/package.json")"
[ "$TS_NAME" = "@meshagent/meshagent" ] || skip "$TS_DIR is not a meshagent-ts checkout (package name '${TS_NAME}')"
for f in tsconfig.node.json run-tests.sh src/test; do
    [ -e "$TS_DIR/$f" ] || skip "$TS_DIR has no $f (not a meshagent-ts checkout?)"
done
[ -x "$BIN/meshagent-trio" ] || die "$BIN/meshagent-trio not found (run make .venv/bin/.installed)"
[ -x "$BIN/python" ] || die "$BIN/python not found"

START_TIME=$SECONDS

# --- 1. npm install, only when needed -----------------------------------------------------
deps_hash() {
    cat "$TS_DIR/package.json" "$TS_DIR/package-lock.json" 2>/dev/null | sha256sum | cut -d' ' -f1
}
STAMP="$TS_DIR/node_modules/.interop-ts-installed"
if [ ! -d "$TS_DIR/node_modules" ] || [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$(deps_hash)" ]; then
    echo "interop-ts: npm install in $TS_DIR"
    (cd "$TS_DIR" && timeout 900 npm install --no-audit --no-fund --loglevel=error) || die "npm install failed"
    deps_hash >"$STAMP"   # after the install: npm may have written package-lock.json
else
    echo "interop-ts: node_modules up to date"
fi

# --- 2. build (CommonJS, dist/node) -------------------------------------------------------
# Skipped when dist/node was built by this script after every change to the sources, the
# tsconfig files and the installed packages.
BUILD_STAMP="$TS_DIR/dist/node/.interop-ts-built"
if [ -f "$BUILD_STAMP" ] && [ -z "$(cd "$TS_DIR" && find src types index.ts package.json tsconfig*.json node_modules/.interop-ts-installed \
        -newer "$BUILD_STAMP" -print -quit 2>/dev/null)" ]; then
    echo "interop-ts: dist/node up to date"
else
    echo "interop-ts: tsc -p tsconfig.node.json"
    rm -rf "$TS_DIR/dist/node"
    (cd "$TS_DIR" && timeout 600 ./node_modules/.bin/tsc -p tsconfig.node.json) || die "tsc -p tsconfig.node.json failed"
    mkdir -p "$TS_DIR/dist/node"
    echo '{"type":"commonjs"}' >"$TS_DIR/dist/node/package.json"   # as its scripts/build.sh does
    touch "$BUILD_STAMP"
fi
shopt -s nullglob
TEST_FILES=("$TS_DIR"/dist/node/test/*.js)
shopt -u nullglob
[ ${#TEST_FILES[@]} -gt 0 ] || die "the build produced no dist/node/test/*.js"

# --- 3. our server ------------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/interop-ts.XXXXXX")"
SERVER_PID=""
KEEP_WORK="${INTEROP_TS_KEEP:-0}"
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "$KEEP_WORK" = 1 ]; then
        echo "interop-ts: server log and mocha output kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Fresh credentials: the encoded API key and its parts, and a free port.
eval "$("$BIN/python" - <<'EOF'
import shlex
from meshagent_core.tokens import parse_api_key
from meshagent_trio.server.process import free_port, new_api_key
key = new_api_key()
parts = parse_api_key(key)
for name, value in (("API_KEY", key), ("PROJECT_ID", parts.project_id), ("KEY_ID", parts.id),
                    ("SECRET", parts.secret), ("PORT", str(free_port()))):
    print(f"IT_{name}={shlex.quote(value)}")
EOF
)"
API_URL="http://127.0.0.1:$IT_PORT"

# Keep only our credentials: no MESHAGENT_* variable of the caller reaches server or tests.
while IFS= read -r name; do
    unset "$name"
done < <(compgen -e | grep '^MESHAGENT_' || true)

# INFO: the server then logs each request it could not decode (kept on failure).
SERVER_ARGS=(serve --host 127.0.0.1 --port "$IT_PORT" --data-dir "$WORK/data" --log-level "${INTEROP_TS_LOG_LEVEL:-INFO}")
echo "interop-ts: starting meshagent-trio serve on $API_URL"
MESHAGENT_API_KEY="$IT_API_KEY" "$BIN/meshagent-trio" "${SERVER_ARGS[@]}" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

READY=false
for _ in $(seq 1 300); do   # up to ~30 s
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        KEEP_WORK=1
        tail -n 40 "$WORK/server.log" >&2 || true
        die "the server exited during startup"
    fi
    if "$BIN/python" -c 'import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=1).status == 200 else 1)
except Exception:
    sys.exit(1)' "$API_URL/" 2>/dev/null; then
        READY=true
        break
    fi
    sleep 0.1
done
if ! $READY; then
    KEEP_WORK=1
    tail -n 40 "$WORK/server.log" >&2 || true
    die "the server did not answer GET / at $API_URL"
fi

# --- 4. the suite -------------------------------------------------------------------------
MOCHA_ARGS=()
[ -n "${INTEROP_TS_GREP:-}" ] && MOCHA_ARGS+=(--grep "$INTEROP_TS_GREP")
echo "interop-ts: mocha dist/node/test/*.js (${#TEST_FILES[@]} files)"
SUITE_START=$SECONDS
set +e
(
    cd "$TS_DIR"
    export MESHAGENT_API_URL="$API_URL" MESHAGENT_API_KEY="$IT_API_KEY" MESHAGENT_PROJECT_ID="$IT_PROJECT_ID" \
        MESHAGENT_KEY_ID="$IT_KEY_ID" MESHAGENT_SECRET="$IT_SECRET"
    # --exit: a test that leaves a socket open must not keep mocha alive after the last test.
    exec timeout -k 10 "${INTEROP_TS_TIMEOUT:-900}" ./node_modules/.bin/mocha --exit --reporter spec \
        "${MOCHA_ARGS[@]}" dist/node/test/*.js
) 2>&1 | tee "$WORK/mocha.log"
MOCHA_STATUS=${PIPESTATUS[0]}
set -e
SUITE_SECONDS=$((SECONDS - SUITE_START))

# --- 5. the counts ------------------------------------------------------------------------
count() {   # the number before "passing" / "pending" / "failing" in mocha's summary
    sed -e 's/\x1b\[[0-9;]*m//g' "$WORK/mocha.log" | grep -Eo "^ *[0-9]+ $1" | tail -n 1 | grep -Eo '[0-9]+' || echo 0
}
PASSED="$(count passing)"
SKIPPED="$(count pending)"
FAILED="$(count failing)"
if [ "$MOCHA_STATUS" = 124 ] || [ "$MOCHA_STATUS" = 137 ]; then
    NOTE=" (mocha timed out after ${INTEROP_TS_TIMEOUT:-900} s)"
elif [ "$MOCHA_STATUS" != 0 ] && [ "$FAILED" = 0 ]; then
    NOTE=" (mocha exited $MOCHA_STATUS)"
else
    NOTE=""
fi
if [ "$FAILED" != 0 ] || [ "$MOCHA_STATUS" != 0 ]; then
    KEEP_WORK=1
fi
echo "interop-ts: $PASSED passed, $FAILED failed, $SKIPPED skipped in ${SUITE_SECONDS} s (total $((SECONDS - START_TIME)) s)$NOTE"
if [ "$FAILED" != 0 ] || [ "$MOCHA_STATUS" != 0 ]; then
    exit 1
fi
exit 0
