//! The canonical, versioned binary encoding of every signed or persisted value.
//!
//! One value has exactly one encoding, so signatures, digests and evidence can
//! compare bytes:
//! - integers are fixed-width little-endian;
//! - byte strings and sequences carry a `u32` length prefix and have an explicit
//!   maximum, checked before anything is allocated;
//! - booleans are `0` or `1`, options are a `0`/`1` tag, enums a `u8` tag;
//!   anything else is rejected;
//! - a top-level value ([`decode_exact`]) must consume every byte.
//!
//! Types that are signed or stored start with a version byte of their own
//! (see `consensus::message`); an unknown version is a decode error, not a guess.

use crate::crypto::{CryptoError, Digest};

/// The largest encoded value the codec will read: 16 MiB.
pub const ENCODED_LENGTH_MAX: usize = 16 << 20;

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ended before the value did.
    #[error("input ends early: {what} needs {needed} more bytes")]
    UnexpectedEnd {
        /// The field being read.
        what: &'static str,
        /// Bytes missing.
        needed: usize,
    },
    /// Bytes remain after a complete value.
    #[error("{remaining} trailing bytes after the value")]
    TrailingBytes {
        /// Bytes left over.
        remaining: usize,
    },
    /// A length prefix exceeds the field's maximum.
    #[error("{what}: length {length} exceeds the maximum {maximum}")]
    TooLong {
        /// The field.
        what: &'static str,
        /// The declared length.
        length: usize,
        /// The field's maximum.
        maximum: usize,
    },
    /// An enum tag, boolean or option tag has no meaning.
    #[error("{what}: invalid tag {tag}")]
    InvalidTag {
        /// The field.
        what: &'static str,
        /// The tag read.
        tag: u8,
    },
    /// A version byte this build does not know.
    #[error("{what}: unsupported version {version}")]
    UnsupportedVersion {
        /// The type.
        what: &'static str,
        /// The version read.
        version: u8,
    },
    /// A cryptographic value inside failed to decode.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The value is well formed but violates a rule of its type.
    #[error("{what}: {reason}")]
    Invalid {
        /// The type.
        what: &'static str,
        /// The rule broken.
        reason: &'static str,
    },
}

/// A value with a canonical encoding.
pub trait Encode {
    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// The encoding as a fresh vector.
    fn to_encoded(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// A value that can be read back from its canonical encoding.
pub trait Decode: Sized {
    /// Reads one value from the front of `reader`.
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError>;
}

/// Decodes a complete value: every byte must be consumed.
pub fn decode_exact<T: Decode>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > ENCODED_LENGTH_MAX {
        return Err(CodecError::TooLong {
            what: "encoded value",
            length: bytes.len(),
            maximum: ENCODED_LENGTH_MAX,
        });
    }
    let mut reader = Reader::new(bytes);
    let value = T::decode(&mut reader)?;
    match reader.remaining() {
        0 => Ok(value),
        remaining => Err(CodecError::TrailingBytes { remaining }),
    }
}

/// A cursor over bytes being decoded.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// Takes exactly `length` bytes.
    pub fn take(&mut self, what: &'static str, length: usize) -> Result<&'a [u8], CodecError> {
        if self.bytes.len() < length {
            return Err(CodecError::UnexpectedEnd {
                what,
                needed: length - self.bytes.len(),
            });
        }
        let (head, tail) = self.bytes.split_at(length);
        self.bytes = tail;
        Ok(head)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(what, N)?);
        Ok(out)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Reads a little-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Reads a boolean encoded as `0` or `1`.
    pub fn bool(&mut self, what: &'static str) -> Result<bool, CodecError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(CodecError::InvalidTag { what, tag }),
        }
    }

    /// Reads a `u32` length prefix and checks it against `maximum`.
    pub fn length(&mut self, what: &'static str, maximum: usize) -> Result<usize, CodecError> {
        let length = self.u32(what)? as usize;
        if length > maximum {
            return Err(CodecError::TooLong {
                what,
                length,
                maximum,
            });
        }
        Ok(length)
    }

    /// Reads a length-prefixed byte string of at most `maximum` bytes.
    pub fn bytes(&mut self, what: &'static str, maximum: usize) -> Result<Vec<u8>, CodecError> {
        let length = self.length(what, maximum)?;
        Ok(self.take(what, length)?.to_vec())
    }

    /// Reads a length-prefixed sequence of at most `maximum` items.
    pub fn sequence<T: Decode>(
        &mut self,
        what: &'static str,
        maximum: usize,
    ) -> Result<Vec<T>, CodecError> {
        let length = self.length(what, maximum)?;
        // Every item takes at least one byte, so a length larger than the input
        // is rejected before allocating for it.
        if length > self.remaining() {
            return Err(CodecError::UnexpectedEnd {
                what,
                needed: length - self.remaining(),
            });
        }
        let mut items = Vec::with_capacity(length);
        for _ in 0..length {
            items.push(T::decode(self)?);
        }
        Ok(items)
    }

    /// Reads a version byte and checks it is `expected`.
    pub fn version(&mut self, what: &'static str, expected: u8) -> Result<(), CodecError> {
        match self.u8(what)? {
            version if version == expected => Ok(()),
            version => Err(CodecError::UnsupportedVersion { what, version }),
        }
    }
}

/// Writes a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_length(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Writes a `u32` length prefix. Lengths are bounded by the types' maxima, all
/// far below `u32::MAX`.
pub fn put_length(out: &mut Vec<u8>, length: usize) {
    let length = u32::try_from(length).expect("encoded lengths are bounded far below u32::MAX");
    out.extend_from_slice(&length.to_le_bytes());
}

/// Writes a length-prefixed sequence.
pub fn put_sequence<T: Encode>(out: &mut Vec<u8>, items: &[T]) {
    put_length(out, items.len());
    for item in items {
        item.encode(out);
    }
}

impl Encode for u64 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl Decode for u64 {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        reader.u64("u64")
    }
}

impl Encode for Digest {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl Decode for Digest {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Digest::from_bytes(reader.array("digest")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_checked_before_allocation() {
        let mut bytes = Vec::new();
        put_length(&mut bytes, 1_000_000);
        let mut reader = Reader::new(&bytes);
        assert_eq!(
            reader.sequence::<u64>("items", 10),
            Err(CodecError::TooLong {
                what: "items",
                length: 1_000_000,
                maximum: 10
            })
        );
        let mut reader = Reader::new(&bytes);
        assert!(matches!(
            reader.sequence::<u64>("items", 2_000_000),
            Err(CodecError::UnexpectedEnd { .. })
        ));
    }

    #[test]
    fn exact_decoding_rejects_trailing_bytes() {
        let mut bytes = 7u64.to_encoded();
        assert_eq!(decode_exact::<u64>(&bytes), Ok(7));
        bytes.push(0);
        assert_eq!(
            decode_exact::<u64>(&bytes),
            Err(CodecError::TrailingBytes { remaining: 1 })
        );
        assert!(matches!(
            decode_exact::<u64>(&bytes[..3]),
            Err(CodecError::UnexpectedEnd { .. })
        ));
    }

    #[test]
    fn booleans_and_versions_are_strict() {
        assert_eq!(
            Reader::new(&[2]).bool("flag"),
            Err(CodecError::InvalidTag {
                what: "flag",
                tag: 2
            })
        );
        assert_eq!(
            Reader::new(&[9]).version("batch", 1),
            Err(CodecError::UnsupportedVersion {
                what: "batch",
                version: 9
            })
        );
    }
}
