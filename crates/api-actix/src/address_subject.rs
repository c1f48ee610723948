//! A client address as the per-address limiters name it: the text of its [`limit_subject`]
//! (IPv4: the address, IPv6: its /64), written on the stack because the failed-authentication
//! check names the client of every request.

use std::io::Write as _;
use std::net::IpAddr;

use crate::client_ip::limit_subject;

/// Longer than any [`limit_subject`] text (at most 21 bytes: `ffff:ffff:ffff:ffff::`).
const CAPACITY: usize = 40;

/// The subject text of one address.
pub struct AddressSubject {
    text: [u8; CAPACITY],
    len: usize,
}

impl AddressSubject {
    #[must_use]
    pub fn of(ip: IpAddr) -> Self {
        let mut text = [0; CAPACITY];
        let mut rest = &mut text[..];
        // Cannot overflow (see `CAPACITY`); a truncated text would still name one client.
        let _ = write!(rest, "{}", limit_subject(ip));
        let len = CAPACITY - rest.len();
        Self { text, len }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text[..self.len]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_limit_subject() {
        for (ip, subject) in [
            ("192.0.2.7", "192.0.2.7"),
            ("255.255.255.255", "255.255.255.255"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::"),
            (
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                "ffff:ffff:ffff:ffff::",
            ),
            ("::1", "::"),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(AddressSubject::of(ip).as_str(), subject);
            assert_eq!(subject, limit_subject(ip).to_string());
        }
    }
}
