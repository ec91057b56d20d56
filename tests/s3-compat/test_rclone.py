"""rclone (Debian's package) with an S3 remote configured only through environment variables.

Provider `Other`, path style, region us-east-1 — what a user writes in `rclone config` for a
self-hosted S3. rclone turns the new AWS default checksums off for non-AWS providers and
sends Content-MD5 itself, keeps the mtime in `X-Amz-Meta-Mtime` and the MD5 of multipart
uploads in `X-Amz-Meta-Md5chksum` (S3-CLIENTS.md §2d). `check` compares the listing's ETag with
the local MD5, and `check --download` compares bytes. Every test runs over http and https
(`--ca-cert`). rclone's own retries are off, so a single server error fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

import support
from support import KIB, MIB

pytestmark = pytest.mark.client("rclone")

TREE = {"a.txt": 10, "empty": 0, "sub/b.bin": 70 * KIB, "sub/deep/c.bin": MIB + 7, "sub/deep/d e+f.txt": 33}


@pytest.fixture(scope="session")
def rclone_binary():
    found = shutil.which("rclone")
    if found is None:
        pytest.fail("rclone is not installed (make deps installs Debian's rclone)")
    return found


@pytest.fixture
def rclone(rclone_binary, target, client_env, scratch_root):
    """Run `rclone ARGS` against the remote `strata:` for this test's transport."""
    config = scratch_root / "rclone.conf"
    config.touch()
    env = dict(client_env)
    env.update({
        "RCLONE_CONFIG": str(config),  # never the user's ~/.config/rclone
        "RCLONE_CONFIG_STRATA_TYPE": "s3",
        "RCLONE_CONFIG_STRATA_PROVIDER": "Other",
        "RCLONE_CONFIG_STRATA_ENV_AUTH": "false",
        "RCLONE_CONFIG_STRATA_ACCESS_KEY_ID": support.ACCESS_KEY,
        "RCLONE_CONFIG_STRATA_SECRET_ACCESS_KEY": support.SECRET_KEY,
        "RCLONE_CONFIG_STRATA_ENDPOINT": target.url,
        "RCLONE_CONFIG_STRATA_REGION": support.REGION,
        "RCLONE_CONFIG_STRATA_FORCE_PATH_STYLE": "true",
    })
    tls = ["--ca-cert", target.ca_bundle] if target.ca_bundle else []

    def call(*args, check=True, timeout=support.SUBPROCESS_TIMEOUT, stdin=None):
        cmd = [rclone_binary, *map(str, args), *tls, "--retries", "1", "--low-level-retries", "1",
               "--contimeout", "10s", "--timeout", "60s"]
        if stdin is None:
            return support.run(cmd, env=env, timeout=timeout, check=check)
        proc = subprocess.run(cmd, env=env, timeout=timeout, input=stdin, capture_output=True)
        assert not check or proc.returncode == 0, support.tail(proc.stderr)
        return proc

    return call


def make_tree(root, files=TREE, seed=0):
    past = time.time() - 3600
    contents = {}
    for rel, size in files.items():
        contents[rel] = support.write_file(root / rel, size, seed=seed + len(rel))
        os.utime(root / rel, (past, past))
    return contents


def read_tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def remote_sizes(client, bucket, prefix=""):
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"].removeprefix(prefix): o["Size"] for o in listed}


def transferred(proc) -> int:
    """Files rclone says it copied (from `-v` INFO lines)."""
    text = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    return text.count("Copied (new)") + text.count("Copied (replaced existing)")


@pytest.mark.covers("copy", "check (md5 + --download)", "lsf")
def test_copy_up_check_lsf_copy_down(rclone, target_client, target_bucket, work):
    src, dst = work / "src", work / "dst"
    contents = make_tree(src)
    remote = f"strata:{target_bucket}/tree"
    assert transferred(rclone("copy", "-v", src, remote)) == len(contents)
    assert remote_sizes(target_client, target_bucket, "tree/") == {k: len(v) for k, v in contents.items()}
    for rel, body in contents.items():  # single-part uploads: the ETag is the plain MD5
        head = target_client.head_object(Bucket=target_bucket, Key=f"tree/{rel}")
        assert head["ETag"] == support.quoted_md5(body), rel
        assert "mtime" in head["Metadata"], "rclone's X-Amz-Meta-Mtime must be kept"
    listed = rclone("lsf", "-R", "--files-only", remote).stdout.decode().split("\n")
    assert sorted(filter(None, listed)) == sorted(contents)
    rclone("check", src, remote)  # sizes + MD5 (ETag) of every file
    rclone("check", "--download", src, remote)  # bytes
    assert transferred(rclone("copy", "-v", src, remote)) == 0, "an unchanged tree must copy nothing"
    assert transferred(rclone("copy", "-v", remote, dst)) == len(contents)
    assert read_tree(dst) == contents


@pytest.mark.covers("sync both ways with deletes")
def test_sync_both_ways_with_deletes(rclone, target_client, target_bucket, work):
    src = work / "src"
    contents = make_tree(src)
    remote = f"strata:{target_bucket}/s"
    rclone("sync", src, remote)
    # Change the local side: one file gone, one changed (same size, new bytes), one new.
    (src / "a.txt").unlink()
    (src / "sub/b.bin").write_bytes(support.data(70 * KIB, seed=99))
    (src / "new/n.txt").parent.mkdir()
    (src / "new/n.txt").write_bytes(b"new file")
    expected = read_tree(src)
    rclone("sync", src, remote)
    assert remote_sizes(target_client, target_bucket, "s/") == {k: len(v) for k, v in expected.items()}
    got = target_client.get_object(Bucket=target_bucket, Key="s/sub/b.bin")["Body"].read()
    assert got == expected["sub/b.bin"]
    rclone("check", "--download", src, remote)
    # Down: a stale local file is removed, everything else arrives byte for byte.
    dst = work / "dst"
    support.write_file(dst / "stale.bin", 5)
    rclone("sync", remote, dst)
    assert read_tree(dst) == expected
    assert contents.keys() - expected.keys() == {"a.txt"}


@pytest.mark.covers("multipart")
def test_multipart_upload_and_check(rclone, target_client, target_bucket, work):
    """12 MiB with a 5 MiB cutoff and chunk: CreateMultipartUpload + 3 UploadParts + Complete."""
    src = work / "big"
    body = support.write_file(src / "twelve.bin", 12 * MIB + 5, seed=12)
    remote = f"strata:{target_bucket}/big"
    rclone("copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", src, remote)
    head = target_client.head_object(Bucket=target_bucket, Key="big/twelve.bin")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == support.multipart_etag(support.split_parts(body, 5 * MIB))
    assert head["Metadata"].get("md5chksum"), "rclone's X-Amz-Meta-Md5chksum must be kept"
    rclone("check", src, remote)  # multipart: rclone compares the MD5 from the metadata
    dst = work / "down"
    rclone("copy", remote, dst)
    assert (dst / "twelve.bin").read_bytes() == body


@pytest.mark.covers("rcat (streamed, unknown size)")
def test_rcat_streams_unknown_size_as_multipart(rclone, target_client, target_bucket):
    """`rclone rcat` from a pipe: no length known, so rclone uploads it as a multipart upload."""
    body = support.data(6 * MIB + 1, seed=6)
    rclone("rcat", "--s3-chunk-size", "5M", f"strata:{target_bucket}/piped.bin", stdin=body)
    got = target_client.get_object(Bucket=target_bucket, Key="piped.bin")
    assert got["ETag"] == support.multipart_etag(support.split_parts(body, 5 * MIB))
    assert got["Body"].read() == body
    assert rclone("cat", f"strata:{target_bucket}/piped.bin").stdout == body


@pytest.mark.covers("server-side copy/move", "delete", "mkdir/purge")
def test_server_side_copy_delete_purge(rclone, target_client, target_bucket, work):
    body = support.data(40 * KIB, seed=40)
    target_client.put_object(Bucket=target_bucket, Key="x/orig", Body=body)
    rclone("copyto", f"strata:{target_bucket}/x/orig", f"strata:{target_bucket}/y/copy")  # CopyObject
    assert target_client.get_object(Bucket=target_bucket, Key="y/copy")["Body"].read() == body
    rclone("moveto", f"strata:{target_bucket}/y/copy", f"strata:{target_bucket}/y/moved")
    assert set(remote_sizes(target_client, target_bucket)) == {"x/orig", "y/moved"}
    rclone("deletefile", f"strata:{target_bucket}/y/moved")
    assert set(remote_sizes(target_client, target_bucket)) == {"x/orig"}
    for i in range(3):
        target_client.put_object(Bucket=target_bucket, Key=f"x/{i}", Body=b"x")
    rclone("delete", f"strata:{target_bucket}/x")
    assert remote_sizes(target_client, target_bucket) == {}
    # mkdir/purge of a whole bucket.
    other = support.bucket_name("rclone-purge")
    rclone("mkdir", f"strata:{other}")
    target_client.head_bucket(Bucket=other)
    target_client.put_object(Bucket=other, Key="k", Body=b"k")
    rclone("purge", f"strata:{other}")
    assert other not in [b["Name"] for b in target_client.list_buckets()["Buckets"]]
