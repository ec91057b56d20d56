#!/usr/bin/env bash
# Runs the real-client S3 compatibility suite (aws-cli, boto3, s3cmd, curl) against a spawned
# strata server. Usage: tests/s3-compat/run.sh [extra pytest args]
#   STRATA_BIN       server binary (default ~/.cache/strata/target/release/strata)
#   STRATA_VENV      virtualenv for the clients (default <repo>/.venv; created if missing)
#   S3COMPAT_TARGET  strata (default) or moto (reference server, for checking the tests)
# Exit code: pytest's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${STRATA_VENV:-$repo/.venv}"
requirements="$here/requirements.txt"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi

# Reinstall only when requirements.txt changed since the last successful install.
stamp="$venv/.s3compat-requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
fi

command -v curl >/dev/null || { echo "run.sh: curl is required" >&2; exit 2; }

cd "$repo"
export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" -m pytest tests/s3-compat -q --timeout=300 -p no:cacheprovider "$@"
