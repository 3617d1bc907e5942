//! Snapshot fidelity: a replica restored from a snapshot must behave exactly
//! like one that executed every request itself.
//!
//! State transfer and crash recovery both rebuild the application from a
//! snapshot, so any state the snapshot leaves out (an order kept only in
//! memory, a cache that changes results) splits a restored replica from the
//! others, but only later, when that state is next consulted. Checkpoint
//! agreement catches it only if a restore happens to land in the window where
//! it matters. This check makes every checkpoint such a window: each replica's
//! application runs beside a *copy* restored from the replica's own latest
//! snapshot, which executes the same requests; at the next snapshot the two
//! state digests must be equal, and every reply on the way too.
//!
//! The copy costs one more execution of every request per replica. It never
//! feeds anything back: the replica sees only its own application.

use std::cell::RefCell;

use shieldx_core::app::AppConfig;
use shieldx_core::consensus::Request;
use shieldx_core::consensus::{Application, RestoreError, Sequence, ValidatorSet};
use shieldx_core::crypto::Digest;
use shieldx_core::ledger::memory::MemoryStore;

use crate::runner::SimApp;

/// A replica's application, with its restored copy.
#[derive(Debug)]
pub struct CheckedApp {
    app: SimApp,
    config: AppConfig,
    shadow: RefCell<Shadow>,
}

#[derive(Debug, Default)]
struct Shadow {
    /// Restored from the replica's snapshot at `restored_at`, and fed every
    /// request the replica executed since.
    copy: Option<SimApp>,
    restored_at: Sequence,
    /// The last sequence the replica executed.
    executed: Sequence,
    /// The first difference seen, for the run's report.
    divergence: Option<String>,
}

impl CheckedApp {
    /// Wraps `app`, opened with `config` (which opens the copies too).
    pub fn new(app: SimApp, config: AppConfig) -> CheckedApp {
        CheckedApp {
            app,
            config,
            shadow: RefCell::new(Shadow::default()),
        }
    }

    /// The replica's own application.
    pub fn inner(&self) -> &SimApp {
        &self.app
    }

    /// The replica's own application, mutably (storage faults).
    pub fn inner_mut(&mut self) -> &mut SimApp {
        &mut self.app
    }

    /// The first time a restored copy behaved differently, if it did.
    pub fn divergence(&self) -> Option<String> {
        self.shadow.borrow().divergence.clone()
    }
}

impl Shadow {
    fn diverged(&mut self, what: String) {
        if self.divergence.is_none() {
            self.divergence = Some(format!(
                "{what} (copy restored from the snapshot at sequence {})",
                self.restored_at
            ));
        }
        self.copy = None;
    }
}

impl Application for CheckedApp {
    fn execute(&mut self, sequence: Sequence, request: &Request) -> Vec<u8> {
        let reply = self.app.execute(sequence, request);
        let shadow = self.shadow.get_mut();
        shadow.executed = sequence;
        if self.app.halted().is_some() {
            // Its store failed mid-write; the replica restarts from its
            // durable records, and its copy would only differ by the fault.
            shadow.copy = None;
        } else if let Some(copy) = shadow.copy.as_mut()
            && copy.execute(sequence, request) != reply
        {
            shadow.diverged(format!(
                "a request at sequence {sequence} got another reply"
            ));
        }
        reply
    }

    fn state_digest(&self) -> Digest {
        self.app.state_digest()
    }

    fn snapshot(&self) -> Vec<u8> {
        let bytes = self.app.snapshot();
        let mut shadow = self.shadow.borrow_mut();
        if self.app.halted().is_some() {
            shadow.copy = None;
            return bytes;
        }
        let digest = self.app.state_digest();
        let executed = shadow.executed;
        let copy_digest = shadow.copy.as_ref().map(SimApp::state_digest);
        if let Some(copy_digest) = copy_digest
            && copy_digest != digest
        {
            shadow.diverged(format!(
                "the state at sequence {executed} has digest {digest}, the copy's {copy_digest}"
            ));
        }
        let mut copy = match shadow.copy.take() {
            Some(copy) => copy,
            None => match SimApp::open(self.config.clone(), MemoryStore::new()) {
                Ok(copy) => copy,
                Err(e) => unreachable!("an empty in-memory ledger always opens: {e}"),
            },
        };
        match copy.restore(&bytes, digest) {
            Ok(()) => {
                shadow.copy = Some(copy);
                shadow.restored_at = executed;
            }
            Err(e) => shadow.diverged(format!("its own snapshot does not restore: {e}")),
        }
        bytes
    }

    fn restore(&mut self, snapshot: &[u8], expected: Digest) -> Result<(), RestoreError> {
        let restored = self.app.restore(snapshot, expected);
        // Re-seeded at the next snapshot; until then there is no copy to
        // compare (the replica itself is now the restored one).
        self.shadow.get_mut().copy = None;
        restored
    }

    fn leader_weights(&self, validators: &ValidatorSet, height: Sequence) -> Vec<u64> {
        self.app.leader_weights(validators, height)
    }
}

#[cfg(test)]
mod tests {
    use shieldx_core::app::Transaction;

    use super::*;

    const ADMIN: [u8; 32] = [1; 32];

    fn checked() -> CheckedApp {
        let config = AppConfig::new(b"fidelity".to_vec(), ADMIN);
        let app = SimApp::open(config.clone(), MemoryStore::new()).expect("opens");
        CheckedApp::new(app, config)
    }

    fn mint(app: &mut SimApp, height: u64) {
        app.execute_transaction(
            height,
            ADMIN,
            height,
            &Transaction::Mint {
                time_ms: height,
                key: height.to_le_bytes().to_vec(),
                to: [2; 32],
                amount: 5,
            },
        );
    }

    #[test]
    fn a_change_the_copy_did_not_see_is_reported_at_the_next_snapshot() {
        let mut app = checked();
        mint(app.inner_mut(), 1);
        let first = app.snapshot();
        assert_eq!(
            app.divergence(),
            None,
            "the first snapshot only seeds the copy"
        );
        assert_eq!(app.snapshot(), first);
        assert_eq!(app.divergence(), None, "nothing executed since: equal");

        // A change behind the copy's back stands in for state a snapshot
        // leaves out: only the replica's own application has it.
        mint(app.inner_mut(), 2);
        app.snapshot();
        let divergence = app.divergence().expect("reported");
        assert!(divergence.contains("digest"), "{divergence}");

        // Reported once: the first difference is kept.
        mint(app.inner_mut(), 3);
        app.snapshot();
        assert_eq!(app.divergence(), Some(divergence));
    }

    #[test]
    fn a_restore_drops_the_copy_until_the_next_snapshot() {
        let mut source = checked();
        mint(source.inner_mut(), 1);
        let bytes = source.snapshot();
        let digest = source.state_digest();

        let mut app = checked();
        app.snapshot();
        app.restore(&bytes, digest).expect("restores");
        // The copy was seeded before the restore; comparing it now would
        // report the restore itself.
        app.snapshot();
        assert_eq!(app.divergence(), None);
        assert_eq!(app.state_digest(), digest);
    }
}
