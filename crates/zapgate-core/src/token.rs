//! Opaque bearer tokens and random identifiers. Tokens carry a visible prefix
//! (`zga_` account, `zgi_` instance) so a leaked one is recognisable; only
//! their SHA-256 hash is ever used to look them up.

use std::fmt;

use sha2::{Digest, Sha256};

/// A plaintext token. Its `Debug` never prints the value, so it cannot leak
/// into logs through a derived `Debug` of a containing struct.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn generate_account() -> Self {
        Self(format!("zga_{}", random_hex(24)))
    }

    pub fn generate_instance() -> Self {
        Self(format!("zgi_{}", random_hex(24)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Hex SHA-256 of a token: what the database stores and indexes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        // Every authenticated request hashes its token: `hex::encode`
        // collects a `String` char by char, this writes the 64 bytes once.
        let mut hex = [0u8; 64];
        hex::encode_to_slice(Sha256::digest(token.as_bytes()), &mut hex)
            .expect("a SHA-256 digest is 32 bytes: 64 hex digits");
        Self(String::from_utf8_lossy(&hex).into_owned())
    }
}

/// `bytes` random bytes from the OS generator, hex encoded.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom_fill(&mut buf);
    hex::encode(buf)
}

/// `N` random bytes from the OS generator (keys, nonces).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom_fill(&mut buf);
    buf
}

/// A new identifier `<prefix>_<24 hex>`; 96 random bits make collisions moot.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_hex(12))
}

fn getrandom_fill(buf: &mut [u8]) {
    use aes_gcm::aead::{OsRng, rand_core::RngCore};
    OsRng.fill_bytes(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_prefixed_and_distinct() {
        let a = Token::generate_account();
        let b = Token::generate_account();
        assert!(a.expose().starts_with("zga_"));
        assert_eq!(a.expose().len(), 4 + 48);
        assert_ne!(a, b);
        assert!(Token::generate_instance().expose().starts_with("zgi_"));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = Token::new("super-secret-value-123");
        assert!(!format!("{t:?}").contains("super-secret"));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            TokenHash::of("abc").0,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
