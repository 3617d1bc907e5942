//! The run's audit digest: a blake3 hash chain over everything that happened.
//!
//! Each record commits to the previous digest, the record's kind, its simulated
//! time and its bytes. Two runs of one seed are equal exactly when their final
//! digests are; when they are not, comparing the per-record digests finds the
//! first event where they diverged.

use shieldx_core::crypto::{Digest, DigestDomain};

/// The domain of every record's digest.
const AUDIT_CONTEXT: &str = "shieldx-sim audit v1";

/// A chained digest over the records of one run.
#[derive(Debug, Clone)]
pub struct AuditDigest {
    /// [`AUDIT_CONTEXT`] prepared once: a record costs the hash of its own
    /// bytes, not the context's derivation again.
    domain: DigestDomain,
    current: Digest,
    records: u64,
}

impl Default for AuditDigest {
    fn default() -> Self {
        AuditDigest {
            domain: DigestDomain::new(AUDIT_CONTEXT),
            current: Digest::ZERO,
            records: 0,
        }
    }
}

impl AuditDigest {
    /// Appends one record and returns the digest after it.
    pub fn record(&mut self, kind: &str, at_ns: u64, bytes: &[u8]) -> Digest {
        self.current = self.domain.digest(&[
            self.current.as_bytes(),
            kind.as_bytes(),
            &at_ns.to_le_bytes(),
            bytes,
        ]);
        self.records += 1;
        self.current
    }

    /// The digest after every record so far.
    pub fn digest(&self) -> Digest {
        self.current
    }

    /// How many records were appended.
    pub fn records(&self) -> u64 {
        self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_the_context_hash_of_the_previous_digest_kind_time_and_bytes() {
        let mut audit = AuditDigest::default();
        let first = audit.record("deliver", 10, b"prepare");
        assert_eq!(
            first,
            Digest::of_parts(
                AUDIT_CONTEXT,
                &[
                    Digest::ZERO.as_bytes(),
                    b"deliver",
                    &10u64.to_le_bytes(),
                    b"prepare"
                ]
            )
        );
        let long = vec![7u8; 1000];
        assert_eq!(
            audit.record("fault", 11, &long),
            Digest::of_parts(
                AUDIT_CONTEXT,
                &[first.as_bytes(), b"fault", &11u64.to_le_bytes(), &long]
            )
        );
    }

    #[test]
    fn equal_histories_give_equal_digests_and_any_change_differs() {
        let run = |last: &[u8]| {
            let mut audit = AuditDigest::default();
            audit.record("deliver", 10, b"prepare");
            audit.record("timer", 20, b"view-change");
            audit.record("fault", 20, last);
            audit
        };
        assert_eq!(run(b"drop").digest(), run(b"drop").digest());
        assert_ne!(run(b"drop").digest(), run(b"dup").digest());
        assert_eq!(run(b"drop").records(), 3);
        assert_ne!(AuditDigest::default().digest(), run(b"drop").digest());
    }
}
