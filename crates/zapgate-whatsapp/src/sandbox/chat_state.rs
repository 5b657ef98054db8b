//! The sandbox's chat state, per instance: an address book (the directory
//! that also says who is on WhatsApp), the read receipts, presence, chat
//! flags and blocks zapgate sent, all readable through the sandbox API so a
//! test can check what a chat route did.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use async_trait::async_trait;
use serde::Serialize;
use zapgate_core::{
    Error, Result,
    chat_state::{ChatChange, ChatState, Contact, Mute, NumberCheck},
    jid::Jid,
    whatsapp::HistoryRequest,
};

use super::{OUTBOX_LIMIT, SandboxProvider, Slot};

/// Someone in the sandbox's directory: on WhatsApp, and in the account's
/// address book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryEntry {
    /// Phone digits.
    pub number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_name: Option<String>,
    pub business: bool,
}

/// Read receipts zapgate sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadEntry {
    pub chat: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    pub message_ids: Vec<String>,
    pub timestamp: i64,
}

/// A history request an import made (`WhatsApp::fetch_history`): the
/// sandbox phone's history comes from its fixture, so it only records what
/// was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryAsked {
    /// The window's start, Unix seconds.
    pub since: i64,
    /// Per chat, the oldest message held, before which history was asked.
    pub anchors: Vec<HistoryAnchorEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryAnchorEntry {
    pub chat: String,
    pub id: String,
    pub from_me: bool,
    pub timestamp: i64,
}

/// One chat's flags as zapgate last set them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatFlags {
    pub archived: bool,
    pub pinned: bool,
    /// `off`, `forever`, or the Unix second the mute ends.
    pub muted: String,
    /// Marked read (`true`) or unread; `null` until either.
    pub read: Option<bool>,
    pub deleted: bool,
}

/// What the sandbox API shows of an instance's chat state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatStateView {
    pub directory: Vec<DirectoryEntry>,
    pub reads: Vec<ReadEntry>,
    /// By chat jid.
    pub chats: BTreeMap<String, ChatFlags>,
    /// Blocked users, as named when blocked.
    pub blocked: Vec<String>,
    /// History requests of imports, oldest first.
    pub history_requests: Vec<HistoryAsked>,
}

#[derive(Debug, Default)]
pub(super) struct ChatBook {
    /// By phone digits.
    directory: BTreeMap<String, DirectoryEntry>,
    reads: VecDeque<ReadEntry>,
    chats: BTreeMap<String, ChatFlags>,
    blocked: BTreeSet<String>,
    history_requests: VecDeque<HistoryAsked>,
}

impl SandboxProvider {
    /// Runs `f` on a connected instance's slot.
    fn connected<R>(&self, instance_id: &str, f: impl FnOnce(&mut Slot) -> R) -> Result<R> {
        let mut slots = self.slots();
        let slot = slots
            .get_mut(instance_id)
            .filter(|s| s.is_connected())
            .ok_or(Error::NotConnected)?;
        Ok(f(slot))
    }

    /// Adds (or replaces, by number) people in the instance's directory.
    pub fn add_to_directory(&self, instance_id: &str, entries: Vec<DirectoryEntry>) {
        let mut slots = self.slots();
        let book = &mut slots
            .entry(instance_id.to_owned())
            .or_insert_with(Slot::new)
            .chat_book;
        for entry in entries {
            if book.directory.len() >= OUTBOX_LIMIT && !book.directory.contains_key(&entry.number) {
                book.directory.pop_first();
            }
            book.directory.insert(entry.number.clone(), entry);
        }
    }

    pub fn chat_state_view(&self, instance_id: &str) -> ChatStateView {
        self.slots()
            .get(instance_id)
            .map(|s| ChatStateView {
                directory: s.chat_book.directory.values().cloned().collect(),
                reads: s.chat_book.reads.iter().cloned().collect(),
                chats: s.chat_book.chats.clone(),
                blocked: s.chat_book.blocked.iter().cloned().collect(),
                history_requests: s.chat_book.history_requests.iter().cloned().collect(),
            })
            .unwrap_or_default()
    }

    /// Records an import's history request; the instance must be connected.
    pub(super) fn record_history_request(
        &self,
        instance_id: &str,
        request: &HistoryRequest,
    ) -> Result<()> {
        self.connected(instance_id, |slot| {
            let asked = &mut slot.chat_book.history_requests;
            if asked.len() >= OUTBOX_LIMIT {
                asked.pop_front();
            }
            asked.push_back(HistoryAsked {
                since: request.since_secs,
                anchors: request
                    .anchors
                    .iter()
                    .map(|a| HistoryAnchorEntry {
                        chat: a.chat.to_string(),
                        id: a.id.clone(),
                        from_me: a.from_me,
                        timestamp: a.timestamp,
                    })
                    .collect(),
            });
        })
    }

    /// The directory entry for `phone`, and the own number as an entry.
    fn known(&self, slot: &Slot, phone: &Jid) -> Option<DirectoryEntry> {
        let own = slot.session.as_ref()?.number_jid.as_deref();
        if own.and_then(|j| Jid::parse(j).ok()).as_ref() == Some(phone) {
            return Some(DirectoryEntry {
                number: phone.user.clone(),
                name: None,
                push_name: None,
                business: false,
            });
        }
        slot.chat_book.directory.get(&phone.user).cloned()
    }

    fn contact_of(&self, entry: DirectoryEntry) -> Contact {
        let jid = Jid::user(&entry.number);
        Contact {
            lid: Some(self.lid_of(&jid)),
            jid,
            name: entry.name,
            push_name: entry.push_name,
        }
    }
}

#[async_trait]
impl ChatState for SandboxProvider {
    async fn contacts(&self, instance_id: &str) -> Result<Vec<Contact>> {
        let entries = self.connected(instance_id, |slot| {
            slot.chat_book
                .directory
                .values()
                .cloned()
                .collect::<Vec<_>>()
        })?;
        Ok(entries.into_iter().map(|e| self.contact_of(e)).collect())
    }

    async fn contact(&self, instance_id: &str, who: &Jid) -> Result<Option<Contact>> {
        let entry = self.connected(instance_id, |slot| {
            if !who.is_lid() {
                return self.known(slot, who);
            }
            let own = slot.session.as_ref()?.number_jid.as_deref()?;
            let own = Jid::parse(own).ok()?;
            std::iter::once(own)
                .chain(slot.chat_book.directory.keys().map(|d| Jid::user(d)))
                .find(|phone| self.lid_of(phone) == *who)
                .and_then(|phone| self.known(slot, &phone))
        })?;
        Ok(entry.map(|e| self.contact_of(e)))
    }

    async fn check_numbers(&self, instance_id: &str, numbers: &[Jid]) -> Result<Vec<NumberCheck>> {
        let known: Vec<Option<DirectoryEntry>> = self.connected(instance_id, |slot| {
            numbers.iter().map(|n| self.known(slot, n)).collect()
        })?;
        Ok(numbers
            .iter()
            .zip(known)
            .map(|(number, entry)| NumberCheck {
                number: number.clone(),
                exists: entry.is_some(),
                jid: entry.as_ref().map(|_| number.clone()),
                lid: entry.as_ref().map(|_| self.lid_of(number)),
                is_business: entry.is_some_and(|e| e.business),
            })
            .collect())
    }

    async fn mark_read(
        &self,
        instance_id: &str,
        chat: &Jid,
        sender: Option<&Jid>,
        ids: &[String],
    ) -> Result<()> {
        self.connected(instance_id, |slot| {
            let timestamp = slot.next_timestamp();
            let reads = &mut slot.chat_book.reads;
            if reads.len() >= OUTBOX_LIMIT {
                reads.pop_front();
            }
            reads.push_back(ReadEntry {
                chat: chat.to_string(),
                sender: sender.map(Jid::to_string),
                message_ids: ids.to_vec(),
                timestamp,
            });
        })
    }

    async fn set_presence(&self, instance_id: &str, available: bool) -> Result<()> {
        self.connected(instance_id, |slot| {
            slot.presence = Some(if available {
                "available"
            } else {
                "unavailable"
            });
        })
    }

    async fn update_chat(&self, instance_id: &str, chat: &Jid, change: ChatChange) -> Result<()> {
        self.connected(instance_id, |slot| {
            let chats = &mut slot.chat_book.chats;
            // Bounded like the outbox: a sandbox behind a busy bridge must not grow forever.
            if chats.len() >= OUTBOX_LIMIT && !chats.contains_key(&chat.to_string()) {
                chats.pop_first();
            }
            let flags = chats.entry(chat.to_string()).or_insert_with(|| ChatFlags {
                muted: "off".to_owned(),
                ..Default::default()
            });
            match change {
                ChatChange::Archive(on) => flags.archived = on,
                ChatChange::Pin(on) => flags.pinned = on,
                ChatChange::Mute(mute) => {
                    flags.muted = match mute {
                        Mute::Off => "off".to_owned(),
                        Mute::Forever => "forever".to_owned(),
                        Mute::Until(at) => at.to_string(),
                    }
                }
                ChatChange::MarkRead(read) => flags.read = Some(read),
                ChatChange::Delete => {
                    // A deleted chat loses its flags, as on the phone.
                    *flags = ChatFlags {
                        muted: "off".to_owned(),
                        deleted: true,
                        ..Default::default()
                    };
                }
            }
        })
    }

    async fn block(&self, instance_id: &str, who: &Jid, blocked: bool) -> Result<()> {
        self.connected(instance_id, |slot| {
            let list = &mut slot.chat_book.blocked;
            if blocked {
                if list.len() >= OUTBOX_LIMIT {
                    list.pop_first();
                }
                list.insert(who.to_string());
            } else {
                list.remove(&who.to_string());
            }
        })
    }
}
