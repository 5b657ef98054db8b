//! Idempotent sends (`Idempotency-Key`): a send with a key is performed at
//! most once per instance and key within [`WINDOW_MS`], across restarts and
//! processes. The store holds the claim and the first answer; the WhatsApp
//! message id derives from the key, so a send repeated after a crash (claim
//! taken, answer not yet stored) goes out under the same id and WhatsApp
//! treats it as the same message.

use sha2::{Digest, Sha256};

/// How long a key is remembered.
pub const WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// What an earlier request with the same key left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Identifies the request (route and body), see [`request_hash`].
    pub request_hash: String,
    /// The answer's JSON body once the send succeeded; `None` while it runs,
    /// or when its process died before answering.
    pub response: Option<String>,
}

/// A new claim on a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub instance_id: String,
    pub key: String,
    pub request_hash: String,
    pub now_ms: i64,
}

/// Whether `key` is acceptable: 1 to 255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic())
}

/// Hex SHA-256 of the route and the body bytes: the same request again
/// hashes the same.
pub fn request_hash(path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update((path.len() as u64).to_be_bytes());
    hasher.update(path.as_bytes());
    hasher.update(body);
    hex::encode(hasher.finalize())
}

/// The WhatsApp id a keyed send goes out under, shaped like WhatsApp Web's
/// own ids (`3EB0` + hex).
pub fn message_id(instance_id: &str, key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"idempotency/");
    hasher.update((instance_id.len() as u64).to_be_bytes());
    hasher.update(instance_id.as_bytes());
    hasher.update(key.as_bytes());
    format!("3EB0{}", hex::encode_upper(&hasher.finalize()[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_per_instance_and_key() {
        let id = message_id("ins_1", "order-42");
        assert_eq!(id, message_id("ins_1", "order-42"));
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("3EB0"));
        assert_ne!(id, message_id("ins_2", "order-42"));
        assert_ne!(id, message_id("ins_1", "order-43"));
    }

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(valid_key("8f0c1c4e-2d1b-4a8e-9a51-0d6f1d3b9e11"));
        assert!(!valid_key(""));
        assert!(!valid_key("has space"));
        assert!(!valid_key("ção"));
        assert!(!valid_key(&"k".repeat(256)));
    }

    #[test]
    fn the_route_is_part_of_the_request() {
        let body = br#"{"number":"5511988887777","message":"oi"}"#;
        assert_eq!(
            request_hash("/api/message/text/a", body),
            request_hash("/api/message/text/a", body)
        );
        assert_ne!(
            request_hash("/api/message/text/a", body),
            request_hash("/api/message/media/a", body)
        );
        assert_ne!(
            request_hash("/api/message/text/a", body),
            request_hash(
                "/api/message/text/a",
                br#"{"number":"5511988887777","message":"oi!"}"#
            )
        );
    }
}
