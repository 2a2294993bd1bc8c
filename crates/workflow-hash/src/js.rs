//! The JavaScript details the hash must reproduce byte for byte: `JSON.stringify` string
//! escaping, `Number.prototype.toString` number formatting and the order in which JavaScript
//! enumerates object keys (array-index keys first, numerically).

use std::cmp::Ordering;

use serde_json::Number;

use crate::sink::Sink;

/// Escape class per byte: 0 = literal, `u` = `\u00xx`, otherwise the letter after `\`.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `s` as `JSON.stringify` would (well-formed variant; Rust strings have no lone
/// surrogates): only `"`, `\` and control characters are escaped, control characters without a
/// short form as lowercase `\u00xx`.
#[inline]
pub(crate) fn write_string<S: Sink>(sink: &mut S, s: &str) {
    write_wrapped(sink, b"\"", s, b"\"");
}

/// Writes an object member's key: `"key":`, preceded by a comma unless it is the first.
#[inline]
pub(crate) fn write_key<S: Sink>(sink: &mut S, first: bool, key: &str) {
    write_wrapped(sink, if first { b"\"" } else { b",\"" }, key, b"\":");
}

/// Writes `prefix`, the escaped `s`, `suffix` (clean strings, nearly all of them, in a single
/// write).
#[inline(always)]
pub(crate) fn write_wrapped<S: Sink>(sink: &mut S, prefix: &[u8], s: &str, suffix: &[u8]) {
    let bytes = s.as_bytes();
    if is_clean(bytes) {
        sink.put3(prefix, bytes, suffix);
    } else {
        sink.put(prefix);
        write_escaped(sink, bytes);
        sink.put(suffix);
    }
}

/// Whether no byte of `bytes` needs escaping (eight bytes at a time, short strings in one
/// padded word).
#[inline(always)]
fn is_clean(bytes: &[u8]) -> bool {
    /// A padding byte that never needs escaping.
    const SAFE: u64 = 0x4141_4141_4141_4141;
    let Some(last) = bytes.last_chunk::<8>() else {
        let pad = SAFE.checked_shr(8 * bytes.len() as u32).unwrap_or(0);
        return !needs_escape(head_word(bytes) | pad);
    };
    let mut chunks = bytes.chunks_exact(8);
    let body_clean = chunks
        .by_ref()
        .filter_map(|chunk| <[u8; 8]>::try_from(chunk).ok())
        .all(|word| !needs_escape(u64::from_le_bytes(word)));
    // The last eight bytes overlap the body when the length is not a multiple of eight.
    body_clean && (chunks.remainder().is_empty() || !needs_escape(u64::from_le_bytes(*last)))
}

/// The first eight bytes of `bytes` as a big-endian word, zero-padded, without a byte loop.
#[inline(always)]
fn head_word(bytes: &[u8]) -> u64 {
    let be32 = |b: Option<&[u8; 4]>| u64::from(b.map_or(0, |b| u32::from_be_bytes(*b)));
    let byte_at = |i: usize| u64::from(bytes.get(i).copied().unwrap_or(0)) << (56 - 8 * i);
    let len = bytes.len();
    match len {
        0 => 0,
        1..=3 => (0..len).fold(0, |word, i| word | byte_at(i)),
        4..=7 => {
            // Two overlapping loads: bytes 0..4 and len-4..len, each at its own position.
            let tail = bytes.get(len - 4..).and_then(|t| t.first_chunk::<4>());
            be32(bytes.first_chunk::<4>()) << 32 | be32(tail) << (8 * (8 - len))
        }
        _ => bytes
            .first_chunk::<8>()
            .map_or(0, |b| u64::from_be_bytes(*b)),
    }
}

/// Whether any of the eight bytes is a control character, `"` or `\` (SWAR test).
#[inline(always)]
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    (below_space
        | has_zero(word ^ (ONES * u64::from(b'"')))
        | has_zero(word ^ (ONES * u64::from(b'\\'))))
        != 0
}

/// Writes the body of a string that needs at least one escape.
#[cold]
fn write_escaped<S: Sink>(sink: &mut S, bytes: &[u8]) {
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let class = ESCAPE[usize::from(byte)];
        if class == 0 {
            continue;
        }
        // Escaped bytes are ASCII, so runs between them stay valid UTF-8.
        if let Some(run) = bytes.get(start..i) {
            sink.put(run);
        }
        if class == b'u' {
            let hi = HEX[usize::from(byte >> 4)];
            let lo = HEX[usize::from(byte & 0xf)];
            sink.put(&[b'\\', b'u', b'0', b'0', hi, lo]);
        } else {
            sink.put(&[b'\\', class]);
        }
        start = i + 1;
    }
    if let Some(run) = bytes.get(start..) {
        sink.put(run);
    }
}

/// Writes `n` as JavaScript prints the double `JSON.parse` would make of it: every JSON number
/// is an IEEE double in JavaScript, so integers beyond 2^53 lose precision exactly as there.
pub(crate) fn write_number<S: Sink>(sink: &mut S, n: &Number) {
    if let Some(u) = n.as_u64() {
        write_u64(sink, u);
    } else if let Some(i) = n.as_i64() {
        write_i64(sink, i);
    } else {
        write_f64(sink, n.as_f64().unwrap_or(0.0));
    }
}

/// Largest integer a double holds exactly (and prints without an exponent).
const EXACT: u64 = 1 << 53;

/// Writes a JSON integer serde_json parsed as `u64`, as JavaScript prints its double.
#[inline]
pub(crate) fn write_u64<S: Sink>(sink: &mut S, u: u64) {
    if u <= EXACT {
        write_integer(sink, false, u);
    } else {
        write_f64(sink, u as f64);
    }
}

/// Writes a JSON integer serde_json parsed as `i64`, as JavaScript prints its double.
#[inline]
pub(crate) fn write_i64<S: Sink>(sink: &mut S, i: i64) {
    if i.unsigned_abs() <= EXACT {
        write_integer(sink, i < 0, i.unsigned_abs());
    } else {
        write_f64(sink, i as f64);
    }
}

/// Writes a double as `Number.prototype.toString` does.
pub(crate) fn write_f64<S: Sink>(sink: &mut S, value: f64) {
    let mut buf = ryu_js::Buffer::new();
    sink.put(buf.format(value).as_bytes());
}

/// Writes an integer of at most 2^53 in decimal, as JavaScript prints it (no `-0`).
#[inline]
pub(crate) fn write_integer<S: Sink>(sink: &mut S, negative: bool, mut value: u64) {
    if value < 10 {
        // Slot numbers of connection edges: one digit, and `-0` prints as `0`.
        let digit = b'0' + value as u8;
        match negative && value != 0 {
            true => sink.put(&[b'-', digit]),
            false => sink.put(&[digit]),
        }
        return;
    }
    let mut buf = [0u8; 21];
    let mut pos = buf.len();
    loop {
        pos -= 1;
        if let Some(slot) = buf.get_mut(pos) {
            *slot = b'0' + (value % 10) as u8;
        }
        value /= 10;
        if value == 0 || pos == 1 {
            break;
        }
    }
    if negative && buf.get(pos..) != Some(b"0".as_slice()) {
        pos -= 1;
        if let Some(slot) = buf.get_mut(pos) {
            *slot = b'-';
        }
    }
    if let Some(digits) = buf.get(pos..) {
        sink.put(digits);
    }
}

/// The [`key_rank`] of keys that are not array indices.
pub(crate) const NOT_INDEX: u64 = u64::MAX;

/// Sort rank of an object key in JavaScript's own-key order: an array index (a canonical
/// decimal integer `0..=2^32-2`) ranks by its value, every other key ranks after all indices.
#[inline]
pub(crate) fn key_rank(key: &str) -> u64 {
    let bytes = key.as_bytes();
    match bytes {
        [] => NOT_INDEX,
        [b'0'] => 0,
        [b'0', ..] => NOT_INDEX,
        _ if bytes.len() > 10 => NOT_INDEX,
        _ => {
            let mut value: u64 = 0;
            for &b in bytes {
                if !b.is_ascii_digit() {
                    return NOT_INDEX;
                }
                value = value * 10 + u64::from(b - b'0');
            }
            if value <= 0xFFFF_FFFE {
                value
            } else {
                NOT_INDEX
            }
        }
    }
}

/// The first eight bytes of `key` as a big-endian word (zero-padded), ordered like the keys
/// themselves in UTF-16 order whenever two prefixes differ; equal prefixes need [`cmp_utf16`].
///
/// Byte order is UTF-16 order except at a lead byte of `0xEE` and above (`U+E000..` and
/// supplementary characters, see [`cmp_utf16`]), so from the first such byte on the word is
/// filled with `0xFF`, a byte UTF-8 never contains: such keys still sort after every key that
/// differs from them earlier and tie with each other, leaving the decision to [`cmp_utf16`].
#[inline]
pub(crate) fn key_prefix(key: &str) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let word = head_word(key.as_bytes());
    // High bit of each byte >= 0xEE: high bit set and low seven bits >= 0x6E (no carries).
    let wide = ((word & LOW7) + 0x1212_1212_1212_1212) & word & HIGHS;
    if wide == 0 {
        word
    } else {
        word | u64::MAX >> (wide.leading_zeros() & !7)
    }
}

/// Compares two strings by UTF-16 code units, as JavaScript's default `Array.prototype.sort`
/// does. UTF-8 byte order is code point order, which differs only between a supplementary
/// character (a surrogate pair, `0xD800..`) and a BMP character at `U+E000..=U+FFFF`.
#[inline]
pub(crate) fn cmp_utf16(a: &str, b: &str) -> Ordering {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let Some(pos) = mismatch(ab, bb) else {
        return ab.len().cmp(&bb.len());
    };
    let (x, y) = (
        ab.get(pos).copied().unwrap_or(0),
        bb.get(pos).copied().unwrap_or(0),
    );
    // Below 0xEE neither byte can start U+E000..=U+FFFF or a supplementary character, so byte
    // order is UTF-16 order.
    if x < 0xEE && y < 0xEE {
        return x.cmp(&y);
    }
    // Back up to the start of the character that differs (same prefix in both strings).
    let mut start = pos;
    while start > 0 && !a.is_char_boundary(start) {
        start -= 1;
    }
    let ca = a
        .get(start..)
        .and_then(|s| s.chars().next())
        .map_or(0, u32::from);
    let cb = b
        .get(start..)
        .and_then(|s| s.chars().next())
        .map_or(0, u32::from);
    let unit = |c: u32| if c >= 0x1_0000 { 0xD800 } else { c };
    unit(ca).cmp(&unit(cb)).then(ca.cmp(&cb))
}

/// Index of the first differing byte within the common length, eight bytes at a time.
#[inline(always)]
fn mismatch(a: &[u8], b: &[u8]) -> Option<usize> {
    let len = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= len {
        let wa = a
            .get(i..i + 8)
            .and_then(|c| <[u8; 8]>::try_from(c).ok())
            .map(u64::from_le_bytes);
        let wb = b
            .get(i..i + 8)
            .and_then(|c| <[u8; 8]>::try_from(c).ok())
            .map(u64::from_le_bytes);
        let diff = wa.unwrap_or(0) ^ wb.unwrap_or(0);
        if diff != 0 {
            return Some(i + (diff.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    (i..len).find(|&j| a.get(j) != b.get(j))
}

/// Whether `s` names a model / resource file: it ends in `.` plus one of the extensions of
/// comfyui-node's `RESOURCE_VALUE` regex (`safetensors`, `sft`, `ckpt`, `pt`, `pth`, `bin`,
/// `gguf`, `onnx`, `pkl`, `npz`, `vae`, `yaml`, `yml`), ASCII case-insensitively (the regex has
/// the `i` flag but not `u`, so no non-ASCII case folding applies).
///
/// Only the last twelve bytes are looked at, a word at a time, so long prompts cost no more
/// than short ones.
#[inline]
pub(crate) fn is_resource(s: &str) -> bool {
    /// ORing a byte with it lowercases ASCII letters; only letters map to letters, and the
    /// extensions are all letters, so equality after folding is ASCII case-insensitive equality.
    const FOLD: u32 = 0x2020_2020;
    let bytes = s.as_bytes();
    let len = bytes.len();
    let dot_before = |ext_len: usize| len > ext_len && bytes.get(len - ext_len - 1) == Some(&b'.');
    // The last four bytes (zero-padded in front), folded.
    let last4 = match bytes.last_chunk::<4>() {
        Some(b) => u32::from_be_bytes(*b),
        None => bytes.iter().fold(0, |w, &b| w << 8 | u32::from(b)),
    } | FOLD;
    (dot_before(2) && last4 & 0xFFFF == word(b"\0\0pt"))
        || (dot_before(3) && EXT3.contains(&(last4 & 0xFF_FFFF)))
        || (dot_before(4) && EXT4.contains(&last4))
        || (dot_before(11) && ends_with_safetensors(bytes))
}

/// The three-letter extensions as big-endian words.
const EXT3: [u32; 7] = [
    word(b"\0sft"),
    word(b"\0pth"),
    word(b"\0bin"),
    word(b"\0pkl"),
    word(b"\0npz"),
    word(b"\0vae"),
    word(b"\0yml"),
];

/// The four-letter extensions as big-endian words.
const EXT4: [u32; 4] = [word(b"ckpt"), word(b"gguf"), word(b"onnx"), word(b"yaml")];

const fn word(ext: &[u8; 4]) -> u32 {
    u32::from_be_bytes(*ext)
}

/// Whether `bytes` end in `safetensors`, ASCII case-insensitively.
#[cold]
fn ends_with_safetensors(bytes: &[u8]) -> bool {
    const FOLD: u64 = 0x2020_2020_2020_2020;
    let (Some(last8), Some(head)) = (
        bytes.last_chunk::<8>(),
        bytes
            .len()
            .checked_sub(11)
            .and_then(|at| bytes.get(at..at + 3)),
    ) else {
        return false;
    };
    u64::from_be_bytes(*last8) | FOLD == u64::from_be_bytes(*b"etensors")
        && head.iter().map(|b| b | 0x20).eq(*b"saf")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> String {
        let n: Number = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let mut out = Vec::new();
        write_number(&mut out, &n);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn numbers_follow_javascript_formatting() {
        for (text, js) in [
            ("1.0", "1"),
            ("0", "0"),
            ("7", "7"),
            ("-7", "-7"),
            ("9007199254740992", "9007199254740992"),
            ("-9007199254740992", "-9007199254740992"),
            ("-9007199254740993", "-9007199254740992"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("0.000001", "0.000001"),
            ("1e-7", "1e-7"),
            ("0.1", "0.1"),
            ("-2.5e-300", "-2.5e-300"),
            ("9007199254740993", "9007199254740992"),
            ("18446744073709551615", "18446744073709552000"),
            ("-9223372036854775808", "-9223372036854776000"),
            ("123456789012345678901234", "1.2345678901234569e+23"),
        ] {
            assert_eq!(number(text), js, "{text}");
        }
    }

    #[test]
    fn strings_escape_like_json_stringify() {
        let text = |s: &str| {
            let mut out = Vec::new();
            write_string(&mut out, s);
            String::from_utf8(out).expect("utf-8")
        };
        assert_eq!(text("0123456789abcdef"), "\"0123456789abcdef\"");
        assert_eq!(text("01234567\n9abcdef"), "\"01234567\\n9abcdef\"");
        let out = text("a\"b\\c\n\t\u{8}\u{c}\r\u{1}\u{1f}\u{7f}\u{2028}é😀/");
        assert_eq!(
            out,
            "\"a\\\"b\\\\c\\n\\t\\b\\f\\r\\u0001\\u001f\u{7f}\u{2028}é😀/\""
        );
    }

    #[test]
    fn array_index_keys_rank_numerically() {
        assert_eq!(key_rank("0"), 0);
        assert_eq!(key_rank("42"), 42);
        assert_eq!(key_rank("4294967294"), 4_294_967_294);
        for not_index in [
            "",
            "01",
            "-1",
            "1.0",
            "4294967295",
            "99999999999",
            "1a",
            " 1",
        ] {
            assert_eq!(key_rank(not_index), u64::MAX, "{not_index:?}");
        }
    }

    #[test]
    fn prefixes_order_like_utf16_or_tie() {
        let keys = [
            "",
            "\0",
            "a",
            "a\0",
            "ab",
            "abcdefgh",
            "abcdefgha",
            "abcdefgi",
            "a\u{d7ff}",
            "a😀",
            "a\u{e000}",
            "a\u{ff01}",
            "aé",
            "b",
            "\u{7f}",
            "é",
            "\u{ffff}",
            "😀",
            "0123456\u{ff01}",
            "0123456😀",
            "01234567\u{ff01}",
            "01234567😀",
        ];
        for a in keys {
            for b in keys {
                let (pa, pb) = (key_prefix(a), key_prefix(b));
                if pa != pb {
                    assert_eq!(pa.cmp(&pb), cmp_utf16(a, b), "{a:?} vs {b:?}");
                }
            }
        }
        assert_eq!(key_prefix("ab"), 0x6162 << 48);
        assert_eq!(key_prefix("a\u{ff01}"), 0x61FF_FFFF_FFFF_FFFF);
    }

    #[test]
    fn utf16_order_puts_surrogate_pairs_before_high_bmp() {
        assert_eq!(cmp_utf16("a😀", "a\u{ff01}"), Ordering::Less);
        assert_eq!(cmp_utf16("a\u{d7ff}", "a😀"), Ordering::Less);
        assert_eq!(cmp_utf16("😀", "😁"), Ordering::Less);
        assert_eq!(cmp_utf16("ab", "abc"), Ordering::Less);
        assert_eq!(cmp_utf16("b", "ab"), Ordering::Greater);
        assert_eq!(cmp_utf16("é", "é"), Ordering::Equal);
        assert_eq!(cmp_utf16("0123456789z", "0123456789a"), Ordering::Greater);
        assert_eq!(
            cmp_utf16("01234567\u{ff01}", "01234567😀"),
            Ordering::Greater
        );
    }

    #[test]
    fn resource_suffixes_match_case_insensitively_at_the_end_only() {
        for yes in [
            "m.safetensors",
            "dir/M.CKPT",
            "x.Pt",
            "a.b.gguf",
            ".yml",
            ".safetensors",
            "a long prompt. with dots.SafeTensors",
            ".pt",
            "M.SFT",
            "a.Pth",
            "b.BIN",
            "c.pKl",
            "d.npz",
            "e.VAE",
            "x.YmL",
            "y.yaml",
            "z.Onnx",
            "w.GGUF",
            "u.ckpt",
        ] {
            assert!(is_resource(yes), "{yes}");
        }
        for no in [
            "m.png",
            "safetensors",
            "m.safetensors ",
            "m.ckpt\n",
            "m.",
            "m.pts",
            "m.\u{17f}ft",
            "m.safetensors.png",
            "m.xsafetensors",
            "x.safetensorsafetensors",
            "pt",
            "",
            "a.pt ",
            "a-pt",
            "a.p\u{14}",
            "a.ckp",
            "a.ckptt",
            "a.safetensor",
            "safetensors.",
            "a.\u{10}\u{10}\u{10}",
            "a.PT\u{0}",
            "é.ṕt",
        ] {
            assert!(!is_resource(no), "{no}");
        }
    }
}
