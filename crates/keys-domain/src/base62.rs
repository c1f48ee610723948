//! The base62 alphabet of keys and ids: `0-9A-Za-z`, in that order.

/// The alphabet, indexed by digit value.
pub const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether `b` is one of the 62 characters.
#[must_use]
pub const fn is_base62(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// `value` in base62, most significant digit first, left-padded with `0` to `width` digits.
/// Digits beyond `width` are kept (the result is then longer than `width`).
#[must_use]
pub fn encode_padded(mut value: u64, width: usize) -> String {
    let mut digits = Vec::with_capacity(width.max(11));
    while value > 0 {
        // `value % 62` is below 62, so the index is in range and the cast is lossless.
        #[allow(clippy::cast_possible_truncation)]
        digits.push(ALPHABET[(value % 62) as usize]);
        value /= 62;
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    digits.into_iter().map(char::from).collect()
}

/// Random base62 characters, unbiased: bytes of 248 and above are rejected (248 = 4 × 62).
pub fn random_chars(random: &dyn crate::random::RandomSource, count: usize) -> String {
    let mut out = String::with_capacity(count);
    let mut buf = [0u8; 64];
    while out.len() < count {
        random.fill_bytes(&mut buf);
        for &b in &buf {
            if b < 248 && out.len() < count {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_most_significant_digit_first_with_padding() {
        assert_eq!(encode_padded(0, 6), "000000");
        assert_eq!(encode_padded(61, 6), "00000z");
        assert_eq!(encode_padded(62, 6), "000010");
        assert_eq!(encode_padded(u64::from(u32::MAX), 6), "4gfFC3");
    }
}
