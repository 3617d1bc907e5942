//! Lowercase hex for `Debug`/`Display` of public values, without a dependency.

use core::fmt;

/// Writes `bytes` as lowercase hex.
pub(crate) fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        let pair = [
            DIGITS[usize::from(byte >> 4)],
            DIGITS[usize::from(byte & 0x0f)],
        ];
        // Both bytes come from DIGITS, which is ASCII.
        f.write_str(core::str::from_utf8(&pair).map_err(|_| fmt::Error)?)?;
    }
    Ok(())
}

/// Copies `bytes` into an array of length `N`, or reports the length mismatch.
pub(crate) fn fixed<const N: usize>(
    what: &'static str,
    bytes: &[u8],
) -> Result<[u8; N], super::CryptoError> {
    bytes
        .try_into()
        .map_err(|_| super::CryptoError::InvalidLength {
            what,
            expected: N,
            actual: bytes.len(),
        })
}
