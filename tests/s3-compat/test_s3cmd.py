"""s3cmd 2.4 (SigV4, payload-signed, path style via host_bucket, ListObjects v1).

s3cmd checks the returned ETag against the local MD5 after every single-part upload and
fails or warns on mismatch, and `sync` compares sizes and MD5s from the listing, so these
tests also pin "single-part ETag == hex MD5" and exact listings.
"""

from __future__ import annotations

import os
import re

import pytest

import support
from support import KIB, MIB

pytestmark = pytest.mark.client("s3cmd")


def clean(proc) -> str:
    out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    assert "MD5 sums don't match" not in out, out
    return out


@pytest.mark.covers("mb/rb")
@pytest.mark.moto_quirk("moto rejects s3cmd's CreateBucket with IllegalLocationConstraintException")
def test_mb_rb(s3cmd, s3):
    name = support.bucket_name("s3cmd-mb")
    clean(s3cmd("mb", f"s3://{name}"))
    s3.head_bucket(Bucket=name)
    assert f"s3://{name}" in clean(s3cmd("ls"))
    clean(s3cmd("rb", f"s3://{name}"))
    assert f"s3://{name}" not in clean(s3cmd("ls"))


@pytest.mark.covers("ls/la/info/del")
def test_put_ls_la_info_del(s3cmd, s3, bucket, work):
    src = work / "small.txt"
    body = support.write_file(src, 3 * KIB + 17, seed=3)
    clean(s3cmd("put", src, f"s3://{bucket}/dir/small.txt"))
    listing = clean(s3cmd("ls", f"s3://{bucket}/"))
    assert "DIR" in listing and f"s3://{bucket}/dir/" in listing
    listing = clean(s3cmd("ls", f"s3://{bucket}/dir/"))
    assert f"s3://{bucket}/dir/small.txt" in listing and str(len(body)) in listing
    all_listing = clean(s3cmd("la"))  # every bucket, top level
    assert f"s3://{bucket}/dir/" in all_listing
    recursive = clean(s3cmd("ls", "--recursive", f"s3://{bucket}"))
    assert f"s3://{bucket}/dir/small.txt" in recursive
    info = clean(s3cmd("info", f"s3://{bucket}/dir/small.txt"))
    assert support.md5_hex(body) in info
    assert f"File size: {len(body)}" in info
    clean(s3cmd("del", f"s3://{bucket}/dir/small.txt"))
    assert not s3.list_objects_v2(Bucket=bucket).get("Contents")


@pytest.mark.parametrize("size", [0, 1, 4 * KIB + 1, MIB + 1])
def test_put_get_small(s3cmd, s3, bucket, work, size):
    src = work / "src.bin"
    body = support.write_file(src, size, seed=size)
    clean(s3cmd("put", src, f"s3://{bucket}/obj"))
    head = s3.head_object(Bucket=bucket, Key="obj")
    assert head["ETag"] == support.quoted_md5(body)
    assert "s3cmd-attrs" in head["Metadata"], "s3cmd's x-amz-meta-s3cmd-attrs must be kept"
    dst = work / "dst.bin"
    clean(s3cmd("get", f"s3://{bucket}/obj", dst))
    assert dst.read_bytes() == body


@pytest.mark.covers("40 MiB multipart")
def test_put_get_multipart_40mib(s3cmd, s3, bucket, work):
    size = 40 * MIB
    src = work / "forty.bin"
    body = support.write_file(src, size, seed=40)
    clean(s3cmd("put", src, f"s3://{bucket}/forty.bin"))
    head = s3.head_object(Bucket=bucket, Key="forty.bin")
    assert head["ContentLength"] == size
    assert head["ETag"] == support.multipart_etag(support.split_parts(body, 15 * MIB))
    del body
    dst = work / "forty.out"
    clean(s3cmd("get", f"s3://{bucket}/forty.bin", dst))
    assert support.file_sha256(dst) == support.file_sha256(src)


def test_sync_up_twice(s3cmd, s3, bucket, work):
    src = work / "tree"
    files = {"a.txt": 10, "b/c.bin": 70 * KIB, "b/d/e.bin": 2 * MIB + 1, "b/d/f with space": 5, "empty": 0}
    for rel, size in files.items():
        support.write_file(src / rel, size, seed=size)
    out = clean(s3cmd("sync", f"{src}/", f"s3://{bucket}/tree/"))
    assert out.count("upload:") == len(files), out
    listed = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {f"tree/{rel}": size for rel, size in files.items()}
    again = clean(s3cmd("sync", f"{src}/", f"s3://{bucket}/tree/"))
    assert "upload:" not in again, f"second sync must upload nothing:\n{again}"
    # A changed file (same size, different content) is found by MD5 and re-uploaded alone.
    (src / "a.txt").write_bytes(b"0123456789")
    third = clean(s3cmd("sync", f"{src}/", f"s3://{bucket}/tree/"))
    assert third.count("upload:") == 1 and "a.txt" in third, third


@pytest.mark.covers("sync of multipart files")
def test_sync_multipart_file_uses_s3cmd_attrs(s3cmd, bucket, work):
    """A multipart ETag has a '-', so s3cmd reads the md5 from x-amz-meta-s3cmd-attrs via HEAD."""
    src = work / "tree"
    support.write_file(src / "big.bin", 16 * MIB, seed=16)
    clean(s3cmd("sync", f"{src}/", f"s3://{bucket}/t/"))
    again = clean(s3cmd("sync", f"{src}/", f"s3://{bucket}/t/"))
    assert "upload:" not in again, again


def test_signurl_sigv2_presigned_get(s3cmd, s3, bucket, curl, work):
    # SigV2 query auth may land in strata later than SigV4; this is still expected to pass.
    body = support.data(2 * KIB + 1, seed=5)
    s3.put_object(Bucket=bucket, Key="signed/obj.bin", Body=body)
    url = clean(s3cmd("signurl", f"s3://{bucket}/signed/obj.bin", "+600")).strip().splitlines()[-1]
    assert "Signature=" in url and url.startswith("http://127.0.0.1:"), url
    out = work / "out"
    curl("-sS", "-f", "-o", out, url)
    assert out.read_bytes() == body


@pytest.mark.covers("signurl tampering")
@pytest.mark.moto_quirk("moto does not verify presigned signatures")
def test_signurl_tampered_is_403(s3cmd, s3, bucket, curl):
    s3.put_object(Bucket=bucket, Key="signed", Body=b"secret")
    url = clean(s3cmd("signurl", f"s3://{bucket}/signed", "+600")).strip().splitlines()[-1]
    # The same URL with a different expiry no longer matches its signature.
    expires = re.search(r"Expires=(\d+)", url).group(1)
    tampered = url.replace(f"Expires={expires}", f"Expires={int(expires) + 1}")
    res = curl("-sS", "-o", os.devnull, "-w", "%{http_code}", tampered, check=False)
    assert res.stdout.decode().strip() == "403"


# ---- over every transport (https: --ca-certs), path style ----------------------------------


@pytest.fixture
def s3cmd_target(target, client_env, work):
    """s3cmd configured for this test's transport, path style, trusting the test CA."""
    https = target.scheme == "https"
    config = work / "s3cmd-target.cfg"
    config.write_text(
        "[default]\n"
        f"access_key = {support.ACCESS_KEY}\n"
        f"secret_key = {support.SECRET_KEY}\n"
        f"host_base = {target.host_port}\n"
        f"host_bucket = {target.host_port}\n"
        f"use_https = {https}\n"
        f"signurl_use_https = {https}\n"
        "check_ssl_certificate = True\n"
        "check_ssl_hostname = True\n"
        "bucket_location = US\n"
        "progress_meter = False\n"
    )
    tls = ["--ca-certs", target.ca_bundle] if target.ca_bundle else []

    def call(*args, check=True, timeout=support.SUBPROCESS_TIMEOUT):
        cmd = [support.tool("s3cmd"), "-c", str(config), *tls, *map(str, args)]
        return support.run(cmd, env=client_env, timeout=timeout, check=check)

    return call


@pytest.mark.covers("put/get", "multipart")
def test_put_get_multipart_each_transport(s3cmd_target, target_client, target_bucket, work):
    for size, chunk_mb in [(5 * KIB + 3, 15), (11 * MIB + 1, 5)]:
        src = work / f"src-{size}"
        body = support.write_file(src, size, seed=size)
        clean(s3cmd_target("put", f"--multipart-chunk-size-mb={chunk_mb}", src, f"s3://{target_bucket}/o-{size}"))
        head = target_client.head_object(Bucket=target_bucket, Key=f"o-{size}")
        parts = support.split_parts(body, chunk_mb * MIB)
        assert head["ETag"] == (support.multipart_etag(parts) if len(parts) > 1 else support.quoted_md5(body))
        dst = work / f"dst-{size}"
        clean(s3cmd_target("get", f"s3://{target_bucket}/o-{size}", dst))
        assert dst.read_bytes() == body


@pytest.mark.covers("sync up/down")
def test_sync_up_and_down_each_transport(s3cmd_target, target_bucket, work):
    src = work / "tree"
    files = {"a.txt": 10, "b/c.bin": 70 * KIB, "b/d e.bin": 5, "empty": 0}
    contents = {rel: support.write_file(src / rel, size, seed=size) for rel, size in files.items()}
    out = clean(s3cmd_target("sync", f"{src}/", f"s3://{target_bucket}/tree/"))
    assert out.count("upload:") == len(files), out
    dst = work / "down"
    dst.mkdir()
    support.write_file(dst / "stale", 4)
    clean(s3cmd_target("sync", "--delete-removed", f"s3://{target_bucket}/tree/", f"{dst}/"))
    got = {p.relative_to(dst).as_posix(): p.read_bytes() for p in dst.rglob("*") if p.is_file()}
    assert got == contents


@pytest.mark.covers("signurl (SigV2)")
def test_signurl_each_transport(s3cmd_target, target, target_client, target_bucket, curl, work):
    body = support.data(2 * KIB + 1, seed=5)
    target_client.put_object(Bucket=target_bucket, Key="signed/obj.bin", Body=body)
    url = clean(s3cmd_target("signurl", f"s3://{target_bucket}/signed/obj.bin", "+600")).strip().splitlines()[-1]
    assert url.startswith(f"{target.scheme}://{target.host_port}/"), url
    out = work / "out"
    tls = ["--cacert", target.ca_bundle] if target.ca_bundle else []
    curl(*tls, "-sS", "-f", "-o", out, url)
    assert out.read_bytes() == body
