"""aws-cli (v1 from PyPI, current defaults: CRC32 flexible checksums, 8 MiB multipart threshold).

Covers the high-level `aws s3` commands (mb, cp, ls, sync, rm, rb) and the `aws s3api`
operations users script against: object metadata round trips, ranged GET, ListObjectsV2
pagination, the multipart life cycle and DeleteObjects.
"""

from __future__ import annotations

import json
import os
import re
import time

import pytest

import support
from support import KIB, MIB

pytestmark = pytest.mark.client("aws-cli")

CP_SIZES = [0, 1, 4 * KIB, 4 * KIB + 1, MIB - 1, MIB, MIB + 1, 4 * MIB + 3]


@pytest.mark.covers("cp 0 B–4 MiB")
@pytest.mark.parametrize("size", CP_SIZES)
def test_cp_upload_download_roundtrip(aws, s3, bucket, work, size):
    src = work / "src.bin"
    body = support.write_file(src, size, seed=size)
    aws("s3", "cp", src, f"s3://{bucket}/dir/obj-{size}")
    head = s3.head_object(Bucket=bucket, Key=f"dir/obj-{size}")
    assert head["ContentLength"] == size
    assert head["ETag"] == support.quoted_md5(body), "single PUT ETag must be the quoted MD5"
    dst = work / "dst.bin"
    aws("s3", "cp", f"s3://{bucket}/dir/obj-{size}", dst)
    assert dst.read_bytes() == body


@pytest.mark.covers("cp 50 MiB")
def test_cp_multipart_50mib(aws, aws_json, bucket, work):
    size = 50 * MIB
    src = work / "big.bin"
    body = support.write_file(src, size, seed=50)
    aws("s3", "cp", src, f"s3://{bucket}/big.bin")
    head = aws_json("s3api", "head-object", "--bucket", bucket, "--key", "big.bin")
    assert head["ContentLength"] == size
    # aws-cli: 8 MiB parts -> 7 parts; the ETag is the S3 multipart ETag.
    assert head["ETag"] == support.multipart_etag(support.split_parts(body, 8 * MIB))
    del body
    dst = work / "big.out"
    aws("s3", "cp", f"s3://{bucket}/big.bin", dst)  # parallel ranged GETs with If-Match
    assert dst.stat().st_size == size
    assert support.file_sha256(dst) == support.file_sha256(src)


@pytest.mark.covers("mb/rb")
def test_mb_and_rb(aws, s3, request):
    name = support.bucket_name(request.node.name)
    out = aws("s3", "mb", f"s3://{name}").stdout.decode()
    assert f"make_bucket: {name}" in out
    s3.head_bucket(Bucket=name)
    listed = aws("s3", "ls").stdout.decode()
    assert name in listed.split()
    s3.put_object(Bucket=name, Key="x", Body=b"x")
    failed = aws("s3", "rb", f"s3://{name}", check=False)
    assert failed.returncode != 0
    assert b"BucketNotEmpty" in failed.stderr
    s3.delete_object(Bucket=name, Key="x")
    out = aws("s3", "rb", f"s3://{name}").stdout.decode()
    assert f"remove_bucket: {name}" in out
    assert name not in aws("s3", "ls").stdout.decode().split()


@pytest.mark.covers("ls prefixes")
def test_ls_bucket_and_prefix(aws, s3, bucket):
    for key, size in [("top.txt", 3), ("dir/a.txt", 5), ("dir/sub/b.txt", 7), ("other/c", 1)]:
        s3.put_object(Bucket=bucket, Key=key, Body=support.data(size))
    lines = aws("s3", "ls", f"s3://{bucket}/").stdout.decode().splitlines()
    prefixes = sorted(line.split()[-1] for line in lines if line.split()[0] == "PRE")
    files = sorted((line.split()[-2], line.split()[-1]) for line in lines if line.split()[0] != "PRE")
    assert prefixes == ["dir/", "other/"]
    assert files == [("3", "top.txt")]
    lines = aws("s3", "ls", f"s3://{bucket}/dir/").stdout.decode().splitlines()
    assert sorted(line.split()[-1] for line in lines) == ["a.txt", "sub/"]
    lines = aws("s3", "ls", "--recursive", f"s3://{bucket}/").stdout.decode().splitlines()
    assert sorted(line.split()[-1] for line in lines) == ["dir/a.txt", "dir/sub/b.txt", "other/c", "top.txt"]


def _make_tree(root):
    files = {
        "a.txt": 10,
        "empty": 0,
        "sub/b.bin": 5000,
        "sub/deep/c.bin": MIB + 7,
        "sub/deep/d with space.txt": 33,
    }
    past = time.time() - 3600  # a real tree is older than the upload (see compare_time in aws-cli)
    contents = {}
    for rel, size in files.items():
        path = root / rel
        contents[rel] = support.write_file(path, size, seed=len(rel))
        os.utime(path, (past, past))
    return contents


def _read_tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.covers("sync twice")
def test_sync_up_then_down(aws, bucket, work):
    src = work / "src"
    contents = _make_tree(src)
    out = aws("s3", "sync", src, f"s3://{bucket}/tree/").stdout.decode()
    assert out.count("upload:") == len(contents), out
    again = aws("s3", "sync", src, f"s3://{bucket}/tree/").stdout.decode()
    assert "upload:" not in again, f"second sync up must copy nothing:\n{again}"

    dst = work / "dst"
    out = aws("s3", "sync", f"s3://{bucket}/tree/", dst).stdout.decode()
    assert out.count("download:") == len(contents), out
    assert _read_tree(dst) == contents
    again = aws("s3", "sync", f"s3://{bucket}/tree/", dst).stdout.decode()
    assert "download:" not in again, f"second sync down must copy nothing:\n{again}"


@pytest.mark.covers("empty files")
def test_empty_file_then_more_on_one_connection(endpoint, client_env, client_config_dir, s3, bucket, work):
    """aws-cli's botocore keeps the early status line of an empty PUT (answered without
    `100 Continue`) for the next request on the connection unless the server closes it; the
    next upload then times out and is retried. One connection, --debug: no such retry."""
    src = work / "src"
    contents = {"a-empty": b"", "b-ten": support.data(10, seed=1), "c-ten": support.data(10, seed=2)}
    src.mkdir()
    for name, body in contents.items():
        (src / name).write_bytes(body)
    config = work / "aws-config"
    config.write_text(f"[default]\nregion = {support.REGION}\ns3 =\n  max_concurrent_requests = 1\n")
    env = dict(client_env, AWS_CONFIG_FILE=str(config))
    cmd = [support.tool("aws"), "--endpoint-url", endpoint, "--debug", "s3", "cp", "--recursive", str(src),
           f"s3://{bucket}/e/"]
    log = support.run(cmd, env=env).stderr.decode("utf-8", "replace")
    assert "Read timeout" not in log and "Failed to parse headers" not in log
    for name, body in contents.items():
        assert s3.get_object(Bucket=bucket, Key=f"e/{name}")["Body"].read() == body


@pytest.mark.covers("rm --recursive")
def test_rm_recursive(aws, aws_json, s3, bucket):
    keys = [f"rm/{i:03d}" for i in range(25)] + ["keep/x"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    out = aws("s3", "rm", "--recursive", f"s3://{bucket}/rm/").stdout.decode()
    assert out.count("delete:") == 25
    listed = aws_json("s3api", "list-objects-v2", "--bucket", bucket)
    assert [o["Key"] for o in listed.get("Contents", [])] == ["keep/x"]


def test_s3api_put_head_metadata_roundtrip(aws_json, bucket, work):
    src = work / "obj.txt"
    body = support.write_file(src, 1234, seed=7)
    put = aws_json("s3api", "put-object", "--bucket", bucket, "--key", "meta/obj.txt", "--body", src,
                   "--metadata", "color=blue,owner=someone", "--content-type", "text/plain; charset=utf-8",
                   "--cache-control", "max-age=60, public")
    assert put["ETag"] == support.quoted_md5(body)
    head = aws_json("s3api", "head-object", "--bucket", bucket, "--key", "meta/obj.txt")
    assert head["Metadata"] == {"color": "blue", "owner": "someone"}
    assert head["ContentType"] == "text/plain; charset=utf-8"
    assert head["CacheControl"] == "max-age=60, public"
    assert head["ContentLength"] == 1234
    assert head["ETag"] == support.quoted_md5(body)
    assert "LastModified" in head


def test_s3api_get_object_range(aws_json, s3, bucket, work):
    body = support.data(3 * MIB + 5, seed=3)
    s3.put_object(Bucket=bucket, Key="ranged", Body=body)
    out = work / "part"
    for start, end in [(10, 19), (MIB - 3, MIB + 2), (len(body) - 4, len(body) - 1)]:
        res = aws_json("s3api", "get-object", "--bucket", bucket, "--key", "ranged",
                       "--range", f"bytes={start}-{end}", out)
        assert res["ContentRange"] == f"bytes {start}-{end}/{len(body)}"
        assert res["ContentLength"] == end - start + 1
        assert out.read_bytes() == body[start : end + 1]


def test_s3api_list_objects_v2_delimiter_and_pagination(aws_json, s3, bucket):
    keys = ["p/a", "p/b/1", "p/b/2", "p/c/1", "q", "r", "s/t"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"1")
    res = aws_json("s3api", "list-objects-v2", "--bucket", bucket, "--delimiter", "/")
    assert [o["Key"] for o in res["Contents"]] == ["q", "r"]
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["p/", "s/"]
    res = aws_json("s3api", "list-objects-v2", "--bucket", bucket, "--delimiter", "/", "--prefix", "p/")
    assert [o["Key"] for o in res["Contents"]] == ["p/a"]
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["p/b/", "p/c/"]

    # --max-items with a small --page-size forces server-side continuation tokens too.
    seen, token = [], None
    for _ in range(20):
        args = ["s3api", "list-objects-v2", "--bucket", bucket, "--max-items", "3", "--page-size", "2"]
        if token:
            args += ["--starting-token", token]
        res = aws_json(*args)
        page = [o["Key"] for o in res.get("Contents", [])]
        assert len(page) <= 3
        seen += page
        token = res.get("NextToken")
        if not token:
            break
    assert seen == sorted(keys)


def _parts_file(work, parts):
    path = work / "parts.json"
    path.write_text(json.dumps({"Parts": parts}))
    return f"file://{path}"


@pytest.mark.covers("s3api multipart")
def test_s3api_multipart_lifecycle(aws_json, bucket, work):
    key = "mp/object.bin"
    created = aws_json("s3api", "create-multipart-upload", "--bucket", bucket, "--key", key,
                       "--content-type", "application/x-test")
    upload_id = created["UploadId"]
    assert created["Key"] == key
    part_bodies = [support.data(5 * MIB, seed=1), support.data(MIB + 3, seed=2)]
    parts = []
    for number, body in enumerate(part_bodies, start=1):
        path = work / f"part{number}"
        path.write_bytes(body)
        res = aws_json("s3api", "upload-part", "--bucket", bucket, "--key", key, "--upload-id", upload_id,
                       "--part-number", number, "--body", path)
        assert res["ETag"] == support.quoted_md5(body)
        parts.append({"PartNumber": number, "ETag": res["ETag"]})

    listed = aws_json("s3api", "list-parts", "--bucket", bucket, "--key", key, "--upload-id", upload_id)
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed["Parts"]] == [
        (1, 5 * MIB, parts[0]["ETag"]), (2, MIB + 3, parts[1]["ETag"])]
    uploads = aws_json("s3api", "list-multipart-uploads", "--bucket", bucket)
    assert [(u["Key"], u["UploadId"]) for u in uploads["Uploads"]] == [(key, upload_id)]

    done = aws_json("s3api", "complete-multipart-upload", "--bucket", bucket, "--key", key,
                    "--upload-id", upload_id, "--multipart-upload", _parts_file(work, parts))
    assert done["ETag"] == support.multipart_etag(part_bodies)
    assert done["ETag"].endswith('-2"')
    out = work / "out"
    got = aws_json("s3api", "get-object", "--bucket", bucket, "--key", key, out)
    assert got["ContentType"] == "application/x-test"
    assert got["ETag"] == done["ETag"]
    assert out.read_bytes() == b"".join(part_bodies)
    uploads = aws_json("s3api", "list-multipart-uploads", "--bucket", bucket)
    assert not uploads.get("Uploads")


def test_s3api_abort_multipart(aws, aws_json, bucket, work):
    key = "mp/aborted"
    upload_id = aws_json("s3api", "create-multipart-upload", "--bucket", bucket, "--key", key)["UploadId"]
    path = work / "p1"
    path.write_bytes(support.data(1000))
    aws_json("s3api", "upload-part", "--bucket", bucket, "--key", key, "--upload-id", upload_id,
             "--part-number", 1, "--body", path)
    aws("s3api", "abort-multipart-upload", "--bucket", bucket, "--key", key, "--upload-id", upload_id)
    uploads = aws_json("s3api", "list-multipart-uploads", "--bucket", bucket)
    assert not uploads.get("Uploads")
    res = aws("s3api", "list-parts", "--bucket", bucket, "--key", key, "--upload-id", upload_id, check=False)
    assert res.returncode != 0 and b"NoSuchUpload" in res.stderr
    res = aws("s3api", "head-object", "--bucket", bucket, "--key", key, check=False)
    assert res.returncode != 0, "an aborted upload must not create the object"


@pytest.mark.covers("s3api delete-objects")
def test_s3api_delete_objects(aws_json, s3, bucket):
    for key in ["d/1", "d/2", "d/3", "keep"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    request = {"Objects": [{"Key": "d/1"}, {"Key": "d/2"}, {"Key": "d/3"}, {"Key": "never-existed"}],
               "Quiet": False}
    res = aws_json("s3api", "delete-objects", "--bucket", bucket, "--delete", json.dumps(request))
    assert sorted(d["Key"] for d in res["Deleted"]) == ["d/1", "d/2", "d/3", "never-existed"]
    assert not res.get("Errors")
    listed = aws_json("s3api", "list-objects-v2", "--bucket", bucket)
    assert [o["Key"] for o in listed["Contents"]] == ["keep"]


@pytest.mark.covers("sync --delete")
def test_sync_delete_both_ways(aws, s3, bucket, work):
    src = work / "src"
    contents = _make_tree(src)
    aws("s3", "sync", src, f"s3://{bucket}/tree/")
    s3.put_object(Bucket=bucket, Key="tree/remote-only.txt", Body=b"stale")
    (src / "a.txt").unlink()
    out = aws("s3", "sync", "--delete", src, f"s3://{bucket}/tree/").stdout.decode()
    assert out.count("delete:") == 2, out  # a.txt and remote-only.txt: one DeleteObject each
    expected = {k: v for k, v in contents.items() if k != "a.txt"}
    listed = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {f"tree/{k}": len(v) for k, v in expected.items()}
    dst = work / "dst"
    support.write_file(dst / "local-only.bin", 9)
    support.write_file(dst / "sub/also-local", 3)
    out = aws("s3", "sync", "--delete", f"s3://{bucket}/tree/", dst).stdout.decode()
    assert out.count("delete:") == 2, out
    assert _read_tree(dst) == expected


@pytest.mark.covers("s3→s3 cp/mv", "rb --force")
def test_cp_bucket_to_bucket_and_recursive(aws, s3, bucket, work):
    other = support.bucket_name("awscli-cp-dest")
    s3.create_bucket(Bucket=other)
    bodies = {f"in/{i}.bin": support.data(3 * KIB * i + 1, seed=i) for i in range(1, 4)}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"keep": key})
    aws("s3", "cp", f"s3://{bucket}/in/1.bin", f"s3://{other}/single.bin")  # CopyObject
    got = s3.get_object(Bucket=other, Key="single.bin")
    assert got["Body"].read() == bodies["in/1.bin"] and got["Metadata"] == {"keep": "in/1.bin"}
    out = aws("s3", "cp", "--recursive", f"s3://{bucket}/in/", f"s3://{other}/copied/").stdout.decode()
    assert out.count("copy:") == 3, out
    for key, body in bodies.items():
        assert s3.get_object(Bucket=other, Key=key.replace("in/", "copied/"))["Body"].read() == body
    aws("s3", "mv", f"s3://{other}/single.bin", f"s3://{other}/moved.bin")
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=other, Prefix="m")["Contents"]) == ["moved.bin"]
    aws("s3", "rb", "--force", f"s3://{other}")  # deletes every object, then the bucket
    assert other not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


@pytest.mark.covers("presign (SigV2)")
@pytest.mark.moto_quirk("moto does not check presigned expiry")
def test_presign_default_and_expired(aws, s3, bucket, curl, work):
    """aws-cli v1 in us-east-1 presigns with SigV2 by default (S3-CLIENTS.md §2e)."""
    body = support.data(33 * KIB, seed=33)
    s3.put_object(Bucket=bucket, Key="p/obj", Body=body)
    url = aws("s3", "presign", f"s3://{bucket}/p/obj", "--expires-in", "300").stdout.decode().strip()
    assert "AWSAccessKeyId=" in url and "Signature=" in url, url
    out = work / "out"
    curl("-sS", "-f", "-o", out, url)
    assert out.read_bytes() == body
    short = aws("s3", "presign", f"s3://{bucket}/p/obj", "--expires-in", "1").stdout.decode().strip()
    time.sleep(2.5)
    res = curl("-sS", "-o", "-", "-w", "\n%{http_code}", short, check=False)
    assert res.stdout.rpartition(b"\n")[2] == b"403"


@pytest.mark.covers("s3→s3 cp multipart (UploadPartCopy)")
def test_cp_bucket_to_bucket_multipart(aws, s3, bucket):
    """Above 8 MiB aws-cli copies with CreateMultipartUpload + UploadPartCopy ranges.

    aws-cli v1 (the PyPI awscli) has no `--copy-props`: its multipart copy carries neither the
    source's user metadata nor its tags, on AWS as here, so only the bytes and the part layout
    are checked. aws-cli v2's default `--copy-props` sequence (GetObjectTagging +
    PutObjectTagging around the copy) is replayed with boto3 in test_operations.py."""
    body = support.data(17 * MIB, seed=17)
    s3.put_object(Bucket=bucket, Key="big", Body=body, Metadata={"m": "v"}, Tagging="team=storage")
    aws("s3", "cp", f"s3://{bucket}/big", f"s3://{bucket}/big-copy")
    head = s3.head_object(Bucket=bucket, Key="big-copy")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == support.multipart_etag(support.split_parts(body, 8 * MIB))
    assert s3.get_object(Bucket=bucket, Key="big-copy")["Body"].read() == body
    # The source is untouched by the copy.
    assert s3.get_object_tagging(Bucket=bucket, Key="big")["TagSet"] == [{"Key": "team", "Value": "storage"}]


@pytest.mark.covers("s3api tagging, list-object-versions, ACLs")
def test_s3api_tagging_versions_acl(aws, aws_json, bucket, work):
    src = work / "o"
    body = support.write_file(src, 100, seed=1)
    aws_json("s3api", "put-object", "--bucket", bucket, "--key", "o", "--body", src, "--tagging", "a=1&b=2",
             "--acl", "bucket-owner-full-control")
    tags = aws_json("s3api", "get-object-tagging", "--bucket", bucket, "--key", "o")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("a", "1"), ("b", "2")]
    aws("s3api", "put-object-tagging", "--bucket", bucket, "--key", "o", "--tagging", "TagSet=[{Key=c,Value=3}]")
    assert aws_json("s3api", "get-object-tagging", "--bucket", bucket, "--key", "o")["TagSet"] == [
        {"Key": "c", "Value": "3"}]
    versions = aws_json("s3api", "list-object-versions", "--bucket", bucket)["Versions"]
    assert [(v["Key"], v["VersionId"], v["IsLatest"], v["ETag"]) for v in versions] == [
        ("o", "null", True, support.quoted_md5(body))]
    acl = aws_json("s3api", "get-object-acl", "--bucket", bucket, "--key", "o")
    assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"]
    assert aws_json("s3api", "get-bucket-acl", "--bucket", bucket)["Owner"]


# ---- over every transport (https: --ca-bundle, aws-chunked with a CRC32 trailer) -------------


@pytest.fixture
def aws_target(target, client_env):
    """`aws` against this test's transport, trusting the test CA over https."""

    def call(*args, check=True, timeout=support.SUBPROCESS_TIMEOUT):
        tls = ["--ca-bundle", target.ca_bundle] if target.ca_bundle else []
        cmd = [support.tool("aws"), "--endpoint-url", target.url, *tls, *map(str, args)]
        return support.run(cmd, env=client_env, timeout=timeout, check=check)

    return call


def sent_upload_headers(debug_log: bytes) -> list[str]:
    """The header dicts of the PUT requests aws-cli logged with --debug."""
    text = debug_log.decode("utf-8", "replace")
    return re.findall(r"Sending http request: <AWSPreparedRequest [^>]*method=PUT[^>]*headers=(\{[^}]*\})", text)


@pytest.mark.covers("cp single + multipart, default CRC32 (https: trailer)")
@pytest.mark.parametrize("size", [MIB + 1, 17 * MIB])
def test_cp_default_checksums_each_transport(aws_target, target, target_client, target_bucket, work, size):
    """Single PUT (≤ 8 MiB) and multipart (3 parts), each with aws-cli's default CRC32."""
    src = work / "src.bin"
    body = support.write_file(src, size, seed=size)
    up = aws_target("--debug", "s3", "cp", src, f"s3://{target_bucket}/obj")
    sent = sent_upload_headers(up.stderr)
    assert sent, "no PUT request in aws-cli's debug log"
    for headers in sent:
        if target.scheme == "https":
            assert "STREAMING-UNSIGNED-PAYLOAD-TRAILER" in headers and "x-amz-checksum-crc32" in headers, headers
        else:
            assert "'x-amz-checksum-crc32'" in headers, headers
    head = target_client.head_object(Bucket=target_bucket, Key="obj", ChecksumMode="ENABLED")
    parts = support.split_parts(body, 8 * MIB)
    assert head["ETag"] == (support.multipart_etag(parts) if len(parts) > 1 else support.quoted_md5(body))
    assert head.get("ChecksumCRC32"), "the CRC32 aws-cli sent must be stored and returned"
    dst = work / "dst.bin"
    aws_target("s3", "cp", f"s3://{target_bucket}/obj", dst)
    assert dst.read_bytes() == body


@pytest.mark.covers("sync", "ls", "rm")
def test_sync_ls_rm_each_transport(aws_target, target_client, target_bucket, work):
    src = work / "src"
    contents = _make_tree(src)
    aws_target("s3", "sync", src, f"s3://{target_bucket}/t/")
    lines = aws_target("s3", "ls", "--recursive", f"s3://{target_bucket}/").stdout.decode().splitlines()
    assert sorted(line.split(maxsplit=3)[-1] for line in lines) == sorted(f"t/{k}" for k in contents)
    dst = work / "dst"
    aws_target("s3", "sync", f"s3://{target_bucket}/t/", dst)
    assert _read_tree(dst) == contents
    aws_target("s3", "rm", "--recursive", f"s3://{target_bucket}/t/")
    assert not target_client.list_objects_v2(Bucket=target_bucket).get("Contents")


@pytest.mark.covers("s3api object calls")
def test_s3api_calls_each_transport(aws_target, target_bucket, work):
    src = work / "o"
    body = support.write_file(src, 5000, seed=5)
    put = json.loads(aws_target("s3api", "put-object", "--bucket", target_bucket, "--key", "o", "--body", src,
                                "--metadata", "m=1", "--output", "json").stdout)
    assert put["ETag"] == support.quoted_md5(body)
    head = json.loads(aws_target("s3api", "head-object", "--bucket", target_bucket, "--key", "o",
                                 "--output", "json").stdout)
    assert head["ContentLength"] == len(body) and head["Metadata"] == {"m": "1"}
    out = work / "out"
    aws_target("s3api", "get-object", "--bucket", target_bucket, "--key", "o", "--range", "bytes=10-99", out)
    assert out.read_bytes() == body[10:100]
    aws_target("s3api", "delete-object", "--bucket", target_bucket, "--key", "o")
    listed = json.loads(aws_target("s3api", "list-objects-v2", "--bucket", target_bucket, "--output", "json").stdout
                        or "{}")
    assert not listed.get("Contents")
