#!/usr/bin/env bash
# Create (or reuse) a virtualenv holding the official meshagent-api 0.56 Python client (and
# meshagent-tools 0.56, whose start_hosted_toolkit the interop tests use), for tests/interop and
# benchmarks/. Usage: scripts/official-env.sh [DIR]   (default .venv-official)
#
# The official client needs Python 3.13. It is looked for as $OFFICIAL_PYTHON, then
# `PYENV_VERSION=3.13.0 python3.13` (pyenv), then `python3.13` on PATH. Without it this script
# says so and exits 1; the interop tests then skip and say why.
#
# meshagent-api is installed with --no-deps and its dependencies listed explicitly (its own
# certifi pin is newer than the registry has). meshagent-tools is installed with --no-deps too:
# besides meshagent-api its METADATA asks for pytest, pytest-asyncio and html-to-markdown (a
# lazy import of its web toolkit), none of which `import meshagent.tools` needs, while it does
# import `openai` at import time (strict_schema.py: `from openai import NOT_GIVEN`) without
# declaring it. msgspec and pyjwt are added so that our package (src/) also imports under this
# interpreter with PYTHONPATH=src, letting the benchmark run both implementations in one process.
set -euo pipefail

DIR="${1:-.venv-official}"
OFFICIAL_API_VERSION="0.56.0"
OFFICIAL_TOOLS_VERSION="0.56.0"
# Bump ENV_REVISION whenever the package set below changes: an older environment is then rebuilt.
ENV_REVISION="2"
STAMP="$DIR/.official-env-$OFFICIAL_API_VERSION-r$ENV_REVISION"
CHECK='import sys, meshagent.api, meshagent.api.protocol, meshagent.api.messaging, meshagent.tools, msgspec, jwt; sys.exit(0 if sys.version_info[:2] == (3, 13) else 1)'

# Fast path: already built and still working.
if [ -f "$STAMP" ] && [ -x "$DIR/bin/python" ] && "$DIR/bin/python" -c "$CHECK" >/dev/null 2>&1; then
    exit 0
fi

is_313() {
    "$@" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else 1)' >/dev/null 2>&1
}

PY=()
if [ -n "${OFFICIAL_PYTHON:-}" ] && is_313 "$OFFICIAL_PYTHON"; then
    PY=("$OFFICIAL_PYTHON")
elif command -v python3.13 >/dev/null 2>&1 && is_313 env PYENV_VERSION=3.13.0 python3.13; then
    PY=(env PYENV_VERSION=3.13.0 python3.13)
elif command -v python3.13 >/dev/null 2>&1 && is_313 python3.13; then
    PY=(python3.13)
elif command -v pyenv >/dev/null 2>&1; then
    # Any installed pyenv 3.13.x.
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.[0-9]+)?$' | sort -rV); do
        if is_313 env PYENV_VERSION="$v" python3.13; then
            PY=(env PYENV_VERSION="$v" python3.13)
            break
        fi
    done
fi

if [ ${#PY[@]} -eq 0 ]; then
    echo "official-env: Python 3.13 not found (tried \$OFFICIAL_PYTHON, pyenv 3.13, python3.13 on PATH)." >&2
    echo "official-env: the official meshagent-api $OFFICIAL_API_VERSION client needs it; interop tests will be skipped." >&2
    exit 1
fi

echo "official-env: building $DIR with $("${PY[@]}" -c 'import sys; print(sys.executable, sys.version.split()[0])')"

rm -f "$DIR"/.official-env-*
if [ ! -x "$DIR/bin/python" ] || ! is_313 "$DIR/bin/python"; then
    rm -rf "$DIR"
    "${PY[@]}" -m venv "$DIR"
fi

# pip's output goes to a log that is shown only when something fails. (The resolver always
# complains that meshagent-api wants a newer certifi than the registry has; that is expected.)
LOG="$DIR/.official-env.log"
: >"$LOG"
pip_install() {
    if ! "$DIR/bin/python" -m pip install -q --disable-pip-version-check "$@" >>"$LOG" 2>&1; then
        grep -v 'is ignored: it is neither a file nor a directory' "$LOG" | tail -n 40 >&2
        echo "official-env: pip install failed (full log: $LOG)" >&2
        exit 1
    fi
}
pip_install --no-deps "meshagent-api==$OFFICIAL_API_VERSION" "meshagent-tools==$OFFICIAL_TOOLS_VERSION"
pip_install \
    pyjwt \
    'aiohttp[speedups]~=3.13.0' \
    brotli \
    'jsonschema~=4.23' \
    'pycrdt~=0.12.26' \
    'opentelemetry-distro~=0.59b0' \
    'pydantic~=2.11.7' \
    'jinja2~=3.1.6' \
    'pyyaml~=6.0.2' \
    certifi \
    'pyarrow~=22.0.0' \
    'croniter~=6.0' \
    'openai>=1.0' \
    msgspec

if ! "$DIR/bin/python" -c "$CHECK"; then
    echo "official-env: $DIR was built but cannot import meshagent.api, meshagent.tools, msgspec and jwt" >&2
    exit 1
fi
touch "$STAMP"
echo "official-env: ready: $DIR/bin/python (meshagent-api $OFFICIAL_API_VERSION, meshagent-tools $OFFICIAL_TOOLS_VERSION)"
