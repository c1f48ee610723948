//! Fixtures shared by the use-case tests: a deterministic random source, a fixed clock, keys.

use std::sync::Mutex;
use std::time::Duration;

use keys_domain::ports::MockClock;
use keys_domain::random::RandomSource;
use keys_domain::{
    ApiKey, ApiKeySecret, Email, KeyId, KeyName, KeyState, NewApiKey, Timestamp, UserId,
};

/// The instant every test runs at.
pub const T0: Timestamp = Timestamp::from_millis(1_795_818_180_000);

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// SplitMix64: reproducible bytes, so ids and keys are the same on every run.
pub struct SeqRandom(Mutex<u64>);

impl SeqRandom {
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(seed))
    }
}

impl RandomSource for SeqRandom {
    fn fill_bytes(&self, buf: &mut [u8]) {
        let mut state = self.0.lock().unwrap();
        for chunk in buf.chunks_mut(8) {
            *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// A clock stopped at `at`.
pub fn clock_at(at: Timestamp) -> MockClock {
    let mut clock = MockClock::new();
    clock.expect_now().return_const(at);
    clock
}

pub fn user() -> UserId {
    UserId::new("usr_ada")
}

pub fn other_user() -> UserId {
    UserId::new("usr_mallory")
}

pub fn email() -> Email {
    Email::parse("ada@example.com").unwrap()
}

pub fn name(s: &str) -> KeyName {
    KeyName::parse(s).unwrap()
}

/// A stored key of `user` in `state`, with the secret it was made from.
pub fn stored_key(
    user: &UserId,
    key_name: &str,
    state: KeyState,
    seed: u64,
) -> (ApiKey, ApiKeySecret) {
    let random = SeqRandom::new(seed);
    let secret = ApiKeySecret::generate(&random);
    let mut key = NewApiKey {
        id: KeyId::generate(&random),
        user_id: user.clone(),
        name: name(key_name),
        preview: secret.preview(),
        hash: secret.hash(),
        created_at: T0.minus(secs(86_400)),
        controls: Default::default(),
    }
    .into_key();
    key.state = state;
    (key, secret)
}
