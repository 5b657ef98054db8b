//! Provider operations on messages already sent or received (the chat
//! module's `base64`, `forward` and `delete` for me), part of every
//! `WhatsApp`. Edits and revocations are sends ([`crate::whatsapp::Outgoing`]).

use async_trait::async_trait;

use crate::{
    Result,
    jid::Jid,
    message_store::StoredMessage,
    whatsapp::{MediaRef, SentMessage},
};

#[async_trait]
pub trait MessageOps: Send + Sync + 'static {
    /// Downloads and decrypts `media` again from WhatsApp's servers, at most
    /// the server's media limit (`413` beyond it, `404` when WhatsApp no
    /// longer has the file).
    async fn download_media(&self, instance_id: &str, media: &MediaRef) -> Result<Vec<u8>>;

    /// Sends `message` again to `to`, marked forwarded: media goes by its
    /// stored keys, without being uploaded again. With `id`, as
    /// [`crate::whatsapp::WhatsApp::send`].
    async fn forward(
        &self,
        instance_id: &str,
        to: &Jid,
        message: &StoredMessage,
        id: Option<&str>,
    ) -> Result<SentMessage>;

    /// Deletes `message` from the account's own devices only.
    async fn delete_for_me(&self, instance_id: &str, message: &StoredMessage) -> Result<()>;
}
