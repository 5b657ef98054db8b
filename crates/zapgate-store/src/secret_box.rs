//! The secret box: encryption at rest for the secrets the database holds
//! (instance tokens, webhook authorization values).
//!
//! AES-256-GCM in a versioned envelope:
//! `[version = 1][key id: 4 bytes][nonce: 12 bytes][ciphertext + tag]`.
//! The key id (the first 4 bytes of SHA-256 of the key) says which key sealed
//! the value, so keys can be rotated: a box holds one current key, used to
//! seal, and any number of retired keys, still accepted to open. The
//! associated data names the row and column (`instances/<id>/token`), so a
//! ciphertext copied to another row or column does not open.

use std::fmt;

use aes_gcm::{
    Aes256Gcm, Key, KeyInit, Nonce,
    aead::{Aead, AeadCore, OsRng, Payload},
};
use sha2::{Digest, Sha256};
use zapgate_core::{Error, Result, error::Cause};

/// The envelope format this code writes.
pub const ENVELOPE_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

/// A key identifier: the first 4 bytes of SHA-256 of the key. Not secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl KeyId {
    pub fn of(key: &[u8; 32]) -> Self {
        let digest = Sha256::digest(key);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self(id)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Clone)]
struct SealingKey {
    id: KeyId,
    cipher: Aes256Gcm,
}

impl SealingKey {
    fn new(key: [u8; 32]) -> Self {
        Self {
            id: KeyId::of(&key),
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)),
        }
    }
}

/// Seals and opens secrets. `Debug` shows key ids only, never key material.
#[derive(Clone)]
pub struct SecretBox {
    current: SealingKey,
    retired: Vec<SealingKey>,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBox")
            .field("current", &self.current.id)
            .field(
                "retired",
                &self.retired.iter().map(|k| k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl SecretBox {
    /// A box sealing with `current` and still opening what `retired` sealed.
    pub fn new(current: [u8; 32], retired: Vec<[u8; 32]>) -> Self {
        Self {
            current: SealingKey::new(current),
            retired: retired.into_iter().map(SealingKey::new).collect(),
        }
    }

    /// The id of the key that seals.
    pub fn current_key_id(&self) -> KeyId {
        self.current.id
    }

    /// Encrypts `plaintext` under the current key, bound to `aad`.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .current
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            // AES-GCM only refuses plaintexts beyond 64 GiB.
            .expect("AES-GCM encryption of an in-memory value cannot fail");
        let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        out.push(ENVELOPE_VERSION);
        out.extend_from_slice(&self.current.id.0);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Decrypts an envelope sealed with `aad` by the current or a retired key.
    pub fn open(&self, aad: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        let (key_id, nonce, ciphertext) = parse(sealed)?;
        let key = self.key(key_id).ok_or_else(|| {
            Error::internal(Cause(format!(
                "secret sealed with unknown key {key_id}; configure it as a retired key"
            )))
        })?;
        key.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| {
                Error::internal(Cause(format!(
                    "secret for {aad} does not decrypt: tampered or copied from another row"
                )))
            })
    }

    /// Whether `sealed` is a well-formed envelope under the current key, i.e.
    /// needs no re-sealing.
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        matches!(parse(sealed), Ok((id, _, _)) if id == self.current.id)
    }

    fn key(&self, id: KeyId) -> Option<&SealingKey> {
        std::iter::once(&self.current)
            .chain(&self.retired)
            .find(|k| k.id == id)
    }
}

fn parse(sealed: &[u8]) -> Result<(KeyId, &[u8], &[u8])> {
    if sealed.len() < HEADER_LEN + TAG_LEN {
        return Err(Error::internal(Cause("sealed secret is truncated".into())));
    }
    if sealed[0] != ENVELOPE_VERSION {
        return Err(Error::internal(Cause(format!(
            "sealed secret has unknown envelope version {}",
            sealed[0]
        ))));
    }
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&sealed[1..1 + KEY_ID_LEN]);
    let nonce = &sealed[1 + KEY_ID_LEN..HEADER_LEN];
    Ok((KeyId(id), nonce, &sealed[HEADER_LEN..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 32] = [7u8; 32];
    const B: [u8; 32] = [9u8; 32];

    #[test]
    fn round_trip() {
        let sb = SecretBox::new(A, vec![]);
        let sealed = sb.seal("instances/x/token", b"hello");
        assert_eq!(sealed[0], ENVELOPE_VERSION);
        assert_eq!(&sealed[1..5], &KeyId::of(&A).0);
        assert_eq!(sealed.len(), HEADER_LEN + 5 + TAG_LEN);
        assert_eq!(sb.open("instances/x/token", &sealed).unwrap(), b"hello");
        assert!(sb.is_current(&sealed));
    }

    #[test]
    fn nonces_differ() {
        let sb = SecretBox::new(A, vec![]);
        assert_ne!(sb.seal("a", b"same"), sb.seal("a", b"same"));
    }

    #[test]
    fn wrong_aad_fails() {
        let sb = SecretBox::new(A, vec![]);
        let sealed = sb.seal("instances/x/token", b"hello");
        assert!(sb.open("instances/y/token", &sealed).is_err());
        assert!(
            sb.open("instances/x/webhook_authorization", &sealed)
                .is_err()
        );
    }

    #[test]
    fn tampering_fails() {
        let sb = SecretBox::new(A, vec![]);
        let sealed = sb.seal("aad", b"hello");
        for i in 5..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(sb.open("aad", &bad).is_err(), "byte {i}");
        }
        let mut bad_version = sealed.clone();
        bad_version[0] = 2;
        assert!(sb.open("aad", &bad_version).is_err());
        assert!(sb.open("aad", &sealed[..sealed.len() - 1]).is_err());
        assert!(sb.open("aad", &[]).is_err());
    }

    #[test]
    fn retired_key_still_opens() {
        let old = SecretBox::new(A, vec![]);
        let sealed = old.seal("aad", b"secret");
        let rotated = SecretBox::new(B, vec![A]);
        assert!(!rotated.is_current(&sealed));
        assert_eq!(rotated.open("aad", &sealed).unwrap(), b"secret");
        let resealed = rotated.seal("aad", b"secret");
        assert!(rotated.is_current(&resealed));
        assert!(old.open("aad", &resealed).is_err());
    }

    #[test]
    fn unknown_key_id_fails_cleanly() {
        let sealed = SecretBox::new(A, vec![]).seal("aad", b"secret");
        let other = SecretBox::new(B, vec![]);
        let err = other.open("aad", &sealed).unwrap_err();
        assert!(err.to_string().contains("unknown key"), "{err}");
        assert!(!other.is_current(&sealed));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let sb = SecretBox::new(A, vec![B]);
        let shown = format!("{sb:?}");
        assert!(shown.contains(&KeyId::of(&A).to_string()), "{shown}");
        assert!(!shown.contains("7, 7"), "{shown}");
        assert!(!shown.contains("0707"), "{shown}");
        assert!(!shown.contains("9, 9"), "{shown}");
    }
}
