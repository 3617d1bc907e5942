//! Fuzz target: see `shieldx_proptests::ed25519_verify` for the input layout and the
//! properties checked. The committed corpus is replayed by `cargo test`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shieldx_proptests::ed25519_verify(data));
