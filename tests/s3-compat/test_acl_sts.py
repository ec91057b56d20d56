"""ACLs, Object Ownership, public access blocks and STS temporary credentials, with real
clients: boto3, aws-cli (`sts assume-role`, `s3api put-object-acl`), s3cmd (`setacl`) and curl
as the anonymous caller. Users are made with `strata admin user create … --json`.

Every test makes its own users and buckets (uuid names), so the file can run against the shared
server in every mode (embedded, cluster, two gateways behind the round-robin proxy).
"""

from __future__ import annotations

import json
import os
import uuid

import boto3
import botocore
import botocore.config
import pytest

import support

pytestmark = pytest.mark.strata_only

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def new_user(strata_bin, endpoint, *policies):
    name = f"u{uuid.uuid4().hex[:10]}"
    args = [strata_bin, "admin", "--endpoint", endpoint, "--access-key", support.ACCESS_KEY,
            "--secret-key", support.SECRET_KEY, "user", "create", name, "--json"]
    for policy in policies:
        args += ["--policy", policy]
    made = json.loads(support.run(args).stdout)
    return name, made["access_key"], made["secret_key"]


def client_of(make_client, keys, token=None):
    client = make_client(keys[1], keys[2])
    if token is None:
        return client
    session = boto3.session.Session(aws_access_key_id=keys[1], aws_secret_access_key=keys[2],
                                    aws_session_token=token, region_name=support.REGION)
    return session.client("s3", endpoint_url=client.meta.endpoint_url)


def code_of(call, *args, **kwargs) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(*args, **kwargs)
    return raised.value.response["Error"]["Code"]


def anonymous_status(endpoint, path) -> int:
    return support.raw_request(endpoint, "GET", path, signed=False).status


@pytest.fixture
def alice(strata_bin, endpoint):
    return new_user(strata_bin, endpoint, "readwrite")


def test_acls_enabled_bucket_grants_and_public_objects(strata_bin, endpoint, make_client, alice):
    owner = client_of(make_client, alice)
    bob = new_user(strata_bin, endpoint)  # no policy at all
    bob_s3 = client_of(make_client, bob)
    bucket = support.bucket_name("acl-writer")
    owner.create_bucket(Bucket=bucket, ObjectOwnership="ObjectWriter")
    assert owner.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "ObjectWriter"}]
    owner.put_object(Bucket=bucket, Key="public.txt", Body=b"for everyone", ACL="public-read")
    owner.put_object(Bucket=bucket, Key="private.txt", Body=b"mine")
    assert anonymous_status(endpoint, f"/{bucket}/public.txt") == 200
    assert anonymous_status(endpoint, f"/{bucket}/private.txt") == 403
    grants = owner.get_object_acl(Bucket=bucket, Key="public.txt")["Grants"]
    assert {(g["Grantee"]["Type"], g["Permission"]) for g in grants} == {
        ("CanonicalUser", "FULL_CONTROL"), ("Group", "READ")}
    # A grant to bob's canonical id by header lets bob (who has no policy) list the bucket.
    assert code_of(bob_s3.list_objects_v2, Bucket=bucket) == "AccessDenied"
    alice_id = owner.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    bob_canonical = [u for u in json.loads(support.run(
        [strata_bin, "admin", "--endpoint", endpoint, "--access-key", support.ACCESS_KEY, "--secret-key",
         support.SECRET_KEY, "user", "list", "--json"]).stdout) if u["name"] == bob[0]][0]["canonical_id"]
    owner.put_bucket_acl(Bucket=bucket, GrantRead=f'id="{bob_canonical}"',
                         GrantFullControl=f'id="{alice_id}"')
    acl = owner.get_bucket_acl(Bucket=bucket)
    assert {(g["Grantee"].get("ID"), g["Permission"]) for g in acl["Grants"]} == {
        (bob_canonical, "READ"), (alice_id, "FULL_CONTROL")}
    assert [o["Key"] for o in bob_s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["private.txt", "public.txt"]
    # READ on the bucket is not READ on its objects.
    assert code_of(bob_s3.get_object, Bucket=bucket, Key="private.txt") == "AccessDenied"
    # The object ACL of another object, set afterwards with a full AccessControlPolicy.
    policy = owner.get_object_acl(Bucket=bucket, Key="private.txt")
    owner.put_object_acl(Bucket=bucket, Key="private.txt", AccessControlPolicy={
        "Owner": policy["Owner"],
        "Grants": policy["Grants"] + [{"Grantee": {"Type": "CanonicalUser", "ID": bob_canonical},
                                       "Permission": "READ"}]})
    assert bob_s3.get_object(Bucket=bucket, Key="private.txt")["Body"].read() == b"mine"


def test_acls_stay_disabled_by_default_and_ownership_rules_hold(endpoint, make_client, alice):
    owner = client_of(make_client, alice)
    bucket = support.bucket_name("acl-enforced")
    owner.create_bucket(Bucket=bucket)
    assert owner.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}]
    assert code_of(owner.put_object, Bucket=bucket, Key="k", Body=b"x",
                   ACL="public-read") == "AccessControlListNotSupported"
    owner.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    assert code_of(owner.create_bucket, Bucket=support.bucket_name("acl-bad"),
                   ACL="public-read") == "InvalidBucketAclWithObjectOwnership"
    # Enabling ACLs, granting the public, then enforcing again is refused while the grant exists.
    owner.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]})
    owner.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert anonymous_status(endpoint, f"/{bucket}?list-type=2") == 200
    assert code_of(owner.put_bucket_ownership_controls, Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}) == "InvalidBucketAclWithObjectOwnership"
    owner.put_bucket_acl(Bucket=bucket, ACL="private")
    owner.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    assert anonymous_status(endpoint, f"/{bucket}?list-type=2") == 403


def test_public_access_block_blocks_public_acls_and_policies(endpoint, make_client, alice):
    owner = client_of(make_client, alice)
    bucket = support.bucket_name("pab")
    owner.create_bucket(Bucket=bucket, ObjectOwnership="ObjectWriter")
    owner.put_object(Bucket=bucket, Key="page", Body=b"<p>", ACL="public-read")
    assert anonymous_status(endpoint, f"/{bucket}/page") == 200
    assert code_of(owner.get_public_access_block, Bucket=bucket) == "NoSuchPublicAccessBlockConfiguration"
    owner.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True})
    assert owner.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True}
    assert anonymous_status(endpoint, f"/{bucket}/page") == 403  # IgnorePublicAcls
    assert code_of(owner.put_object, Bucket=bucket, Key="p2", Body=b"x", ACL="public-read") == "AccessDenied"
    public_policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]})
    assert code_of(owner.put_bucket_policy, Bucket=bucket, Policy=public_policy) == "AccessDenied"
    owner.delete_public_access_block(Bucket=bucket)
    assert anonymous_status(endpoint, f"/{bucket}/page") == 200
    owner.put_bucket_policy(Bucket=bucket, Policy=public_policy)
    owner.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={"RestrictPublicBuckets": True})
    owner.put_object(Bucket=bucket, Key="plain", Body=b"x")
    assert anonymous_status(endpoint, f"/{bucket}/plain") == 403  # the public policy is restricted
    assert owner.get_object(Bucket=bucket, Key="plain")["Body"].read() == b"x"


def test_s3cmd_and_aws_cli_set_object_acls(strata_bin, endpoint, make_client, client_env, work, alice):
    owner = client_of(make_client, alice)
    bucket = support.bucket_name("acl-cli")
    owner.create_bucket(Bucket=bucket, ObjectOwnership="ObjectWriter")
    owner.put_object(Bucket=bucket, Key="by-s3cmd", Body=b"s")
    owner.put_object(Bucket=bucket, Key="by-aws", Body=b"a")
    host = endpoint.removeprefix("http://")
    cfg = work / "alice.s3cmd"
    cfg.write_text(f"[default]\naccess_key = {alice[1]}\nsecret_key = {alice[2]}\nhost_base = {host}\n"
                   f"host_bucket = {host}\nuse_https = False\nsignature_v2 = False\nbucket_location = US\n"
                   "progress_meter = False\n")
    support.run([support.tool("s3cmd"), "-c", str(cfg), "setacl", "--acl-public", f"s3://{bucket}/by-s3cmd"],
                env=client_env)
    assert anonymous_status(endpoint, f"/{bucket}/by-s3cmd") == 200
    env = dict(client_env, AWS_ACCESS_KEY_ID=alice[1], AWS_SECRET_ACCESS_KEY=alice[2])
    env.pop("AWS_SHARED_CREDENTIALS_FILE", None)
    support.run([support.tool("aws"), "--endpoint-url", endpoint, "s3api", "put-object-acl", "--bucket", bucket,
                 "--key", "by-aws", "--grant-read", f"uri={ALL_USERS}"], env=env)
    assert anonymous_status(endpoint, f"/{bucket}/by-aws") == 200


def test_sts_assume_role_with_aws_cli_and_boto3(strata_bin, endpoint, make_client, client_env, alice):
    owner = client_of(make_client, alice)
    bucket = support.bucket_name("sts")
    owner.create_bucket(Bucket=bucket)
    owner.put_object(Bucket=bucket, Key="k", Body=b"secret data")
    env = dict(client_env, AWS_ACCESS_KEY_ID=alice[1], AWS_SECRET_ACCESS_KEY=alice[2])
    env.pop("AWS_SHARED_CREDENTIALS_FILE", None)
    who = json.loads(support.run([support.tool("aws"), "--endpoint-url", endpoint, "sts",
                                  "get-caller-identity", "--output", "json"], env=env).stdout)
    assert who["Arn"] == f"arn:aws:iam::000000000000:user/{alice[0]}" and who["Account"] == "000000000000"
    read_only = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}]})
    answer = json.loads(support.run([
        support.tool("aws"), "--endpoint-url", endpoint, "sts", "assume-role", "--role-arn",
        "arn:aws:iam::000000000000:role/reader", "--role-session-name", "session-1", "--duration-seconds",
        "900", "--policy", read_only, "--output", "json"], env=env).stdout)
    creds = answer["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and answer["AssumedRoleUser"]["Arn"].endswith("/reader/session-1")
    temp = client_of(make_client, ("", creds["AccessKeyId"], creds["SecretAccessKey"]), creds["SessionToken"])
    assert temp.get_object(Bucket=bucket, Key="k")["Body"].read() == b"secret data"
    # The session policy narrows alice's readwrite to reads.
    assert code_of(temp.put_object, Bucket=bucket, Key="k2", Body=b"x") == "AccessDenied"
    # A tampered token, a wrong secret, and a session trying to mint another are refused.
    bad = client_of(make_client, ("", creds["AccessKeyId"], creds["SecretAccessKey"]),
                    creds["SessionToken"][:-4] + "AAAA")
    assert code_of(bad.get_object, Bucket=bucket, Key="k") == "InvalidToken"
    sts = boto3.client("sts", endpoint_url=endpoint, aws_access_key_id=creds["AccessKeyId"],
                       aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"],
                       region_name=support.REGION)
    with pytest.raises(botocore.exceptions.ClientError) as chained:
        sts.assume_role(RoleArn="arn:aws:iam::000000000000:role/x", RoleSessionName="again")
    assert chained.value.response["Error"]["Code"] == "AccessDenied"
    # Disabling the parent key ends its sessions at once.
    support.run([strata_bin, "admin", "--endpoint", endpoint, "--access-key", support.ACCESS_KEY,
                 "--secret-key", support.SECRET_KEY, "key", "disable", alice[1]])
    assert code_of(temp.get_object, Bucket=bucket, Key="k") == "InvalidAccessKeyId"


def test_sts_errors_are_sts_documents(endpoint, alice):
    # botocore checks DurationSeconds itself; without that check the server must refuse it.
    sts = boto3.client("sts", endpoint_url=endpoint, aws_access_key_id=alice[1], aws_secret_access_key=alice[2],
                       region_name=support.REGION,
                       config=botocore.config.Config(parameter_validation=False))
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        sts.assume_role(RoleArn="arn:aws:iam::000000000000:role/x", RoleSessionName="s-1", DurationSeconds=60)
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        sts.assume_role(RoleArn="arn:aws:iam::000000000000:role/x", RoleSessionName="s-1",
                        Policy='{"Statement":[{"Effect":"Sometimes"}]}')
    assert raised.value.response["Error"]["Code"] == "MalformedPolicyDocument"
    wrong = boto3.client("sts", endpoint_url=endpoint, aws_access_key_id=alice[1],
                         aws_secret_access_key="not-the-secret", region_name=support.REGION)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        wrong.get_caller_identity()
    assert raised.value.response["Error"]["Code"] in ("AccessDenied", "SignatureDoesNotMatch")
    assert os.environ.get("AWS_ACCESS_KEY_ID") is None
