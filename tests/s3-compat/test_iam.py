"""Multi-user access control (strata only): users, access keys, identity and bucket policies.

Users are made with `strata admin user create NAME --policy P --json` (signed with the root key
pair of the shared server), each with a uuid suffix so every test is independent and can be
rerun against the same server. Then real clients act as those users — boto3, aws-cli, s3cmd,
curl — and each test asserts what a user would notice: the answer (403 `AccessDenied` with the
S3 XML error body, or success) and its effect (the object is there, or still there, or gone),
always next to a control that shows the same request succeeding for someone allowed, so no
refusal can come from a broken key or a missing object.

Covered: per-user isolation (ownership, a policy limited to `arn:aws:s3:::bob-*`, ListBuckets
filtering, a user without policies), the built-in readonly policy through three clients,
anonymous access and public-read bucket policies (curl), presigned URLs carrying their signer's
rights, a table of bucket-policy statements × principals × actions (Deny over readwrite,
`aws:SourceIp`, `s3:prefix`, `NotPrincipal`, action and resource wildcards, `aws:username`),
`aws:SecureTransport` over a server with an HTTP and an HTTPS listener, disabling, enabling and
deleting keys (the next request is refused — in the 2-gateway run it lands on the other gateway),
the admin API refusing non-root keys, copy-source read rights, DeleteObjects per key, and
`MalformedPolicy` answers.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import boto3
import botocore.exceptions
import pytest
from botocore import UNSIGNED
from botocore.config import Config

import support
import tls_support

pytestmark = pytest.mark.strata_only

ACCOUNT = "000000000000"


def tag() -> str:
    """A short unique suffix for user, policy and bucket names."""
    return uuid.uuid4().hex[:10]


@dataclass(frozen=True)
class User:
    name: str
    arn: str
    access_key: str
    secret_key: str


@pytest.fixture(scope="module")
def admin(strata_bin, endpoint, client_env):
    """Runs `strata admin ARGS --json` against the shared server, signed with the root keys
    (or `keys`); returns the CompletedProcess (text), checked unless `check=False`."""

    def call(*args, keys=(support.ACCESS_KEY, support.SECRET_KEY), check=True):
        cmd = [strata_bin, "admin", *map(str, args), "--json", "--endpoint", endpoint,
               "--access-key", keys[0], "--secret-key", keys[1]]
        proc = support.run(cmd, env=client_env, timeout=60, check=check)
        proc.stdout, proc.stderr = proc.stdout.decode(), proc.stderr.decode()
        return proc

    return call


@pytest.fixture(scope="module")
def new_user(admin):
    """Creates a user `<role>-<uuid>` with the given policies; returns its first key pair."""

    def create(role: str, *policies: str) -> User:
        name = f"{role}-{tag()}"
        args = ["user", "create", name]
        for policy in policies:
            args += ["--policy", policy]
        made = json.loads(admin(*args).stdout)
        assert made["user"] == name
        assert made["arn"] == f"arn:aws:iam::{ACCOUNT}:user/{name}"
        assert sorted(made["policies"]) == sorted(policies)
        return User(name, made["arn"], made["access_key"], made["secret_key"])

    return create


@pytest.fixture(scope="module")
def new_policy(admin, scratch_root):
    """Stores a named identity policy with `strata admin policy create`; returns its name."""

    def create(role: str, document: dict) -> str:
        name = f"{role}-{tag()}"
        path = scratch_root / f"{name}.json"
        path.write_text(json.dumps(document))
        admin("policy", "create", name, "--document", path)
        return name

    return create


@pytest.fixture(scope="module")
def client_of(make_client):
    """A fresh boto3 client signing as `user`."""
    return lambda user: make_client(user.access_key, user.secret_key)


@pytest.fixture(scope="module")
def anonymous(endpoint, isolated_aws_environment):
    """A boto3 client that signs nothing: the anonymous principal."""
    return boto3.session.Session(region_name=support.REGION).client(
        "s3", endpoint_url=endpoint, config=Config(signature_version=UNSIGNED))


def unique_bucket(hint: str) -> str:
    return f"{hint}-{tag()}"


def refused(call, code: str = "AccessDenied", status: int = 403) -> botocore.exceptions.ClientError:
    """Runs `call`, which must fail with `code` and `status`; returns the error."""
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    assert (support.status_code(info.value), support.error_code(info.value)) == (status, code), \
        info.value.response
    return info.value


def exists(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as error:
        assert support.status_code(error) == 404, error.response
        return False
    return True


def bucket_names(client) -> set[str]:
    return {b["Name"] for b in client.list_buckets()["Buckets"]}


def policy_text(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


# --- 1. users see and touch only what they may --------------------------------------------------

@pytest.mark.client("boto3")
def test_users_are_isolated_by_ownership_and_policy(new_user, new_policy, client_of, s3):
    scope = tag()
    bob_policy = new_policy("bob-only", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*",
         "Resource": [f"arn:aws:s3:::bob-{scope}-*", f"arn:aws:s3:::bob-{scope}-*/*"]},
        {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"},
    ]})
    alice, bob = new_user("alice", "readwrite"), new_user("bob", bob_policy)
    as_alice, as_bob = client_of(alice), client_of(bob)

    alices = f"alice-{scope}"
    as_alice.create_bucket(Bucket=alices)
    as_alice.put_object(Bucket=alices, Key="doc.txt", Body=b"alice's")
    bobs = f"bob-{scope}-own"
    as_bob.create_bucket(Bucket=bobs)
    as_bob.put_object(Bucket=bobs, Key="mine.txt", Body=b"bob's")
    # Bob's key works where his policy lets it: the refusals below are about the bucket.
    assert as_bob.get_object(Bucket=bobs, Key="mine.txt")["Body"].read() == b"bob's"
    assert [o["Key"] for o in as_bob.list_objects_v2(Bucket=bobs)["Contents"]] == ["mine.txt"]

    refused(lambda: as_bob.list_objects_v2(Bucket=alices))
    refused(lambda: as_bob.get_object(Bucket=alices, Key="doc.txt"))
    refused(lambda: as_bob.put_object(Bucket=alices, Key="doc.txt", Body=b"bob was here"))
    refused(lambda: as_bob.put_object(Bucket=alices, Key="new.txt", Body=b"bob was here"))
    refused(lambda: as_bob.delete_object(Bucket=alices, Key="doc.txt"))
    refused(lambda: as_bob.delete_bucket(Bucket=alices))
    refused(lambda: as_bob.put_bucket_policy(Bucket=alices, Policy=policy_text(
        {"Effect": "Allow", "Principal": {"AWS": bob.arn}, "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{alices}/*"})))
    refused(lambda: as_bob.create_bucket(Bucket=f"alice-{scope}-by-bob"))
    assert as_alice.get_object(Bucket=alices, Key="doc.txt")["Body"].read() == b"alice's"
    assert not exists(s3, alices, "new.txt")
    refused(lambda: s3.head_bucket(Bucket=f"alice-{scope}-by-bob"), code="404", status=404)

    seen_by_bob = bucket_names(as_bob)
    assert bobs in seen_by_bob and alices not in seen_by_bob
    assert alices in bucket_names(as_alice)
    assert {alices, bobs} <= bucket_names(s3)


@pytest.mark.client("boto3")
def test_user_without_policies_can_do_nothing(new_user, client_of, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    nobody = client_of(new_user("nobody"))
    refused(nobody.list_buckets)
    refused(lambda: nobody.create_bucket(Bucket=unique_bucket("nobody")))
    refused(lambda: nobody.get_object(Bucket=bucket, Key="k"))
    refused(lambda: nobody.list_objects_v2(Bucket=bucket))
    refused(lambda: nobody.put_object(Bucket=bucket, Key="n", Body=b"n"))
    assert not exists(s3, bucket, "n")


@pytest.mark.client("boto3")
def test_readonly_user_with_boto3(new_user, client_of, s3, bucket):
    s3.put_object(Bucket=bucket, Key="shared.txt", Body=b"for everyone")
    reader = client_of(new_user("reader", "readonly"))
    assert reader.get_object(Bucket=bucket, Key="shared.txt")["Body"].read() == b"for everyone"
    assert [o["Key"] for o in reader.list_objects_v2(Bucket=bucket)["Contents"]] == ["shared.txt"]
    assert bucket in bucket_names(reader)
    refused(lambda: reader.put_object(Bucket=bucket, Key="new.txt", Body=b"x"))
    refused(lambda: reader.delete_object(Bucket=bucket, Key="shared.txt"))
    refused(lambda: reader.create_bucket(Bucket=unique_bucket("reader")))
    assert not exists(s3, bucket, "new.txt")
    assert exists(s3, bucket, "shared.txt")


@pytest.mark.client("aws-cli")
def test_readonly_user_with_aws_cli(new_user, s3, bucket, endpoint, client_env, work):
    s3.put_object(Bucket=bucket, Key="shared.txt", Body=b"for everyone")
    reader = new_user("reader", "readonly")
    env = dict(client_env, AWS_ACCESS_KEY_ID=reader.access_key, AWS_SECRET_ACCESS_KEY=reader.secret_key)

    def aws(*args):
        return support.run([support.tool("aws"), "--endpoint-url", endpoint, *map(str, args)],
                           env=env, check=False, timeout=120)

    got = aws("s3", "cp", f"s3://{bucket}/shared.txt", work / "got.txt")
    assert got.returncode == 0, got.stderr
    assert (work / "got.txt").read_bytes() == b"for everyone"
    listed = aws("s3", "ls", f"s3://{bucket}/")
    assert listed.returncode == 0 and b"shared.txt" in listed.stdout, listed.stderr
    (work / "up.txt").write_bytes(b"not allowed")
    put = aws("s3", "cp", work / "up.txt", f"s3://{bucket}/up.txt")
    assert put.returncode != 0
    assert b"AccessDenied" in put.stderr, put.stderr
    removed = aws("s3", "rm", f"s3://{bucket}/shared.txt")
    assert removed.returncode != 0 and b"AccessDenied" in removed.stderr, removed.stderr
    assert not exists(s3, bucket, "up.txt")
    assert exists(s3, bucket, "shared.txt")


@pytest.mark.client("s3cmd")
def test_readonly_user_with_s3cmd(new_user, s3, bucket, s3cmd, work):
    s3.put_object(Bucket=bucket, Key="shared.txt", Body=b"for everyone")
    reader = new_user("reader", "readonly")
    keys = [f"--access_key={reader.access_key}", f"--secret_key={reader.secret_key}"]
    got = s3cmd(*keys, "get", f"s3://{bucket}/shared.txt", work / "got.txt", check=False)
    assert got.returncode == 0, got.stderr
    assert (work / "got.txt").read_bytes() == b"for everyone"
    (work / "up.txt").write_bytes(b"not allowed")
    put = s3cmd(*keys, "put", work / "up.txt", f"s3://{bucket}/up.txt", check=False)
    assert put.returncode != 0
    assert b"AccessDenied" in put.stdout + put.stderr, put.stderr
    assert not exists(s3, bucket, "up.txt")


# --- 2. anonymous requests and public-read bucket policies ----------------------------------

def curl_answer(curl, *args) -> tuple[int, bytes]:
    """(HTTP status, body) of one curl request."""
    proc = curl("-sS", "-o", "-", "-w", "\n%{http_code}", *args, check=False)
    body, _, code = proc.stdout.rpartition(b"\n")
    return int(code.decode() or 0), body


@pytest.mark.client("curl")
def test_anonymous_access_follows_the_bucket_policy(s3, bucket, endpoint, curl):
    s3.put_object(Bucket=bucket, Key="pub/hello.txt", Body=b"hello world")
    url = f"{endpoint}/{bucket}/pub/hello.txt"
    status, body = curl_answer(curl, url)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body, body
    refused(lambda: s3.get_bucket_policy(Bucket=bucket), code="NoSuchBucketPolicy", status=404)

    public = policy_text({"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
                          "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"})
    s3.put_bucket_policy(Bucket=bucket, Policy=public)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(public)
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    assert curl_answer(curl, url) == (200, b"hello world")
    # The policy grants reading objects, nothing else.
    status, body = curl_answer(curl, "-X", "PUT", "--data-binary", "overwritten", url)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body, body
    status, body = curl_answer(curl, "-X", "PUT", "--data-binary", "new", f"{endpoint}/{bucket}/pub/new.txt")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body, body
    status, body = curl_answer(curl, f"{endpoint}/{bucket}?list-type=2")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body, body
    status, body = curl_answer(curl, "-X", "DELETE", url)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body, body
    assert s3.get_object(Bucket=bucket, Key="pub/hello.txt")["Body"].read() == b"hello world"
    assert not exists(s3, bucket, "pub/new.txt")

    s3.delete_bucket_policy(Bucket=bucket)
    status, body = curl_answer(curl, url)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body, body
    refused(lambda: s3.get_bucket_policy(Bucket=bucket), code="NoSuchBucketPolicy", status=404)


# --- 3. presigned URLs carry their signer's rights ------------------------------------------

@pytest.mark.client("curl")
@pytest.mark.parametrize("signature", ["s3v4", "s3"])
def test_presigned_urls_carry_the_signers_rights(new_user, make_client, s3, bucket, curl, signature):
    s3.put_object(Bucket=bucket, Key="report.txt", Body=b"quarterly numbers")
    reader, nobody = new_user("reader", "readonly"), new_user("nobody")
    config = Config(signature_version=signature)

    def presign(user, method, key):
        client = make_client(user.access_key, user.secret_key, config) if user else make_client(config=config)
        return client.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)

    assert curl_answer(curl, presign(reader, "get_object", "report.txt")) == (200, b"quarterly numbers")
    status, body = curl_answer(curl, presign(nobody, "get_object", "report.txt"))
    assert status == 403 and b"<Code>AccessDenied</Code>" in body, body

    # No Content-Type: SigV2 signs it, and the URL was presigned without one.
    status, body = curl_answer(curl, "-X", "PUT", "-H", "Content-Type:", "--data-binary", "forged",
                               presign(reader, "put_object", "upload.txt"))
    assert status == 403 and b"<Code>AccessDenied</Code>" in body, body
    assert not exists(s3, bucket, "upload.txt")
    # The same presigned PUT by the root key works: the refusal is the reader's rights.
    status, body = curl_answer(curl, "-X", "PUT", "-H", "Content-Type:", "--data-binary", "by root",
                               presign(None, "put_object", "upload.txt"))
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="upload.txt")["Body"].read() == b"by root"


# --- 4. bucket policies: statements × principals × actions ----------------------------------

ALL = frozenset({"get", "put", "delete", "list_prefix", "list_all"})
READ = frozenset({"get", "list_prefix", "list_all"})
NONE = frozenset()
GET_KEY, GET_BODY = "public/get.txt", b"readable"

# name -> (statements (B: bucket name, alice/bob: ARNs), what each principal may do, IsPublic).
# alice has the built-in readwrite policy, bob none; the buckets are root's.
POLICY_TABLE = {
    "no-policy": (None, {"alice": ALL, "bob": NONE, "anon": NONE}, None),
    "public-read": ([
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::{B}/*"},
    ], {"alice": ALL, "bob": {"get"}, "anon": {"get"}}, True),
    "deny-overrides-readwrite": ([
        {"Effect": "Deny", "Principal": {"AWS": "{alice}"}, "Action": ["s3:PutObject", "s3:DeleteObject"],
         "Resource": "arn:aws:s3:::{B}/*"},
    ], {"alice": READ, "bob": NONE, "anon": NONE}, False),
    "source-ip-loopback-allows": ([
        {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
         "Resource": ["arn:aws:s3:::{B}", "arn:aws:s3:::{B}/*"],
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}},
    ], {"alice": ALL, "bob": READ, "anon": READ}, False),
    "source-ip-elsewhere-allows-nobody": ([
        {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
         "Resource": ["arn:aws:s3:::{B}", "arn:aws:s3:::{B}/*"],
         "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
    ], {"alice": ALL, "bob": NONE, "anon": NONE}, False),
    "deny-outside-10.0.0.0/8": ([
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::{B}", "arn:aws:s3:::{B}/*"],
         "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}}},
    ], {"alice": NONE, "bob": NONE, "anon": NONE}, False),
    "list-only-prefix": ([
        {"Effect": "Allow", "Principal": {"AWS": ["{bob}"]}, "Action": "s3:ListBucket",
         "Resource": "arn:aws:s3:::{B}", "Condition": {"StringEquals": {"s3:prefix": "public/"}}},
    ], {"alice": ALL, "bob": {"list_prefix"}, "anon": NONE}, False),
    "not-principal-deny": ([
        {"Effect": "Deny", "NotPrincipal": {"AWS": "{alice}"}, "Action": "s3:*",
         "Resource": ["arn:aws:s3:::{B}", "arn:aws:s3:::{B}/*"]},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::{B}/*"},
    ], {"alice": ALL, "bob": NONE, "anon": NONE}, True),
    "action-wildcard-get": ([
        {"Effect": "Allow", "Principal": {"AWS": "{bob}"}, "Action": "s3:Get*", "Resource": "arn:aws:s3:::{B}/*"},
    ], {"alice": ALL, "bob": {"get"}, "anon": NONE}, False),
    "action-wildcard-object": ([
        {"Effect": "Allow", "Principal": {"AWS": "{bob}"}, "Action": "s3:*Object", "Resource": "arn:aws:s3:::{B}/*"},
    ], {"alice": ALL, "bob": {"get", "put", "delete"}, "anon": NONE}, False),
    "resource-wildcard": ([
        {"Effect": "Allow", "Principal": {"AWS": "{bob}"},
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": "arn:aws:s3:::{B}/pub*"},
    ], {"alice": ALL, "bob": {"get", "delete"}, "anon": NONE}, False),
    "username-condition": ([
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::{B}/*",
         "Condition": {"StringEquals": {"aws:username": "{bob_name}"}}},
    ], {"alice": ALL, "bob": {"get"}, "anon": NONE}, False),
}
PRINCIPALS = ["alice", "bob", "anon"]
ACTIONS = ["get", "put", "delete", "list_prefix", "list_all"]


def fill(value, names: dict):
    """The statement with {B}, {alice}, {bob}, {bob_name} replaced."""
    if isinstance(value, str):
        for name, replacement in names.items():
            value = value.replace("{" + name + "}", replacement)
        return value
    if isinstance(value, list):
        return [fill(item, names) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, names) for key, item in value.items()}
    return value


class PolicyWorld:
    """The users and, per table row, one root-owned bucket with that row's policy (made once)."""

    def __init__(self, s3, alice: User, bob: User, clients: dict):
        self.s3 = s3
        self.alice, self.bob = alice, bob
        self.clients = clients
        self.buckets: dict[str, str] = {}

    def bucket(self, scenario: str) -> str:
        if scenario not in self.buckets:
            name = unique_bucket("iam-table")
            self.s3.create_bucket(Bucket=name)
            self.s3.put_object(Bucket=name, Key=GET_KEY, Body=GET_BODY)
            statements = POLICY_TABLE[scenario][0]
            if statements is not None:
                names = {"B": name, "alice": self.alice.arn, "bob": self.bob.arn, "bob_name": self.bob.name}
                self.s3.put_bucket_policy(Bucket=name, Policy=policy_text(*fill(statements, names)))
            self.buckets[scenario] = name
        return self.buckets[scenario]


@pytest.fixture(scope="module")
def policy_world(new_user, client_of, s3, anonymous) -> PolicyWorld:
    alice, bob = new_user("alice", "readwrite"), new_user("bob")
    return PolicyWorld(s3, alice, bob, {"alice": client_of(alice), "bob": client_of(bob), "anon": anonymous})


def attempt(world: PolicyWorld, client, bucket: str, action: str, principal: str) -> bool:
    """Performs `action`; True if it was allowed (and did what it should), False if it was
    refused with 403 AccessDenied (and changed nothing)."""
    s3 = world.s3
    try:
        if action == "get":
            assert client.get_object(Bucket=bucket, Key=GET_KEY)["Body"].read() == GET_BODY
        elif action in ("list_prefix", "list_all"):
            prefix = {"Prefix": "public/"} if action == "list_prefix" else {}
            listed = client.list_objects_v2(Bucket=bucket, **prefix)
            assert GET_KEY in [o["Key"] for o in listed.get("Contents", [])]
        elif action == "put":
            key = f"private/put-{principal}-{tag()}"
            try:
                client.put_object(Bucket=bucket, Key=key, Body=b"written")
            finally:
                stored = exists(s3, bucket, key)
            assert stored and s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"written"
        elif action == "delete":
            key = f"public/del-{principal}-{tag()}"
            s3.put_object(Bucket=bucket, Key=key, Body=b"doomed")
            try:
                client.delete_object(Bucket=bucket, Key=key)
            except botocore.exceptions.ClientError:
                assert exists(s3, bucket, key), "a refused delete removed the object"
                raise
            assert not exists(s3, bucket, key)
        else:
            raise AssertionError(action)
    except botocore.exceptions.ClientError as error:
        assert (support.status_code(error), support.error_code(error)) == (403, "AccessDenied"), error.response
        if action == "put":
            assert not stored, "a refused put stored the object"
        return False
    return True


@pytest.mark.client("boto3")
@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("scenario", list(POLICY_TABLE))
def test_bucket_policy_table(policy_world, scenario, principal, action):
    bucket = policy_world.bucket(scenario)
    expected = action in POLICY_TABLE[scenario][1][principal]
    allowed = attempt(policy_world, policy_world.clients[principal], bucket, action, principal)
    assert allowed == expected, f"{scenario}: {principal} {action} {'allowed' if allowed else 'refused'}"


@pytest.mark.client("boto3")
@pytest.mark.parametrize("scenario", list(POLICY_TABLE))
def test_bucket_policy_status(policy_world, scenario):
    bucket = policy_world.bucket(scenario)
    public = POLICY_TABLE[scenario][2]
    if public is None:
        refused(lambda: policy_world.s3.get_bucket_policy_status(Bucket=bucket),
                code="NoSuchBucketPolicy", status=404)
    else:
        assert policy_world.s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is public


# --- 5. aws:SecureTransport -----------------------------------------------------------------

@pytest.fixture(scope="module")
def dual_server(strata_bin, scratch_root, tls_certificates):
    """An embedded strata of this module's own with an HTTP and an HTTPS listener (the shared
    server has no HTTPS one; `strata admin` speaks HTTP only), in every run mode."""
    server = tls_support.TlsStrataServer(strata_bin, scratch_root / "iam-tls-data", scratch_root / "iam-tls.log",
                                         tls_certificates, plain_too=True, fsync=False)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.mark.client("boto3")
def test_secure_transport_condition(dual_server, strata_bin, client_env, isolated_aws_environment):
    name = f"owner-{tag()}"
    made = support.run([strata_bin, "admin", "user", "create", name, "--policy", "readwrite", "--json",
                        "--endpoint", dual_server.plain_endpoint, "--access-key", support.ACCESS_KEY,
                        "--secret-key", support.SECRET_KEY], env=client_env, timeout=60)
    owner = json.loads(made.stdout)
    session = boto3.session.Session(aws_access_key_id=owner["access_key"],
                                    aws_secret_access_key=owner["secret_key"], region_name=support.REGION)
    plain = session.client("s3", endpoint_url=dual_server.plain_endpoint)
    secure = session.client("s3", endpoint_url=dual_server.endpoint, verify=str(dual_server.certs.ca))
    bucket = unique_bucket("tls-only")
    secure.create_bucket(Bucket=bucket)
    plain.put_object(Bucket=bucket, Key="before", Body=b"plain is fine without the policy")
    secure.put_bucket_policy(Bucket=bucket, Policy=policy_text(
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}))

    refused(lambda: plain.get_object(Bucket=bucket, Key="before"))
    refused(lambda: plain.put_object(Bucket=bucket, Key="over-http", Body=b"x"))
    refused(lambda: plain.list_objects_v2(Bucket=bucket))
    refused(lambda: plain.delete_bucket_policy(Bucket=bucket))
    assert secure.get_object(Bucket=bucket, Key="before")["Body"].read() == b"plain is fine without the policy"
    secure.put_object(Bucket=bucket, Key="over-https", Body=b"tls")
    keys = [o["Key"] for o in secure.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["before", "over-https"]

    secure.delete_bucket_policy(Bucket=bucket)
    assert plain.get_object(Bucket=bucket, Key="over-https")["Body"].read() == b"tls"


# --- 6. disabling, enabling and deleting keys -----------------------------------------------

@pytest.mark.client("boto3")
def test_key_disable_enable_delete(admin, new_user, make_client, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    user = new_user("keyed", "readwrite")

    def works(access_key, secret_key):
        client = make_client(access_key, secret_key)  # fresh: nothing cached client-side
        assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"

    def refused_key(access_key, secret_key):
        # Several requests: with two gateways behind the round-robin proxy, both are asked.
        for _ in range(4):
            client = make_client(access_key, secret_key)
            refused(lambda: client.get_object(Bucket=bucket, Key="k"), code="InvalidAccessKeyId")

    def key_status(access_key):
        keys = json.loads(admin("key", "list", "--user", user.name).stdout)
        return {k["access_key"]: k["status"] for k in keys}.get(access_key)

    works(user.access_key, user.secret_key)
    admin("key", "disable", user.access_key)
    refused_key(user.access_key, user.secret_key)
    assert key_status(user.access_key) == "disabled"
    admin("key", "enable", user.access_key)
    for _ in range(4):
        works(user.access_key, user.secret_key)
    assert key_status(user.access_key) == "active"

    second = json.loads(admin("key", "create", user.name).stdout)
    assert second["user"] == user.name and second["access_key"] != user.access_key
    works(second["access_key"], second["secret_key"])
    admin("key", "delete", user.access_key)
    refused_key(user.access_key, user.secret_key)
    works(second["access_key"], second["secret_key"])
    assert key_status(user.access_key) is None

    admin("user", "delete", user.name)
    refused_key(second["access_key"], second["secret_key"])
    assert user.name not in [u["name"] for u in json.loads(admin("user", "list").stdout)]


@pytest.mark.client("boto3")
def test_attached_policies_take_effect_on_the_next_request(admin, new_user, new_policy, client_of, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    user = new_user("attached")
    client = client_of(user)
    refused(lambda: client.get_object(Bucket=bucket, Key="k"))
    reader = new_policy("reader", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]})
    admin("user", "attach", user.name, "--policy", reader)
    for _ in range(2):  # both gateways, in the 2-gateway run
        assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    refused(lambda: client.put_object(Bucket=bucket, Key="k", Body=b"overwritten"))
    in_use = admin("policy", "delete", reader, check=False)
    assert in_use.returncode == 1 and "PolicyInUse" in in_use.stderr, in_use.stderr
    admin("user", "attach", user.name)  # replaces the list: no policy left
    for _ in range(2):
        refused(lambda: client.get_object(Bucket=bucket, Key="k"))
    admin("policy", "delete", reader)
    assert reader not in [p["name"] for p in json.loads(admin("policy", "list").stdout)]


# --- 7. the admin API is the root's alone ---------------------------------------------------

def test_admin_api_refuses_non_root_keys(admin, new_user):
    alice = new_user("alice", "readwrite")
    listed = [u["name"] for u in json.loads(admin("user", "list").stdout)]
    assert alice.name in listed
    keys = (alice.access_key, alice.secret_key)
    for args in (["user", "list"], ["user", "create", f"mallory-{tag()}", "--policy", "readwrite"],
                 ["key", "create", alice.name], ["key", "disable", alice.access_key],
                 ["policy", "list"], ["cluster", "status"]):
        proc = admin(*args, keys=keys, check=False)
        assert proc.returncode == 1, (args, proc.stdout)
        assert "AccessDenied" in proc.stderr, (args, proc.stderr)
    names = [u["name"] for u in json.loads(admin("user", "list").stdout)]
    assert not [n for n in names if n.startswith("mallory-")]
    keys_now = json.loads(admin("key", "list", "--user", alice.name).stdout)
    assert [(k["access_key"], k["status"]) for k in keys_now] == [(alice.access_key, "active")]


# --- 8. copy sources need the read right; DeleteObjects decides per key ---------------------

@pytest.mark.client("boto3")
def test_copy_needs_read_on_the_source_and_write_on_the_target(new_user, new_policy, client_of, s3):
    scope = tag()
    carol_policy = new_policy("carol-buckets", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:CreateBucket", "Resource": f"arn:aws:s3:::carol-{scope}-*"}]})
    carol = new_user("carol", carol_policy)
    as_carol = client_of(carol)
    source = unique_bucket("copy-source")
    s3.create_bucket(Bucket=source)
    s3.put_object(Bucket=source, Key="secret.txt", Body=b"root's data")
    own = f"carol-{scope}-own"
    as_carol.create_bucket(Bucket=own)
    as_carol.put_object(Bucket=own, Key="mine.txt", Body=b"carol's data")

    copy_in = lambda: as_carol.copy_object(Bucket=own, Key="copied.txt",  # noqa: E731
                                           CopySource={"Bucket": source, "Key": "secret.txt"})
    refused(copy_in)
    assert not exists(s3, own, "copied.txt")
    # Writing into a bucket carol may not write to fails even from her own source.
    refused(lambda: as_carol.copy_object(Bucket=source, Key="pushed.txt",
                                         CopySource={"Bucket": own, "Key": "mine.txt"}))
    assert not exists(s3, source, "pushed.txt")

    s3.put_bucket_policy(Bucket=source, Policy=policy_text(
        {"Effect": "Allow", "Principal": {"AWS": carol.arn}, "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{source}/*"}))
    copy_in()
    assert as_carol.get_object(Bucket=own, Key="copied.txt")["Body"].read() == b"root's data"


@pytest.mark.client("boto3")
def test_delete_objects_is_decided_per_key(new_user, client_of, s3, bucket):
    user = new_user("cleaner", "readwrite")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy_text(
        {"Effect": "Deny", "Principal": {"AWS": user.arn}, "Action": "s3:DeleteObject",
         "Resource": f"arn:aws:s3:::{bucket}/protected/*"}))
    for key in ("protected/keep.txt", "open/drop.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    answer = client_of(user).delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "protected/keep.txt"}, {"Key": "open/drop.txt"}]})
    assert [d["Key"] for d in answer.get("Deleted", [])] == ["open/drop.txt"]
    assert [(e["Key"], e["Code"]) for e in answer.get("Errors", [])] == [("protected/keep.txt", "AccessDenied")]
    assert exists(s3, bucket, "protected/keep.txt")
    assert not exists(s3, bucket, "open/drop.txt")


# --- 9. malformed bucket policies -----------------------------------------------------------

MALFORMED = {
    # name -> (statement or raw text, a word the message must contain)
    "bad-effect": ({"Effect": "Permit", "Principal": "*", "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::{B}/*"}, "Permit"),
    "unknown-action": ({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObjekt",
                        "Resource": "arn:aws:s3:::{B}/*"}, "s3:GetObjekt"),
    "resource-outside-the-bucket": ({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                     "Resource": "arn:aws:s3:::some-other-bucket/*"}, "some-other-bucket"),
    "missing-principal": ({"Effect": "Allow", "Action": "s3:GetObject",
                           "Resource": "arn:aws:s3:::{B}/*"}, "Principal"),
    "object-action-on-the-bucket": ({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                     "Resource": "arn:aws:s3:::{B}"}, "s3:GetObject"),
    "not-json": ("this is not a policy", "JSON"),
}


@pytest.mark.client("boto3")
@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_bucket_policy(s3, bucket, case):
    statement, mention = MALFORMED[case]
    text = statement if isinstance(statement, str) else policy_text(fill(statement, {"B": bucket}))
    error = refused(lambda: s3.put_bucket_policy(Bucket=bucket, Policy=text), code="MalformedPolicy", status=400)
    message = error.response["Error"].get("Message", "")
    assert mention in message, message
    refused(lambda: s3.get_bucket_policy(Bucket=bucket), code="NoSuchBucketPolicy", status=404)
