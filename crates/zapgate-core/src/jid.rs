//! WhatsApp identifiers (JIDs) and phone numbers.

use std::fmt;

use crate::{Error, Result};

pub const USER_SERVER: &str = "s.whatsapp.net";
pub const GROUP_SERVER: &str = "g.us";
pub const LID_SERVER: &str = "lid";
pub const NEWSLETTER_SERVER: &str = "newsletter";
pub const BROADCAST_SERVER: &str = "broadcast";

/// `<user>@<server>`: a person, a group, a hidden-number (LID) user, a
/// newsletter, or `status@broadcast`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Jid {
    pub user: String,
    pub server: String,
}

impl Jid {
    /// Accepts a full JID or a plain phone number (`+55 11 98888-7777` too).
    pub fn parse(raw: &str) -> Result<Self> {
        let raw = raw.trim();
        if let Some((user, server)) = raw.split_once('@') {
            let known = matches!(
                server,
                USER_SERVER | GROUP_SERVER | LID_SERVER | NEWSLETTER_SERVER | BROADCAST_SERVER
            );
            let user_ok = !user.is_empty()
                && user.len() <= 64
                && user
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':');
            if known && user_ok {
                return Ok(Self {
                    user: user.to_owned(),
                    server: server.to_owned(),
                });
            }
            return Err(Error::bad_request(format!("Invalid WhatsApp id: {raw}")));
        }
        Ok(Self::user(&parse_phone_number(raw)?))
    }

    pub fn user(digits: &str) -> Self {
        Self {
            user: digits.to_owned(),
            server: USER_SERVER.to_owned(),
        }
    }

    pub fn is_group(&self) -> bool {
        self.server == GROUP_SERVER
    }

    pub fn is_lid(&self) -> bool {
        self.server == LID_SERVER
    }

    /// `status@broadcast`, where status posts (stories) go.
    pub fn status_broadcast() -> Self {
        Self {
            user: "status".to_owned(),
            server: BROADCAST_SERVER.to_owned(),
        }
    }

    /// `status@broadcast`: the contacts' status posts.
    pub fn is_status_broadcast(&self) -> bool {
        self.user == "status" && self.server == BROADCAST_SERVER
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.server)
    }
}

/// A phone number in international format, reduced to its digits: 8 to 15
/// of them (E.164 without the `+`). Spaces, dashes, dots, brackets and a
/// leading `+` are tolerated because people paste numbers that way.
pub fn parse_phone_number(raw: &str) -> Result<String> {
    let mut digits = String::with_capacity(raw.len());
    for (i, c) in raw.trim().chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => {}
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(invalid_number(raw)),
        }
    }
    if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
        return Err(invalid_number(raw));
    }
    Ok(digits)
}

fn invalid_number(raw: &str) -> Error {
    let shown: String = raw.chars().take(32).collect();
    Error::bad_request(format!(
        "Invalid phone number: {shown} (international format, 8-15 digits)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_numbers_become_user_jids() {
        let jid = Jid::parse("+55 (11) 98888-7777").unwrap();
        assert_eq!(jid.to_string(), "5511988887777@s.whatsapp.net");
    }

    #[test]
    fn full_jids_keep_their_server() {
        assert!(Jid::parse("120363024567890123@g.us").unwrap().is_group());
        assert!(Jid::parse("123456@lid").unwrap().is_lid());
        assert!(
            Jid::parse("status@broadcast")
                .unwrap()
                .is_status_broadcast()
        );
        assert!(!Jid::parse("12345@broadcast").unwrap().is_status_broadcast());
        assert!(Jid::parse("x@example.com").is_err());
    }

    #[test]
    fn bad_numbers_are_refused() {
        for bad in [
            "",
            "123",
            "0551199999999",
            "55119999abc",
            "1234567890123456",
        ] {
            assert!(parse_phone_number(bad).is_err(), "{bad}");
        }
    }
}
