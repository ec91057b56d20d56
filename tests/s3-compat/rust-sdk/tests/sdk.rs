//! The Rust `aws-sdk-s3` with its default settings against a spawned strata, over HTTP and
//! HTTPS: default checksums (CRC32) and each forced algorithm, multipart with per-part and
//! full-object checksums, ListObjectsV2 pagination, ranged GETs and presigned GET/PUT. Every
//! body byte is compared and every checksum is recomputed here, never taken from the server.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
};
use aws_sdk_s3::Client;
use bytes::Bytes;
use strata_sdk_tests::{
    bucket_name, checksum_b64, composite_checksum_b64, data, logged_payload_modes, md5_etag,
    multipart_etag, Server, Transport, MIB, TRANSPORTS,
};

const ALGORITHMS: [(ChecksumAlgorithm, &str); 5] = [
    (ChecksumAlgorithm::Crc32, "CRC32"),
    (ChecksumAlgorithm::Crc32C, "CRC32C"),
    (ChecksumAlgorithm::Crc64Nvme, "CRC64NVME"),
    (ChecksumAlgorithm::Sha1, "SHA1"),
    (ChecksumAlgorithm::Sha256, "SHA256"),
];

async fn get_bytes(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let got = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    got.body.collect().await.unwrap().into_bytes().to_vec()
}

/// The checksum of `algorithm` among a response's checksum fields.
macro_rules! checksum_of {
    ($output:expr, $algorithm:expr) => {
        match $algorithm {
            "CRC32" => $output.checksum_crc32(),
            "CRC32C" => $output.checksum_crc32_c(),
            "CRC64NVME" => $output.checksum_crc64_nvme(),
            "SHA1" => $output.checksum_sha1(),
            "SHA256" => $output.checksum_sha256(),
            other => panic!("unknown algorithm {other}"),
        }
    };
}

#[tokio::test]
async fn put_get_head_delete_with_default_checksums() {
    let Some(server) = Server::start() else {
        return;
    };
    for transport in TRANSPORTS {
        let client = server.client(transport);
        let bucket = bucket_name("crud", transport);
        client.create_bucket().bucket(&bucket).send().await.unwrap();
        for size in [0, 1, 4096, 4097, MIB + 3, 5 * MIB + 11] {
            let body = data(size, size as u64);
            let key = format!("object-{size}");
            let put = client
                .put_object()
                .bucket(&bucket)
                .key(&key)
                .body(ByteStream::from(body.clone()))
                .send()
                .await
                .unwrap();
            assert_eq!(put.e_tag(), Some(md5_etag(&body).as_str()));
            // The SDK's default request checksum is CRC32; the server must echo it.
            let crc32 = checksum_b64("CRC32", &body);
            assert_eq!(
                put.checksum_crc32(),
                Some(crc32.as_str()),
                "{transport:?} {size}"
            );
            let head = client
                .head_object()
                .bucket(&bucket)
                .key(&key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .unwrap();
            assert_eq!(head.content_length(), Some(size as i64));
            assert_eq!(head.checksum_crc32(), Some(crc32.as_str()));
            assert_eq!(get_bytes(&client, &bucket, &key).await, body);
        }
        client
            .delete_object()
            .bucket(&bucket)
            .key("object-1")
            .send()
            .await
            .unwrap();
        let missing = client
            .get_object()
            .bucket(&bucket)
            .key("object-1")
            .send()
            .await
            .unwrap_err();
        assert!(
            missing.into_service_error().is_no_such_key(),
            "{transport:?}"
        );
    }
    // In-memory bodies are sent with a signed SHA-256 and the CRC32 in a header, also over
    // https (unlike botocore, which switches to the unsigned trailer there).
    let modes = logged_payload_modes(&server.log());
    assert_eq!(modes.len(), 12, "{}", server.log());
    assert!(modes.iter().all(|m| m == "sha256"), "{modes:?}");
}

#[tokio::test]
async fn every_checksum_algorithm_round_trips() {
    let Some(server) = Server::start() else {
        return;
    };
    for transport in TRANSPORTS {
        let client = server.client(transport);
        let bucket = bucket_name("algorithms", transport);
        client.create_bucket().bucket(&bucket).send().await.unwrap();
        for (algorithm, name) in ALGORITHMS {
            for size in [3, 300 * 1024 + 5] {
                let body = data(size, 7);
                let key = format!("{name}-{size}");
                let put = client
                    .put_object()
                    .bucket(&bucket)
                    .key(&key)
                    .checksum_algorithm(algorithm.clone())
                    .body(ByteStream::from(body.clone()))
                    .send()
                    .await
                    .unwrap();
                let expected = checksum_b64(name, &body);
                assert_eq!(checksum_of!(put, name), Some(expected.as_str()), "{name}");
                let head = client
                    .head_object()
                    .bucket(&bucket)
                    .key(&key)
                    .checksum_mode(ChecksumMode::Enabled)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(checksum_of!(head, name), Some(expected.as_str()), "{name}");
                assert_eq!(get_bytes(&client, &bucket, &key).await, body, "{name}");
            }
        }
        // A wrong checksum supplied by the caller is refused and nothing is stored.
        let refused = client
            .put_object()
            .bucket(&bucket)
            .key("wrong")
            .checksum_crc32(checksum_b64("CRC32", b"other bytes"))
            .body(ByteStream::from(data(100, 1)))
            .send()
            .await
            .unwrap_err();
        let code = refused
            .into_service_error()
            .meta()
            .code()
            .map(str::to_owned);
        assert_eq!(code.as_deref(), Some("BadDigest"), "{transport:?}");
        let head = client
            .head_object()
            .bucket(&bucket)
            .key("wrong")
            .send()
            .await;
        assert!(head.unwrap_err().into_service_error().is_not_found());
    }
}

async fn multipart_upload(
    client: &Client,
    bucket: &str,
    key: &str,
    algorithm: (ChecksumAlgorithm, &str),
    checksum_type: Option<ChecksumType>,
    parts: &[&[u8]],
) -> aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput {
    let (algorithm, name) = algorithm;
    let created = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .checksum_algorithm(algorithm.clone())
        .set_checksum_type(checksum_type.clone())
        .send()
        .await
        .unwrap();
    let upload_id = created.upload_id().unwrap().to_owned();
    let mut completed = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let number = i32::try_from(index).unwrap() + 1;
        let uploaded = client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .part_number(number)
            .checksum_algorithm(algorithm.clone())
            .body(ByteStream::from(part.to_vec()))
            .send()
            .await
            .unwrap();
        let expected = checksum_b64(name, part);
        assert_eq!(
            checksum_of!(uploaded, name),
            Some(expected.as_str()),
            "UploadPart must echo the part checksum"
        );
        let builder = CompletedPart::builder()
            .part_number(number)
            .e_tag(uploaded.e_tag().unwrap());
        let builder = match name {
            "CRC32" => builder.checksum_crc32(expected),
            "CRC32C" => builder.checksum_crc32_c(expected),
            "CRC64NVME" => builder.checksum_crc64_nvme(expected),
            "SHA1" => builder.checksum_sha1(expected),
            _ => builder.checksum_sha256(expected),
        };
        completed.push(builder.build());
    }
    client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn multipart_with_composite_and_full_object_checksums() {
    let Some(server) = Server::start() else {
        return;
    };
    let first = data(5 * MIB, 1);
    let second = data(5 * MIB, 2);
    let last = data(MIB + 7, 3);
    let parts: [&[u8]; 3] = [&first, &second, &last];
    let whole: Vec<u8> = parts.concat();
    for transport in TRANSPORTS {
        let client = server.client(transport);
        let bucket = bucket_name("multipart", transport);
        client.create_bucket().bucket(&bucket).send().await.unwrap();

        // CRC64NVME: always FULL_OBJECT, combined from the part CRCs.
        let done = multipart_upload(
            &client,
            &bucket,
            "full",
            (ChecksumAlgorithm::Crc64Nvme, "CRC64NVME"),
            Some(ChecksumType::FullObject),
            &parts,
        )
        .await;
        let full = checksum_b64("CRC64NVME", &whole);
        assert_eq!(done.checksum_crc64_nvme(), Some(full.as_str()));
        assert_eq!(done.checksum_type(), Some(&ChecksumType::FullObject));
        assert_eq!(done.e_tag(), Some(multipart_etag(&parts).as_str()));
        let head = client
            .head_object()
            .bucket(&bucket)
            .key("full")
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(head.checksum_crc64_nvme(), Some(full.as_str()));
        assert_eq!(head.content_length(), Some(whole.len() as i64));
        assert_eq!(get_bytes(&client, &bucket, "full").await, whole);

        // CRC64NVME without a declared type: AWS only has FULL_OBJECT for it (aws-cli v2).
        let done = multipart_upload(
            &client,
            &bucket,
            "inferred",
            (ChecksumAlgorithm::Crc64Nvme, "CRC64NVME"),
            None,
            &parts,
        )
        .await;
        assert_eq!(done.checksum_crc64_nvme(), Some(full.as_str()));

        // CRC32 and SHA256 without a type: COMPOSITE ("…-N") of the part checksums.
        for (algorithm, name) in [
            (ChecksumAlgorithm::Crc32, "CRC32"),
            (ChecksumAlgorithm::Sha256, "SHA256"),
        ] {
            let key = format!("composite-{name}");
            let done = multipart_upload(
                &client,
                &bucket,
                &key,
                (algorithm, name),
                Some(ChecksumType::Composite),
                &parts,
            )
            .await;
            let composite = composite_checksum_b64(name, &parts);
            assert_eq!(checksum_of!(done, name), Some(composite.as_str()), "{name}");
            assert_eq!(done.checksum_type(), Some(&ChecksumType::Composite));
            // The SDK skips validating composite values on GET; the bytes must still match.
            assert_eq!(get_bytes(&client, &bucket, &key).await, whole, "{name}");
        }

        // CRC32 as FULL_OBJECT: the CRCs of the parts are combined into the whole's CRC.
        let done = multipart_upload(
            &client,
            &bucket,
            "full-crc32",
            (ChecksumAlgorithm::Crc32, "CRC32"),
            Some(ChecksumType::FullObject),
            &parts,
        )
        .await;
        assert_eq!(
            done.checksum_crc32(),
            Some(checksum_b64("CRC32", &whole).as_str())
        );
    }
}

#[tokio::test]
async fn list_objects_v2_paginates() {
    let Some(server) = Server::start() else {
        return;
    };
    for transport in TRANSPORTS {
        let client = server.client(transport);
        let bucket = bucket_name("listing", transport);
        client.create_bucket().bucket(&bucket).send().await.unwrap();
        let mut keys: Vec<String> = (0..23).map(|i| format!("dir/key-{i:03}")).collect();
        keys.extend((0..4).map(|i| format!("other/{i}/x")));
        keys.push("top".to_owned());
        for key in &keys {
            client
                .put_object()
                .bucket(&bucket)
                .key(key)
                .body(ByteStream::from(Bytes::from(key.clone().into_bytes())))
                .send()
                .await
                .unwrap();
        }
        keys.sort();
        let mut listed = Vec::new();
        let mut pages = 0;
        let mut stream = client
            .list_objects_v2()
            .bucket(&bucket)
            .max_keys(7)
            .into_paginator()
            .send();
        while let Some(page) = stream.next().await {
            let page = page.unwrap();
            pages += 1;
            assert!(page.key_count().unwrap() <= 7);
            listed.extend(page.contents().iter().map(|o| o.key().unwrap().to_owned()));
            assert!(pages <= 10, "pagination does not end");
        }
        assert_eq!(listed, keys, "{transport:?}");
        assert_eq!(pages, keys.len().div_ceil(7));

        let mut prefixes = Vec::new();
        let mut stream = client
            .list_objects_v2()
            .bucket(&bucket)
            .delimiter("/")
            .max_keys(1)
            .into_paginator()
            .send();
        let mut top_level_keys = Vec::new();
        while let Some(page) = stream.next().await {
            let page = page.unwrap();
            prefixes.extend(
                page.common_prefixes()
                    .iter()
                    .map(|p| p.prefix().unwrap().to_owned()),
            );
            top_level_keys.extend(page.contents().iter().map(|o| o.key().unwrap().to_owned()));
            assert!(prefixes.len() + top_level_keys.len() <= 3);
        }
        assert_eq!(prefixes, ["dir/", "other/"]);
        assert_eq!(top_level_keys, ["top"]);
    }
}

#[tokio::test]
async fn ranged_gets() {
    let Some(server) = Server::start() else {
        return;
    };
    let body = data(3 * MIB + 123, 9);
    let len = body.len();
    for transport in TRANSPORTS {
        let client = server.client(transport);
        let bucket = bucket_name("ranges", transport);
        client.create_bucket().bucket(&bucket).send().await.unwrap();
        client
            .put_object()
            .bucket(&bucket)
            .key("r")
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        for (range, expected) in [
            ("bytes=0-0", &body[..1]),
            ("bytes=10-1000", &body[10..1001]),
            ("bytes=1048575-2097152", &body[1_048_575..2_097_153]),
            ("bytes=-100", &body[len - 100..]),
            ("bytes=3145000-", &body[3_145_000..]),
        ] {
            let got = client
                .get_object()
                .bucket(&bucket)
                .key("r")
                .range(range)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .unwrap();
            assert!(
                got.checksum_crc32().is_none(),
                "a ranged GET must not carry the full-object checksum"
            );
            assert!(got.content_range().unwrap().ends_with(&format!("/{len}")));
            let bytes = got.body.collect().await.unwrap().into_bytes();
            assert_eq!(&bytes[..], expected, "{range}");
        }
        let past_end = client
            .get_object()
            .bucket(&bucket)
            .key("r")
            .range(format!("bytes={len}-"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            past_end.into_service_error().meta().code(),
            Some("InvalidRange")
        );
    }
}

#[tokio::test]
async fn presigned_get_and_put_with_hyper() {
    let Some(server) = Server::start() else {
        return;
    };
    let presign = PresigningConfig::expires_in(Duration::from_secs(600)).unwrap();
    for transport in TRANSPORTS {
        let client = server.client(transport);
        let bucket = bucket_name("presigned", transport);
        client.create_bucket().bucket(&bucket).send().await.unwrap();
        let body = Bytes::from(data(2 * MIB + 1, 4));
        let put = client
            .put_object()
            .bucket(&bucket)
            .key("p")
            .presigned(presign.clone())
            .await
            .unwrap();
        let headers: Vec<(&str, &str)> = put.headers().collect();
        let (status, _, answer) = server
            .raw_request(transport, put.method(), put.uri(), &headers, body.clone())
            .await;
        assert_eq!(
            status,
            200,
            "{transport:?} presigned PUT: {}",
            String::from_utf8_lossy(&answer)
        );
        let get = client
            .get_object()
            .bucket(&bucket)
            .key("p")
            .presigned(presign.clone())
            .await
            .unwrap();
        let headers: Vec<(&str, &str)> = get.headers().collect();
        let (status, response_headers, got) = server
            .raw_request(transport, get.method(), get.uri(), &headers, Bytes::new())
            .await;
        assert_eq!(status, 200);
        assert_eq!(got, body, "{transport:?}");
        assert_eq!(
            response_headers.get("etag").unwrap().to_str().unwrap(),
            md5_etag(&body)
        );
        // A signature with one hex digit changed is refused.
        let uri = get.uri();
        let digit = uri.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
        let flipped = if &uri[digit..=digit] == "0" { "1" } else { "0" };
        let tampered = format!("{}{flipped}{}", &uri[..digit], &uri[digit + 1..]);
        let (status, _, _) = server
            .raw_request(transport, "GET", &tampered, &[], Bytes::new())
            .await;
        assert_eq!(status, 403);
        assert_eq!(get_bytes(&client, &bucket, "p").await, body.to_vec());
    }
}

#[tokio::test]
async fn https_file_upload_uses_the_unsigned_trailer() {
    // Bodies from files go aws-chunked; the server must strip the framing.
    let Some(server) = Server::start() else {
        return;
    };
    let client = server.client(Transport::Https);
    let bucket = bucket_name("framing", Transport::Https);
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("file.bin");
    let body = data(7 * MIB + 5, 11);
    std::fs::write(&path, &body).unwrap();
    let put = client
        .put_object()
        .bucket(&bucket)
        .key("from-file")
        .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
        .body(ByteStream::from_path(&path).await.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.checksum_crc64_nvme(),
        Some(checksum_b64("CRC64NVME", &body).as_str())
    );
    assert_eq!(get_bytes(&client, &bucket, "from-file").await, body);
    // A body read from a file is sent aws-chunked with the checksum in a trailer.
    let modes = logged_payload_modes(&server.log());
    assert_eq!(modes, ["STREAMING-UNSIGNED-PAYLOAD-TRAILER"]);
}
