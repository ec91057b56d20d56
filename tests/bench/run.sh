#!/usr/bin/env bash
# `make bench`: runs tests/bench/suite.py (the standard suite) with the client venv of
# tests/s3-compat (created by tests/s3-compat/run.sh's rules if missing; the suite reuses its
# server and cluster helpers). Usage: tests/bench/run.sh   (see suite.py for the variables)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${STRATA_VENV:-$repo/.venv}"
requirements="$repo/tests/s3-compat/requirements.txt"

# shellcheck source=tests/s3-compat/venv.sh
source "$repo/tests/s3-compat/venv.sh"
ensure_venv "$venv" "$requirements"

cd "$repo"
export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" "$here/suite.py" "$@"
