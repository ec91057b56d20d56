#!/usr/bin/env bash
# `make bench`: runs tests/bench/suite.py (the standard suite) with the client venv of
# tests/s3-compat (created by tests/s3-compat/run.sh's rules if missing; the suite reuses its
# server and cluster helpers). Usage: tests/bench/run.sh   (see suite.py for the variables)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${STRATA_VENV:-$repo/.venv}"
requirements="$repo/tests/s3-compat/requirements.txt"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
stamp="$venv/.s3compat-requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
fi

cd "$repo"
export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" "$here/suite.py" "$@"
