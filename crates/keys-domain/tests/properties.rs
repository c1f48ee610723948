//! Property tests of the pure domain: key format, preview, names, lifecycle, credits, window.

// A failed unwrap is a failed test. clippy.toml's allow-unwrap-in-tests does not reach the
// helper functions (and proptest bodies) of an integration-test crate, hence the crate-wide allow.
#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use keys_domain::base62::ALPHABET;
use keys_domain::credits::{Credits, GrantAmount, InsufficientCredits, InvalidGrant, debit};
use keys_domain::key_name::{InvalidKeyName, KeyName};
use keys_domain::key_secret::{KEY_LEN, PREFIX, RANDOM_LEN};
use keys_domain::key_state::GracePeriod;
use keys_domain::random::{OsRandom, RandomSource};
use keys_domain::usage::{BUCKETS, HourlyWindow, bucket_of};
use keys_domain::{ApiKeySecret, KeyState, KeyStatus, MalformedKey, Page, PageLimit, Timestamp};
use proptest::prelude::*;

/// Bytes from a proptest-chosen seed (SplitMix64), so failures shrink and replay.
struct SeededRandom(Mutex<u64>);

impl RandomSource for SeededRandom {
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

fn key_from(seed: u64) -> ApiKeySecret {
    ApiKeySecret::generate(&SeededRandom(Mutex::new(seed)))
}

fn assert_well_formed(key: &ApiKeySecret) -> Result<(), TestCaseError> {
    let s = key.expose();
    prop_assert_eq!(s.len(), KEY_LEN);
    prop_assert!(s.starts_with(PREFIX));
    prop_assert!(s[PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric()));
    prop_assert_eq!(ApiKeySecret::parse(s), Ok(key.clone()));
    prop_assert_eq!(ApiKeySecret::parse(s).unwrap().hash(), key.hash());
    Ok(())
}

/// Replacement characters: mostly base62 (exercising the checksum), plus anything at all.
fn replacement() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => proptest::sample::select(ALPHABET.to_vec()).prop_map(char::from),
        1 => any::<char>(),
        1 => proptest::sample::select(vec!['_', '-', ' ', '\0', 'é', 'ß', '€', '😀', '\u{200b}']),
    ]
}

/// Why parsing `key` with the character at `pos` replaced by `c` must fail.
fn expected_rejection(pos: usize, c: char) -> MalformedKey {
    if pos < PREFIX.len() {
        MalformedKey::MissingPrefix
    } else if !c.is_ascii_alphanumeric() {
        // Multi-byte replacements keep 44 characters but are outside the alphabet too.
        MalformedKey::BadAlphabet
    } else {
        MalformedKey::BadChecksum
    }
}

fn with_char_replaced(s: &str, pos: usize, c: char) -> String {
    s.chars()
        .enumerate()
        .map(|(i, o)| if i == pos { c } else { o })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn seeded_keys_parse_and_round_trip(seed in any::<u64>()) {
        assert_well_formed(&key_from(seed))?;
    }

    #[test]
    fn os_random_keys_parse_and_round_trip(_n in 0u8..=255) {
        assert_well_formed(&ApiKeySecret::generate(&OsRandom))?;
    }

    /// CRC-32 detects every error burst of up to 32 bits, so any one-character change of the
    /// random part is caught, and a changed checksum character no longer matches its head: no
    /// single-character change can ever parse.
    #[test]
    fn any_single_character_change_is_rejected(
        seed in any::<u64>(),
        pos in 0..KEY_LEN,
        c in replacement(),
    ) {
        let key = key_from(seed);
        let original = key.expose().chars().nth(pos).unwrap();
        prop_assume!(c != original);
        let mutated = with_char_replaced(key.expose(), pos, c);
        match ApiKeySecret::parse(&mutated) {
            Err(why) => prop_assert_eq!(why, expected_rejection(pos, c)),
            // Never reached (see above); if it were, it must at least be another key.
            Ok(other) => prop_assert_ne!(other.hash(), key.hash()),
        }
    }

    #[test]
    fn a_preview_reveals_at_most_14_key_characters(seed in any::<u64>()) {
        let key = key_from(seed);
        let s = key.expose();
        let preview = key.preview();
        let p = preview.as_str();
        prop_assert_eq!(p.chars().count(), 17);
        prop_assert_eq!(&p[..10], &s[..10]);
        prop_assert_eq!(&p[10..13], "...");
        prop_assert_eq!(&p[13..], &s[KEY_LEN - 4..]);
        // Key characters shown: the 10 of the head and the 4 of the tail, nothing more.
        prop_assert_eq!(p.chars().filter(|&c| c != '.').count(), 14);
        // No run of the hidden middle shows up: the longest all-base62 run in a preview is 4.
        let middle = &s[10..KEY_LEN - 4];
        prop_assert!(!p.contains(middle));
        for window in middle.as_bytes().windows(5) {
            prop_assert!(!p.as_bytes().windows(5).any(|w| w == window));
        }
    }

    #[test]
    fn debug_of_a_secret_never_contains_the_key(seed in any::<u64>()) {
        let key = key_from(seed);
        let dbg = format!("{key:?} {:?}", Some(&key));
        prop_assert!(!dbg.contains(key.expose()));
        prop_assert!(!dbg.contains(&key.expose()[10..PREFIX.len() + RANDOM_LEN]));
    }

    #[test]
    fn key_names_follow_the_rules(
        chars in proptest::collection::vec(
            prop_oneof![
                6 => proptest::char::range('a', 'z'),
                2 => any::<char>(),
                1 => proptest::sample::select(vec![
                    ' ', '\t', '\n', '\u{85}', '\u{a0}', '\u{3000}', '\u{7f}', '\u{1}',
                    '\u{200b}', '\u{202e}', '\u{2028}', '\u{2029}', '\u{feff}', '\u{301}',
                ]),
            ],
            0..130,
        )
    ) {
        use unicode_normalization::UnicodeNormalization as _;
        use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory as _};
        let raw: String = chars.into_iter().collect();
        let normalised: String = raw.trim().nfc().collect();
        let expected = normalised.trim();
        let len = expected.chars().count();
        let has_control = expected.chars().any(char::is_control);
        let has_invisible = expected.chars().any(|c| {
            matches!(c.general_category(), G::Format | G::LineSeparator | G::ParagraphSeparator)
        });
        let parsed = KeyName::parse(&raw);
        prop_assert_eq!(
            parsed.is_ok(),
            (1..=100).contains(&len) && !has_control && !has_invisible
        );
        match parsed {
            Ok(name) => {
                prop_assert_eq!(name.as_str(), expected);
                prop_assert!(unicode_normalization::is_nfc(name.as_str()));
                prop_assert_eq!(KeyName::parse(name.as_str()), Ok(name.clone()));
            }
            Err(InvalidKeyName::Empty) => prop_assert_eq!(len, 0),
            Err(InvalidKeyName::TooLong) => prop_assert!(len > 100),
            Err(InvalidKeyName::ControlCharacter) => prop_assert!(has_control),
            Err(InvalidKeyName::InvisibleCharacter) => prop_assert!(has_invisible),
        }
    }

    #[test]
    fn revoked_is_terminal_and_rotation_never_extends_life(
        start in key_state(),
        ops in proptest::collection::vec((0i64..200_000_000, any::<bool>(), 0i64..=604_800), 1..20),
    ) {
        let mut state = start;
        let mut now = T0;
        let mut revoked_at: Option<Timestamp> = None;
        for (step, revoke, grace_s) in ops {
            now = Timestamp::from_millis(now.as_millis() + step);
            let before = state;
            if let Some(at) = revoked_at {
                prop_assert_eq!(before.status(now), KeyStatus::Revoked);
                prop_assert_eq!(before.revoked_at(now), Some(at));
            } else if before.status(now) == KeyStatus::Revoked {
                revoked_at = before.revoked_at(now);
                prop_assert!(revoked_at.is_some());
            }
            state = if revoke {
                before.revoke(now)
            } else {
                match before.rotate(now, GracePeriod::from_seconds(grace_s).unwrap()) {
                    Ok(next) => {
                        prop_assert!(revoked_at.is_none());
                        prop_assert_ne!(next, KeyState::Active);
                        // Never accepted longer than before the rotation.
                        if let Some(old) = before.revokes_at(now) {
                            let new = next.revokes_at(now).unwrap_or(now);
                            prop_assert!(new <= old);
                        }
                        next
                    }
                    Err(_) => {
                        prop_assert_eq!(before.status(now), KeyStatus::Revoked);
                        before
                    }
                }
            };
            if revoked_at.is_some() {
                prop_assert_eq!(state.effective(now), before.effective(now));
            }
            if revoke {
                prop_assert_eq!(state.status(now), KeyStatus::Revoked);
            }
        }
    }

    #[test]
    fn acceptance_only_ever_ends(state in key_state(), a in any::<i32>(), b in any::<i32>()) {
        let (t1, t2) = (
            Timestamp::from_millis(T0.as_millis() + i64::from(a.min(b))),
            Timestamp::from_millis(T0.as_millis() + i64::from(a.max(b))),
        );
        prop_assert!(!state.is_accepted(t2) || state.is_accepted(t1));
        prop_assert!(state.status(t1) != KeyStatus::Revoked || state.status(t2) == KeyStatus::Revoked);
    }

    #[test]
    fn grant_amounts_are_exactly_1_to_10_pow_12(n in prop_oneof![
        any::<i128>(),
        -5i128..=5,
        999_999_999_990i128..=1_000_000_000_010,
    ]) {
        let parsed = GrantAmount::parse(&n.to_string());
        if (1..=1_000_000_000_000).contains(&n) {
            prop_assert_eq!(parsed.map(|g| i128::from(g.credits().get())), Ok(n));
        } else if n <= 0 {
            prop_assert_eq!(parsed, Err(InvalidGrant::NotPositive));
        } else {
            prop_assert_eq!(parsed, Err(InvalidGrant::TooLarge));
        }
    }

    #[test]
    fn a_sum_of_credits_never_passes_the_balance_limit(a in any::<u64>(), b in any::<u64>()) {
        let max = Credits::MAX_BALANCE.get();
        match Credits::new(a).checked_add(Credits::new(b)) {
            Some(sum) => {
                prop_assert!(sum.get() <= max);
                prop_assert_eq!(u128::from(sum.get()), u128::from(a) + u128::from(b));
            }
            None => prop_assert!(u128::from(a) + u128::from(b) > u128::from(max)),
        }
    }

    /// A store that reads `limit + 1` rows after the cursor, walked to the end, yields every
    /// item once, in order, in as few pages as the limit allows.
    #[test]
    fn walking_the_pages_yields_every_item_once(n in 0usize..260, per_page in 1u64..=100) {
        let limit = PageLimit::new(per_page).unwrap();
        let fetch = usize::try_from(limit.fetch()).unwrap();
        let mut seen = Vec::new();
        let mut after: Option<usize> = None;
        let mut pages = 0;
        loop {
            let start = after.map_or(0, |a| a + 1);
            let rows: Vec<usize> = (start..n).take(fetch).collect();
            let page = Page::from_overfetch(rows, limit);
            pages += 1;
            prop_assert!(page.items.len() <= limit.get());
            if page.has_more {
                prop_assert_eq!(page.items.len(), limit.get());
            }
            after = page.items.last().copied();
            seen.extend(page.items);
            if !page.has_more {
                break;
            }
        }
        prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
        prop_assert_eq!(pages, n.div_ceil(limit.get()).max(1));
    }

    #[test]
    fn a_debit_never_overdraws(balance in any::<u64>(), cost in any::<u64>()) {
        let (b, c) = (Credits::new(balance), Credits::new(cost));
        match debit(b, c) {
            Ok(after) => {
                prop_assert!(cost <= balance);
                prop_assert_eq!(after.get(), balance - cost);
            }
            Err(e) => {
                prop_assert!(cost > balance);
                prop_assert_eq!(e, InsufficientCredits { required: c, balance: b });
            }
        }
    }

    /// Model: every add is kept as `(hour bucket, n)`; the count at `now` is the sum of the adds
    /// whose bucket is one of the 24 ending in `now`'s. Time mostly moves forward; some adds
    /// arrive late (up to two days), as a retried batch can.
    #[test]
    fn hourly_window_counts_the_last_24_buckets(
        ops in proptest::collection::vec(
            (
                prop_oneof![3 => 0i64..HOUR_MS, 1 => 0i64..30 * HOUR_MS],
                prop_oneof![4 => Just(0i64), 1 => 0i64..48 * HOUR_MS],
                0u64..1_000,
            ),
            1..80,
        )
    ) {
        let mut window = HourlyWindow::default();
        let mut model: Vec<(i64, u64)> = Vec::new();
        let mut now = T0;
        for (step, late, n) in ops {
            now = Timestamp::from_millis(now.as_millis() + step);
            let at = Timestamp::from_millis(now.as_millis() - late);
            let expected_before = model_count(&model, now);
            let counted = window.add(at, n);
            if late == 0 {
                prop_assert_eq!(counted.before, expected_before);
                prop_assert_eq!(counted.after, expected_before + n);
            }
            prop_assert!(counted.after >= counted.before);
            model.push((bucket_of(at), n));
            prop_assert_eq!(window.count(now), model_count(&model, now));
        }
    }
}

const T0: Timestamp = Timestamp::from_millis(1_795_818_180_000);
const HOUR_MS: i64 = 3_600_000;

fn model_count(model: &[(i64, u64)], now: Timestamp) -> u64 {
    let newest = bucket_of(now);
    let oldest = newest - (i64::try_from(BUCKETS).unwrap() - 1);
    model
        .iter()
        .filter(|(b, _)| (oldest..=newest).contains(b))
        .map(|(_, n)| n)
        .sum()
}

fn key_state() -> impl Strategy<Value = KeyState> {
    let at =
        (-1_000_000_000i64..1_000_000_000).prop_map(|d| Timestamp::from_millis(T0.as_millis() + d));
    prop_oneof![
        Just(KeyState::Active),
        at.clone()
            .prop_map(|revokes_at| KeyState::Expiring { revokes_at }),
        at.prop_map(|revoked_at| KeyState::Revoked { revoked_at }),
    ]
}

/// Exhaustive companion of the property above for one key: every position, every base62
/// replacement.
#[test]
fn every_single_base62_substitution_of_a_key_is_rejected() {
    let key = key_from(7);
    for pos in 0..KEY_LEN {
        for &b in ALPHABET {
            let c = char::from(b);
            if key.expose().as_bytes()[pos] == b {
                continue;
            }
            let mutated = with_char_replaced(key.expose(), pos, c);
            assert_eq!(
                ApiKeySecret::parse(&mutated),
                Err(expected_rejection(pos, c)),
                "position {pos}"
            );
        }
    }
}

/// Regression: a request counted more than a day late used to overwrite the newer hour that
/// shares its ring slot, losing that hour's count.
#[test]
fn a_very_late_add_does_not_erase_a_newer_hour() {
    let mut window = HourlyWindow::default();
    let now = T0;
    window.add(now, 5);
    let day_ago = Timestamp::from_millis(now.as_millis() - 24 * HOUR_MS);
    window.add(day_ago, 1);
    assert_eq!(window.count(now), 5);
}
