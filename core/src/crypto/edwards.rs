//! Strict edwards25519 point decoding shared by the ed25519 and ECVRF code.
//!
//! RFC 8032 section 5.1.3 (and so RFC 9381's `string_to_point`) accepts exactly one
//! encoding per point. curve25519-dalek's `decompress` is more lenient: it reduces
//! `y` modulo p and accepts a set sign bit on `x = 0`. Accepting those would give
//! some keys and proofs a second encoding, which breaks byte-wise uniqueness.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};

/// Strict edwards25519 point decoding, RFC 8032 section 5.1.3, which
/// rejects `y >= p` and `x = 0` with the sign bit set (curve25519-dalek accepts both).
pub(crate) fn decode_canonical(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    if !is_canonical_encoding(bytes) {
        return None;
    }
    CompressedEdwardsY(*bytes).decompress()
}

/// The byte-level half of [`decode_canonical`]: whether `bytes` is the one
/// encoding RFC 8032 allows for its point, if it is a point. Whether it is a
/// point takes a square root; a caller that decompresses anyway checks only
/// this, so it pays for one root, not two.
pub(crate) fn is_canonical_encoding(bytes: &[u8; 32]) -> bool {
    let sign = bytes[31] >> 7;
    let high = bytes[31] & 0x7f;
    let middle_all_ones = bytes[1..31].iter().all(|&b| b == 0xff);
    // p = 2^255 - 19: y >= p exactly when the top 254 bits are all ones and the
    // low byte is at least 0xed.
    if high == 0x7f && middle_all_ones && bytes[0] >= 0xed {
        return false;
    }
    // x = 0 exactly when y = 1 or y = p - 1; then a set sign bit is invalid.
    let y_is_one = bytes[0] == 1 && high == 0 && bytes[1..31].iter().all(|&b| b == 0);
    let y_is_minus_one = bytes[0] == 0xec && high == 0x7f && middle_all_ones;
    !(sign == 1 && (y_is_one || y_is_minus_one))
}
