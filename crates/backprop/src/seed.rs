//! One user seed, independent random streams.
//!
//! A run draws random numbers for several unrelated purposes: which rows are held out,
//! the initial weights, the order of rows in each epoch. Seeding one generator per
//! purpose with the same `seed_from_u64(seed)` would hand each of them the *same*
//! stream, so that (for instance) the first numbers that pick the held-out rows are
//! also the first numbers that draw the weights. ChaCha takes a 64-bit stream id beside
//! its key: [`rng`] keys the generator from the seed as `seed_from_u64` does and gives
//! each purpose its own stream id, so the streams are independent (ChaCha's streams of
//! one key do not overlap) and each is still fixed by the one seed.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a random stream is for. The discriminant is the ChaCha stream id; stream 0,
/// the default of `seed_from_u64`, is left to callers that seed generators their own
/// way (tests, benches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The train / validation / test split (`data::split::split_rows`).
    Split = 1,
    /// The initial weights (`NetworkConfig::init` and the learning-rate range test,
    /// which must start from the weights training will start from).
    Init = 2,
    /// The order of rows in each epoch (`train::TrainState::new`, the
    /// explain module's mini-batch walks). Under data-parallel training every process
    /// draws the same global order from it.
    Shuffle = 3,
}

/// The generator for `stream` of `seed`.
pub fn rng(seed: u64, stream: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    fn first(mut r: ChaCha8Rng) -> Vec<u64> {
        (0..8).map(|_| r.next_u64()).collect()
    }

    /// The streams of one seed differ from each other and from the plain
    /// `seed_from_u64` stream, and each is reproducible.
    #[test]
    fn streams_of_one_seed_are_distinct_and_reproducible() {
        let plain = first(ChaCha8Rng::seed_from_u64(42));
        let all = [Stream::Split, Stream::Init, Stream::Shuffle].map(|s| first(rng(42, s)));
        for (i, a) in all.iter().enumerate() {
            assert_ne!(a, &plain);
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(first(rng(42, Stream::Init)), all[1]);
        assert_ne!(first(rng(43, Stream::Init)), all[1]);
    }
}
