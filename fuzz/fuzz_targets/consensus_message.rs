//! Fuzz target: see `shieldx_proptests::consensus_message` for the properties
//! checked. The committed corpus is replayed by `cargo test`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shieldx_proptests::consensus_message(data));
