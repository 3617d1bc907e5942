use super::*;
use crate::crypto::vrf::VrfSecretKey;

const CHAIN: &[u8] = b"shieldx-staking-test";

/// Chi-square critical values at p = 0.001, by degrees of freedom.
const CHI2_CRIT_P001: [f64; 11] = [
    0.0, 10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877, 29.588,
];

/// Leads per validator over `views` views, the seed advancing every
/// `views_per_epoch` views as the beacon does at checkpoints.
fn tally(weights: &[u64], views: u64, views_per_epoch: u64) -> Vec<u64> {
    let mut counts = vec![0u64; weights.len()];
    let mut seed = genesis_seed(CHAIN);
    for view in 0..views {
        if view > 0 && view % views_per_epoch == 0 {
            seed = next_seed(&seed, view / views_per_epoch, None);
        }
        let leader = select_leader(&seed, view, weights).expect("some weight");
        counts[usize::from(leader)] += 1;
    }
    counts
}

#[test]
fn leader_shares_match_stake_shares() {
    // The example: halving stakes, 100/50/25/…
    let weights = [100u64, 50, 25, 12, 6, 3, 2, 1, 1];
    let views = 100_000u64;
    let counts = tally(&weights, views, 100);
    let total: u64 = weights.iter().sum();
    let mut chi2 = 0.0f64;
    let mut worst_relative = 0.0f64;
    for (i, (&w, &c)) in weights.iter().zip(&counts).enumerate() {
        let expected = views as f64 * w as f64 / total as f64;
        chi2 += (c as f64 - expected).powi(2) / expected;
        let relative = (c as f64 - expected).abs() / expected;
        worst_relative = worst_relative.max(relative);
        println!(
            "validator {i}: stake {w:>3} share {:.4} led {:.4} relative error {:.2}%",
            w as f64 / total as f64,
            c as f64 / views as f64,
            relative * 100.0
        );
    }
    let df = weights.len() - 1;
    println!(
        "chi2 = {chi2:.3} (df {df}, critical {})",
        CHI2_CRIT_P001[df]
    );
    assert!(
        chi2 < CHI2_CRIT_P001[df],
        "chi-square {chi2} rejects stake-proportional leadership at p = 0.001"
    );
    // The three largest validators (85% of the stake) are within 3%.
    for i in 0..3 {
        let expected = views as f64 * weights[i] as f64 / total as f64;
        let relative = (counts[i] as f64 - expected).abs() / expected;
        assert!(relative < 0.03, "validator {i} off by {relative}");
    }
    assert!(
        worst_relative < 0.25,
        "a small validator is off by {worst_relative}"
    );
}

#[test]
fn zero_weight_validators_are_never_selected() {
    // Jailed (1), tombstoned (3) and unstaked (4) validators weigh 0.
    let weights = [7u64, 0, 3, 0, 0, 1];
    let counts = tally(&weights, 20_000, 100);
    assert_eq!((counts[1], counts[3], counts[4]), (0, 0, 0));
    assert!(counts[0] > counts[2] && counts[2] > counts[5] && counts[5] > 0);
    assert_eq!(select_leader(&[0; 32], 5, &[0, 0, 0]), None);
    assert_eq!(select_leader(&[0; 32], 5, &[]), None);
    assert_eq!(select_leader(&[9; 32], 5, &[0, 0, 42]), Some(2));
}

#[test]
fn selection_is_a_function_of_seed_and_view() {
    let weights = [5u64, 5, 5, 5];
    let seed = genesis_seed(CHAIN);
    for view in 0..100 {
        assert_eq!(
            select_leader(&seed, view, &weights),
            select_leader(&seed, view, &weights)
        );
    }
    // Different seeds give different schedules.
    let other = next_seed(&seed, 1, None);
    let differs = (0..100)
        .filter(|&v| select_leader(&seed, v, &weights) != select_leader(&other, v, &weights))
        .count();
    assert!(differs > 50, "only {differs} of 100 views differ");
}

#[test]
fn huge_stakes_do_not_overflow() {
    let weights = [u64::MAX, u64::MAX, 1];
    let leader = select_leader(&[3; 32], 0, &weights).expect("weight");
    assert!(leader < 3);
}

#[test]
fn vrf_schedule_falls_back_when_nobody_is_eligible() {
    use crate::consensus::{Validator, ValidatorSet};
    use crate::crypto::bls::BlsSecretKey;
    use crate::crypto::ed25519::SigningKey;
    let set = ValidatorSet::new(
        (0..4u8)
            .map(|i| Validator {
                identity: SigningKey::from_slice(&[i + 1; 32])
                    .expect("seed")
                    .verifying_key(),
                vote_key: BlsSecretKey::key_gen(&[i + 1; 32], b"")
                    .expect("ikm")
                    .public_key(),
                vrf_key: VrfSecretKey::from_slice(&[i + 1; 32])
                    .expect("seed")
                    .public_key(),
                power: 1,
            })
            .collect(),
    )
    .expect("valid set");
    let anchor = ScheduleAnchor {
        sequence: 0,
        seed: [1; 32],
        weights: vec![0; 4],
    };
    assert_eq!(VrfSchedule.primary(6, &anchor, &set), 2);
    let anchor = ScheduleAnchor {
        weights: vec![0, 0, 0, 9],
        ..anchor
    };
    assert!((0..50).all(|v| VrfSchedule.primary(v, &anchor, &set) == 3));
}

#[test]
fn eligibility_follows_the_anchor_weights() {
    let anchor = |weights: Vec<u64>| ScheduleAnchor {
        sequence: 20,
        seed: [1; 32],
        weights,
    };
    let tombstoned_one = anchor(vec![3, 0, 5, 1]);
    assert!(VrfSchedule.eligible(0, &tombstoned_one));
    assert!(!VrfSchedule.eligible(1, &tombstoned_one));
    assert!(!VrfSchedule.eligible(9, &tombstoned_one));
    // Nobody eligible: the view-mod-n fallback leads, so nobody is retired.
    let nobody = anchor(vec![0; 4]);
    assert!((0..4).all(|i| VrfSchedule.eligible(i, &nobody)));
    // The round robin schedule ignores weights altogether.
    assert!(crate::consensus::RoundRobin.eligible(1, &tombstoned_one));
}

/// The bias-resistance claim of the module docs: whatever the proposer of
/// a checkpoint does, the next seed is one of two values — the honest VRF
/// mix or the fallback — both fixed before it acts.
#[test]
fn withholding_proposer_has_two_outcomes_at_most() {
    let proposer = VrfSecretKey::from_slice(&[11; 32]).expect("seed");
    let other = VrfSecretKey::from_slice(&[12; 32]).expect("seed");
    let seed = genesis_seed(CHAIN);
    let epoch = 7;
    let key = proposer.public_key();
    let honest = proposer
        .prove(&vrf_alpha(CHAIN, &seed, epoch))
        .expect("prove")
        .0;
    let strategies = [
        // Honest.
        Some(honest),
        // Withheld.
        None,
        // Another validator's proof for the same input.
        Some(
            other
                .prove(&vrf_alpha(CHAIN, &seed, epoch))
                .expect("prove")
                .0,
        ),
        // Its own proof over another epoch, seed or chain (grinding).
        Some(
            proposer
                .prove(&vrf_alpha(CHAIN, &seed, epoch + 1))
                .expect("prove")
                .0,
        ),
        Some(
            proposer
                .prove(&vrf_alpha(CHAIN, &[0; 32], epoch))
                .expect("prove")
                .0,
        ),
        Some(
            proposer
                .prove(&vrf_alpha(b"other", &seed, epoch))
                .expect("prove")
                .0,
        ),
    ];
    let outcomes: std::collections::BTreeSet<[u8; 32]> = strategies
        .iter()
        .map(|proof| beacon_step(CHAIN, &seed, epoch, Some(&key), proof.as_ref()))
        .collect();
    assert_eq!(outcomes.len(), 2, "a proposer reached more than two seeds");
    assert!(outcomes.contains(&next_seed(&seed, epoch, None)));
    let beta = key
        .verify(&vrf_alpha(CHAIN, &seed, epoch), &honest)
        .expect("valid");
    assert!(outcomes.contains(&next_seed(&seed, epoch, Some(&beta))));
    // Without the proposer's key nothing verifies: the fallback.
    assert_eq!(
        beacon_step(CHAIN, &seed, epoch, None, Some(&honest)),
        next_seed(&seed, epoch, None)
    );
}

#[test]
fn slashing_tiers() {
    let policy = SlashingPolicy::default();
    assert_eq!(policy.bps(Offence::Liveness, 0), 100);
    assert_eq!(policy.bps(Offence::InvalidProposal, 0), 500);
    assert_eq!(policy.bps(Offence::Liveness, 1), 1_000);
    assert_eq!(policy.bps(Offence::InvalidProposal, 3), 1_000);
    assert_eq!(policy.bps(Offence::Equivocation, 0), 5_000);
    assert_eq!(policy.bps(Offence::Equivocation, 2), 5_000);
    assert_eq!(SlashingPolicy::amount(1_000, 5_000), 500);
    assert_eq!(SlashingPolicy::amount(999, 100), 9);
    assert_eq!(SlashingPolicy::amount(u64::MAX, 10_000), u64::MAX);
    assert_eq!(SlashingPolicy::amount(10, 20_000), 10, "capped at 100%");
}

#[test]
fn jail_release_is_automatic_at_the_release_height() {
    assert!(ValidatorStatus::Active.eligible_at(0));
    assert!(!ValidatorStatus::JailedUntil(1_000).eligible_at(999));
    assert!(ValidatorStatus::JailedUntil(1_000).eligible_at(1_000));
    assert!(!ValidatorStatus::Tombstoned.eligible_at(u64::MAX));
}
