#!/usr/bin/env bash
# Runs the real-client S3 compatibility suite (aws-cli, boto3, s3cmd, curl) against a spawned
# strata server. Usage: tests/s3-compat/run.sh [extra pytest args]
#   STRATA_BIN       server binary (default ~/.cache/strata/target/release/strata)
#   STRATA_VENV      virtualenv for the clients (default <repo>/.venv; created if missing)
#   STRATA_VENV_BOTO135  virtualenv with boto3 1.35 (default <repo>/.venv-boto135; created if missing)
#   S3COMPAT_TARGET  strata (default) or moto (reference server, for checking the tests)
#   S3COMPAT_CLUSTER=1     the shared server is a gateway + 6 storage-node processes
#   S3COMPAT_GATEWAYS=N    (N > 1) N gateways on a 3-member etcd catalog behind a round-robin proxy
# Exit code: pytest's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${STRATA_VENV:-$repo/.venv}"
requirements="$here/requirements.txt"

# shellcheck source=tests/s3-compat/venv.sh
source "$here/venv.sh"
ensure_venv "$venv" "$requirements"
# The legacy boto3 (1.35, before the default-checksum change) lives in its own venv; the tests
# find its interpreter through S3COMPAT_BOTO135_PYTHON.
venv_boto135="${STRATA_VENV_BOTO135:-$repo/.venv-boto135}"
ensure_venv "$venv_boto135" "$here/requirements-boto135.txt"
export S3COMPAT_BOTO135_PYTHON="$venv_boto135/bin/python"

command -v curl >/dev/null || { echo "run.sh: curl is required" >&2; exit 2; }

cd "$repo"
export PYTHONDONTWRITEBYTECODE=1
# The whole suite unless an argument names test files or directories (or node ids) to run.
suite=(tests/s3-compat)
for arg in "$@"; do
    if [ -e "${arg%%::*}" ]; then suite=(); break; fi
done
exec "$venv/bin/python" -m pytest "${suite[@]}" -q --timeout=300 -p no:cacheprovider "$@"
