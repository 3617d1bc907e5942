//! Client API authentication, authorisation and rate limits.
//!
//! - **Bearer tokens per role.** `authorization: Bearer <token>` metadata;
//!   the config holds only each token's blake3 hash (`[[api.tokens]]`), the
//!   plaintext is in the operator's `api-tokens.toml` (mode 0600). Roles:
//!   `read` (state, blocks, alerts, subscriptions), `submit` (sensor
//!   events) and `admin` (everything).
//! - **Signed requests.** `SubmitTransaction` carries a request signed by
//!   the client's ed25519 key; the signature is its authentication, and the
//!   application decides what that account may do.
//! - **Outcomes.** No or an unknown token: `UNAUTHENTICATED`. A valid token
//!   of a role that may not call the method: `PERMISSION_DENIED`. Over the
//!   rate: `RESOURCE_EXHAUSTED`.
//! - **Rate limits.** A token bucket per principal (the token, or the client
//!   key of a signed request): `requests_per_second` sustained, `burst` at
//!   once.

use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::time::Instant;

use serde::{Deserialize, Serialize};
use tonic::Status;
use tonic::metadata::MetadataMap;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read committed state.
    Read,
    /// Submit sensor events.
    Submit,
    /// Everything.
    Admin,
}

/// One `[[api.tokens]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// The role the token grants.
    pub role: Role,
    /// blake3 of the token, hex.
    pub blake3: String,
}

impl TokenEntry {
    /// The entry for a plaintext token.
    pub fn for_token(role: Role, token: &str) -> TokenEntry {
        TokenEntry {
            role,
            blake3: blake3::hash(token.as_bytes()).to_hex().to_string(),
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    /// A bearer token (its hash).
    Token([u8; 32]),
    /// A client key.
    Client([u8; 32]),
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The checks, shared by every call.
#[derive(Debug)]
pub struct Auth {
    tokens: Vec<(Role, [u8; 32])>,
    rate: f64,
    burst: f64,
    buckets: Mutex<BTreeMap<Principal, Bucket>>,
}

const BUCKETS_MAX: usize = 100_000;

impl Auth {
    /// From the config's entries; entries that are not 32-byte hex are
    /// refused.
    pub fn new(
        entries: &[TokenEntry],
        requests_per_second: u32,
        burst: u32,
    ) -> Result<Auth, String> {
        let mut tokens = Vec::new();
        for entry in entries {
            let bytes = hex::decode(&entry.blake3)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| format!("api.tokens: {:?} is not a blake3 hash", entry.blake3))?;
            tokens.push((entry.role, bytes));
        }
        Ok(Auth {
            tokens,
            rate: f64::from(requests_per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(BTreeMap::new()),
        })
    }

    /// Checks the bearer token for `needed` and charges its bucket.
    pub fn bearer(&self, metadata: &MetadataMap, needed: Role) -> Result<Principal, Status> {
        let header = metadata
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing authorization: Bearer <token>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization is not \"Bearer <token>\""))?;
        let hash = *blake3::hash(token.trim().as_bytes()).as_bytes();
        let role = self
            .tokens
            .iter()
            .find(|(_, h)| *h == hash)
            .map(|(role, _)| *role)
            .ok_or_else(|| Status::unauthenticated("unknown token"))?;
        if role != needed && role != Role::Admin {
            return Err(Status::permission_denied(format!(
                "a {role:?} token may not do this; it needs {needed:?}"
            )));
        }
        let principal = Principal::Token(hash);
        self.charge(&principal)?;
        Ok(principal)
    }

    /// Charges one request to `principal`'s bucket.
    pub fn charge(&self, principal: &Principal) -> Result<(), Status> {
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .map_err(|_| Status::internal("rate limiter poisoned"))?;
        if buckets.len() >= BUCKETS_MAX && !buckets.contains_key(principal) {
            // Forget principals whose buckets have refilled: they are idle.
            let (rate, burst) = (self.rate, self.burst);
            buckets
                .retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(principal.clone()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let refill = now.duration_since(bucket.last).as_secs_f64() * self.rate;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.last = now;
        if bucket.tokens < 1.0 {
            return Err(Status::resource_exhausted(format!(
                "rate limit: {} requests per second",
                self.rate
            )));
        }
        bucket.tokens -= 1.0;
        Ok(())
    }
}

/// A fresh random token (32 bytes, hex).
pub fn generate_token<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(token: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ascii"),
        );
        m
    }

    #[test]
    fn roles_are_enforced_with_the_right_codes() {
        let auth = Auth::new(
            &[
                TokenEntry::for_token(Role::Read, "reader"),
                TokenEntry::for_token(Role::Submit, "sensor"),
                TokenEntry::for_token(Role::Admin, "root"),
            ],
            1000,
            1000,
        )
        .expect("valid");
        assert!(auth.bearer(&metadata("reader"), Role::Read).is_ok());
        assert!(auth.bearer(&metadata("root"), Role::Submit).is_ok());
        assert_eq!(
            auth.bearer(&metadata("reader"), Role::Submit)
                .expect_err("denied")
                .code(),
            tonic::Code::PermissionDenied
        );
        assert_eq!(
            auth.bearer(&metadata("nobody"), Role::Read)
                .expect_err("unknown")
                .code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            auth.bearer(&MetadataMap::new(), Role::Read)
                .expect_err("missing")
                .code(),
            tonic::Code::Unauthenticated
        );
    }

    #[test]
    fn a_bucket_allows_the_burst_then_refuses() {
        let auth = Auth::new(&[TokenEntry::for_token(Role::Read, "r")], 1, 3).expect("valid");
        for _ in 0..3 {
            assert!(auth.bearer(&metadata("r"), Role::Read).is_ok());
        }
        assert_eq!(
            auth.bearer(&metadata("r"), Role::Read)
                .expect_err("limited")
                .code(),
            tonic::Code::ResourceExhausted
        );
    }

    #[test]
    fn malformed_token_hashes_are_refused_at_start() {
        let entry = TokenEntry {
            role: Role::Read,
            blake3: "zz".into(),
        };
        assert!(Auth::new(&[entry], 1, 1).is_err());
    }
}
