//! S3 XML: a small writer for response documents and serde models for the request documents
//! (CompleteMultipartUpload, Delete).
//!
//! Responses are written element by element with escaping done in one place
//! ([`XmlWriter::text`]); request bodies are size-capped by the caller before parsing and any
//! parse failure is `MalformedXML`.

use serde::Deserialize;

use super::error::{S3Error, S3ErrorCode};
use super::escape::escape_into;

/// The S3 namespace every response root carries.
pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Builds an XML document; elements are written in call order.
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    /// Starts a document with the XML declaration and `<root xmlns="…">`.
    pub fn new(root: &str) -> XmlWriter {
        let mut out = String::with_capacity(1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
        out.push_str(root);
        out.push_str(" xmlns=\"");
        out.push_str(S3_NAMESPACE);
        out.push_str("\">");
        XmlWriter { out }
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `<name k="v" …>`: each attribute value is escaped (names are the caller's constants).
    pub fn open_with_attributes(&mut self, name: &str, attributes: &[(&str, &str)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attributes {
            self.out.push(' ');
            self.out.push_str(key);
            self.out.push_str("=\"");
            escape_into(&mut self.out, value);
            self.out.push('"');
        }
        self.out.push('>');
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `<name>escaped value</name>`.
    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.open(name);
        escape_into(&mut self.out, value);
        self.close(name)
    }

    /// `<name>value</name>` only when `value` is present.
    pub fn optional(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.text(name, v);
        }
        self
    }

    /// Closes the root element and returns the document.
    pub fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.out
    }
}

/// ISO-8601 with milliseconds, as S3 writes `LastModified` in XML.
pub fn iso8601(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let millis = (ms % 1000) as u32;
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            millis
        ),
        Err(_) => "1970-01-01T00:00:00.000Z".to_string(),
    }
}

/// `<CompleteMultipartUpload>` request body.
#[derive(Debug, Deserialize)]
pub struct CompleteMultipartUploadXml {
    #[serde(rename = "Part", default)]
    pub parts: Vec<CompletePartXml>,
}

#[derive(Debug, Deserialize)]
pub struct CompletePartXml {
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
    #[serde(rename = "ChecksumCRC32")]
    pub checksum_crc32: Option<String>,
    #[serde(rename = "ChecksumCRC32C")]
    pub checksum_crc32c: Option<String>,
    #[serde(rename = "ChecksumCRC64NVME")]
    pub checksum_crc64nvme: Option<String>,
    #[serde(rename = "ChecksumSHA1")]
    pub checksum_sha1: Option<String>,
    #[serde(rename = "ChecksumSHA256")]
    pub checksum_sha256: Option<String>,
}

/// `<Delete>` request body of DeleteObjects.
#[derive(Debug, Deserialize)]
pub struct DeleteXml {
    #[serde(rename = "Object", default)]
    pub objects: Vec<DeleteObjectXml>,
    #[serde(rename = "Quiet", default)]
    pub quiet: bool,
}

#[derive(Debug, Deserialize)]
pub struct DeleteObjectXml {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "VersionId")]
    pub version_id: Option<String>,
    /// Conditional delete of this key (S3's `If-Match` per object).
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
}

/// `<CreateBucketConfiguration>` request body of CreateBucket (only validated: the region is
/// the server's).
#[derive(Debug, Deserialize)]
pub struct CreateBucketConfigurationXml {
    #[serde(rename = "LocationConstraint")]
    pub location_constraint: Option<String>,
}

/// Parses a request document whose root element must be `root`; any failure is `MalformedXML`.
pub fn parse_document<T: serde::de::DeserializeOwned>(
    body: &[u8],
    root: &str,
) -> Result<T, S3Error> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut buffer = Vec::new();
    // The root is the first element after the declaration, comments and whitespace.
    for _ in 0..64 {
        match reader.read_event_into(&mut buffer) {
            Ok(quick_xml::events::Event::Start(start) | quick_xml::events::Event::Empty(start)) => {
                if start.local_name().as_ref() != root.as_bytes() {
                    return Err(malformed());
                }
                return parse(body);
            }
            Ok(quick_xml::events::Event::Eof) | Err(_) => return Err(malformed()),
            Ok(_) => buffer.clear(),
        }
    }
    Err(malformed())
}

/// Parses a request document; any failure is `MalformedXML`.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, S3Error> {
    let text = std::str::from_utf8(body).map_err(|_| malformed())?;
    check_prolog_only(text)?;
    quick_xml::de::from_str(text).map_err(|_| malformed())
}

/// Refuses a DOCTYPE or XML declaration once the root element has started (XML allows them in
/// the prolog only): quick-xml 0.38's deserializer panics (`unreachable!` in `read_text`) on a
/// DOCTYPE between two pieces of text, e.g. `<a><b>x<!DOCTYPE d>y` (found by the `xml` fuzz
/// target). One pass over the events; it ends at the end of the (size-capped) body.
fn check_prolog_only(text: &str) -> Result<(), S3Error> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut started = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(_) | Event::Empty(_)) => started = true,
            Ok(Event::DocType(_) | Event::Decl(_)) if started => return Err(malformed()),
            Ok(Event::Eof) => return Ok(()),
            Ok(_) => {}
            Err(_) => return Err(malformed()),
        }
    }
}

fn malformed() -> S3Error {
    S3Error::new(S3ErrorCode::MalformedXML)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_control_characters() {
        let mut w = XmlWriter::new("R");
        w.text("Key", "a&b<c>\"'\u{1}\r\n");
        let doc = w.finish("R");
        assert!(
            doc.contains("<Key>a&amp;b&lt;c&gt;&quot;&apos;&#x1;&#xD;\n</Key>"),
            "{doc}"
        );
    }

    #[test]
    fn escapes_attribute_values() {
        let mut w = XmlWriter::new("R");
        w.open_with_attributes("G", &[("a", "x\"<&"), ("b:c", "y")])
            .close("G");
        let doc = w.finish("R");
        assert!(
            doc.contains("<G a=\"x&quot;&lt;&amp;\" b:c=\"y\"></G>"),
            "{doc}"
        );
    }

    #[test]
    fn parses_complete_and_delete_documents() {
        let doc = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
            <Part><ETag>"abc"</ETag><PartNumber>1</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>
            <Part><PartNumber>2</PartNumber><ETag>def</ETag></Part></CompleteMultipartUpload>"#;
        let parsed: CompleteMultipartUploadXml = parse(doc).unwrap();
        assert_eq!(parsed.parts.len(), 2);
        assert_eq!(parsed.parts[0].etag, "\"abc\"");
        assert_eq!(parsed.parts[0].checksum_crc32.as_deref(), Some("AAAAAA=="));
        let doc = b"<Delete><Quiet>true</Quiet><Object><Key>a b</Key></Object><Object><Key>c</Key></Object></Delete>";
        let parsed: DeleteXml = parse(doc).unwrap();
        assert!(parsed.quiet);
        assert_eq!(parsed.objects.len(), 2);
        assert!(parse::<DeleteXml>(b"<Delete><Object>").is_err());
    }

    /// Found by the `xml` fuzz target: quick-xml's deserializer panicked on a DOCTYPE between
    /// two pieces of text; now every such document is `MalformedXML`.
    #[test]
    fn doctype_or_declaration_inside_the_root_is_malformed() {
        for doc in [
            &b"<><Object><Key>\0<!DOCTYPEg>R"[..],
            b"<Delete><Object><Key>a<!DOCTYPE d>b</Key></Object></Delete>",
            b"<Delete><Object><Key>a<?xml version=\"1.0\"?>b</Key></Object></Delete>",
        ] {
            assert_eq!(
                parse::<DeleteXml>(doc).unwrap_err().code,
                S3ErrorCode::MalformedXML
            );
        }
        // Processing instructions and comments may sit inside elements.
        let parsed: DeleteXml =
            parse(b"<Delete><Object><Key>a<?pi x?>b<!-- c -->c</Key></Object></Delete>").unwrap();
        assert_eq!(parsed.objects[0].key, "abc");
        let parsed: DeleteXml =
            parse(b"<?xml version=\"1.0\"?><!DOCTYPE Delete><Delete><Object><Key>k</Key></Object></Delete>")
                .unwrap();
        assert_eq!(parsed.objects[0].key, "k");
    }

    #[test]
    fn formats_timestamps_like_s3() {
        assert_eq!(iso8601(1_255_369_830_123), "2009-10-12T17:50:30.123Z");
    }
}
