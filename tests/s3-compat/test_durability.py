"""Durability and degraded reads (strata only): losing shard stores and corrupting frames.

Each test runs its own `strata server` (4+2 over disk0..disk5, fsync ON) with its own data
dir, writes objects whose sizes sit around stripe (1 MiB) and shard (256 KiB) boundaries plus
a multipart object, then damages the on-disk state and checks that every object still reads
back byte-exact (boto3 also validates the stored CRC32 on full reads):

- two whole shard directories removed while the server runs (m = 2 losses);
- the same after a restart, and new uploads still work;
- one directory removed plus one corrupted byte inside a frame of every shard file in
  another directory (one erasure + one checksum failure per group).

Layout contract used here (DESIGN.md §4 and the brief): `DIR/diskN/shards/<2 hex>/<32 hex
group id>.<shard index>`, header + back-reference + frames `[8-byte checksum][shard bytes]`,
objects <= 4 KiB inline in metadata. The tests assert that layout exists before damaging
it, so they cannot pass vacuously.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import boto3
import pytest

import support
from support import KIB, MIB

pytestmark = pytest.mark.strata_only

SIZES = [64 * KIB, 64 * KIB + 1, 100_000, 256 * KIB - 1, 256 * KIB, 256 * KIB + 1, 768 * KIB + 5, MIB - 1, MIB,
         MIB + 1, 1_000_003, 1_500_000, 2 * MIB - 1, 2 * MIB, 2 * MIB + 1, 2 * MIB + 512 * KIB + 7, 3 * MIB - 1,
         3 * MIB, 3 * MIB + 1, 3 * MIB + 5]
MULTIPART = [5 * MIB, MIB + 3]
SHARD_NAME = re.compile(r"^[0-9a-f]{32}\.[0-9]+$")
BUCKET = "durability"


class Fleet:
    """A dedicated strata instance, a client for it, and the objects written to it."""

    def __init__(self, binary: str, root: Path):
        self.data_dir = root / "data"
        self.server = support.StrataServer(binary, self.data_dir, root / "strata.log", data_shards=4,
                                           parity_shards=2, fsync=True)
        self.server.start()
        self.expected: dict[str, bytes] = {}

    @property
    def client(self):
        session = boto3.session.Session(aws_access_key_id=support.ACCESS_KEY,
                                        aws_secret_access_key=support.SECRET_KEY, region_name=support.REGION)
        return session.client("s3", endpoint_url=self.server.endpoint)

    def populate(self):
        s3 = self.client
        s3.create_bucket(Bucket=BUCKET)
        for size in SIZES:
            key = f"obj-{size}"
            self.expected[key] = support.data(size, seed=size)
            s3.put_object(Bucket=BUCKET, Key=key, Body=self.expected[key])
        bodies = [support.data(n, seed=n + 1) for n in MULTIPART]
        upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key="multipart")["UploadId"]
        parts = []
        for number, body in enumerate(bodies, start=1):
            etag = s3.upload_part(Bucket=BUCKET, Key="multipart", UploadId=upload_id, PartNumber=number,
                                  Body=body)["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
        s3.complete_multipart_upload(Bucket=BUCKET, Key="multipart", UploadId=upload_id,
                                     MultipartUpload={"Parts": parts})
        self.expected["multipart"] = b"".join(bodies)

    def disk(self, index: int) -> Path:
        return self.data_dir / f"disk{index}"

    def shard_files(self, index: int) -> list[Path]:
        root = self.disk(index) / "shards"
        return sorted(p for p in root.glob("*/*")
                      if p.is_file() and SHARD_NAME.match(p.name) and p.name[:2] == p.parent.name)

    def assert_layout(self):
        groups = len(SIZES) + len(MULTIPART)
        assert (self.data_dir / "meta").is_dir(), "metadata must live in DIR/meta/"
        for index in range(6):
            files = self.shard_files(index)
            assert len(files) >= groups, (
                f"disk{index}: expected a shard of each of the {groups} groups under "
                f"shards/<2 hex>/<32 hex>.<index>, found {len(files)}")

    def verify_all(self, stage: str):
        s3 = self.client
        failures = []
        for key, body in self.expected.items():
            try:
                got = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            except Exception as exc:  # collect every failure, report them together
                failures.append(f"{key} ({len(body)} B): {type(exc).__name__}: {exc}")
                continue
            if got != body:
                failures.append(f"{key} ({len(body)} B): got {len(got)} B, bytes differ")
        big = self.expected[f"obj-{3 * MIB + 5}"]
        for start, end in [(MIB - 7, MIB + 7), (256 * KIB - 1, 3 * MIB + 2)]:
            got = s3.get_object(Bucket=BUCKET, Key=f"obj-{3 * MIB + 5}", Range=f"bytes={start}-{end}")["Body"].read()
            if got != big[start : end + 1]:
                failures.append(f"range {start}-{end} of obj-{3 * MIB + 5} differs")
        assert not failures, f"{stage}: {len(failures)} object(s) not exact:\n" + "\n".join(failures) + \
            f"\nserver log tail:\n{self.server.log_tail()}"

    def stop(self):
        return self.server.stop()


@pytest.fixture
def fleet(strata_bin, scratch_root, request):
    root = scratch_root / "durability" / support.bucket_name(request.node.name)
    fleet = Fleet(strata_bin, root)
    yield fleet
    fleet.stop()
    shutil.rmtree(root, ignore_errors=True)


def test_two_disks_lost_then_restart(fleet):
    fleet.populate()
    fleet.verify_all("healthy")
    fleet.assert_layout()

    # (a) lose two whole shard stores while the server runs.
    shutil.rmtree(fleet.disk(1))
    shutil.rmtree(fleet.disk(3))
    fleet.verify_all("disk1+disk3 removed, server running")

    # (b) restart on the damaged data dir: still exact, and uploads work.
    code = fleet.stop()
    assert code == 0, f"SIGTERM must drain and exit 0, got {code}; log:\n{fleet.server.log_tail()}"
    fleet.server.start()
    fleet.verify_all("after restart with disk1+disk3 missing")
    s3 = fleet.client
    for size in [10, 5000, 300 * KIB + 1, 2 * MIB + 3]:
        body = support.data(size, seed=size + 77)
        s3.put_object(Bucket=BUCKET, Key=f"after-restart-{size}", Body=body)
        assert s3.get_object(Bucket=BUCKET, Key=f"after-restart-{size}")["Body"].read() == body
        fleet.expected[f"after-restart-{size}"] = body
    fleet.verify_all("after restart, with new uploads")


def test_one_disk_lost_and_frame_corrupted(fleet):
    fleet.populate()
    fleet.assert_layout()
    victims = fleet.shard_files(2)

    # (c) one erasure (disk0 gone) plus one checksum failure (a flipped byte in a frame of
    # every shard file on disk2) per group: exactly m = 2 bad shards each.
    shutil.rmtree(fleet.disk(0))
    for path in victims:
        raw = bytearray(path.read_bytes())
        assert len(raw) > 200, f"{path} is too small to hold a frame"
        raw[-50] ^= 0xFF  # the last ~100 bytes of a shard file of an object >= 64 KiB are frame bytes
        path.write_bytes(bytes(raw))
    fleet.verify_all("disk0 removed and one byte corrupted in every disk2 shard file")
