"""Prints (or writes into README.md) the client-matrix table, derived from the tests themselves.

Owns: collecting the s3-compat suite without running it, and turning each test's `client`
marker (or boto3 generation parameter), transport (`target` parameter: http/https) and
`covers(...)` marker into one Markdown row per client: version, HTTP, HTTPS, operations. An
operation covered over one transport only is flagged with that transport. Tests without a
`covers` marker (error codes, protocol details, faults) are not part of the matrix.

Usage (from the repository root, with the suite's venvs made by run.sh):
    .venv/bin/python tests/s3-compat/matrix_table.py             # print the table
    .venv/bin/python tests/s3-compat/matrix_table.py --write README.md
The README section lies between `<!-- client-matrix:begin -->` and `<!-- client-matrix:end -->`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- client-matrix:begin -->", "<!-- client-matrix:end -->"
ORDER = ["aws-cli", "boto3", "boto3 1.35", "s3cmd", "rclone", "curl"]


class Collector:
    def __init__(self):
        self.rows: dict[str, dict] = defaultdict(lambda: {"transports": set(), "ops": defaultdict(set)})

    def pytest_collection_modifyitems(self, items):
        for item in items:
            covers = item.get_closest_marker("covers")
            client = item.get_closest_marker("client")
            if covers is None or client is None:
                continue
            params = getattr(getattr(item, "callspec", None), "params", {})
            name = client.args[0]
            if params.get("generation") == "boto3-1.35":
                name = "boto3 1.35"
            transport = params.get("target", "http")
            row = self.rows[name]
            row["transports"].add(transport)
            for op in covers.args:
                row["ops"][op].add(transport)


def version_of(client: str) -> str:
    """The version of each client installed for the suite (empty when not found)."""
    venv_bin = Path(sys.executable).parent
    legacy = os.environ.get("S3COMPAT_BOTO135_PYTHON") or str(HERE.parent.parent / ".venv-boto135/bin/python")
    commands = {
        "aws-cli": ([str(venv_bin / "aws"), "--version"], r"aws-cli/(\S+)"),
        "boto3": ([sys.executable, "-c", "import boto3; print(boto3.__version__)"], r"(\S+)"),
        "boto3 1.35": ([legacy, "-c", "import boto3; print(boto3.__version__)"], r"(\S+)"),
        "s3cmd": ([str(venv_bin / "s3cmd"), "--version"], r"version (\S+)"),
        "rclone": (["rclone", "version"], r"rclone v(\S+)"),
        "curl": (["curl", "--version"], r"curl (\S+)"),
    }
    cmd, pattern = commands[client]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    match = re.search(pattern, (out.stdout + out.stderr).decode("utf-8", "replace"))
    return match.group(1) if match else ""


def table(rows: dict[str, dict]) -> str:
    lines = ["| client | version | HTTP | HTTPS | operations |",
             "|---|---|---|---|---|"]
    for name in sorted(rows, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER)):
        row = rows[name]
        everywhere = [op for op, used in row["ops"].items() if used == row["transports"]]
        partial = defaultdict(list)
        for op, used in row["ops"].items():
            if used != row["transports"]:
                partial["/".join(sorted(used))].append(op)
        ops = ", ".join(everywhere)
        for transports, names in sorted(partial.items()):
            ops += f"; {transports} only: " + ", ".join(names)
        mark = {t: ("✓" if t in row["transports"] else "—") for t in ("http", "https")}
        lines.append(f"| {name} | {version_of(name)} | {mark['http']} | {mark['https']} | {ops.strip('; ')} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", type=Path, help="replace the matrix section of this Markdown file")
    args = parser.parse_args()
    collector = Collector()
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", str(HERE)], plugins=[collector])
    if code != 0:
        print(quiet.getvalue(), file=sys.stderr)
        return int(code)
    text = table(collector.rows)
    if args.write is None:
        print(text, end="")
        return 0
    doc = args.write.read_text()
    if BEGIN not in doc or END not in doc:
        print(f"{args.write}: no {BEGIN} … {END} section", file=sys.stderr)
        return 2
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    args.write.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
