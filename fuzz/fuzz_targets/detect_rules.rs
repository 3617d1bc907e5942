//! Fuzz target: see `shieldx_proptests::detect_rules` for the input layout and the
//! properties checked. The committed corpus is replayed by `cargo test`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shieldx_proptests::detect_rules(data));
