use super::*;
use crate::ledger::memory::MemoryStore;

const ADMIN: AccountId = [1; 32];
const ALICE: AccountId = [2; 32];
const BOB: AccountId = [3; 32];

fn app() -> App<MemoryStore> {
    App::open(
        AppConfig::new(b"test-chain".to_vec(), ADMIN),
        MemoryStore::new(),
    )
    .unwrap()
}

fn mint(key: &str, to: AccountId, amount: u64) -> Transaction {
    Transaction::Mint {
        time_ms: 1_000,
        key: key.as_bytes().to_vec(),
        to,
        amount,
    }
}

fn transfer(key: &str, legs: &[(AccountId, u64)]) -> Transaction {
    Transaction::Transfer {
        time_ms: 1_000,
        key: key.as_bytes().to_vec(),
        legs: legs
            .iter()
            .map(|&(to, amount)| TransferLeg { to, amount })
            .collect(),
    }
}

fn run(app: &mut App<MemoryStore>, height: u64, client: AccountId, tx: &Transaction) -> TxResult {
    app.execute_transaction(height, client, height, tx)
}

fn applied(r: &TxResult) -> bool {
    matches!(r, TxResult::Applied { .. })
}

#[test]
fn mint_is_admin_only_and_transfers_move_credits() {
    let mut a = app();
    assert_eq!(
        run(&mut a, 1, ALICE, &mint("m", ALICE, 5)),
        TxResult::Rejected(Rejection::Unauthorised("only the admin mints"))
    );
    assert!(applied(&run(&mut a, 2, ADMIN, &mint("m", ALICE, 100))));
    assert!(applied(&run(
        &mut a,
        3,
        ALICE,
        &transfer("t", &[(BOB, 30)])
    )));
    assert_eq!(a.state().balance(&ALICE), 70);
    assert_eq!(a.state().balance(&BOB), 30);
    assert_eq!(a.state().supply, 100);
    assert_eq!(a.audit_trail(&BOB).unwrap().len(), 1);
    assert_eq!(a.audit_trail(&ALICE).unwrap().len(), 2);
}

#[test]
fn a_failing_leg_rejects_the_whole_transfer_and_changes_nothing() {
    let mut a = app();
    run(&mut a, 1, ADMIN, &mint("m", ALICE, 50));
    let digest = a.state_digest();
    let head = a.ledger().head();
    let r = run(&mut a, 2, ALICE, &transfer("t", &[(BOB, 30), (BOB, 30)]));
    assert_eq!(
        r,
        TxResult::Rejected(Rejection::InsufficientFunds {
            leg: 1,
            balance: 20,
            amount: 30
        })
    );
    assert_eq!(a.state_digest(), digest);
    assert_eq!(a.ledger().head(), head);
    assert_eq!(
        run(
            &mut a,
            3,
            ALICE,
            &Transaction::Burn {
                time_ms: 1,
                key: b"b".to_vec(),
                amount: 51
            }
        ),
        TxResult::Rejected(Rejection::InsufficientFunds {
            leg: 0,
            balance: 50,
            amount: 51
        })
    );
    assert!(matches!(
        run(&mut a, 4, ALICE, &transfer("z", &[(BOB, 0)])),
        TxResult::Rejected(Rejection::InvalidAmount(_))
    ));
}

#[test]
fn idempotency_returns_the_original_result_and_rejects_changed_fields() {
    let mut a = app();
    run(&mut a, 1, ADMIN, &mint("m", ALICE, 100));
    let first = run(&mut a, 2, ALICE, &transfer("pay-1", &[(BOB, 10)]));
    let head = a.ledger().head();
    assert_eq!(
        run(&mut a, 3, ALICE, &transfer("pay-1", &[(BOB, 10)])),
        first
    );
    assert_eq!(a.ledger().head(), head, "a repeat appends nothing");
    assert_eq!(a.state().balance(&BOB), 10);
    assert_eq!(
        run(&mut a, 4, ALICE, &transfer("pay-1", &[(BOB, 11)])),
        TxResult::Rejected(Rejection::IdempotencyConflict)
    );
    // Keys are per client: Bob may use the same key.
    run(&mut a, 5, ADMIN, &mint("m2", BOB, 5));
    assert!(applied(&run(
        &mut a,
        6,
        BOB,
        &transfer("pay-1", &[(ALICE, 1)])
    )));
}

#[test]
fn idempotency_keys_expire_after_the_retention_window() {
    let mut config = AppConfig::new(b"c".to_vec(), ADMIN);
    config.idempotency_retention_ms = 10_000;
    let mut a = App::open(config, MemoryStore::new()).unwrap();
    run(&mut a, 1, ADMIN, &mint("m", ALICE, 100));
    let tx = |t: u64| Transaction::Transfer {
        time_ms: t,
        key: b"k".to_vec(),
        legs: vec![TransferLeg { to: BOB, amount: 1 }],
    };
    assert!(applied(&run(&mut a, 2, ALICE, &tx(1_000))));
    run(&mut a, 3, ALICE, &tx(5_000));
    assert_eq!(a.state().balance(&BOB), 1, "within retention: a repeat");
    run(&mut a, 4, ALICE, &tx(20_000));
    assert_eq!(
        a.state().balance(&BOB),
        2,
        "after retention the key is new again"
    );
}

#[test]
fn block_time_is_monotone_and_bounded_per_step() {
    let mut a = app();
    run(&mut a, 1, ADMIN, &mint("a", ALICE, 1));
    assert_eq!(a.state().time_ms, 1_000);
    run(
        &mut a,
        2,
        ADMIN,
        &Transaction::Mint {
            time_ms: 10,
            key: b"b".to_vec(),
            to: ALICE,
            amount: 1,
        },
    );
    assert_eq!(a.state().time_ms, 1_000, "never backwards");
    run(
        &mut a,
        3,
        ADMIN,
        &Transaction::Mint {
            time_ms: u64::MAX,
            key: b"c".to_vec(),
            to: ALICE,
            amount: 1,
        },
    );
    assert_eq!(
        a.state().time_ms,
        1_000 + 3_600_000,
        "at most one step ahead"
    );
}

fn sensor_events() -> Transaction {
    let e = |id: &str, payload: &str| Event {
        id: id.into(),
        ts: 1_000,
        source: "203.0.113.9".into(),
        sensor: "s1".into(),
        kind: "http".into(),
        payload: payload.as_bytes().to_vec(),
        headers: vec![],
    };
    Transaction::SubmitEvents {
        time_ms: 1_000,
        events: vec![
            e(
                "e1",
                "GET /item?id=1%27%20UNION%20SELECT%20password%20FROM%20users-- HTTP/1.1\r\n\r\n",
            ),
            e("e2", "GET /search?q=shoes HTTP/1.1\r\n\r\n"),
            e(
                "e3",
                "GET /?q=%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1\r\n\r\n",
            ),
        ],
    }
}

#[test]
fn an_alert_is_attributed_to_the_source_of_the_event_that_raised_it() {
    // Two callers' events, combined into one submission, may share an id:
    // the alert belongs to the attacking event's source, not to whichever
    // event with that id came last.
    let event = |source: &str, payload: &str| Event {
        id: "same-id".into(),
        ts: 1_000,
        source: source.into(),
        sensor: "s1".into(),
        kind: "http".into(),
        payload: payload.as_bytes().to_vec(),
        headers: vec![],
    };
    let tx = Transaction::SubmitEvents {
        time_ms: 1_000,
        events: vec![
            event(
                "198.51.100.1",
                "GET /item?id=1%27%20UNION%20SELECT%20password%20FROM%20users-- HTTP/1.1\r\n\r\n",
            ),
            event("198.51.100.2", "GET /search?q=shoes HTTP/1.1\r\n\r\n"),
        ],
    };
    let mut a = app();
    let r = run(&mut a, 1, ALICE, &tx);
    let TxResult::Applied {
        alerts, alerting, ..
    } = r
    else {
        panic!("{r:?}")
    };
    assert!(alerts >= 1);
    assert_eq!(alerting.len(), 1);
    assert_eq!(alerting[0].index, 0);
    let by_source = &a.state().alerts_by_source();
    assert_eq!(by_source.get("198.51.100.1"), Some(&u64::from(alerts)));
    assert!(!by_source.contains_key("198.51.100.2"), "{by_source:?}");
}

#[test]
fn submitted_events_raise_alerts_into_the_log_and_projections() {
    let mut a = app();
    let r = run(&mut a, 1, ALICE, &sensor_events());
    let TxResult::Applied {
        alerts,
        sequence,
        alerting,
    } = r
    else {
        panic!("{r:?}")
    };
    assert!(alerts >= 2, "{alerts}");
    // e1 (UNION SELECT) and e3 (script tag) alert; e2 is clean.
    assert_eq!(
        alerting.iter().map(|a| a.index).collect::<Vec<_>>(),
        [0, 2],
        "{alerting:?}"
    );
    assert_eq!(alerting.iter().map(|a| a.alerts).sum::<u32>(), alerts);
    assert_eq!(
        sequence,
        1 + u64::from(alerts),
        "the submitted events, then one record per alert"
    );
    let s = a.state();
    assert!(s.alerts_by_rule.contains_key("sqli-union-select"));
    assert!(s.alerts_by_rule.contains_key("xss-script-tag"));
    assert_eq!(s.alerts_by_source()["203.0.113.9"], u64::from(alerts));
    assert_eq!(
        s.alerts_by_severity.values().sum::<u64>(),
        u64::from(alerts)
    );
}

#[test]
fn invalid_rules_never_replace_the_loaded_set_and_valid_ones_wait_for_their_height() {
    let mut a = app();
    let bad = Transaction::RulesUpdate {
        time_ms: 1,
        version: 1,
        effective_height: 1,
        rules: "rules: [".into(),
    };
    assert!(matches!(
        run(&mut a, 1, ADMIN, &bad),
        TxResult::Rejected(Rejection::Rules(_))
    ));
    assert_eq!(a.state().rules_version(), 0);
    let only_marker =
        "rules:\n  - { id: marker, title: t, severity: low, match: { literal: zebra } }\n";
    let good = Transaction::RulesUpdate {
        time_ms: 1,
        version: 1,
        effective_height: 5,
        rules: only_marker.into(),
    };
    assert!(matches!(
        run(&mut a, 2, ALICE, &good),
        TxResult::Rejected(Rejection::Unauthorised(_))
    ));
    assert!(applied(&run(&mut a, 3, ADMIN, &good)));
    assert_eq!(a.state().rules_version(), 0, "not before height 5");
    let zebra = |id: &str| Transaction::SubmitEvents {
        time_ms: 2,
        events: vec![Event {
            id: id.into(),
            payload: b"zebra".to_vec(),
            kind: "http".into(),
            ..Event::default()
        }],
    };
    assert_eq!(
        run(&mut a, 4, ALICE, &zebra("z1")),
        TxResult::Applied {
            sequence: 2,
            alerts: 0,
            alerting: Vec::new(),
        }
    );
    assert!(matches!(
        run(&mut a, 5, ALICE, &zebra("z2")),
        TxResult::Applied { alerts: 1, .. }
    ));
    assert_eq!(a.state().rules_version(), 1);
    let stale = Transaction::RulesUpdate {
        time_ms: 1,
        version: 1,
        effective_height: 9,
        rules: only_marker.into(),
    };
    assert!(matches!(
        run(&mut a, 6, ADMIN, &stale),
        TxResult::Rejected(Rejection::Rules(_))
    ));
}

fn busy(a: &mut App<MemoryStore>, from: u64, to: u64) {
    for h in from..to {
        let tx = match h % 4 {
            0 => mint(&format!("m{h}"), ALICE, 10 + h),
            1 => transfer(&format!("t{h}"), &[(BOB, 3)]),
            2 => sensor_events(),
            _ => Transaction::Stake {
                time_ms: 1_000 + h,
                amount: 2,
            },
        };
        let client = if h % 4 == 0 { ADMIN } else { ALICE };
        run(a, h, client, &tx);
    }
}

#[test]
fn replay_from_genesis_and_from_a_snapshot_give_the_same_digest() {
    let mut a = app();
    busy(&mut a, 1, 40);
    a.checkpoint().unwrap();
    busy(&mut a, 40, 77);
    a.ledger_mut().sync().unwrap();
    let digest = a.state_digest();

    // From the snapshot plus the log suffix.
    let store = a.ledger().store().clone();
    let from_snapshot =
        App::open(AppConfig::new(b"test-chain".to_vec(), ADMIN), store.clone()).unwrap();
    assert_eq!(from_snapshot.state_digest(), digest);

    // From genesis: same store without the snapshot.
    let mut genesis_only = MemoryStore::new();
    genesis_only
        .append(&store.read(1, usize::MAX).unwrap())
        .unwrap();
    let from_genesis =
        App::open(AppConfig::new(b"test-chain".to_vec(), ADMIN), genesis_only).unwrap();
    assert_eq!(
        from_genesis.state_digest(),
        digest,
        "windows, idempotency and time included"
    );
}

#[test]
fn state_transfer_restores_an_identical_replica() {
    let mut a = app();
    busy(&mut a, 1, 30);
    let snapshot = a.snapshot();
    let digest = a.state_digest();
    let mut b = app();
    let mut wrong = snapshot.clone();
    wrong[5] ^= 1;
    assert!(
        b.restore(&wrong, digest).is_err(),
        "tampered snapshot refused"
    );
    assert_eq!(b.state().supply, 0, "and nothing changed");
    b.restore(&snapshot, digest).unwrap();
    assert_eq!(b.state_digest(), digest);
    busy(&mut a, 30, 50);
    busy(&mut b, 30, 50);
    assert_eq!(
        a.state_digest(),
        b.state_digest(),
        "they stay identical, windows included"
    );
    // The restored replica's log continues from the snapshot's head.
    assert!(b.ledger().base().sequence > 0);
    assert_eq!(b.ledger().head(), a.ledger().head());
    let reopened = App::open(
        AppConfig::new(b"test-chain".to_vec(), ADMIN),
        b.ledger().store().clone(),
    )
    .unwrap();
    assert_eq!(reopened.state_digest(), b.state_digest());
}

#[test]
fn a_store_failure_halts_the_replica_instead_of_diverging() {
    let mut a = app();
    run(&mut a, 1, ADMIN, &mint("m", ALICE, 10));
    a.ledger_mut().store_mut().fail_next_writes(1);
    let r = run(&mut a, 2, ADMIN, &mint("n", ALICE, 10));
    assert!(matches!(r, TxResult::Rejected(Rejection::Ledger(_))));
    assert!(a.halted().is_some());
    assert_eq!(a.state().supply, 10);
    assert!(matches!(
        run(&mut a, 3, ADMIN, &mint("o", ALICE, 1)),
        TxResult::Rejected(Rejection::Ledger(_))
    ));
}

#[test]
fn transactions_round_trip_and_garbage_is_a_malformed_reply() {
    for tx in [
        sensor_events(),
        mint("m", ALICE, 5),
        transfer("t", &[(BOB, 1), (ALICE, 2)]),
        Transaction::Burn {
            time_ms: 3,
            key: b"b".to_vec(),
            amount: 4,
        },
        Transaction::Stake {
            time_ms: 3,
            amount: 4,
        },
        Transaction::Unstake {
            time_ms: 3,
            amount: 4,
        },
        Transaction::RulesUpdate {
            time_ms: 1,
            version: 2,
            effective_height: 3,
            rules: "rules: []".into(),
        },
    ] {
        let bytes = tx.to_bytes();
        assert_eq!(Transaction::decode_exact(&bytes).unwrap(), tx);
        for cut in 0..bytes.len() {
            assert!(Transaction::decode_exact(&bytes[..cut]).is_err());
        }
    }
    let key = crate::crypto::ed25519::SigningKey::from_slice(&[7; 32]).unwrap();
    let request = Request::sign(b"test-chain", &key, 1, vec![0xff, 1, 2]);
    let mut a = app();
    let reply = a.execute(1, &request);
    assert_eq!(reply[0], 1, "rejected");
    assert!(String::from_utf8_lossy(&reply).contains("malformed"));
}

#[test]
fn recovery_verifies_the_suffix_and_a_scrub_verifies_everything() {
    let mut a = app();
    busy(&mut a, 1, 40);
    a.checkpoint().unwrap();
    let at = a.ledger().head().0;
    busy(&mut a, 40, 60);
    a.ledger_mut().sync().unwrap();
    let config = || AppConfig::new(b"test-chain".to_vec(), ADMIN);

    let mut after = a.ledger().store().clone();
    after.corrupt(at + 3);
    match App::open(config(), after) {
        Err(LedgerError::Corrupt { sequence, .. }) => assert_eq!(sequence, at + 3),
        other => panic!("a corrupt suffix opened: {other:?}"),
    }

    let mut before = a.ledger().store().clone();
    before.corrupt(at - 5);
    let opened = App::open(config(), before).expect("recovery reads only the suffix");
    match opened.verify_log() {
        Err(LedgerError::Corrupt { sequence, .. }) => assert_eq!(sequence, at - 5),
        other => panic!("the scrub missed it: {other:?}"),
    }

    let mut at_checkpoint = a.ledger().store().clone();
    at_checkpoint.corrupt(at);
    assert!(
        App::open(config(), at_checkpoint).is_err(),
        "the checkpointed entry itself is checked"
    );
}

mod unbonding {
    use super::*;
    use crate::consensus::{Evidence, Signed, Validator, Vote};
    use crate::crypto::bls::BlsSecretKey;
    use crate::crypto::ed25519::SigningKey;
    use crate::crypto::vrf::VrfSecretKey;
    use crate::staking::PolicyError;

    const CHAIN: &[u8] = b"test-chain";

    fn identity(index: u8) -> SigningKey {
        SigningKey::from_slice(&[index + 1; 32]).expect("seed")
    }

    fn validators() -> ValidatorSet {
        ValidatorSet::new(
            (0..4u8)
                .map(|i| {
                    let seed = [i + 1; 32];
                    Validator {
                        identity: identity(i).verifying_key(),
                        vote_key: BlsSecretKey::key_gen(&seed, b"").expect("ikm").public_key(),
                        vrf_key: VrfSecretKey::from_slice(&seed).expect("seed").public_key(),
                        power: 1,
                    }
                })
                .collect(),
        )
        .expect("valid set")
    }

    /// Four validators bonded 100 each at genesis; evidence is admissible
    /// for 50 heights and unbonding takes 50.
    fn config() -> AppConfig {
        let mut config = AppConfig::new(CHAIN.to_vec(), ADMIN);
        config.validators = Some(validators());
        config.genesis_stake_per_power = 100;
        config.slashing.evidence_max_age = 50;
        config.slashing.unbonding_sequences = 50;
        config
    }

    fn unstake(amount: u64) -> Transaction {
        Transaction::Unstake {
            time_ms: 1_000,
            amount,
        }
    }

    /// Validator 2 prepared two digests for view 3, sequence `sequence`.
    fn equivocation(sequence: u64) -> Transaction {
        let vote = |digest: &[u8]| {
            let body = Vote {
                view: 3,
                sequence,
                digest: Digest::of(digest),
            };
            Signed::sign(CHAIN, 2, &identity(2), body)
        };
        Transaction::Evidence {
            time_ms: 1_000,
            evidence: Box::new(EvidenceRecord::new(
                CHAIN,
                Evidence::ConflictingPrepare(vote(b"a"), vote(b"b")),
            )),
        }
    }

    /// An app on `config` where validator 2 (genesis bond 100) was minted
    /// 1,000 at height 1 and bonded 600 more at height 2: 700 bonded, 400
    /// in its balance.
    fn validator_2_with_700_bonded(config: AppConfig) -> (App<MemoryStore>, AccountId) {
        let mut a = App::open(config, MemoryStore::new()).unwrap();
        let v2 = identity(2).verifying_key().to_bytes();
        assert!(applied(&run(&mut a, 1, ADMIN, &mint("m", v2, 1_000))));
        let stake = Transaction::Stake {
            time_ms: 1_000,
            amount: 600,
        };
        assert!(applied(&run(&mut a, 2, v2, &stake)));
        assert_eq!(a.state().stake(&v2), 700);
        (a, v2)
    }

    #[test]
    fn unstaked_stake_waits_out_unbonding_and_stays_slashable_for_later_offences() {
        let (mut a, v2) = validator_2_with_700_bonded(config());

        // The genesis bond (power 1 x 100) backs the vote: it stays.
        let before = a.state_digest();
        assert_eq!(
            run(&mut a, 3, v2, &unstake(601)),
            TxResult::Rejected(Rejection::BelowBondFloor {
                stake: 700,
                floor: 100,
                amount: 601
            })
        );
        assert_eq!(
            run(&mut a, 3, v2, &unstake(0)),
            TxResult::Rejected(Rejection::InvalidAmount("zero"))
        );
        assert_eq!(a.state_digest(), before, "refusals change nothing");

        // Two entries: 200 from height 10 (matures 60), 100 from 20 (70).
        assert!(applied(&run(&mut a, 10, v2, &unstake(200))));
        assert!(applied(&run(&mut a, 20, v2, &unstake(100))));
        assert_eq!(a.state().stake(&v2), 400);
        assert_eq!(a.state().balance(&v2), 400, "nothing returned yet");
        assert_eq!(
            a.leader_weights(&validators(), 21)[2],
            400,
            "unbonding stake no longer weighs in the schedule"
        );
        assert_eq!(a.state().supply, 1_400, "unbonding stake is still supply");

        // An equivocation at sequence 15 slashes 50% of the bond and of the
        // entry that began at 20, not of the one that began at 10.
        assert!(applied(&run(&mut a, 30, ADMIN, &equivocation(15))));
        assert_eq!(a.state().stake(&v2), 200);
        let entries = &a.state().unbonding[&v2];
        assert_eq!(entries[&10].amount, 200);
        assert_eq!(entries[&20].amount, 50);
        assert_eq!(a.state().supply, 1_400 - 200 - 50);
        let trail = a.audit_trail(&v2).unwrap();
        assert!(trail.iter().any(|r| r.event
            == DomainEvent::UnbondingSlashed {
                validator: v2,
                amount: 50,
                started: 20,
                evidence: match equivocation(15) {
                    Transaction::Evidence { evidence, .. } => evidence.id(),
                    _ => unreachable!(),
                },
            }));
        a.checkpoint().unwrap();

        // Maturity is a height effect: the first transaction at or after
        // the maturity height returns the entry, whatever the transaction.
        run(&mut a, 59, ADMIN, &mint("n", ALICE, 1));
        assert_eq!(a.state().balance(&v2), 400);
        run(&mut a, 60, ADMIN, &mint("o", ALICE, 1));
        assert_eq!(a.state().balance(&v2), 600);
        let refused = run(&mut a, 75, v2, &unstake(0));
        assert!(matches!(refused, TxResult::Rejected(_)));
        assert_eq!(
            a.state().balance(&v2),
            650,
            "matured during a refused one too"
        );
        assert!(a.state().unbonding.is_empty());
        assert_eq!(a.state().supply, 1_400 - 250 + 2);

        // Replay, from the snapshot taken mid-unbonding and from genesis,
        // reaches the same state.
        a.ledger_mut().sync().unwrap();
        let digest = a.state_digest();
        let store = a.ledger().store().clone();
        let reopened = App::open(config(), store.clone()).unwrap();
        assert_eq!(reopened.state_digest(), digest);
        let mut genesis = MemoryStore::new();
        genesis.append(&store.read(1, usize::MAX).unwrap()).unwrap();
        assert_eq!(App::open(config(), genesis).unwrap().state_digest(), digest);
    }

    fn held(state: &State) -> u64 {
        state.balances.values().sum::<u64>()
            + state.stakes.values().sum::<u64>()
            + state
                .unbonding
                .values()
                .flat_map(|entries| entries.values())
                .map(|entry| entry.amount)
                .sum::<u64>()
    }

    /// An entry that matures at the height where the liveness sweep slashes
    /// its owner is either returned or slashed, never both: the supply
    /// stays equal to what accounts hold.
    #[test]
    fn an_entry_maturing_as_its_owner_is_jailed_is_not_also_slashed() {
        let mut config = config();
        config.slashing.liveness_window = 60;
        config.slashing.liveness_check_interval = 10;
        let (mut a, v2) = validator_2_with_700_bonded(config);
        // Begins at 20, matures at 70: the height at which the sweep finds
        // that no validator has sent a heartbeat for more than 60.
        assert!(applied(&run(&mut a, 20, v2, &unstake(200))));
        run(&mut a, 70, ADMIN, &mint("n", ALICE, 1));
        assert!(a.state().jailed.contains_key(&v2), "the sweep ran");
        assert!(a.state().unbonding.is_empty(), "the entry matured");
        assert_eq!(held(a.state()), a.state().supply);
    }

    #[test]
    fn unbonding_entries_are_bounded_per_account() {
        let mut a = App::open(config(), MemoryStore::new()).unwrap();
        assert!(applied(&run(&mut a, 1, ADMIN, &mint("m", ALICE, 100))));
        let stake = Transaction::Stake {
            time_ms: 1_000,
            amount: 100,
        };
        assert!(applied(&run(&mut a, 1, ALICE, &stake)));
        for height in 2..2 + crate::staking::UNBONDING_ENTRIES_MAX as u64 {
            assert!(applied(&run(&mut a, height, ALICE, &unstake(1))));
        }
        let last = 1 + crate::staking::UNBONDING_ENTRIES_MAX as u64;
        assert!(
            applied(&run(&mut a, last, ALICE, &unstake(1))),
            "a second unstake at one height joins its entry"
        );
        assert_eq!(
            run(&mut a, last + 1, ALICE, &unstake(1)),
            TxResult::Rejected(Rejection::TooManyUnbondings {
                max: crate::staking::UNBONDING_ENTRIES_MAX
            })
        );
        assert_eq!(a.state().unbonding[&ALICE][&last].amount, 2);
    }

    #[test]
    fn a_policy_that_ends_unbonding_before_evidence_expires_is_refused() {
        let mut config = config();
        config.slashing.unbonding_sequences = 49;
        match App::open(config, MemoryStore::new()) {
            Err(LedgerError::Policy(PolicyError::UnbondingShorterThanEvidence {
                unbonding: 49,
                evidence_max_age: 50,
            })) => {}
            other => panic!("opened with a short unbonding period: {other:?}"),
        }
    }
}

#[test]
fn an_account_stream_is_named_by_the_lowercase_hex_of_the_account() {
    let mut account = [0u8; 32];
    for (i, b) in account.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37) ^ 0xa5;
    }
    let hex: String = account.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(super::stream_of(&account), format!("account/{hex}"));
}

#[test]
fn projections_keep_no_zero_balance_or_stake() {
    let mut app =
        App::open(AppConfig::new(b"zero".to_vec(), ADMIN), MemoryStore::new()).expect("app");
    let alice = [7u8; 32];
    let bob = [8u8; 32];
    app.execute_transaction(
        1,
        ADMIN,
        1,
        &Transaction::Mint {
            time_ms: 1,
            key: b"m".to_vec(),
            to: alice,
            amount: 10,
        },
    );
    app.execute_transaction(
        2,
        alice,
        2,
        &Transaction::Transfer {
            time_ms: 2,
            key: b"t".to_vec(),
            legs: vec![TransferLeg {
                to: bob,
                amount: 10,
            }],
        },
    );
    let state = app.state();
    assert_eq!(state.balance(&bob), 10);
    assert!(
        !state.balances.contains_key(&alice),
        "an emptied account leaves the balances projection"
    );
    assert!(state.balances.values().all(|&v| v > 0));
    assert!(state.stakes.values().all(|&v| v > 0));
}

#[test]
fn a_state_whose_windows_pass_the_message_limit_still_round_trips() {
    // Full window tables (100,000 sources per rule, up to `count` distinct
    // values each) encode to more than any one message may carry; the
    // snapshot a validator stores and restores must hold them all the same.
    let windows = vec![5u8; crate::codec::ENCODED_LENGTH_MAX + 1];
    let state = State {
        time_ms: 7,
        ..State::default()
    };
    let bytes = codec::encode_state(&state, &windows);
    let (decoded, windows_back) = codec::decode_state(&bytes).expect("decodes whatever its size");
    assert_eq!(decoded, state);
    assert_eq!(windows_back, windows);
    assert!(codec::decode_state(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn alert_sources_are_bounded_and_the_busiest_are_kept() {
    let mut s = State::default();
    let mut total = 0u64;
    let mut alert = |s: &mut State, source: &str| {
        s.count_alert_source(source);
        total += 1;
    };
    // Under the bound every count is exact.
    for _ in 0..3 {
        alert(&mut s, "203.0.113.1");
    }
    alert(&mut s, "203.0.113.2");
    assert_eq!(s.alerts_by_source()["203.0.113.1"], 3);
    assert_eq!(s.alerts_by_source()["203.0.113.2"], 1);
    // Fill the table, then a busy source and a flood of one-off sources.
    for n in 0..ALERT_SOURCES_MAX {
        alert(&mut s, &format!("10.0.{}.{}", n >> 8, n & 255));
    }
    for _ in 0..100 {
        alert(&mut s, "198.51.100.7");
    }
    for n in 0..50_000u32 {
        alert(&mut s, &format!("2001:db8::{n:x}"));
    }
    let by_source = s.alerts_by_source();
    assert_eq!(by_source.len(), ALERT_SOURCES_MAX);
    // Held: any source with more than total / ALERT_SOURCES_MAX alerts (about
    // six here), counted at least as often as it alerted. The source with
    // three alerts is below that line, and the one-off flood displaced it.
    let total = total;
    assert!(100 > total / ALERT_SOURCES_MAX as u64);
    assert!(
        by_source["198.51.100.7"] >= 100,
        "the busiest source is held"
    );
    assert!(!by_source.contains_key("203.0.113.1"));
    // Space-Saving's own invariant: every alert adds exactly one to the sum.
    assert_eq!(by_source.values().sum::<u64>(), total);
    let index: BTreeSet<(u64, String)> = by_source.iter().map(|(k, v)| (*v, k.clone())).collect();
    assert_eq!(s.alert_sources_by_count, index);
    // A snapshot holds the same counts and rebuilds the same index.
    let bytes = codec::encode_state(&s, &[]);
    let (restored, _) = codec::decode_state(&bytes).expect("decodes");
    assert_eq!(restored, s);
    // A snapshot holding more sources than the bound is refused.
    let mut over = State::default();
    for n in 0..=ALERT_SOURCES_MAX {
        over.alerts_by_source.insert(format!("s{n}"), 1);
    }
    assert!(codec::decode_state(&codec::encode_state(&over, &[])).is_err());
}
