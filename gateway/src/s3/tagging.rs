//! Object tag sets: parsing the `x-amz-tagging` header (URL query form) and the `<Tagging>`
//! XML document, S3's limits, and how a tag set is kept with an object.
//!
//! Storage: a tag set lives in the version's stored headers under [`TAGGING_HEADER`], in a
//! canonical URL-encoded form (the way MinIO keeps tags in its object metadata), so that a
//! copy with the COPY directive and a multipart upload carry it along without a catalog format
//! change. The object handlers never echo that entry as a response header; they send
//! `x-amz-tagging-count` instead.
//!
//! Limits (S3 "Categorizing your storage using tags"): at most 10 tags per object, keys of
//! 1–128 Unicode characters, values of at most 256, keys unique, and no character that an XML
//! 1.0 document cannot carry (GetObjectTagging must be able to send the tag set back). Anything
//! else is `InvalidTag`.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;

use super::error::{S3Error, S3ErrorCode};
use super::xml::{parse, XmlWriter};

/// Name of the stored-header entry holding an object's tag set.
pub const TAGGING_HEADER: &str = "x-amz-tagging";
/// Most tags on one object.
pub const MAX_TAGS: usize = 10;
/// Longest tag key, in characters.
pub const MAX_KEY_CHARS: usize = 128;
/// Longest tag value, in characters.
pub const MAX_VALUE_CHARS: usize = 256;
/// Largest PutObjectTagging document read.
pub const MAX_TAGGING_BODY: usize = 64 * 1024;

/// Unreserved characters stay literal in the stored form.
const TAG_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// An ordered list of `(key, value)` tags.
pub type TagSet = Vec<(String, String)>;

fn invalid_tag(message: impl Into<String>) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidTag).with_message(message)
}

/// Checks S3's tag limits.
pub fn validate(tags: &TagSet) -> Result<(), S3Error> {
    if tags.len() > MAX_TAGS {
        return Err(invalid_tag("Object tags cannot be greater than 10"));
    }
    for (index, (key, value)) in tags.iter().enumerate() {
        let key_chars = key.chars().count();
        if key_chars == 0 || key_chars > MAX_KEY_CHARS || !key.chars().all(is_xml_char) {
            return Err(invalid_tag("The TagKey you have provided is invalid"));
        }
        if value.chars().count() > MAX_VALUE_CHARS || !value.chars().all(is_xml_char) {
            return Err(invalid_tag("The TagValue you have provided is invalid"));
        }
        if tags.iter().take(index).any(|(other, _)| other == key) {
            return Err(invalid_tag(
                "Cannot provide multiple Tags with the same key",
            ));
        }
    }
    Ok(())
}

/// True for the characters of XML 1.0's `Char` production: no control character but tab, line
/// feed and carriage return, no U+FFFE or U+FFFF. A tag holding any other one would be written
/// into a `<Tagging>` answer that no XML parser (ours included) accepts.
fn is_xml_char(c: char) -> bool {
    !matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// Decodes one URL-form component (`+` is a space, as `urlencode` writes it).
fn decode_form(text: &str) -> Result<String, S3Error> {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| invalid_tag("The tag set is not valid UTF-8"))
}

/// Parses `k1=v1&k2=v2` (the `x-amz-tagging` header and the stored form) and validates it.
pub fn parse_query_form(text: &str) -> Result<TagSet, S3Error> {
    let mut tags = TagSet::new();
    for piece in text.split('&').filter(|p| !p.is_empty()) {
        if tags.len() > MAX_TAGS {
            break; // validate() reports it; do not decode an unbounded list
        }
        let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
        tags.push((decode_form(key)?, decode_form(value)?));
    }
    validate(&tags)?;
    Ok(tags)
}

/// The canonical stored form of a tag set (`None` for an empty set).
pub fn to_query_form(tags: &TagSet) -> Option<String> {
    if tags.is_empty() {
        return None;
    }
    let pieces: Vec<String> = tags
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, TAG_ENCODE_SET),
                utf8_percent_encode(v, TAG_ENCODE_SET)
            )
        })
        .collect();
    Some(pieces.join("&"))
}

/// The tag set kept in an object's stored headers (empty if none or unreadable).
pub fn stored_tags(headers: &[(String, String)]) -> TagSet {
    headers
        .iter()
        .find(|(name, _)| name == TAGGING_HEADER)
        .and_then(|(_, value)| parse_query_form(value).ok())
        .unwrap_or_default()
}

/// Replaces the tag entry of a stored-header list.
pub fn replace_stored_tags(headers: &mut Vec<(String, String)>, tags: &TagSet) {
    headers.retain(|(name, _)| name != TAGGING_HEADER);
    if let Some(form) = to_query_form(tags) {
        headers.push((TAGGING_HEADER.to_string(), form));
    }
}

/// The tag set a write request asks for with `x-amz-tagging` (validated), if any.
pub fn request_tags(headers: &http::HeaderMap) -> Result<Option<TagSet>, S3Error> {
    match headers.get(TAGGING_HEADER) {
        None => Ok(None),
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| invalid_tag("The x-amz-tagging header is not valid text"))?;
            parse_query_form(text).map(Some)
        }
    }
}

#[derive(Debug, Deserialize)]
struct TaggingXml {
    #[serde(rename = "TagSet")]
    tag_set: TagSetXml,
}

#[derive(Debug, Deserialize, Default)]
struct TagSetXml {
    #[serde(rename = "Tag", default)]
    tags: Vec<TagXml>,
}

#[derive(Debug, Deserialize)]
struct TagXml {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value", default)]
    value: String,
}

/// Parses and validates a `<Tagging><TagSet><Tag>…` document.
pub fn parse_tagging_xml(body: &[u8]) -> Result<TagSet, S3Error> {
    let document: TaggingXml = parse(body)?;
    let tags: TagSet = document
        .tag_set
        .tags
        .into_iter()
        .map(|t| (t.key, t.value))
        .collect();
    validate(&tags)?;
    Ok(tags)
}

/// The `<Tagging>` response document.
pub fn tagging_xml(tags: &TagSet) -> String {
    let mut w = XmlWriter::new("Tagging");
    w.open("TagSet");
    for (key, value) in tags {
        w.open("Tag")
            .text("Key", key)
            .text("Value", value)
            .close("Tag");
    }
    w.close("TagSet");
    w.finish("Tagging")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(result: Result<TagSet, S3Error>) -> S3ErrorCode {
        result.unwrap_err().code
    }

    #[test]
    fn header_form_round_trips_through_the_stored_form() {
        let tags = parse_query_form("a=1&b+c=x%2By&empty=&%C3%BC=%26%3D").unwrap();
        assert_eq!(
            tags,
            vec![
                ("a".to_string(), "1".to_string()),
                ("b c".to_string(), "x+y".to_string()),
                ("empty".to_string(), String::new()),
                ("ü".to_string(), "&=".to_string()),
            ]
        );
        let stored = to_query_form(&tags).unwrap();
        assert_eq!(parse_query_form(&stored).unwrap(), tags);
        assert_eq!(to_query_form(&Vec::new()), None);
    }

    #[test]
    fn limits_are_s3s() {
        let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert_eq!(
            code(parse_query_form(&eleven.join("&"))),
            S3ErrorCode::InvalidTag
        );
        let ten: Vec<String> = (0..10).map(|i| format!("k{i}=v")).collect();
        assert_eq!(parse_query_form(&ten.join("&")).unwrap().len(), 10);
        let key128 = "ü".repeat(128);
        assert!(parse_query_form(&format!("{key128}=v")).is_ok());
        assert_eq!(
            code(parse_query_form(&format!("{key128}x=v"))),
            S3ErrorCode::InvalidTag
        );
        let value256 = "v".repeat(256);
        assert!(parse_query_form(&format!("k={value256}")).is_ok());
        assert_eq!(
            code(parse_query_form(&format!("k={value256}v"))),
            S3ErrorCode::InvalidTag
        );
        assert_eq!(code(parse_query_form("=v")), S3ErrorCode::InvalidTag);
        assert_eq!(code(parse_query_form("k=1&k=2")), S3ErrorCode::InvalidTag);
        assert_eq!(code(parse_query_form("k=%FF")), S3ErrorCode::InvalidTag);
    }

    #[test]
    fn xml_documents_parse_and_render() {
        let doc = br#"<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>
            <Tag><Key>a</Key><Value>1 &amp; 2</Value></Tag><Tag><Key>b</Key><Value></Value></Tag>
            </TagSet></Tagging>"#;
        let tags = parse_tagging_xml(doc).unwrap();
        assert_eq!(
            tags,
            vec![
                ("a".to_string(), "1 & 2".to_string()),
                ("b".to_string(), String::new())
            ]
        );
        let rendered = tagging_xml(&tags);
        assert_eq!(parse_tagging_xml(rendered.as_bytes()).unwrap(), tags);
        assert_eq!(
            code(parse_tagging_xml(b"<Tagging><TagSet><Tag>")),
            S3ErrorCode::MalformedXML
        );
        assert_eq!(
            parse_tagging_xml(b"<Tagging><TagSet></TagSet></Tagging>").unwrap(),
            Vec::new()
        );
    }

    /// Found by the `xml` fuzz target: a NUL (raw in the request document) was accepted, and
    /// GetObjectTagging then wrote `&#x0;`, which no XML parser accepts.
    #[test]
    fn tags_xml_cannot_carry_are_invalid() {
        let raw_nul = b"<Tagging><TagSet><Tag><Key>user</Key><Value>js\x01\x00mith</Value></Tag></TagSet></Tagging>";
        assert_eq!(code(parse_tagging_xml(raw_nul)), S3ErrorCode::InvalidTag);
        let escaped =
            b"<Tagging><TagSet><Tag><Key>k&#x1F;</Key><Value>v</Value></Tag></TagSet></Tagging>";
        assert!(matches!(
            code(parse_tagging_xml(escaped)),
            S3ErrorCode::InvalidTag | S3ErrorCode::MalformedXML
        ));
        assert_eq!(code(parse_query_form("k=a%00b")), S3ErrorCode::InvalidTag);
        assert_eq!(
            code(parse_query_form("k%EF%BF%BF=v")),
            S3ErrorCode::InvalidTag
        );
        // Tab, line feed and carriage return are XML characters and round-trip.
        let tags = vec![("k".to_string(), "a\tb\nc\rd".to_string())];
        assert!(validate(&tags).is_ok());
        assert_eq!(
            parse_tagging_xml(tagging_xml(&tags).as_bytes()).unwrap(),
            tags
        );
    }

    #[test]
    fn stored_tags_are_replaced_not_duplicated() {
        let mut headers = vec![("cache-control".to_string(), "no-cache".to_string())];
        replace_stored_tags(&mut headers, &vec![("a".into(), "1".into())]);
        replace_stored_tags(&mut headers, &vec![("b".into(), "2".into())]);
        assert_eq!(stored_tags(&headers), vec![("b".into(), "2".into())]);
        replace_stored_tags(&mut headers, &Vec::new());
        assert_eq!(headers.len(), 1);
    }
}
