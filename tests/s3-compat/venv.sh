# Sourced by tests/s3-compat/run.sh and tests/bench/run.sh: the one rule for the client venvs.
# ensure_venv DIR REQUIREMENTS: create DIR if missing and (re)install REQUIREMENTS into it only
# when that file changed since the last successful install.
ensure_venv() {
    local dir="$1" reqs="$2" stamp want
    if [ ! -x "$dir/bin/python" ]; then
        python3 -m venv "$dir"
    fi
    stamp="$dir/.s3compat-requirements.sha256"
    want="$(sha256sum "$reqs" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
        "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
        "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
        echo "$want" > "$stamp"
    fi
}
