//! Normalising transformations applied to a field before matching.
//!
//! They follow the OWASP Core Rule Set's `t:` actions (and Suricata's
//! transforms): an attacker can spell `<script>` as `%253Cscript%253E`,
//! `&lt;script&gt;` or `<ScRiPt>`, and a rule written against the canonical form
//! should still see it. Each transform is a pure function of bytes to bytes,
//! never grows its input by more than a constant factor, and never fails.

use std::fmt;

/// How many times [`Transform::UrlDecode`] decodes at most. Double and triple
/// encoding are common evasions; more passes than this only burn time.
pub const URL_DECODE_PASSES: usize = 4;

/// One normalising step. A rule lists them in the order they apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transform {
    /// `%XX`, `%uXXXX` and `+` decoded, repeated until nothing changes (at most
    /// [`URL_DECODE_PASSES`] passes). Invalid escapes are kept as they are.
    UrlDecode,
    /// Named (`&lt;` and the others HTML authors use in attacks) and numeric
    /// (`&#60;`, `&#x3c;`, with or without the `;`) character references.
    HtmlEntityDecode,
    /// ASCII lowercase.
    Lowercase,
    /// Every run of whitespace (space, tab, CR, LF, FF, VT, NBSP) becomes one space.
    CompressWhitespace,
    /// NUL bytes removed.
    RemoveNulls,
    /// C-style comments `/* ... */` (SQL inline comments) become one space.
    /// A comment closes within its line and parameter (before a newline or
    /// `&`) or is not a comment: the bytes stay as they are.
    ReplaceComments,
}

impl Transform {
    /// Every transform with its rule-file name.
    pub const ALL: [(Transform, &'static str); 6] = [
        (Transform::UrlDecode, "url_decode"),
        (Transform::HtmlEntityDecode, "html_entity_decode"),
        (Transform::Lowercase, "lowercase"),
        (Transform::CompressWhitespace, "compress_whitespace"),
        (Transform::RemoveNulls, "remove_nulls"),
        (Transform::ReplaceComments, "replace_comments"),
    ];

    /// The transform named `name` in a rule file.
    pub fn from_name(name: &str) -> Option<Transform> {
        Transform::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(t, _)| *t)
    }

    /// The rule-file name.
    pub fn name(self) -> &'static str {
        Transform::ALL
            .iter()
            .find(|(t, _)| *t == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }

    /// Applies this transform to `input`, writing the result into `out`
    /// (cleared first).
    pub fn apply(self, input: &[u8], out: &mut Vec<u8>) {
        out.clear();
        match self {
            Transform::UrlDecode => {
                url_decode_once(input, out);
                url_decode_again(out, &mut Vec::new());
            }
            Transform::HtmlEntityDecode => html_entity_decode(input, out),
            Transform::Lowercase => {
                out.extend_from_slice(input);
                out.make_ascii_lowercase();
            }
            Transform::CompressWhitespace => compress_whitespace(input, out),
            Transform::RemoveNulls => {
                for run in input.split(|&b| b == 0) {
                    out.extend_from_slice(run);
                }
            }
            Transform::ReplaceComments => replace_comments(input, out),
        }
    }
}

impl Transform {
    /// Whether a search shows `bytes` hold nothing this transform changes:
    /// no `%` or `+` to URL-decode, no `&` to start an entity, no NUL, no
    /// `/*` to open a comment. Cheaper than the transform's copy.
    fn leaves_unchanged(self, bytes: &[u8]) -> bool {
        match self {
            Transform::UrlDecode => memchr::memchr2(b'%', b'+', bytes).is_none(),
            Transform::HtmlEntityDecode => memchr::memchr(b'&', bytes).is_none(),
            Transform::RemoveNulls => memchr::memchr(0, bytes).is_none(),
            Transform::ReplaceComments => memchr::memmem::find(bytes, b"/*").is_none(),
            Transform::Lowercase | Transform::CompressWhitespace => false,
        }
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Applies `chain` in order to `input`; the result is left in `out`.
/// `scratch` is reused between calls to avoid allocation.
///
/// The bytes are those of [`Transform::apply`] step by step, but a step is
/// done in place where it can be (lowercase, NUL removal) and skipped when a
/// search shows it has nothing to change (no `%` or `+` to URL-decode, no
/// `&` to start an entity, no `/*` to open a comment): most requests carry
/// none of them, and each skipped step saves a copy of the field.
pub fn apply_chain(chain: &[Transform], input: &[u8], out: &mut Vec<u8>, scratch: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(input);
    for &t in chain {
        match t {
            Transform::Lowercase => out.make_ascii_lowercase(),
            _ if t.leaves_unchanged(out) => {}
            Transform::RemoveNulls => out.retain(|&b| b != 0),
            Transform::UrlDecode => {
                url_decode_once(out, scratch);
                std::mem::swap(out, scratch);
                url_decode_again(out, scratch);
            }
            _ => {
                t.apply(out, scratch);
                std::mem::swap(out, scratch);
            }
        }
    }
}

/// The URL-decoding passes after the first: `decoded` holds the first pass's
/// output and is decoded again while it still holds a `%` and a pass
/// changes it, up to [`URL_DECODE_PASSES`] in all.
fn url_decode_again(decoded: &mut Vec<u8>, scratch: &mut Vec<u8>) {
    for _ in 1..URL_DECODE_PASSES {
        if !decoded.contains(&b'%') {
            break;
        }
        url_decode_once(decoded, scratch);
        if scratch == decoded {
            break;
        }
        std::mem::swap(decoded, scratch);
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex4(digits: &[u8]) -> Option<u32> {
    digits
        .iter()
        .try_fold(0u32, |acc, &d| Some((acc << 4) | u32::from(hex_value(d)?)))
}

fn push_utf8(code: u32, out: &mut Vec<u8>) {
    let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

fn url_decode_once(input: &[u8], out: &mut Vec<u8>) {
    out.clear();
    rewrite(
        input,
        out,
        |rest| memchr::memchr2(b'%', b'+', rest),
        decode_escape,
    );
}

/// Copies `input` to `out` as runs, up to each position `next` finds (the
/// next byte the transform acts on); there `act` writes the replacement and
/// returns how many input bytes it used (at least one).
fn rewrite(
    input: &[u8],
    out: &mut Vec<u8>,
    next: impl Fn(&[u8]) -> Option<usize>,
    mut act: impl FnMut(&[u8], usize, &mut Vec<u8>) -> usize,
) {
    let mut i = 0;
    while i < input.len() {
        let run = next(&input[i..]).unwrap_or(input.len() - i);
        out.extend_from_slice(&input[i..i + run]);
        i += run;
        if i == input.len() {
            break;
        }
        i += act(input, i, out);
    }
}

/// Decodes the `+` or `%` escape at `input[i]` into `out` and returns the
/// bytes it used; a `%` that starts no valid escape is kept (1 byte).
fn decode_escape(input: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
    if input[i] == b'+' {
        out.push(b' ');
        return 1;
    }
    // %uXXXX (IIS-style Unicode escape)
    if matches!(input.get(i + 1), Some(b'u' | b'U'))
        && let Some(code) = input.get(i + 2..i + 6).and_then(hex4)
    {
        // Full-width ASCII (U+FF01..U+FF5E) folds to ASCII, as IIS does.
        if (0xff01..=0xff5e).contains(&code) {
            out.push((code - 0xff01 + 0x21) as u8);
        } else {
            push_utf8(code, out);
        }
        return 6;
    }
    if let (Some(&h), Some(&l)) = (input.get(i + 1), input.get(i + 2))
        && let (Some(h), Some(l)) = (hex_value(h), hex_value(l))
    {
        out.push((h << 4) | l);
        return 3;
    }
    out.push(input[i]);
    1
}

const NAMED_ENTITIES: [(&[u8], &[u8]); 14] = [
    (b"lt", b"<"),
    (b"gt", b">"),
    (b"amp", b"&"),
    (b"quot", b"\""),
    (b"apos", b"'"),
    (b"nbsp", b" "),
    (b"colon", b":"),
    (b"lpar", b"("),
    (b"rpar", b")"),
    (b"sol", b"/"),
    (b"bsol", b"\\"),
    (b"tab", b"\t"),
    (b"newline", b"\n"),
    (b"equals", b"="),
];

fn html_entity_decode(input: &[u8], out: &mut Vec<u8>) {
    rewrite(input, out, |rest| memchr::memchr(b'&', rest), decode_entity);
}

/// Decodes the character reference at `input[i]` (an `&`) into `out` and
/// returns the bytes it used; a `&` that starts no reference is kept (1 byte).
fn decode_entity(input: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
    let rest = &input[i + 1..];
    if let Some(after_hash) = rest.strip_prefix(b"#") {
        let (hex, digits) = match after_hash.first() {
            Some(b'x' | b'X') => (true, &after_hash[1..]),
            _ => (false, after_hash),
        };
        let mut code: u32 = 0;
        let mut n = 0;
        for &d in digits.iter().take(8) {
            let v = if hex {
                hex_value(d)
            } else {
                d.is_ascii_digit().then(|| d - b'0')
            };
            let Some(v) = v else { break };
            code = code * if hex { 16 } else { 10 } + u32::from(v);
            n += 1;
        }
        if n > 0 {
            push_utf8(code, out);
            let mut consumed = 1 + 1 + usize::from(hex) + n;
            if input.get(i + consumed) == Some(&b';') {
                consumed += 1;
            }
            return consumed;
        }
    } else if let Some((name, value)) = NAMED_ENTITIES.iter().find(|(name, _)| {
        rest.len() > name.len()
            && rest[..name.len()].eq_ignore_ascii_case(name)
            && rest[name.len()] == b';'
    }) {
        out.extend_from_slice(value);
        return 1 + name.len() + 1;
    }
    out.push(b'&');
    1
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0)
}

fn compress_whitespace(input: &[u8], out: &mut Vec<u8>) {
    let mut rest = input;
    while !rest.is_empty() {
        // A run of other bytes is copied whole, then a run of whitespace
        // becomes one space.
        let word = rest.iter().position(|&b| is_space(b)).unwrap_or(rest.len());
        out.extend_from_slice(&rest[..word]);
        rest = &rest[word..];
        let space = rest
            .iter()
            .position(|&b| !is_space(b))
            .unwrap_or(rest.len());
        if space > 0 {
            out.push(b' ');
        }
        rest = &rest[space..];
    }
}

fn replace_comments(input: &[u8], out: &mut Vec<u8>) {
    rewrite(
        input,
        out,
        |rest| memchr::memchr(b'/', rest),
        |input, i, out| match comment_at(input, i) {
            Some(len) => {
                out.push(b' ');
                len
            }
            None => {
                out.push(b'/');
                1
            }
        },
    );
}

/// The length of the comment that starts at `input[i]`, if one does.
///
/// The comment must close before the end of its line or parameter: the
/// payload is a whole request, and `Accept: */*` in a header must not
/// swallow the body (nor let an attacker hide a payload between two
/// far-apart comment markers).
fn comment_at(input: &[u8], i: usize) -> Option<usize> {
    if !input[i..].starts_with(b"/*") {
        return None;
    }
    let rest = &input[i + 2..];
    let limit = rest
        .iter()
        .position(|&b| b == b'\n' || b == b'&')
        .unwrap_or(rest.len());
    let p = rest[..limit].windows(2).position(|w| w == b"*/")?;
    Some(2 + p + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Byte-at-a-time loops, the shape of the implementations the run-copying
    // ones replaced (sharing the escape and entity decoders): every
    // transform must give exactly their output.

    fn url_decode_once_reference(input: &[u8], out: &mut Vec<u8>) {
        out.clear();
        let mut i = 0;
        while i < input.len() {
            if matches!(input[i], b'%' | b'+') {
                i += decode_escape(input, i, out);
            } else {
                out.push(input[i]);
                i += 1;
            }
        }
    }

    fn html_entity_decode_reference(input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            if input[i] == b'&' {
                i += decode_entity(input, i, out);
            } else {
                out.push(input[i]);
                i += 1;
            }
        }
    }

    fn compress_whitespace_reference(input: &[u8], out: &mut Vec<u8>) {
        let mut in_space = false;
        for &b in input {
            if is_space(b) {
                if !in_space {
                    out.push(b' ');
                }
                in_space = true;
            } else {
                out.push(b);
                in_space = false;
            }
        }
    }

    fn replace_comments_reference(input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            if let Some(len) = comment_at(input, i) {
                out.push(b' ');
                i += len;
            } else {
                out.push(input[i]);
                i += 1;
            }
        }
    }

    /// A deterministic xorshift stream: inputs for the tests that compare
    /// transforms with references.
    fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut rng = seed;
        move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        }
    }

    /// Up to `max_len` bytes drawn from `alphabet`.
    fn draw(next: &mut impl FnMut() -> u64, alphabet: &[u8], max_len: u64) -> Vec<u8> {
        let len = (next() % max_len) as usize;
        (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect()
    }

    #[test]
    fn run_copying_transforms_equal_their_byte_at_a_time_references() {
        let alphabet = b"aZ%+2uU3cCfF;&#x0lt<>/*\n\r\t \0\xa0&amp;";
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let input = draw(&mut next, alphabet, 40);
            let (mut got, mut want) = (Vec::new(), Vec::new());
            url_decode_once(&input, &mut got);
            url_decode_once_reference(&input, &mut want);
            assert_eq!(got, want, "url_decode {input:?}");
            for (fast, reference) in [
                (
                    html_entity_decode as fn(&[u8], &mut Vec<u8>),
                    html_entity_decode_reference as fn(&[u8], &mut Vec<u8>),
                ),
                (compress_whitespace, compress_whitespace_reference),
                (replace_comments, replace_comments_reference),
            ] {
                got.clear();
                want.clear();
                fast(&input, &mut got);
                reference(&input, &mut want);
                assert_eq!(got, want, "{input:?}");
            }
            Transform::RemoveNulls.apply(&input, &mut got);
            want = input.iter().copied().filter(|&b| b != 0).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn a_chain_in_place_equals_its_transforms_applied_one_by_one() {
        let alphabet = b"aZ%+2uU3cCfF;&#x0lt<>/*\n\r\t \0\xa0&amp;%25%2B";
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        for _ in 0..20_000 {
            let input = draw(&mut next, alphabet, 48);
            let chain: Vec<Transform> = (0..next() % 8)
                .map(|_| Transform::ALL[(next() % 6) as usize].0)
                .collect();
            let mut want = input.clone();
            for t in &chain {
                let mut step = Vec::new();
                t.apply(&want, &mut step);
                want = step;
            }
            apply_chain(&chain, &input, &mut out, &mut scratch);
            assert_eq!(out, want, "{chain:?} over {input:?}");
        }
    }

    fn run(t: Transform, input: &str) -> String {
        let mut out = Vec::new();
        t.apply(input.as_bytes(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn url_decode_repeats_until_stable_and_keeps_invalid_escapes() {
        assert_eq!(run(Transform::UrlDecode, "%253Cscript%253E"), "<script>");
        assert_eq!(run(Transform::UrlDecode, "a+b%20c"), "a b c");
        assert_eq!(run(Transform::UrlDecode, "100%"), "100%");
        assert_eq!(run(Transform::UrlDecode, "%zz%4"), "%zz%4");
        assert_eq!(run(Transform::UrlDecode, "%u003cscript%uff1e"), "<script>");
        // Four passes at most: a five-times-encoded '<' stays partly encoded.
        assert_eq!(run(Transform::UrlDecode, "%252525253C"), "%3C");
    }

    #[test]
    fn html_entities_named_and_numeric() {
        assert_eq!(
            run(
                Transform::HtmlEntityDecode,
                "&lt;img src=x onerror&#61;alert&#x28;1&#41&gt;"
            ),
            "<img src=x onerror=alert(1)>"
        );
        assert_eq!(
            run(Transform::HtmlEntityDecode, "AT&T &unknown; &#;"),
            "AT&T &unknown; &#;"
        );
        assert_eq!(
            run(Transform::HtmlEntityDecode, "java&Tab;script&colon;"),
            "java\tscript:"
        );
    }

    #[test]
    fn whitespace_nulls_comments_lowercase() {
        assert_eq!(run(Transform::CompressWhitespace, "a \t\r\n b"), "a b");
        assert_eq!(run(Transform::RemoveNulls, "a\0b\0"), "ab");
        assert_eq!(
            run(Transform::ReplaceComments, "UNION/**/SELECT/*x"),
            "UNION SELECT/*x"
        );
        assert_eq!(
            run(
                Transform::ReplaceComments,
                "Accept: */*\r\n\r\na=1/*!50000UNION*/SELECT&b=/*"
            ),
            "Accept: */*\r\n\r\na=1 SELECT&b=/*"
        );
        assert_eq!(run(Transform::Lowercase, "UnIoN"), "union");
    }

    #[test]
    fn chain_applies_in_order() {
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        apply_chain(
            &[
                Transform::UrlDecode,
                Transform::Lowercase,
                Transform::CompressWhitespace,
            ],
            b"UNION%20%20%09SELECT",
            &mut out,
            &mut scratch,
        );
        assert_eq!(out, b"union select");
    }

    #[test]
    fn names_round_trip() {
        for (t, n) in Transform::ALL {
            assert_eq!(Transform::from_name(n), Some(t));
            assert_eq!(t.name(), n);
        }
        assert_eq!(Transform::from_name("base64"), None);
    }
}
