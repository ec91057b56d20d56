//! Wildcard patterns of the policy language: `*` (any run of characters, `/` included) and `?`
//! (exactly one character), with `${…}` policy variables substituted from the request context.
//!
//! Invariants: a substituted variable value is matched literally (a `*` inside a user name is
//! not a wildcard); `${*}`, `${?}` and `${$}` stand for the literal characters; a variable whose
//! key is absent from the request makes the pattern match nothing (AWS: "if the key is not
//! present, the statement does not match"), never the empty string; matching is
//! O(pattern × text) with no recursion, so hostile patterns cannot blow the stack.

use super::condition::ContextKeys;

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyRun,
    AnyOne,
}

/// How letters compare: actions are case-insensitive, resources and most values are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Sensitive,
    Insensitive,
}

/// Expands `${key}` variables of `pattern` from `keys` into tokens. `None` when a variable's
/// key is missing or the pattern has an unterminated `${`.
fn tokens(pattern: &str, keys: Option<&ContextKeys>) -> Option<Vec<Token>> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(position) = rest.find(['*', '?', '$']) {
        out.extend(rest[..position].chars().map(Token::Literal));
        let tail = &rest[position..];
        if let Some(after) = tail.strip_prefix('*') {
            out.push(Token::AnyRun);
            rest = after;
        } else if let Some(after) = tail.strip_prefix('?') {
            out.push(Token::AnyOne);
            rest = after;
        } else if let Some(body) = tail.strip_prefix("${") {
            let end = body.find('}')?;
            let name = &body[..end];
            match name {
                "*" | "?" | "$" => out.extend(name.chars().map(Token::Literal)),
                _ => {
                    let value = keys?.single(name)?;
                    out.extend(value.chars().map(Token::Literal));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push(Token::Literal('$'));
            rest = &tail[1..];
        }
    }
    out.extend(rest.chars().map(Token::Literal));
    Some(out)
}

fn same(a: char, b: char, case: Case) -> bool {
    match case {
        Case::Sensitive => a == b,
        Case::Insensitive => a == b || a.to_lowercase().eq(b.to_lowercase()),
    }
}

/// Whether `text` matches the compiled `pattern` (classic two-pointer glob with backtracking to
/// the last `*`: linear in practice, quadratic at worst).
fn glob(pattern: &[Token], text: &[char], case: Case) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Token::AnyRun) => {
                resume = Some((p, t));
                p += 1;
                continue;
            }
            Some(Token::AnyOne) => {
                p += 1;
                t += 1;
                continue;
            }
            Some(Token::Literal(c)) if text.get(t).is_some_and(|x| same(*c, *x, case)) => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match resume {
            Some((star, from)) => {
                p = star + 1;
                t = from + 1;
                resume = Some((star, from + 1));
            }
            None => return false,
        }
    }
    pattern[p.min(pattern.len())..]
        .iter()
        .all(|token| *token == Token::AnyRun)
}

/// Whether `text` matches `pattern`, with `${…}` variables expanded from `keys` (pass `None`
/// for patterns where variables are not allowed, such as actions).
pub fn matches(pattern: &str, text: &str, case: Case, keys: Option<&ContextKeys>) -> bool {
    // Most patterns are literal or end in one `*`: compared without building token lists
    // (every request evaluates every statement's patterns).
    let special = |c: char| matches!(c, '*' | '?' | '$');
    let equal = |a: &str, b: &str| match case {
        Case::Sensitive => a == b,
        Case::Insensitive if a.is_ascii() && b.is_ascii() => a.eq_ignore_ascii_case(b),
        Case::Insensitive => a.to_lowercase() == b.to_lowercase(),
    };
    if !pattern.contains(special) {
        return equal(pattern, text);
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        if !prefix.contains(special) {
            return text
                .get(..prefix.len())
                .is_some_and(|head| text.is_char_boundary(prefix.len()) && equal(prefix, head));
        }
    }
    let Some(compiled) = tokens(pattern, keys) else {
        return false;
    };
    let text: Vec<char> = text.chars().collect();
    glob(&compiled, &text, case)
}

/// Whether `pattern` contains a wildcard or a variable (anything but a literal).
pub fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?']) || pattern.contains("${")
}

/// Substitutes `${…}` variables in a condition value, literally (no wildcards). `None` when a
/// variable's key is missing.
pub fn expand(value: &str, keys: &ContextKeys) -> Option<String> {
    if !value.contains("${") {
        return Some(value.to_string());
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(position) = rest.find("${") {
        out.push_str(&rest[..position]);
        let body = &rest[position + 2..];
        let end = body.find('}')?;
        let name = &body[..end];
        match name {
            "*" | "?" | "$" => out.push_str(name),
            _ => out.push_str(keys.single(name)?),
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        matches(pattern, text, Case::Sensitive, None)
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(m("*", ""));
        assert!(m("*", "arn:aws:s3:::b/a/b/c"));
        assert!(m("arn:aws:s3:::b/*", "arn:aws:s3:::b/x/y"));
        assert!(!m("arn:aws:s3:::b/*", "arn:aws:s3:::b"));
        assert!(m("arn:aws:s3:::b*", "arn:aws:s3:::b"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!m("*a*b*c*", "xxaxxcxxbxx"));
        assert!(m("a**b", "ab"));
        assert!(!m("abc", "abcd"));
        assert!(!m("abcd", "abc"));
        assert!(m("é?", "éé"));
    }

    #[test]
    fn case_follows_the_caller() {
        assert!(matches("s3:get*", "s3:GetObject", Case::Insensitive, None));
        assert!(!matches("s3:get*", "s3:GetObject", Case::Sensitive, None));
        // The literal and trailing-star fast paths agree with the general matcher.
        assert!(matches(
            "S3:GETOBJECT",
            "s3:GetObject",
            Case::Insensitive,
            None
        ));
        assert!(!matches(
            "S3:GETOBJECT",
            "s3:GetObject",
            Case::Sensitive,
            None
        ));
        assert!(matches("ÉTÉ", "été", Case::Insensitive, None));
        assert!(matches("été*", "ÉTÉ-x", Case::Insensitive, None));
        // A prefix that would end inside a multi-byte character does not match (or panic).
        assert!(!m("é*", "e\u{301}x"));
        assert!(!m("ab*", "a"));
        assert!(m("ab*", "ab"));
        assert!(!m("abc", "ab"));
    }

    #[test]
    fn hostile_patterns_finish() {
        let pattern = "*a".repeat(200);
        let text = "a".repeat(199);
        assert!(!m(&pattern, &text));
        assert!(m(&pattern, &"a".repeat(200)));
    }

    #[test]
    fn variables_are_literal_and_missing_ones_match_nothing() {
        let context = ContextKeys::from_pairs([("aws:username", "al*ce")]);
        let keys = Some(&context);
        let pattern = "arn:aws:s3:::home/${aws:username}/*";
        assert!(matches(
            pattern,
            "arn:aws:s3:::home/al*ce/x",
            Case::Sensitive,
            keys
        ));
        assert!(!matches(
            pattern,
            "arn:aws:s3:::home/alxyzce/x",
            Case::Sensitive,
            keys
        ));
        assert!(!matches("${aws:userid}", "", Case::Sensitive, keys));
        assert!(matches("a${*}b${?}${$}", "a*b?$", Case::Sensitive, keys));
        assert!(!matches("a${*}b", "axxb", Case::Sensitive, keys));
        assert!(!matches("${aws:username", "x", Case::Sensitive, keys));
        assert_eq!(
            expand("u-${aws:username}", &context).as_deref(),
            Some("u-al*ce")
        );
        assert_eq!(expand("${nope}", &context), None);
    }

    #[test]
    fn wildcard_detection() {
        assert!(has_wildcard("s3:Get*"));
        assert!(has_wildcard("s3:Get?bject"));
        assert!(!has_wildcard("s3:GetObject"));
    }
}
