//! The benchmark workload's texts: SplitMix64 and the word list of
//! scripts/bench_sessions_compare.py, so a seed gives both sides the same messages.

/// The 75 words of `VOCABULARY` in scripts/bench_sessions_compare.py, in order.
pub const VOCABULARY: &str = "the perovskite lattice band gap sample anneal phase stable formation energy \
    oxide dopant synthesis measured predicted structure tolerance factor cation \
    anion octahedral tilt diffraction peak shift composition ratio candidate \
    screening descriptor model uncertainty acquisition function next experiment \
    batch yield conductivity thermal expansion density grain boundary defect \
    vacancy substitution hypothesis supports contradicts refines evidence result \
    we should compare with the previous run and check whether temperature \
    pressure or precursor purity explains the difference in this series";

/// Inclusive length bounds of a user message (mean 200 chars).
pub const USER_LEN: (u64, u64) = (150, 250);
/// Inclusive length bounds of an assistant message (mean 600 chars).
pub const ASSISTANT_LEN: (u64, u64) = (450, 750);

/// SplitMix64: its state is the seed.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Returns a text whose length lies in `bounds`: vocabulary words joined by spaces, cut.
fn message_text(rng: &mut SplitMix64, words: &[&str], bounds: (u64, u64)) -> String {
    let (low, high) = bounds;
    let length = low + rng.next_u64() % (high - low + 1);
    let mut picked: Vec<&str> = Vec::new();
    let mut size: i64 = -1;
    let n = words.len() as u64;
    while size < length as i64 {
        let w = words[(rng.next_u64() % n) as usize];
        picked.push(w);
        size += w.len() as i64 + 1;
    }
    let mut text = picked.join(" ");
    // The vocabulary is ASCII, so a byte cut is a character cut.
    text.truncate(length as usize);
    text
}

/// Returns `turns` (user, assistant) pairs, identical to the Python generator's for a seed.
pub fn generate_turns(seed: u64, turns: usize) -> Vec<(String, String)> {
    let words: Vec<&str> = VOCABULARY.split_whitespace().collect();
    let mut rng = SplitMix64::new(seed);
    (0..turns)
        .map(|_| {
            let user = message_text(&mut rng, &words, USER_LEN);
            let assistant = message_text(&mut rng, &words, ASSISTANT_LEN);
            (user, assistant)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_documented_outputs_for_seed_42() {
        let mut r = SplitMix64::new(42);
        assert_eq!(r.next_u64(), 13_679_457_532_755_275_413);
        assert_eq!(r.next_u64(), 2_949_826_092_126_892_291);
        assert_eq!(r.next_u64(), 5_139_283_748_462_763_858);
    }

    #[test]
    fn the_vocabulary_has_75_words() {
        assert_eq!(VOCABULARY.split_whitespace().count(), 75);
    }

    #[test]
    fn turns_match_the_python_generator() {
        let turns = generate_turns(42, 10_000);
        assert_eq!(turns[0].0.len(), 173);
        assert_eq!(turns[0].1.len(), 735);
        let bytes: usize = turns.iter().map(|(u, a)| u.len() + a.len()).sum();
        assert_eq!(bytes, 8_004_623);
        for (u, a) in &turns {
            assert!((150..=250).contains(&u.len()) && (450..=750).contains(&a.len()));
        }
    }
}
