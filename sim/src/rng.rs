//! The simulator's only source of randomness.
//!
//! xoshiro256** (Blackman and Vigna), seeded through SplitMix64 from a blake3
//! derivation of `(run seed, stream name)`. The algorithm is written out here,
//! not taken from a crate, so that a seed replays the same run for as long as
//! this file does not change, whatever the dependency versions.

use shieldx_core::crypto::Digest;

/// A deterministic PRNG sub-stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRng {
    state: [u64; 4],
}

impl SimRng {
    /// The sub-stream `name` of run `seed`. Different names give independent streams,
    /// so adding draws to one stream (say, the workload) never shifts another
    /// (say, the faults).
    pub fn stream(seed: u64, name: &str) -> SimRng {
        let derived = Digest::of_parts(
            "shieldx-sim rng stream v1",
            &[&seed.to_le_bytes(), name.as_bytes()],
        );
        let mut splitmix = u64::from_le_bytes(
            derived.as_bytes()[..8]
                .try_into()
                .expect("a digest has at least 8 bytes"),
        );
        let mut state = [0u64; 4];
        for word in &mut state {
            *word = splitmix64(&mut splitmix);
        }
        // xoshiro's all-zero state is a fixed point; SplitMix64 never yields four
        // zero words in a row, but the invariant is cheap to state.
        debug_assert!(state != [0; 4]);
        SimRng { state }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.state[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.state[1] << 17;
        self.state[2] ^= self.state[0];
        self.state[3] ^= self.state[1];
        self.state[1] ^= self.state[2];
        self.state[0] ^= self.state[3];
        self.state[2] ^= t;
        self.state[3] = self.state[3].rotate_left(45);
        result
    }

    /// A uniform value in `0..bound` (Lemire's multiply-shift with rejection, so
    /// there is no modulo bias). Returns 0 when `bound` is 0.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(bound);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// True with probability `numerator / denominator`, in integer arithmetic.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        denominator != 0 && self.below(denominator) < numerator
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_and_name_always_give_the_same_stream() {
        let mut first = SimRng::stream(42, "network");
        let mut second = SimRng::stream(42, "network");
        let a: Vec<u64> = (0..32).map(|_| first.next_u64()).collect();
        let b: Vec<u64> = (0..32).map(|_| second.next_u64()).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn streams_are_independent_of_each_other_and_of_the_seed() {
        let mut network = SimRng::stream(42, "network");
        let mut faults = SimRng::stream(42, "faults");
        let mut other_seed = SimRng::stream(43, "network");
        let n = network.next_u64();
        assert_ne!(n, faults.next_u64());
        assert_ne!(n, other_seed.next_u64());
    }

    #[test]
    fn frozen_first_draws() {
        // Changing these values changes every recorded seed's replay: that is an
        // explicit decision, never a side effect of a refactor or a dependency bump.
        let mut rng = SimRng::stream(0, "frozen");
        let draws: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(
            draws,
            [
                0xabb4_74a7_b79a_6076,
                0xf5f8_2de5_e088_0452,
                0x9056_f535_3b7e_5d66
            ]
        );
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = SimRng::stream(7, "below");
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let value = rng.below(10);
            assert!(value < 10);
            seen[value as usize] += 1;
        }
        // Each bucket expects 1,000; 800 is more than six standard deviations below.
        assert!(seen.iter().all(|count| *count > 800), "{seen:?}");
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn chance_matches_its_rate() {
        let mut rng = SimRng::stream(9, "chance");
        let hits = (0..100_000).filter(|_| rng.chance(1, 4)).count();
        assert!((24_000..26_000).contains(&hits), "{hits}");
        assert!(!rng.chance(1, 0));
        assert!(!rng.chance(0, 5));
    }
}
