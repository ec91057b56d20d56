//! XML text escaping, the one rule for every S3 document: the response builders of `xml` and the
//! error documents of `error` both use it. A leaf module (it imports nothing of the crate), so
//! those two do not depend on each other.

/// XML-escapes text content (the one escaping rule for every S3 document).
pub fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry literally (keys may contain them), and carriage
            // return, which a parser would read back as a line feed (XML end-of-line handling;
            // AWS writes `&#13;`). Found by the `xml` fuzz target through a tag value.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => {
                out.push_str(&format!("&#x{:X};", c as u32));
            }
            c => out.push(c),
        }
    }
}
