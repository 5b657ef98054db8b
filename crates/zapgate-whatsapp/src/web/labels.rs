//! Chat labels (WhatsApp Business) as zapgate reports them. WhatsApp syncs
//! label edits and a label put on or taken off a chat to every linked
//! device through app-state mutations (`label_edit`, `label_jid`); the crate
//! hands each one over as an event. Pure mapping.

use whatsapp_rust::types::events::{LabelAssociationUpdate, LabelEditUpdate};
use zapgate_core::whatsapp::{LabelChange, LabelChangeKind};

use super::inbound::jid_of;

/// A label created, edited or deleted. `None` for the snapshot a full sync
/// replays (the state at link time, not a change: it would report every
/// label again on each new link).
pub(crate) fn label_edit(update: &LabelEditUpdate) -> Option<LabelChange> {
    if update.from_full_sync {
        return None;
    }
    let action = &update.action;
    Some(LabelChange {
        label_id: update.label_id.clone(),
        kind: LabelChangeKind::Edit {
            name: action.name.clone(),
            color: action.color,
            deleted: action.deleted.unwrap_or(false),
        },
        timestamp_ms: update.timestamp.timestamp_millis(),
    })
}

/// A label put on or taken off a chat; `None` for a full sync's snapshot
/// and a chat id zapgate cannot name.
pub(crate) fn label_association(update: &LabelAssociationUpdate) -> Option<LabelChange> {
    if update.from_full_sync {
        return None;
    }
    Some(LabelChange {
        label_id: update.label_id.clone(),
        kind: LabelChangeKind::Chat {
            chat: jid_of(&update.chat_jid)?,
            labeled: update.action.labeled.unwrap_or(false),
        },
        timestamp_ms: update.timestamp.timestamp_millis(),
    })
}

#[cfg(test)]
mod tests {
    use whatsapp_rust::{
        buffa::{Message, MessageField},
        wacore::chrono::DateTime,
        waproto::whatsapp::{self as wa, sync_action_value::LabelEditAction},
    };
    use zapgate_core::jid::Jid;

    use super::*;

    /// A mutation's value as WhatsApp sends it: encoded, then decoded the
    /// way the crate's app-state sync reads it.
    fn synced(value: wa::SyncActionValue) -> wa::SyncActionValue {
        wa::SyncActionValue::decode_from_slice(&value.encode_to_vec()).unwrap()
    }

    /// Built the way the crate dispatches a `["label_edit", "<id>"]` mutation.
    fn edit(label_id: &str, action: LabelEditAction, full_sync: bool) -> LabelEditUpdate {
        let value = synced(wa::SyncActionValue {
            label_edit_action: MessageField::some(action),
            timestamp: Some(1_732_260_000_123),
            ..Default::default()
        });
        LabelEditUpdate::builder()
            .label_id(label_id.to_owned())
            .timestamp(DateTime::from_timestamp_millis(value.timestamp.unwrap()).unwrap())
            .action(Box::new(
                value.label_edit_action.as_option().unwrap().clone(),
            ))
            .from_full_sync(full_sync)
            .build()
    }

    /// Built the way the crate dispatches `["label_jid", "<id>", "<chat>"]`.
    fn chat_label(label_id: &str, chat: &str, labeled: bool) -> LabelAssociationUpdate {
        let value = synced(wa::SyncActionValue {
            label_association_action: MessageField::some(
                wa::sync_action_value::LabelAssociationAction {
                    labeled: Some(labeled),
                    ..Default::default()
                },
            ),
            timestamp: Some(1_732_260_000_123),
            ..Default::default()
        });
        LabelAssociationUpdate::builder()
            .label_id(label_id.to_owned())
            .chat_jid(chat.parse().unwrap())
            .timestamp(DateTime::from_timestamp_millis(value.timestamp.unwrap()).unwrap())
            .action(Box::new(
                value.label_association_action.as_option().unwrap().clone(),
            ))
            .from_full_sync(false)
            .build()
    }

    #[test]
    fn an_edit_carries_the_name_and_colour_and_a_deletion_says_so() {
        let action = LabelEditAction {
            name: Some("Pago".into()),
            color: Some(3),
            predefined_id: Some(2),
            deleted: Some(false),
            ..Default::default()
        };
        assert_eq!(
            label_edit(&edit("5", action.clone(), false)),
            Some(LabelChange {
                label_id: "5".into(),
                kind: LabelChangeKind::Edit {
                    name: Some("Pago".into()),
                    color: Some(3),
                    deleted: false,
                },
                timestamp_ms: 1_732_260_000_123,
            })
        );
        let deleted = LabelEditAction {
            deleted: Some(true),
            ..action
        };
        let change = label_edit(&edit("5", deleted, false)).unwrap();
        assert_eq!(change.kind.as_str(), "delete");
    }

    #[test]
    fn labels_put_on_and_taken_off_chats_name_the_chat() {
        let added = chat_label("5", "5511988887777@s.whatsapp.net", true);
        assert_eq!(
            label_association(&added),
            Some(LabelChange {
                label_id: "5".into(),
                kind: LabelChangeKind::Chat {
                    chat: Jid::user("5511988887777"),
                    labeled: true,
                },
                timestamp_ms: 1_732_260_000_123,
            })
        );
        let removed = chat_label("7", "120363024567890123@g.us", false);
        let change = label_association(&removed).unwrap();
        assert_eq!(change.kind.as_str(), "remove");
        assert!(matches!(change.kind, LabelChangeKind::Chat { chat, .. } if chat.is_group()));
    }

    #[test]
    fn a_full_sync_snapshot_is_not_a_change() {
        let action = LabelEditAction {
            name: Some("Novo cliente".into()),
            ..Default::default()
        };
        assert_eq!(label_edit(&edit("1", action, true)), None);
    }
}
