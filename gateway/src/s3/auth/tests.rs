//! Authentication tests: the published AWS SigV4/SigV2 examples must verify, and every
//! tampering must map to the error code S3 answers with.

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use sha1::Sha1;

use super::*;

pub(crate) const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub(crate) const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

pub(crate) fn keyring() -> Keyring {
    Keyring::new(vec![(ACCESS_KEY.to_owned(), SECRET_KEY.to_owned())])
}

/// 2013-05-24T00:00:00Z, the time of every SigV4 example, plus `offset` seconds.
pub(crate) fn may_24_2013(offset: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600 + offset)
}

pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn run(
    method: Method,
    uri: &str,
    headers: &HeaderMap,
    now: SystemTime,
) -> Result<AuthContext, S3Error> {
    run_with(method, uri, headers, now, &AuthConfig::default())
}

fn run_with(
    method: Method,
    uri: &str,
    headers: &HeaderMap,
    now: SystemTime,
    cfg: &AuthConfig,
) -> Result<AuthContext, S3Error> {
    let uri: Uri = uri.parse().unwrap();
    authenticate(&method, &uri, headers, &keyring(), cfg, now)
}

fn v4_authorization(signed_headers: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20130524/us-east-1/s3/aws4_request,\
         SignedHeaders={signed_headers},Signature={signature}"
    )
}

const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const GET_OBJECT_SIGNATURE: &str =
    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

fn get_object_headers(signature: &str) -> HeaderMap {
    headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("range", "bytes=0-9"),
        ("x-amz-content-sha256", EMPTY),
        ("x-amz-date", "20130524T000000Z"),
        (
            "authorization",
            &v4_authorization("host;range;x-amz-content-sha256;x-amz-date", signature),
        ),
    ])
}

#[test]
fn aws_example_get_object_verifies() {
    let context = run(
        Method::GET,
        "/test.txt",
        &get_object_headers(GET_OBJECT_SIGNATURE),
        may_24_2013(60),
    )
    .unwrap();
    assert_eq!(context.access_key, ACCESS_KEY);
    assert_eq!(
        context.payload,
        PayloadMode::Sha256Hex(hex::decode(EMPTY).unwrap().try_into().unwrap())
    );
}

#[test]
fn aws_example_put_object_verifies() {
    let headers = headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("date", "Fri, 24 May 2013 00:00:00 GMT"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        (
            "x-amz-content-sha256",
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
        ),
        (
            "authorization",
            &v4_authorization(
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
            ),
        ),
    ]);
    let context = run(Method::PUT, "/test%24file.text", &headers, may_24_2013(0)).unwrap();
    assert!(matches!(context.payload, PayloadMode::Sha256Hex(_)));
    // The same request under another path must fail: the path is signed.
    let error = run(Method::PUT, "/test%24file.txt", &headers, may_24_2013(0)).unwrap_err();
    assert_eq!(error.code, S3ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn aws_example_queries_verify() {
    for (uri, signature) in [
        (
            "/?lifecycle",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ),
        (
            "/?max-keys=2&prefix=J",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ] {
        let headers = headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", EMPTY),
            ("x-amz-date", "20130524T000000Z"),
            (
                "authorization",
                &v4_authorization("host;x-amz-content-sha256;x-amz-date", signature),
            ),
        ]);
        run(Method::GET, uri, &headers, may_24_2013(0)).unwrap();
    }
}

#[test]
fn tampering_is_detected() {
    // One flipped hex digit in the signature.
    let flipped = GET_OBJECT_SIGNATURE.replacen('f', "e", 1);
    let error = run(
        Method::GET,
        "/test.txt",
        &get_object_headers(&flipped),
        may_24_2013(0),
    )
    .unwrap_err();
    assert_eq!(error.code, S3ErrorCode::SignatureDoesNotMatch);
    assert!(error
        .extra
        .iter()
        .any(|(name, value)| *name == "CanonicalRequest" && value.contains("range:bytes=0-9")));
    // A changed signed header.
    let mut headers = get_object_headers(GET_OBJECT_SIGNATURE);
    headers.insert("range", HeaderValue::from_static("bytes=0-10"));
    let error = run(Method::GET, "/test.txt", &headers, may_24_2013(0)).unwrap_err();
    assert_eq!(error.code, S3ErrorCode::SignatureDoesNotMatch);
    // Another method.
    let error = run(
        Method::HEAD,
        "/test.txt",
        &get_object_headers(GET_OBJECT_SIGNATURE),
        may_24_2013(0),
    )
    .unwrap_err();
    assert_eq!(error.code, S3ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn header_errors_match_s3() {
    let good = get_object_headers(GET_OBJECT_SIGNATURE);
    // Unknown access key.
    let mut headers = good.clone();
    let authorization = headers["authorization"]
        .to_str()
        .unwrap()
        .replace(ACCESS_KEY, "AKIDUNKNOWN");
    headers.insert("authorization", authorization.parse().unwrap());
    assert_eq!(
        run(Method::GET, "/test.txt", &headers, may_24_2013(0))
            .unwrap_err()
            .code,
        S3ErrorCode::InvalidAccessKeyId
    );
    // Clock skew beyond 15 minutes, either way.
    for now in [
        may_24_2013(16 * 60),
        may_24_2013(0) - Duration::from_secs(16 * 60),
    ] {
        assert_eq!(
            run(Method::GET, "/test.txt", &good, now).unwrap_err().code,
            S3ErrorCode::RequestTimeTooSkewed
        );
    }
    // Strict region: the error names the expected region.
    let cfg = AuthConfig {
        strict_region: Some("eu-west-1".into()),
        ..AuthConfig::default()
    };
    let error = run_with(Method::GET, "/test.txt", &good, may_24_2013(0), &cfg).unwrap_err();
    assert_eq!(error.code, S3ErrorCode::AuthorizationHeaderMalformed);
    assert!(error.extra.contains(&("Region", "eu-west-1".to_owned())));
    // An x-amz-* header outside SignedHeaders.
    let mut headers = good.clone();
    headers.insert("x-amz-meta-extra", HeaderValue::from_static("1"));
    let error = run(Method::GET, "/test.txt", &headers, may_24_2013(0)).unwrap_err();
    assert_eq!(error.code, S3ErrorCode::AccessDenied);
    assert!(error
        .extra
        .contains(&("HeadersNotSigned", "x-amz-meta-extra".to_owned())));
    // Host not signed.
    let mut headers = good.clone();
    headers.insert(
        "authorization",
        v4_authorization(
            "range;x-amz-content-sha256;x-amz-date",
            GET_OBJECT_SIGNATURE,
        )
        .parse()
        .unwrap(),
    );
    assert_eq!(
        run(Method::GET, "/test.txt", &headers, may_24_2013(0))
            .unwrap_err()
            .code,
        S3ErrorCode::AccessDenied
    );
    // Malformed credential and missing components.
    for authorization in [
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/aws4_request,SignedHeaders=host,Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host",
        "AWS4-HMAC-SHA256 garbage",
    ] {
        let mut headers = good.clone();
        headers.insert("authorization", authorization.parse().unwrap());
        assert_eq!(run(Method::GET, "/test.txt", &headers, may_24_2013(0)).unwrap_err().code, S3ErrorCode::AuthorizationHeaderMalformed, "{authorization}");
    }
    // Bad x-amz-content-sha256.
    let mut headers = good.clone();
    headers.insert("x-amz-content-sha256", HeaderValue::from_static("abc"));
    assert_eq!(
        run(Method::GET, "/test.txt", &headers, may_24_2013(0))
            .unwrap_err()
            .code,
        S3ErrorCode::InvalidArgument
    );
    // Unknown scheme, anonymous, and two mechanisms at once.
    let mut headers = good.clone();
    headers.insert("authorization", HeaderValue::from_static("Bearer x"));
    assert_eq!(
        run(Method::GET, "/test.txt", &headers, may_24_2013(0))
            .unwrap_err()
            .code,
        S3ErrorCode::InvalidArgument
    );
    assert_eq!(
        run(Method::GET, "/test.txt", &HeaderMap::new(), may_24_2013(0))
            .unwrap_err()
            .code,
        S3ErrorCode::AccessDenied
    );
    assert_eq!(
        run(
            Method::GET,
            "/test.txt?X-Amz-Signature=00",
            &good,
            may_24_2013(0)
        )
        .unwrap_err()
        .code,
        S3ErrorCode::InvalidArgument
    );
}

#[test]
fn canonical_query_reencodes_and_sorts() {
    let query = RawQuery::parse("b=2&a=x%2fy&c&empty=&sp=a%20b&plus=a+b&tilde=~&&");
    assert_eq!(
        sigv4::canonical_query(&query, false),
        "a=x%2Fy&b=2&c=&empty=&plus=a%2Bb&sp=a%20b&tilde=~"
    );
}

const PRESIGNED_GET: &str = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
    &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
    &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
    &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

#[test]
fn aws_example_presigned_get() {
    let host = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
    let context = run(Method::GET, PRESIGNED_GET, &host, may_24_2013(3600)).unwrap();
    assert_eq!(context.payload, PayloadMode::Unsigned);
    // Expired one second after X-Amz-Date + X-Amz-Expires.
    let error = run(Method::GET, PRESIGNED_GET, &host, may_24_2013(86_401)).unwrap_err();
    assert_eq!(
        (error.code, error.message.as_str()),
        (S3ErrorCode::AccessDenied, "Request has expired")
    );
    // Not valid yet.
    let error = run(
        Method::GET,
        PRESIGNED_GET,
        &host,
        may_24_2013(0) - Duration::from_secs(3600),
    )
    .unwrap_err();
    assert_eq!(error.code, S3ErrorCode::AccessDenied);
    // Flipped signature, and another key.
    let flipped = PRESIGNED_GET.replace("aeeed9", "aeeed8");
    assert_eq!(
        run(Method::GET, &flipped, &host, may_24_2013(0))
            .unwrap_err()
            .code,
        S3ErrorCode::SignatureDoesNotMatch
    );
    let other = PRESIGNED_GET.replace("/test.txt", "/test.txu");
    assert_eq!(
        run(Method::GET, &other, &host, may_24_2013(0))
            .unwrap_err()
            .code,
        S3ErrorCode::SignatureDoesNotMatch
    );
    // Expiry bounds.
    for expires in ["604801", "0", "-5", "soon"] {
        let uri = PRESIGNED_GET.replace("X-Amz-Expires=86400", &format!("X-Amz-Expires={expires}"));
        assert_eq!(
            run(Method::GET, &uri, &host, may_24_2013(0))
                .unwrap_err()
                .code,
            S3ErrorCode::AuthorizationQueryParametersError,
            "{expires}"
        );
    }
    let missing = PRESIGNED_GET.replace("&X-Amz-SignedHeaders=host", "");
    assert_eq!(
        run(Method::GET, &missing, &host, may_24_2013(0))
            .unwrap_err()
            .code,
        S3ErrorCode::AuthorizationQueryParametersError
    );
}

fn sigv2_headers(extra: &[(&str, &str)], signature: &str) -> HeaderMap {
    let mut map = headers(extra);
    map.insert(
        "authorization",
        format!("AWS {ACCESS_KEY}:{signature}").parse().unwrap(),
    );
    map
}

/// 2007-03-27T19:36:42Z, the time of the SigV2 examples.
fn march_27_2007() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_175_024_202)
}

/// Method, URI, headers and the published signature of one SigV2 example.
type SigV2Example = (
    Method,
    &'static str,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

#[test]
fn aws_sigv2_examples_verify() {
    let cases: Vec<SigV2Example> = vec![
        (
            Method::GET,
            "/photos/puppy.jpg",
            vec![
                ("host", "johnsmith.s3.amazonaws.com"),
                ("date", "Tue, 27 Mar 2007 19:36:42 +0000"),
            ],
            "bWq2s1WEIj+Ydj0vQ697zp+IXMU=",
        ),
        (
            Method::PUT,
            "/photos/puppy.jpg",
            vec![
                ("host", "johnsmith.s3.amazonaws.com"),
                ("date", "Tue, 27 Mar 2007 21:15:45 +0000"),
                ("content-type", "image/jpeg"),
                ("content-length", "94328"),
            ],
            "MyyxeRY7whkBe+bq8fHCL/2kKUg=",
        ),
        (
            Method::GET,
            "/?prefix=photos&max-keys=50&marker=puppy",
            vec![
                ("host", "johnsmith.s3.amazonaws.com"),
                ("date", "Tue, 27 Mar 2007 19:42:41 +0000"),
                ("user-agent", "Mozilla/5.0"),
            ],
            "htDYFYduRNen8P9ZfE/s9SuKy0U=",
        ),
        (
            Method::GET,
            "/?acl",
            vec![
                ("host", "johnsmith.s3.amazonaws.com"),
                ("date", "Tue, 27 Mar 2007 19:44:46 +0000"),
            ],
            "c2WLPFtWHVgbEmeEG93a4cG37dM=",
        ),
        (
            Method::GET,
            "/",
            vec![
                ("host", "s3.amazonaws.com"),
                ("date", "Wed, 28 Mar 2007 01:29:59 +0000"),
            ],
            "qGdzdERIC03wnaRNKh6OqZehG9s=",
        ),
        (
            Method::GET,
            "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re",
            vec![
                ("host", "s3.amazonaws.com"),
                ("date", "Wed, 28 Mar 2007 01:49:49 +0000"),
            ],
            "DNEZGsoieTZ92F3bUfSPQcbGmlM=",
        ),
        (
            Method::PUT,
            "/db-backup.dat.gz",
            vec![
                ("host", "static.johnsmith.net:8080"),
                ("date", "Tue, 27 Mar 2007 21:06:08 +0000"),
                ("x-amz-acl", "public-read"),
                ("content-type", "application/x-download"),
                ("content-md5", "4gJE4saaMU4BqNR0kLY+lw=="),
                ("x-amz-meta-reviewedby", "joe@johnsmith.net"),
                ("x-amz-meta-reviewedby", "jane@johnsmith.net"),
                ("x-amz-meta-filechecksum", "0x02661779"),
                ("x-amz-meta-checksumalgorithm", "crc32"),
                ("content-disposition", "attachment; filename=database.dat"),
                ("content-encoding", "gzip"),
                ("content-length", "5913339"),
            ],
            "ilyl83RwaSoYIEdixDQcA4OnAnc=",
        ),
    ];
    for (method, uri, pairs, signature) in cases {
        let headers = sigv2_headers(&pairs, signature);
        let date = pairs.iter().find(|(name, _)| *name == "date").unwrap().1;
        let now = sigv2::parse_http_date_lenient(date).unwrap() + Duration::from_secs(60);
        let context = run(method.clone(), uri, &headers, now)
            .unwrap_or_else(|error| panic!("{uri}: {error} {:?}", error.extra));
        assert_eq!(context.payload, PayloadMode::Unsigned);
        let tampered = sigv2_headers(
            &pairs,
            &signature.replacen(|c: char| c.is_ascii_lowercase(), "A", 1),
        );
        let error = run(method, uri, &tampered, now).unwrap_err();
        assert_eq!(error.code, S3ErrorCode::SignatureDoesNotMatch, "{uri}");
    }
}

fn sign_v2(string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(SECRET_KEY.as_bytes()).unwrap();
    mac.update(string_to_sign.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

#[test]
fn sigv2_s3cmd_style_requests() {
    // s3cmd sends only x-amz-date and signs an empty Date line; sub-resources are signed.
    let amz_date = "Fri, 24 May 2013 00:00:00 GMT";
    let string_to_sign =
        format!("GET\n\n\n\nx-amz-date:{amz_date}\n/bucket/dir/file.txt?uploadId=a%2Fb");
    let pairs = [("host", "127.0.0.1:9000"), ("x-amz-date", amz_date)];
    let headers = sigv2_headers(&pairs, &sign_v2(&string_to_sign.replace("a%2Fb", "a/b")));
    run(
        Method::GET,
        "/bucket/dir/file.txt?uploadId=a%2Fb&max-parts=5",
        &headers,
        may_24_2013(0),
    )
    .unwrap();
    // Skew applies to SigV2 too.
    assert_eq!(
        run(
            Method::GET,
            "/bucket/dir/file.txt?uploadId=a%2Fb",
            &headers,
            may_24_2013(3600)
        )
        .unwrap_err()
        .code,
        S3ErrorCode::RequestTimeTooSkewed
    );
    // An unsigned extra x-amz-* header changes the string to sign.
    let mut extra = headers.clone();
    extra.insert("x-amz-meta-a", HeaderValue::from_static("b"));
    assert_eq!(
        run(
            Method::GET,
            "/bucket/dir/file.txt?uploadId=a%2Fb",
            &extra,
            may_24_2013(0)
        )
        .unwrap_err()
        .code,
        S3ErrorCode::SignatureDoesNotMatch
    );
}

#[test]
fn sigv2_presigned_urls() {
    // The AWS example (virtual-hosted) and an `s3cmd signurl` path-style URL.
    let host = headers(&[("host", "johnsmith.s3.amazonaws.com")]);
    let uri = "/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620";
    run(Method::GET, uri, &host, march_27_2007()).unwrap();
    let error = run(
        Method::GET,
        uri,
        &host,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_175_139_621),
    )
    .unwrap_err();
    assert_eq!(
        (error.code, error.message.as_str()),
        (S3ErrorCode::AccessDenied, "Request has expired")
    );
    assert_eq!(
        run(Method::PUT, uri, &host, march_27_2007())
            .unwrap_err()
            .code,
        S3ErrorCode::SignatureDoesNotMatch
    );

    let signature = sign_v2("GET\n\n\n1369400000\n/bucket/a%20b.txt");
    let encoded: String =
        percent_encoding::utf8_percent_encode(&signature, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let uri = format!(
        "/bucket/a%20b.txt?AWSAccessKeyId={ACCESS_KEY}&Expires=1369400000&Signature={encoded}"
    );
    run(
        Method::GET,
        &uri,
        &headers(&[("host", "localhost:9000")]),
        may_24_2013(0),
    )
    .unwrap();
    // Same URL, virtual-hosted form.
    let uri =
        format!("/a%20b.txt?AWSAccessKeyId={ACCESS_KEY}&Expires=1369400000&Signature={encoded}");
    run(
        Method::GET,
        &uri,
        &headers(&[("host", "bucket.localhost:9000")]),
        may_24_2013(0),
    )
    .unwrap();
    assert_eq!(
        run(
            Method::GET,
            &uri,
            &headers(&[("host", "other.localhost:9000")]),
            may_24_2013(0)
        )
        .unwrap_err()
        .code,
        S3ErrorCode::SignatureDoesNotMatch
    );
}

#[test]
fn streaming_payload_modes() {
    // The seed request of the AWS aws-chunked example.
    let headers = headers(&[
        ("host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("content-length", "66824"),
        ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        (
            "authorization",
            &v4_authorization(
                "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
                "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
            ),
        ),
    ]);
    let context = run(
        Method::PUT,
        "/examplebucket/chunkObject.txt",
        &headers,
        may_24_2013(0),
    )
    .unwrap();
    let PayloadMode::StreamingSigned {
        seed_signature,
        signing_key,
        scope,
        timestamp,
    } = context.payload
    else {
        panic!("expected a signed streaming payload");
    };
    assert_eq!(
        hex::encode(seed_signature),
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    );
    assert_eq!(
        signing_key.0,
        derive_signing_key(SECRET_KEY, "20130524", "us-east-1")
    );
    assert_eq!(
        (scope.as_str(), timestamp.as_str()),
        ("20130524/us-east-1/s3/aws4_request", "20130524T000000Z")
    );
    assert_eq!(format!("{signing_key:?}"), "SigningKey(..)");
}

#[test]
fn requests_signed_by_sign_request_verify_and_tampering_fails() {
    let now = may_24_2013(0);
    let signed = sign_request(
        "GET",
        "127.0.0.1:9000",
        ("/_strata/admin/scrub", "x=1&a=b%20c"),
        EMPTY_SHA256_HEX,
        (ACCESS_KEY, SECRET_KEY),
        "us-east-1",
        now,
    )
    .unwrap();
    let mut pairs: Vec<(&str, &str)> = vec![("host", "127.0.0.1:9000")];
    pairs.extend(signed.iter().map(|(name, value)| (*name, value.as_str())));
    let map = headers(&pairs);
    let context = run(Method::GET, "/_strata/admin/scrub?x=1&a=b%20c", &map, now).unwrap();
    assert_eq!(context.access_key, ACCESS_KEY);
    let error = run(Method::GET, "/_strata/admin/cluster?x=1&a=b%20c", &map, now).unwrap_err();
    assert_eq!(error.code, S3ErrorCode::SignatureDoesNotMatch);

    let wrong = sign_request(
        "GET",
        "127.0.0.1:9000",
        ("/_strata/admin/scrub", ""),
        EMPTY_SHA256_HEX,
        (ACCESS_KEY, "not the secret"),
        "us-east-1",
        now,
    )
    .unwrap();
    let mut pairs: Vec<(&str, &str)> = vec![("host", "127.0.0.1:9000")];
    pairs.extend(wrong.iter().map(|(name, value)| (*name, value.as_str())));
    let error = run(Method::GET, "/_strata/admin/scrub", &headers(&pairs), now).unwrap_err();
    assert_eq!(error.code, S3ErrorCode::SignatureDoesNotMatch);
}

#[test]
fn a_signature_in_upper_case_hex_does_not_match() {
    let now = may_24_2013(0);
    let signed = sign_request(
        "GET",
        "127.0.0.1:9000",
        ("/bucket/key", ""),
        EMPTY_SHA256_HEX,
        (ACCESS_KEY, SECRET_KEY),
        "us-east-1",
        now,
    )
    .unwrap();
    let upper: Vec<(&str, String)> = signed
        .iter()
        .map(|(name, value)| match value.split_once("Signature=") {
            Some((head, signature)) if *name == "authorization" => (
                *name,
                format!("{head}Signature={}", signature.to_ascii_uppercase()),
            ),
            _ => (*name, value.clone()),
        })
        .collect();
    for (headers_sent, ok) in [(&signed, true), (&upper, false)] {
        let mut pairs: Vec<(&str, &str)> = vec![("host", "127.0.0.1:9000")];
        pairs.extend(
            headers_sent
                .iter()
                .map(|(name, value)| (*name, value.as_str())),
        );
        let result = run(Method::GET, "/bucket/key", &headers(&pairs), now);
        match ok {
            true => assert!(result.is_ok(), "{result:?}"),
            false => assert_eq!(result.unwrap_err().code, S3ErrorCode::SignatureDoesNotMatch),
        }
    }
}

#[test]
fn sigv2_bucket_requests_signed_with_a_trailing_slash_verify() {
    // botocore's HmacV1Auth signs `/bucket/` for bucket-level requests sent as `/bucket`.
    let date = "Fri, 24 May 2013 00:00:00 GMT";
    for (sent, signed) in [
        ("/bucket", "/bucket/"),
        ("/bucket/", "/bucket"),
        ("/bucket", "/bucket"),
    ] {
        let headers = sigv2_headers(
            &[("host", "127.0.0.1:9000"), ("date", date)],
            &sign_v2(&format!("GET\n\n\n{date}\n{signed}")),
        );
        run(Method::GET, sent, &headers, may_24_2013(0)).unwrap();
    }
    // An object path is never rewritten.
    let headers = sigv2_headers(
        &[("host", "127.0.0.1:9000"), ("date", date)],
        &sign_v2(&format!("GET\n\n\n{date}\n/bucket/key/")),
    );
    assert_eq!(
        run(Method::GET, "/bucket/key", &headers, may_24_2013(0))
            .unwrap_err()
            .code,
        S3ErrorCode::SignatureDoesNotMatch
    );
}

#[test]
fn http_dates_with_an_unknown_local_offset_parse() {
    // botocore's email.utils.formatdate(usegmt=False) writes `-0000`.
    let at = sigv2::parse_http_date_lenient("Fri, 24 May 2013 00:00:00 -0000").unwrap();
    assert_eq!(at, may_24_2013(0));
    assert_eq!(
        sigv2::parse_http_date_lenient("Fri, 24 May 2013 00:00:00 +0000"),
        Some(may_24_2013(0))
    );
    assert!(sigv2::parse_http_date_lenient("yesterday -0000").is_none());
}
