//! Contact avatars (`contactAvatars`): a chat's Chatwoot contact gets the
//! WhatsApp picture (the person's profile picture, or the group's), set
//! with Chatwoot's contact update (`avatar_url`, which Chatwoot fetches
//! itself). Never on the steady inbound path: a message only queues a job
//! the first time this process sees its chat in a day, and the job, run in
//! the background, asks WhatsApp and calls Chatwoot only when the picture
//! changed since the last refresh, at most daily (the stored refresh time
//! holds across processes and restarts). Best effort: a failure is logged
//! and the next day tries again.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use zapgate_core::{
    chatwoot::Integration,
    groups::GroupRef,
    instance::ConnectionState,
    jid::Jid,
    jobs::{AvatarRefresh, ChatLink, NewJob},
    time::now_ms,
};

use super::{
    Bridge, Failure,
    payload::{JobPayload, OUTBOUND},
};
use crate::client::ChatwootError;

/// How often a contact's picture is looked at.
const AVATAR_REFRESH: Duration = Duration::from_secs(24 * 3600);
/// Chats the in-memory gate remembers before it starts afresh (then each
/// chat costs one more job, which the stored refresh time makes a no-op).
const GATE_CAPACITY: usize = 50_000;

/// When this process last queued each chat's avatar job.
#[derive(Default)]
pub(crate) struct AvatarGate(Mutex<HashMap<String, Instant>>);

impl AvatarGate {
    /// Whether `key` is due, marking it queued now when it is.
    fn take(&self, key: String) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if seen
            .get(&key)
            .is_some_and(|at| at.elapsed() < AVATAR_REFRESH)
        {
            return false;
        }
        if seen.len() >= GATE_CAPACITY {
            seen.clear();
        }
        seen.insert(key, Instant::now());
        true
    }
}

impl Bridge {
    /// Queues the chat's avatar refresh when this process has not in the
    /// last day. Costs nothing (no call, no write) on the steady path.
    pub(super) async fn queue_avatar(
        &self,
        integration: &Integration,
        chat: &str,
        link: &ChatLink,
    ) {
        if !integration.options.contact_avatars
            || !self.avatars.take(format!("{}/{chat}", integration.id))
        {
            return;
        }
        let payload = JobPayload::Avatar {
            chat: chat.to_owned(),
            contact_id: link.contact_id,
        };
        let Ok(payload) = payload.to_json() else {
            return;
        };
        let job = NewJob {
            integration_id: integration.id.clone(),
            instance_id: integration.instance_id.clone(),
            // It needs the WhatsApp session: run where the session runs.
            direction: OUTBOUND,
            // Its own queue: it never holds the chat's messages back.
            chat_key: format!("avatar:{chat}"),
            dedupe_key: format!("avatar:{}:{chat}", integration.id),
            payload,
            blob: None,
            run_at_ms: now_ms(),
        };
        // The message matters more than its avatar: a failed enqueue is
        // only logged.
        match self.store.enqueue_jobs(&[job]).await {
            Ok(_) => self.nudge(),
            Err(e) => {
                tracing::warn!(integration_id = %integration.id, error = %e, "avatar refresh not queued")
            }
        }
    }

    /// The avatar job: the chat's picture onto its contact when it changed
    /// and the last refresh is a day old.
    pub(super) async fn refresh_avatar(
        &self,
        integration: &Integration,
        chat: &str,
        contact_id: i64,
    ) -> Result<(), Failure> {
        if !integration.options.contact_avatars {
            return Ok(());
        }
        let last = self.store.avatar_refresh(&integration.id, chat).await?;
        let now = now_ms();
        if last
            .as_ref()
            .is_some_and(|l| now - l.refreshed_at_ms < AVATAR_REFRESH.as_millis() as i64)
        {
            return Ok(());
        }
        let Ok(jid) = Jid::parse(chat) else {
            return Ok(());
        };
        let whatsapp = self.whatsapp()?;
        let connected = whatsapp
            .status(&integration.instance_id)
            .is_some_and(|s| s.state == ConnectionState::Connected);
        if !connected {
            return Ok(());
        }
        let picture = if jid.is_group() {
            whatsapp
                .group_info(&integration.instance_id, &GroupRef::Jid(jid))
                .await
                .map(|g| g.picture_url)
        } else {
            whatsapp
                .profile(&integration.instance_id, Some(&jid))
                .await
                .map(|p| p.picture_url)
        };
        let picture = match picture {
            Ok(picture) => picture.unwrap_or_default(),
            Err(e) => {
                tracing::debug!(integration_id = %integration.id, error = %e, "WhatsApp picture not read");
                return Ok(());
            }
        };
        let changed = last.as_ref().map(|l| l.picture_url.as_str()) != Some(picture.as_str());
        // A picture taken away stays in Chatwoot: its API has no way to
        // clear an avatar by URL.
        if changed && !picture.is_empty() {
            let update = self
                .client(integration)
                .update_contact(contact_id, serde_json::json!({"avatar_url": picture}))
                .await;
            match update {
                // A contact deleted meanwhile gets its picture when it comes back.
                Ok(_) | Err(ChatwootError::Status { status: 404, .. }) => {}
                Err(e) => {
                    tracing::debug!(integration_id = %integration.id, error = %e, "contact avatar not set");
                    return Ok(());
                }
            }
        }
        self.store
            .save_avatar_refresh(
                &integration.id,
                chat,
                &AvatarRefresh {
                    picture_url: picture,
                    refreshed_at_ms: now,
                },
            )
            .await?;
        Ok(())
    }
}
