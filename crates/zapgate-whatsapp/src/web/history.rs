//! The phone's history, for a Chatwoot import (`fetch_history`).
//!
//! History sync is off on every session (the crate acknowledges and drops
//! what the phone pushes). An import that needs history turns it on for its
//! session while it waits: it asks the phone, by on-demand peer requests
//! (`fetch_message_history`), for the messages before each chat's oldest
//! stored one, round after round until the window is reached, and keeps
//! whatever history syncs arrive meanwhile (a freshly linked phone's
//! bootstrap too). Of each sync only the messages in the window are mapped,
//! like live ones, and handed to the history sink (the message store);
//! nothing else of it is kept.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use whatsapp_rust::{
    Jid as WaJid,
    chrono::DateTime,
    types::message::{MessageInfo, MessageSource},
    wacore_binary::JidExt as _,
    waproto::whatsapp as wa,
};
use zapgate_core::{
    jid::Jid,
    whatsapp::{HistoryAnchor, HistorySink, InboundMessage},
};

use super::inbound;

/// Messages one on-demand request asks for (WhatsApp Web's page).
pub(super) const PER_REQUEST: i32 = 50;
/// Chats asked about per fetch; the rest keep what the store holds.
pub(super) const MAX_CHATS: usize = 500;
/// Rounds of requests per chat (so at most this many pages of history).
pub(super) const MAX_ROUNDS: usize = 40;
/// With nothing to ask, how long to wait for the phone to push history
/// (a fresh link's bootstrap), and how long a quiet spell ends it.
pub(super) const PUSH_WAIT: Duration = Duration::from_secs(10);

/// An import waiting for history on a session.
pub(super) struct Want {
    pub since_secs: i64,
    pub sink: Arc<dyn HistorySink>,
    /// On-demand requests not answered yet: request id → chat.
    pub pending: HashMap<String, String>,
    /// Chats answered this round: an answer may come before its request's
    /// id is known here.
    pub answered_chats: HashSet<String>,
    pub answered: usize,
    pub stored: usize,
    /// Per chat answered in full, the oldest message it brought: where the
    /// next round asks from.
    pub next: HashMap<String, HistoryAnchor>,
    /// When a sync last arrived.
    pub last_sync: Option<tokio::time::Instant>,
}

impl Want {
    pub fn new(since_secs: i64, sink: Arc<dyn HistorySink>) -> Self {
        Self {
            since_secs,
            sink,
            pending: HashMap::new(),
            answered_chats: HashSet::new(),
            answered: 0,
            stored: 0,
            next: HashMap::new(),
            last_sync: None,
        }
    }

    /// A request sent for `chat`; already answered when its answer came first.
    pub fn asked(&mut self, request_id: String, chat: String) {
        if self.answered_chats.contains(&chat) {
            self.answered += 1;
        } else {
            self.pending.insert(request_id, chat);
        }
    }

    /// Marks what a sync answers: its session id, or the chats it holds.
    pub fn answer(&mut self, session_id: Option<&str>, chats: &HashSet<String>) {
        let before = self.pending.len();
        if let Some(id) = session_id {
            self.pending.remove(id);
        }
        self.pending.retain(|_, chat| !chats.contains(chat));
        self.answered += before - self.pending.len();
        self.answered_chats.extend(chats.iter().cloned());
    }

    /// Ends a round: what was not answered by now is given up; returns
    /// where the next round asks from.
    pub fn next_round(&mut self) -> Vec<HistoryAnchor> {
        self.pending.clear();
        self.answered_chats.clear();
        self.next.drain().map(|(_, anchor)| anchor).collect()
    }
}

/// What one history sync holds for an import.
#[derive(Debug, Default)]
pub(super) struct Harvest {
    /// Messages in the window, oldest first per chat.
    pub messages: Vec<InboundMessage>,
    /// Every chat the sync named, in the form zapgate reports it.
    pub chats: HashSet<String>,
    /// Per chat with a full page (an on-demand answer that may go on), the
    /// oldest message it brought, when still inside the window.
    pub more: HashMap<String, HistoryAnchor>,
}

/// Maps the conversations of `sync`, keeping the messages sent at or after
/// `since_secs`. `own` is the account's phone-number jid: the author of its
/// own messages in one-to-one chats.
pub(super) fn harvest(sync: &wa::HistorySync, own: Option<&WaJid>, since_secs: i64) -> Harvest {
    let lid_to_pn: HashMap<&str, &str> = sync
        .phone_number_to_lid_mappings
        .iter()
        .filter_map(|m| Some((m.lid_jid.as_deref()?, m.pn_jid.as_deref()?)))
        .collect();
    let mut harvest = Harvest::default();
    for conversation in &sync.conversations {
        let Ok(chat) = conversation.id.parse::<WaJid>() else {
            continue;
        };
        // A chat WhatsApp names by LID is its phone number when it says which.
        let pn = conversation
            .pn_jid
            .as_deref()
            .or_else(|| lid_to_pn.get(conversation.id.as_str()).copied())
            .and_then(|pn| pn.parse::<WaJid>().ok())
            .filter(|_| chat.server.is_lid_family());
        let Some(reported) = inbound::jid_of(pn.as_ref().unwrap_or(&chat)) else {
            continue;
        };
        harvest.chats.insert(reported.to_string());
        if let Some(lid) = inbound::jid_of(&chat).filter(Jid::is_lid) {
            harvest.chats.insert(lid.to_string());
        }
        let mut oldest: Option<HistoryAnchor> = None;
        let mut count = 0;
        let mut kept = Vec::new();
        for entry in &conversation.messages {
            let Some(web) = entry.message.as_option() else {
                continue;
            };
            count += 1;
            let Some((info, message)) = message_info(web, &chat, pn.as_ref(), own) else {
                continue;
            };
            if oldest
                .as_ref()
                .is_none_or(|o| info_secs(&info) < o.timestamp)
            {
                oldest = Some(HistoryAnchor {
                    chat: reported.clone(),
                    id: info.id.clone(),
                    from_me: info.source.is_from_me,
                    timestamp: info_secs(&info),
                });
            }
            if info_secs(&info) < since_secs {
                continue;
            }
            if let Some(mapped) = inbound::map_message(message, &info) {
                kept.push(mapped.message);
            }
        }
        kept.sort_by_key(|m| m.timestamp);
        harvest.messages.extend(kept);
        if count >= PER_REQUEST as usize
            && let Some(oldest) = oldest.filter(|o| o.timestamp > since_secs)
        {
            harvest.more.insert(reported.to_string(), oldest);
        }
    }
    harvest
}

fn info_secs(info: &MessageInfo) -> i64 {
    info.timestamp.timestamp()
}

/// The stanza view of a history message, as live messages come: its chat
/// (`pn` when the chat is a LID with a known number), author and time.
fn message_info<'a>(
    web: &'a wa::WebMessageInfo,
    chat: &WaJid,
    pn: Option<&WaJid>,
    own: Option<&WaJid>,
) -> Option<(MessageInfo, &'a wa::Message)> {
    let key = web.key.as_option()?;
    let id = key.id.clone().filter(|id| !id.is_empty())?;
    let message = web.message.as_option()?;
    let from_me = key.from_me.unwrap_or(false);
    let is_group = chat.is_group();
    let sender = if is_group {
        let participant = key.participant.as_deref().or(web.participant.as_deref())?;
        participant.parse::<WaJid>().ok()?
    } else if from_me {
        own.cloned().unwrap_or_else(|| chat.clone())
    } else {
        chat.clone()
    };
    let timestamp = i64::try_from(web.message_timestamp?).ok()?;
    let source = MessageSource {
        chat: chat.clone(),
        sender,
        is_from_me: from_me,
        is_group,
        // The person's number, so the chat is reported by it.
        sender_alt: (!is_group && !from_me).then(|| pn.cloned()).flatten(),
        recipient_alt: (!is_group && from_me).then(|| pn.cloned()).flatten(),
        ..Default::default()
    };
    let info = MessageInfo {
        id,
        source,
        push_name: web.push_name.clone().unwrap_or_default(),
        timestamp: DateTime::from_timestamp(timestamp, 0)?,
        ..Default::default()
    };
    Some((info, message))
}

#[cfg(test)]
mod tests {
    use whatsapp_rust::buffa::MessageField;
    use zapgate_core::whatsapp::MediaKind;

    use super::*;

    const CONTACT: &str = "5511988887777@s.whatsapp.net";
    const CONTACT_LID: &str = "98765432109876@lid";
    const OWN: &str = "5511999990000@s.whatsapp.net";
    const GROUP: &str = "120363041234567890@g.us";
    const MEMBER: &str = "5511977776666@s.whatsapp.net";
    /// 2026-11-30T12:00:00Z.
    const DAY: i64 = 1_796_040_000;

    fn wa_jid(raw: &str) -> WaJid {
        raw.parse().unwrap()
    }

    fn entry(
        chat: &str,
        id: &str,
        from_me: bool,
        participant: Option<&str>,
        at: i64,
        message: wa::Message,
    ) -> wa::HistorySyncMsg {
        wa::HistorySyncMsg {
            message: MessageField::some(wa::WebMessageInfo {
                key: MessageField::some(wa::MessageKey {
                    remote_jid: Some(chat.to_owned()),
                    from_me: Some(from_me),
                    id: Some(id.to_owned()),
                    participant: participant.map(str::to_owned),
                }),
                message: MessageField::some(message),
                message_timestamp: Some(at as u64),
                push_name: (!from_me).then(|| "Maria Souza".to_owned()),
                ..Default::default()
            }),
            msg_order_id: None,
        }
    }

    fn text(text: &str) -> wa::Message {
        wa::Message {
            conversation: Some(text.to_owned()),
            ..Default::default()
        }
    }

    fn sync(conversations: Vec<wa::Conversation>) -> wa::HistorySync {
        wa::HistorySync {
            sync_type: wa::history_sync::HistorySyncType::ON_DEMAND,
            conversations,
            ..Default::default()
        }
    }

    #[test]
    fn messages_in_the_window_are_mapped_like_live_ones_oldest_first() {
        let photo = wa::Message {
            image_message: MessageField::some(wa::message::ImageMessage {
                mimetype: Some("image/jpeg".to_owned()),
                caption: Some("o boleto".to_owned()),
                media_key: Some(vec![0x42; 32]),
                file_sha256: Some(vec![0x21; 32]),
                file_enc_sha256: Some(vec![0x63; 32]),
                file_length: Some(154_873),
                direct_path: Some("/o1/v/t62.7118-24/f1/m232/up-oil-image-1234.enc".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let conversation = wa::Conversation {
            id: CONTACT.to_owned(),
            // Newest first, as the phone sends them.
            messages: vec![
                entry(CONTACT, "3EB0C3", true, None, DAY + 120, text("Recebido!")),
                entry(CONTACT, "3EB0B2", false, None, DAY + 60, photo),
                entry(CONTACT, "3EB0A1", false, None, DAY - 86_400, text("antigo")),
            ],
            ..Default::default()
        };
        let got = harvest(&sync(vec![conversation]), Some(&wa_jid(OWN)), DAY);
        let ids: Vec<&str> = got.messages.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(
            ids,
            ["3EB0B2", "3EB0C3"],
            "the one before the window is left"
        );
        let [photo, reply] = &got.messages[..] else {
            unreachable!()
        };
        assert_eq!(photo.chat.to_string(), CONTACT);
        assert_eq!(photo.sender.to_string(), CONTACT);
        assert!(!photo.from_me);
        assert_eq!(photo.push_name.as_deref(), Some("Maria Souza"));
        assert_eq!(photo.text.as_deref(), Some("o boleto"));
        assert_eq!(photo.timestamp, DAY + 60);
        assert!(photo.media.is_none(), "bytes are fetched by the import");
        let media = photo.media_ref.as_ref().expect("where the media lives");
        assert_eq!(media.kind, MediaKind::Image);
        assert_eq!(media.media_key, vec![0x42; 32]);
        assert!(reply.from_me);
        assert_eq!(reply.chat.to_string(), CONTACT);
        assert_eq!(reply.sender.to_string(), OWN);
        assert_eq!(reply.text.as_deref(), Some("Recebido!"));
        assert!(got.more.is_empty(), "a short page has no more");
    }

    #[test]
    fn a_chat_named_by_lid_is_reported_by_its_number() {
        let conversation = wa::Conversation {
            id: CONTACT_LID.to_owned(),
            messages: vec![entry(CONTACT_LID, "3EB0D4", false, None, DAY, text("oi"))],
            pn_jid: Some(CONTACT.to_owned()),
            ..Default::default()
        };
        let got = harvest(&sync(vec![conversation]), None, DAY);
        assert_eq!(got.messages.len(), 1);
        assert_eq!(got.messages[0].chat.to_string(), CONTACT);
        assert_eq!(got.messages[0].sender.to_string(), CONTACT);
        assert_eq!(
            got.messages[0].sender_lid.as_ref().map(ToString::to_string),
            Some(CONTACT_LID.to_owned())
        );
        assert!(got.chats.contains(CONTACT) && got.chats.contains(CONTACT_LID));

        // Or by the sync's own number-to-LID table.
        let mut by_table = sync(vec![wa::Conversation {
            id: CONTACT_LID.to_owned(),
            messages: vec![entry(CONTACT_LID, "3EB0D5", false, None, DAY, text("oi"))],
            ..Default::default()
        }]);
        by_table.phone_number_to_lid_mappings = vec![wa::PhoneNumberToLIDMapping {
            pn_jid: Some(CONTACT.to_owned()),
            lid_jid: Some(CONTACT_LID.to_owned()),
        }];
        let got = harvest(&by_table, None, DAY);
        assert_eq!(got.messages[0].chat.to_string(), CONTACT);
    }

    #[test]
    fn group_messages_keep_their_author_and_stubs_are_left_out() {
        let stub = wa::HistorySyncMsg {
            message: MessageField::some(wa::WebMessageInfo {
                key: MessageField::some(wa::MessageKey {
                    remote_jid: Some(GROUP.to_owned()),
                    from_me: Some(false),
                    id: Some("STUB1".to_owned()),
                    participant: Some(MEMBER.to_owned()),
                }),
                message_timestamp: Some(DAY as u64),
                message_stub_type: Some(wa::web_message_info::StubType::GROUP_CREATE),
                ..Default::default()
            }),
            msg_order_id: None,
        };
        let conversation = wa::Conversation {
            id: GROUP.to_owned(),
            messages: vec![
                entry(
                    GROUP,
                    "3EB0E5",
                    false,
                    Some(MEMBER),
                    DAY + 5,
                    text("bom dia"),
                ),
                entry(GROUP, "3EB0E6", false, None, DAY + 6, text("sem autor")),
                stub,
            ],
            ..Default::default()
        };
        let got = harvest(&sync(vec![conversation]), Some(&wa_jid(OWN)), DAY);
        assert_eq!(got.messages.len(), 1, "{:?}", got.messages);
        let message = &got.messages[0];
        assert_eq!(message.chat.to_string(), GROUP);
        assert_eq!(message.sender.to_string(), MEMBER);
        assert_eq!(message.text.as_deref(), Some("bom dia"));
    }

    #[test]
    fn a_full_page_still_in_the_window_asks_for_more_from_its_oldest() {
        let messages = (0..PER_REQUEST)
            .map(|i| {
                let at = DAY + 1000 - i64::from(i);
                entry(
                    CONTACT,
                    &format!("3EB1{i:04}"),
                    i % 2 == 0,
                    None,
                    at,
                    text("…"),
                )
            })
            .collect();
        let conversation = wa::Conversation {
            id: CONTACT.to_owned(),
            messages,
            ..Default::default()
        };
        let got = harvest(&sync(vec![conversation.clone()]), None, DAY);
        assert_eq!(got.messages.len(), PER_REQUEST as usize);
        let next = &got.more[CONTACT];
        assert_eq!(next.id, "3EB10049");
        assert_eq!(next.timestamp, DAY + 1000 - 49);
        assert!(!next.from_me);
        // A page that reached the window's start is the last.
        let got = harvest(&sync(vec![conversation]), None, DAY + 1000 - 49);
        assert!(got.more.is_empty());
    }

    #[test]
    fn an_answer_clears_its_request_by_id_or_by_chat() {
        struct Nowhere;
        #[async_trait::async_trait]
        impl HistorySink for Nowhere {
            async fn store_history(
                &self,
                _: &str,
                messages: &[InboundMessage],
            ) -> zapgate_core::Result<usize> {
                Ok(messages.len())
            }
        }
        let mut want = Want::new(DAY, Arc::new(Nowhere));
        want.asked("REQ1".into(), CONTACT.into());
        want.asked("REQ2".into(), GROUP.into());
        want.asked("REQ3".into(), MEMBER.into());
        want.answer(Some("REQ1"), &HashSet::new());
        want.answer(None, &HashSet::from([GROUP.to_owned()]));
        assert_eq!(want.answered, 2);
        assert_eq!(want.pending.keys().collect::<Vec<_>>(), ["REQ3"]);
        // An answer that overtook its request's id.
        want.answer(None, &HashSet::from([CONTACT_LID.to_owned()]));
        want.asked("REQ4".into(), CONTACT_LID.into());
        assert_eq!(want.answered, 3);
        assert_eq!(want.pending.len(), 1);
        assert!(want.next_round().is_empty());
        assert!(want.pending.is_empty() && want.answered_chats.is_empty());
    }
}
