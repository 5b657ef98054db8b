//! The sandbox's "media servers" and its operations on sent and received
//! messages: media that went through it (sent, or delivered inline) is kept
//! in a bounded library under a path and key, as WhatsApp keeps an upload;
//! remote media is fetched again from its URL. `download_media` checks the
//! key as decryption would, so a wrong key fails as it does on WhatsApp.

use std::collections::VecDeque;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use zapgate_core::{
    Error, Result,
    jid::Jid,
    message_ops::MessageOps,
    message_store::StoredMessage,
    whatsapp::{Media, MediaRef, SentMessage},
};

use super::{OutboxEntry, OutboxMedia, RemoteMedia, SandboxProvider};
use crate::media::Skipped;

/// Bytes kept at most; the oldest files go first ("expired" on WhatsApp).
const LIBRARY_BYTES: usize = 256 * 1024 * 1024;
const PATH_PREFIX: &str = "/sandbox/media/";
pub const MEDIA_GONE: &str = "Media is no longer available on WhatsApp";

#[derive(Debug, Default)]
pub(super) struct Library {
    files: VecDeque<(String, Vec<u8>)>,
    bytes: usize,
}

impl SandboxProvider {
    /// Keeps `media` as an upload and says where.
    pub(super) fn keep(&self, media: &Media) -> MediaRef {
        let sha = Sha256::digest(&media.data).to_vec();
        let path = format!("{PATH_PREFIX}{}", hex::encode(&sha));
        {
            let mut library = self.library.lock().unwrap_or_else(|e| e.into_inner());
            if !library.files.iter().any(|(p, _)| *p == path) {
                library.bytes += media.data.len();
                library.files.push_back((path.clone(), media.data.to_vec()));
                while library.bytes > LIBRARY_BYTES {
                    let Some((_, gone)) = library.files.pop_front() else {
                        break;
                    };
                    library.bytes -= gone.len();
                }
            }
        }
        MediaRef {
            direct_path: Some(path.clone()),
            media_key: self.media_key(&path).to_vec(),
            file_sha256: sha,
            file_length: Some(media.data.len() as u64),
            ..MediaRef::described(media.kind, media.mimetype.clone(), media.file_name.clone())
        }
    }

    /// Remote media is found again at its URL.
    pub(super) fn remote_ref(&self, remote: &RemoteMedia, data: Option<&[u8]>) -> MediaRef {
        MediaRef {
            direct_path: Some(remote.url.clone()),
            media_key: self.media_key(&remote.url).to_vec(),
            file_sha256: data.map(|d| Sha256::digest(d).to_vec()).unwrap_or_default(),
            file_length: data.map(|d| d.len() as u64).or(remote.declared_length),
            ..MediaRef::described(
                remote.kind,
                remote.mimetype.clone(),
                remote.file_name.clone(),
            )
        }
    }

    fn media_key(&self, path: &str) -> [u8; 32] {
        self.digest(&[b"media key", path.as_bytes()])
    }
}

#[async_trait]
impl MessageOps for SandboxProvider {
    async fn download_media(&self, instance_id: &str, media: &MediaRef) -> Result<Vec<u8>> {
        if !self
            .slots()
            .get(instance_id)
            .is_some_and(|s| s.is_connected())
        {
            return Err(Error::NotConnected);
        }
        let path = media
            .direct_path
            .as_deref()
            .ok_or_else(|| Error::not_found(MEDIA_GONE))?;
        if media.media_key != self.media_key(path) {
            return Err(Error::BadGateway(
                "WhatsApp media could not be decrypted".into(),
            ));
        }
        let limit = self.downloads.limit();
        let data = if path.starts_with(PATH_PREFIX) {
            let library = self.library.lock().unwrap_or_else(|e| e.into_inner());
            let (_, data) = library
                .files
                .iter()
                .find(|(p, _)| p == path)
                .ok_or_else(|| Error::not_found(MEDIA_GONE))?;
            if data.len() > limit {
                return Err(Skipped::OverLimit.into_error(limit));
            }
            data.clone()
        } else {
            let remote = RemoteMedia {
                kind: media.kind,
                mimetype: media.mimetype.clone(),
                file_name: media.file_name.clone(),
                url: path.to_owned(),
                declared_length: media.file_length,
            };
            self.download(&remote)
                .await
                .map_err(|skipped| skipped.into_error(limit))?
        };
        Ok(data)
    }

    async fn forward(
        &self,
        instance_id: &str,
        to: &Jid,
        message: &StoredMessage,
        id: Option<&str>,
    ) -> Result<SentMessage> {
        let (id, timestamp) = self.dispatch(instance_id, id, to, |id, timestamp| OutboxEntry {
            kind: "forward",
            text: message.text.clone(),
            target_id: Some(message.id.clone()),
            media: message.media.as_ref().map(|m| OutboxMedia {
                kind: m.kind.as_str(),
                mimetype: m.mimetype.clone(),
                file_name: m.file_name.clone(),
                size: m.file_length.unwrap_or_default() as usize,
                sha256: hex::encode(&m.file_sha256),
            }),
            ..OutboxEntry::new(id, timestamp, to.to_string())
        })?;
        Ok(SentMessage {
            id,
            timestamp,
            media: message.media.clone(),
        })
    }

    async fn delete_for_me(&self, instance_id: &str, message: &StoredMessage) -> Result<()> {
        let chat = Jid::parse(&message.chat)?;
        self.dispatch(instance_id, None, &chat, |id, timestamp| OutboxEntry {
            kind: "deleteForMe",
            target_id: Some(message.id.clone()),
            ..OutboxEntry::new(id, timestamp, message.chat.clone())
        })
        .map(drop)
    }
}
