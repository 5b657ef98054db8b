//! WhatsApp → Chatwoot: a message (or receipt) becomes one Chatwoot call in
//! steady state. The chat's contact and conversation are cached as a chat
//! link; a first message from a new contact costs three calls (contact,
//! conversation, message).

use serde_json::json;
use zapgate_core::{
    chatwoot::Integration,
    jid::Jid,
    jobs::{ChatLink, Job, MessageLink},
    whatsapp::Extra,
};

use super::{
    Bridge, Failure,
    identity::ChatIdentity,
    payload::{INBOUND, InboundJob, OUTBOUND},
    render,
    webhook::tombstone,
};
use crate::client::{Attachment, ChatwootClient, ChatwootError, NewContact, NewMessage};

impl Bridge {
    /// Posts the message; returns its link, which the worker stores with the
    /// job's completion.
    pub(super) async fn post_inbound(
        &self,
        job: &Job,
        integration: &Integration,
        message: &InboundJob,
    ) -> Result<Option<MessageLink>, Failure> {
        let chat = Jid::parse(&message.chat).map_err(|e| Failure::Rejected {
            error: e.to_string(),
        })?;
        let lid = match (&message.sender_lid, chat.is_group() || message.from_me) {
            (Some(lid), false) => Jid::parse(lid).ok(),
            _ => None,
        };
        let identity = ChatIdentity::of(&chat, lid.as_ref());
        let jids = identity.all_jids();
        let Some(stored) = self
            .store
            .find_chats_unless_posted(&integration.id, &message.id, &jids)
            .await?
        else {
            // Posted before (a WhatsApp redelivery, or a retry after a crash).
            return Ok(None);
        };
        // Deleted for everyone: the message it deletes is shown deleted.
        if let Some(Extra::Revoke { target_id }) = &message.extra
            && let Some(target) = self
                .store
                .find_message_by_wa(&integration.id, target_id)
                .await?
        {
            self.delete_posted(integration, &target).await?;
            return Ok(None);
        }
        let client = self.client(integration);
        let link = self
            .chat_link(&client, integration, &identity, jids, stored, message)
            .await?;
        self.queue_avatar(integration, &message.chat, &link).await;
        let source_id = format!("WAID:{}", message.id);

        // Chatwoot does not dedupe source_id: an earlier try (one that timed
        // out, whose worker died mid-post, or that shutdown cut off and
        // released with a `last_error`) may have landed, so look before
        // posting again.
        if (job.attempts > 0 || !job.last_error.is_empty())
            && let Some(existing) = find_posted(&client, link.conversation_id, &source_id).await?
        {
            return Ok(Some(posted(integration, message, &link, existing)));
        }

        let new = self
            .new_message(MediaBytes::Job(job.id), integration, message, source_id)
            .await?;
        match client.create_message(link.conversation_id, new).await {
            Ok(created) => Ok(Some(posted(integration, message, &link, created.id))),
            Err(ChatwootError::Status { status: 404, .. }) => {
                // The conversation was deleted in Chatwoot: rebuild the link.
                self.store
                    .forget_conversation(&integration.id, link.conversation_id)
                    .await?;
                Err(Failure::Transient {
                    error: format!("conversation {} no longer exists", link.conversation_id),
                    after: Some(std::time::Duration::ZERO),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the Chatwoot message of `target` with Chatwoot's own delete.
    /// An agent's message (the owner deleted it on the phone) gets a
    /// tombstone first: the `message_updated` Chatwoot answers with is then
    /// not taken for an agent's deletion to revoke again, and any part not
    /// yet sent stays unsent.
    async fn delete_posted(
        &self,
        integration: &Integration,
        target: &MessageLink,
    ) -> Result<(), Failure> {
        if target.direction == OUTBOUND {
            self.store
                .save_message_link(&tombstone(
                    integration,
                    target.chatwoot_conversation_id,
                    target.chatwoot_message_id,
                ))
                .await?;
        }
        match self
            .client(integration)
            .delete_message(target.chatwoot_conversation_id, target.chatwoot_message_id)
            .await
        {
            // Gone already: nothing left to show.
            Ok(()) | Err(ChatwootError::Status { status: 404, .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A group change as a private note in the group's conversation. A group
    /// with no conversation yet gets none: a note alone would open one.
    pub(super) async fn post_group_note(
        &self,
        job: &Job,
        integration: &Integration,
        id: &str,
        chat: &str,
        text: &str,
    ) -> Result<(), Failure> {
        let Some(link) = self.store.find_chat(&integration.id, chat).await? else {
            return Ok(());
        };
        let client = self.client(integration);
        let source_id = format!("WAID:{id}");
        if (job.attempts > 0 || !job.last_error.is_empty())
            && find_posted(&client, link.conversation_id, &source_id)
                .await?
                .is_some()
        {
            return Ok(());
        }
        let note = NewMessage {
            content: Some(text.to_owned()),
            message_type: "outgoing",
            source_id: Some(source_id),
            private: true,
            content_attributes: None,
            attachments: Vec::new(),
        };
        match client.create_message(link.conversation_id, note).await {
            // The conversation was deleted in Chatwoot: the next message of
            // the group opens a new one; this note has nowhere to go.
            Ok(_) | Err(ChatwootError::Status { status: 404, .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn new_message(
        &self,
        media_bytes: MediaBytes,
        integration: &Integration,
        message: &InboundJob,
        source_id: String,
    ) -> Result<NewMessage, Failure> {
        let quoted = message
            .extra
            .as_ref()
            .and_then(render::extra_target)
            .or(message.quoted_id.as_deref());
        let content_attributes = match quoted {
            Some(quoted) => {
                let mut attributes = json!({"in_reply_to_external_id": format!("WAID:{quoted}")});
                if let Some(target) = self
                    .store
                    .find_message_by_wa(&integration.id, quoted)
                    .await?
                {
                    attributes["in_reply_to"] = json!(target.chatwoot_message_id);
                }
                Some(attributes)
            }
            None => None,
        };
        let mut content = render::inbound_content(message);
        let mut attachments = Vec::new();
        if let Some(media) = &message.media {
            let data = match media.inline_bytes()? {
                Some(data) => Some(data),
                None => match media_bytes {
                    MediaBytes::Job(job_id) => self.store.job_blob(job_id).await?,
                    MediaBytes::Fetched(data) => data,
                },
            };
            match data {
                Some(data) => attachments.push(Attachment {
                    file_name: media
                        .file_name
                        .clone()
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| default_file_name(&media.kind, &media.mimetype)),
                    mimetype: media.mimetype.clone(),
                    data,
                }),
                // A dead letter replayed: its media went when it was parked.
                None => content = Some(render::media_gone(content)),
            }
        }
        Ok(NewMessage {
            content,
            message_type: if message.from_me {
                "outgoing"
            } else {
                "incoming"
            },
            source_id: Some(source_id),
            private: false,
            content_attributes,
            attachments,
        })
    }

    /// The chat's contact and usable conversation: from the cached link when
    /// there is one, else found or created in Chatwoot. `stored` holds the
    /// links filed under any of `jids` (the identity's every form): the first
    /// one found wins, the others tell below whether they need a write.
    async fn chat_link(
        &self,
        client: &ChatwootClient,
        integration: &Integration,
        identity: &ChatIdentity,
        jids: Vec<String>,
        stored: Vec<ChatLink>,
        message: &InboundJob,
    ) -> Result<ChatLink, Failure> {
        let cached = jids
            .iter()
            .find_map(|jid| stored.iter().find(|l| &l.chat_jid == jid))
            .cloned();
        let (link, found_under) = match cached {
            Some(found) => {
                let under = found.chat_jid.clone();
                let mut link = found.clone();
                if under.ends_with("@lid") && identity.phone.is_some() {
                    link.contact_id = self.learn_phone(client, identity, link.contact_id).await?;
                }
                let link = self.usable_conversation(client, integration, link).await?;
                // Unchanged and filed under the key we looked up: no write.
                let unchanged = link == found;
                (link, unchanged.then_some(under))
            }
            None => (
                self.build_link(client, integration, identity, message)
                    .await?,
                None,
            ),
        };
        // File the link under every JID of the person (phone and LID), so a
        // later message under either form finds the same conversation.
        for jid in jids {
            if found_under.as_deref() == Some(jid.as_str()) {
                continue;
            }
            let wanted = ChatLink {
                chat_jid: jid.clone(),
                ..link.clone()
            };
            // A found link was read above and nothing of this chat was
            // written since; a new one may have been filed while built.
            let current = match &found_under {
                Some(_) => stored.iter().find(|l| l.chat_jid == jid).cloned(),
                None => self.store.find_chat(&integration.id, &jid).await?,
            };
            if current.as_ref() != Some(&wanted) {
                self.store.save_chat(&wanted).await?;
            }
        }
        Ok(link)
    }

    /// A contact known only by its hidden number (LID) now shows its phone:
    /// the contact gets it, or, when another contact already has that
    /// number, the two are merged into that one. Returns the contact to use.
    async fn learn_phone(
        &self,
        client: &ChatwootClient,
        identity: &ChatIdentity,
        contact_id: i64,
    ) -> Result<i64, Failure> {
        let changes = json!({"phone_number": identity.phone, "identifier": identity.identifier});
        match client.update_contact(contact_id, changes).await {
            Ok(_) => return Ok(contact_id),
            Err(ChatwootError::Status { status: 422, .. }) => {}
            Err(ChatwootError::Status { status: 404, .. }) => return Ok(contact_id),
            Err(e) => return Err(e.into()),
        }
        let owners = client
            .filter_contacts("phone_number", &identity.phone_variants)
            .await?;
        match owners.into_iter().find(|c| c.id != contact_id) {
            Some(base) => {
                tracing::info!(
                    base = base.id,
                    duplicate = contact_id,
                    "merging a LID contact into the contact with its phone"
                );
                client.merge_contacts(base.id, contact_id).await?;
                Ok(base.id)
            }
            None => Ok(contact_id),
        }
    }

    /// Creating a conversation answered 404: either the inbox was deleted
    /// (the integration is in error until a new `set`) or the contact was (the
    /// stale link is forgotten and the chat rebuilt on the next try).
    async fn creation_failed(
        &self,
        client: &ChatwootClient,
        integration: &Integration,
        err: ChatwootError,
        stale_conversation: Option<i64>,
    ) -> Failure {
        if !matches!(err, ChatwootError::Status { status: 404, .. }) {
            return err.into();
        }
        if let Err(ChatwootError::Status { status: 404, .. }) =
            client.get_inbox(integration.inbox_id).await
        {
            return Failure::inbox_gone(integration);
        }
        if let Some(conversation) = stale_conversation
            && let Err(e) = self
                .store
                .forget_conversation(&integration.id, conversation)
                .await
        {
            return e.into();
        }
        Failure::Transient {
            error: "the contact no longer exists in Chatwoot".to_owned(),
            after: Some(std::time::Duration::ZERO),
        }
    }

    /// A linked conversation, reopened or replaced when it was resolved.
    async fn usable_conversation(
        &self,
        client: &ChatwootClient,
        integration: &Integration,
        mut link: ChatLink,
    ) -> Result<ChatLink, Failure> {
        if link.conversation_status != "resolved" {
            return Ok(link);
        }
        if integration.flags.reopen_resolved {
            match client.toggle_status(link.conversation_id, "open").await {
                Ok(()) => {
                    link.conversation_status = "open".to_owned();
                    self.store
                        .set_conversation_status(&integration.id, link.conversation_id, "open")
                        .await?;
                    return Ok(link);
                }
                Err(ChatwootError::Status { status: 404, .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let status = initial_status(integration);
        let conversation = match client
            .create_conversation(
                integration.inbox_id,
                link.contact_id,
                &link.source_id,
                status,
            )
            .await
        {
            Ok(conversation) => conversation,
            Err(e) => {
                return Err(self
                    .creation_failed(client, integration, e, Some(link.conversation_id))
                    .await);
            }
        };
        link.conversation_id = conversation.id;
        link.conversation_status = conversation.status;
        link.reconciled_message_id = 0;
        Ok(link)
    }

    async fn build_link(
        &self,
        client: &ChatwootClient,
        integration: &Integration,
        identity: &ChatIdentity,
        message: &InboundJob,
    ) -> Result<ChatLink, Failure> {
        let link = self
            .find_or_create_link(client, integration, identity, message)
            .await?;
        self.usable_conversation(client, integration, link).await
    }

    /// The chat's contact and latest conversation in the inbox (preferring
    /// one not resolved), created when there is none; a resolved one is
    /// returned as it is.
    pub(super) async fn find_or_create_link(
        &self,
        client: &ChatwootClient,
        integration: &Integration,
        identity: &ChatIdentity,
        message: &InboundJob,
    ) -> Result<ChatLink, Failure> {
        let source_id = identity.chat_jid.clone();
        let (contact_id, created) = self
            .find_or_create_contact(client, integration, identity, message, &source_id)
            .await?;
        let mut existing = None;
        if !created {
            let conversations = client.contact_conversations(contact_id).await?;
            let ours: Vec<_> = conversations
                .into_iter()
                .filter(|c| c.inbox_id == integration.inbox_id)
                .collect();
            existing = ours
                .iter()
                .find(|c| c.status != "resolved")
                .or_else(|| ours.first())
                .cloned();
        }
        let conversation = match existing {
            Some(conversation) => conversation,
            None => {
                let created = client
                    .create_conversation(
                        integration.inbox_id,
                        contact_id,
                        &source_id,
                        initial_status(integration),
                    )
                    .await;
                match created {
                    Ok(conversation) => conversation,
                    Err(e) => return Err(self.creation_failed(client, integration, e, None).await),
                }
            }
        };
        Ok(ChatLink {
            integration_id: integration.id.clone(),
            chat_jid: identity.chat_jid.clone(),
            contact_id,
            source_id,
            conversation_id: conversation.id,
            conversation_status: conversation.status,
            reconciled_message_id: 0,
        })
    }

    /// Creates the contact; when Chatwoot says it exists (its identifier or
    /// phone is taken), finds it under any of the person's identifiers and
    /// phone forms, merging duplicates into the one with a phone number.
    pub(super) async fn find_or_create_contact(
        &self,
        client: &ChatwootClient,
        integration: &Integration,
        identity: &ChatIdentity,
        message: &InboundJob,
        source_id: &str,
    ) -> Result<(i64, bool), Failure> {
        let name = contact_name(identity, message);
        let new = NewContact {
            inbox_id: integration.inbox_id,
            name: Some(name.clone()),
            phone_number: identity.phone.clone(),
            identifier: Some(identity.identifier.clone()),
            source_id: Some(source_id.to_owned()),
        };
        match client.create_contact(&new).await {
            Ok((contact, _)) => return Ok((contact.id, true)),
            Err(ChatwootError::Status { status: 422, .. }) => {}
            Err(ChatwootError::Status { status: 404, .. }) => {
                return Err(Failure::inbox_gone(integration));
            }
            Err(e) => return Err(e.into()),
        }
        let mut found = client
            .filter_contacts("identifier", &identity.identifier_variants)
            .await?;
        for contact in client
            .filter_contacts("phone_number", &identity.phone_variants)
            .await?
        {
            if !found.iter().any(|c| c.id == contact.id) {
                found.push(contact);
            }
        }
        // The one with a phone number (the person's real identity) wins.
        found.sort_by_key(|c| (c.phone_number.is_none(), c.id));
        let Some(base) = found.first().cloned() else {
            return Err(Failure::Rejected {
                error: format!(
                    "Chatwoot refused the contact {} and none matches it",
                    identity.identifier
                ),
            });
        };
        for duplicate in found.iter().skip(1) {
            tracing::info!(
                base = base.id,
                duplicate = duplicate.id,
                "merging duplicate Chatwoot contacts"
            );
            client.merge_contacts(base.id, duplicate.id).await?;
        }
        let mut changes = serde_json::Map::new();
        if base.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
            changes.insert("name".into(), json!(name));
        }
        if base.phone_number.is_none()
            && let Some(phone) = &identity.phone
        {
            // A contact known only by its hidden number learns its phone.
            changes.insert("phone_number".into(), json!(phone));
            changes.insert("identifier".into(), json!(identity.identifier));
        }
        if !changes.is_empty()
            && let Err(e) = client.update_contact(base.id, changes.into()).await
        {
            tracing::info!(contact_id = base.id, error = %e, "could not complete the contact");
        }
        Ok((base.id, false))
    }

    pub(super) async fn post_receipt(
        &self,
        integration: &Integration,
        wa_message_id: &str,
        status: &str,
    ) -> Result<(), Failure> {
        let Some(link) = self
            .store
            .find_message_by_wa(&integration.id, wa_message_id)
            .await?
        else {
            return Ok(());
        };
        let client = self.client(integration);
        match client
            .update_message_status(
                link.chatwoot_conversation_id,
                link.chatwoot_message_id,
                status,
                None,
            )
            .await
        {
            // The message or conversation is gone: nothing left to update.
            Ok(()) | Err(ChatwootError::Status { status: 404, .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The link of a message now in Chatwoot.
pub(super) fn posted(
    integration: &Integration,
    message: &InboundJob,
    link: &ChatLink,
    chatwoot_message_id: i64,
) -> MessageLink {
    MessageLink {
        integration_id: integration.id.clone(),
        wa_message_id: message.id.clone(),
        chatwoot_message_id,
        chatwoot_conversation_id: link.conversation_id,
        direction: INBOUND.to_owned(),
    }
}

fn initial_status(integration: &Integration) -> &'static str {
    if integration.flags.start_as_pending {
        "pending"
    } else {
        "open"
    }
}

/// The push name, or the number: never the owner's own name on a message
/// the owner sent.
fn contact_name(identity: &ChatIdentity, message: &InboundJob) -> String {
    if identity.is_group {
        return message
            .group_subject
            .clone()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| identity.identifier.clone());
    }
    let push = (!message.from_me)
        .then(|| message.push_name.clone())
        .flatten()
        .filter(|n| !n.trim().is_empty());
    push.or_else(|| identity.phone.clone())
        .unwrap_or_else(|| identity.identifier.clone())
}

/// The id of a message with `source_id` among the conversation's latest.
async fn find_posted(
    client: &ChatwootClient,
    conversation_id: i64,
    source_id: &str,
) -> Result<Option<i64>, Failure> {
    match client.latest_messages(conversation_id).await {
        Ok(messages) => Ok(messages
            .iter()
            .find(|m| m.source_id.as_deref() == Some(source_id))
            .map(|m| m.id)),
        Err(ChatwootError::Status { status: 404, .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn default_file_name(kind: &str, mimetype: &str) -> String {
    let extension = match mimetype.split(';').next().unwrap_or("").trim() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "video/mp4" => "mp4",
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/mp4" => "m4a",
        "application/pdf" => "pdf",
        _ => "bin",
    };
    format!("{kind}.{extension}")
}

/// Where a message's media bytes are when they are not inline in its job:
/// in the job's blob row (live inbound), or already fetched (an import).
pub(super) enum MediaBytes {
    Job(i64),
    Fetched(Option<Vec<u8>>),
}
