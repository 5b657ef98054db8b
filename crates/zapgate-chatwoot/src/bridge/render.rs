//! Text as people read it on the other side: group senders named, kinds
//! Chatwoot cannot show rendered as readable placeholders (never dropped),
//! agent signatures.

use serde_json::Value;
use zapgate_core::{
    chatwoot::ChatwootOptions,
    groups::{GroupChange, GroupChangeKind, GroupMember},
    whatsapp::Extra,
};

use super::payload::InboundJob;

/// The Chatwoot content of a WhatsApp message.
pub fn inbound_content(message: &InboundJob) -> Option<String> {
    let body = match &message.extra {
        Some(extra) => Some(extra_text(extra, message.text.as_deref())),
        None => message.text.clone().filter(|t| !t.is_empty()),
    };
    let is_group = message.chat.ends_with("@g.us");
    if is_group && !message.from_me {
        let sender = sender_label(message);
        return Some(match body {
            Some(body) => format!("**{sender}:**\n{body}"),
            None => format!("**{sender}:**"),
        });
    }
    body
}

/// The content of a message whose media is no longer stored (it was
/// dropped when the job was parked as a dead letter, then replayed).
pub fn media_gone(content: Option<String>) -> String {
    const GONE: &str = "📎 The media of this message is no longer available";
    match content {
        Some(content) => format!("{content}\n\n{GONE}"),
        None => GONE.to_owned(),
    }
}

/// `Maria (+5511988887777)`, or the number alone.
fn sender_label(message: &InboundJob) -> String {
    let number = message
        .sender
        .split_once('@')
        .filter(|(_, server)| *server == "s.whatsapp.net")
        .map(|(user, _)| format!("+{user}"))
        .unwrap_or_else(|| message.sender.clone());
    match message
        .push_name
        .as_deref()
        .filter(|n| !n.trim().is_empty())
    {
        Some(name) => format!("{name} ({number})"),
        None => number,
    }
}

fn extra_text(extra: &Extra, caption: Option<&str>) -> String {
    match extra {
        Extra::Reaction { emoji, .. } if emoji.is_empty() => "Removed a reaction".to_owned(),
        Extra::Reaction { emoji, .. } => format!("Reacted {emoji}"),
        Extra::Edit { text, .. } => format!("✏️ Edited: {text}"),
        Extra::Revoke { .. } => "🚫 The sender deleted this message".to_owned(),
        Extra::Location {
            latitude,
            longitude,
            name,
        } => {
            let place = name.as_deref().map(|n| format!(" {n}")).unwrap_or_default();
            format!("📍 Location:{place}\nhttps://www.google.com/maps?q={latitude},{longitude}")
        }
        Extra::ContactCard { name, vcard } => {
            let numbers: Vec<&str> = vcard
                .as_deref()
                .unwrap_or("")
                .lines()
                .filter(|l| l.to_ascii_uppercase().starts_with("TEL"))
                .filter_map(|l| l.split_once(':').map(|(_, n)| n.trim()))
                .collect();
            if numbers.is_empty() {
                format!("👤 Contact card: {name}")
            } else {
                format!("👤 Contact card: {name} ({})", numbers.join(", "))
            }
        }
        Extra::Poll { question, options } => {
            let mut text = format!("📊 Poll: {question}");
            for option in options {
                text.push_str(&format!("\n- {option}"));
            }
            text
        }
        Extra::Call { video: true } => "📹 Missed video call".to_owned(),
        Extra::Call { video: false } => "📞 Missed voice call".to_owned(),
        Extra::Event { name, start } => {
            format!(
                "📅 Event: {name}\n{}",
                zapgate_core::time::rfc3339(start.saturating_mul(1000))
            )
        }
        Extra::Unsupported { kind } => {
            let note =
                format!("⚠️ A {kind} message that Chatwoot cannot show: open WhatsApp to see it");
            match caption {
                Some(c) if !c.is_empty() => format!("{note}\n{c}"),
                _ => note,
            }
        }
    }
}

/// The WhatsApp message an earlier one points at (reactions, edits and
/// revocations thread under it in Chatwoot).
pub fn extra_target(extra: &Extra) -> Option<&str> {
    match extra {
        Extra::Reaction { target_id, .. }
        | Extra::Edit { target_id, .. }
        | Extra::Revoke { target_id } => Some(target_id),
        _ => None,
    }
}

/// The agent's signature (`signFormat`, then `signDelimiter`) before the
/// text, when signing. The same in groups: the signature is part of the text.
pub fn signed(
    content: Option<&str>,
    agent: Option<&str>,
    sign: bool,
    options: &ChatwootOptions,
) -> Option<String> {
    let content = content.filter(|c| !c.is_empty());
    match (sign, agent.filter(|a| !a.trim().is_empty())) {
        (true, Some(agent)) => Some(options.sign(agent, content)),
        _ => content.map(str::to_owned),
    }
}

/// What a customer reads for a message Chatwoot shows as a widget
/// (`input_select`, `cards`, `form`, `article`): the text, then each item
/// on its own line with its link. CSAT (`input_csat`) needs nothing more:
/// Chatwoot's webhook already ends its content with the survey link.
pub fn interactive(
    content: Option<&str>,
    content_type: &str,
    attributes: &Value,
) -> Option<String> {
    let items = attributes
        .get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let field = |item: &Value, key: &str| {
        item.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let lines: Vec<String> = match content_type {
        "input_select" => items
            .iter()
            .filter_map(|item| field(item, "title"))
            .enumerate()
            .map(|(i, title)| format!("{}. {title}", i + 1))
            .collect(),
        "cards" => items
            .iter()
            .map(|card| {
                let mut parts: Vec<String> = Vec::new();
                parts.extend(field(card, "title").map(|t| format!("*{t}*")));
                parts.extend(field(card, "description"));
                for action in card
                    .get("actions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    match (field(action, "text"), field(action, "uri")) {
                        (Some(text), Some(uri)) => parts.push(format!("{text}: {uri}")),
                        (None, Some(uri)) => parts.push(uri),
                        (Some(text), None) => parts.push(text),
                        (None, None) => {}
                    }
                }
                parts.join("\n")
            })
            .filter(|card| !card.is_empty())
            .collect(),
        "form" => items
            .iter()
            .filter_map(|item| field(item, "label").or_else(|| field(item, "name")))
            .map(|label| format!("- {label}"))
            .collect(),
        "article" => items
            .iter()
            .filter_map(|item| {
                let title = field(item, "title");
                let link = field(item, "link");
                match (title, link) {
                    (Some(t), Some(l)) => Some(format!("{t}: {l}")),
                    (t, l) => t.or(l),
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    let content = content.map(str::trim).filter(|c| !c.is_empty());
    match (content, lines.is_empty()) {
        (content, true) => content.map(str::to_owned),
        (Some(content), false) => Some(format!("{content}\n\n{}", lines.join("\n"))),
        (None, false) => Some(lines.join("\n")),
    }
}

/// The activity line a group change shows in the group's conversation.
pub fn group_change(change: &GroupChange) -> String {
    let who = change
        .participants
        .iter()
        .map(member_label)
        .collect::<Vec<_>>()
        .join(", ");
    match change.kind {
        GroupChangeKind::Joined => format!("➕ {who} joined the group"),
        GroupChangeKind::Left => format!("➖ {who} left the group"),
        GroupChangeKind::Promoted => format!("⭐ {who} is now an admin"),
        GroupChangeKind::Demoted => format!("{who} is no longer an admin"),
        GroupChangeKind::Name => format!(
            "✏️ The group was renamed to {}",
            change.group_name.as_deref().unwrap_or("(no name)")
        ),
        GroupChangeKind::Delete => "🚫 The group was deleted".to_owned(),
    }
}

/// `Maria (+5511988887777)`, the number alone, or the hidden number.
fn member_label(member: &GroupMember) -> String {
    let number = if member.jid.is_lid() {
        member.jid.to_string()
    } else {
        format!("+{}", member.jid.user)
    };
    match member.name.as_deref().filter(|n| !n.trim().is_empty()) {
        Some(name) => format!("{name} ({number})"),
        None => number,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(chat: &str, text: &str) -> InboundJob {
        InboundJob {
            id: "A".into(),
            chat: chat.into(),
            sender: "5511988887777@s.whatsapp.net".into(),
            sender_lid: None,
            push_name: Some("Maria".into()),
            from_me: false,
            group_subject: None,
            text: Some(text.into()),
            media: None,
            quoted_id: None,
            extra: None,
            timestamp: 0,
        }
    }

    #[test]
    fn group_messages_name_their_sender() {
        let m = message("1203@g.us", "oi");
        assert_eq!(
            inbound_content(&m).unwrap(),
            "**Maria (+5511988887777):**\noi"
        );
        let direct = message("5511988887777@s.whatsapp.net", "oi");
        assert_eq!(inbound_content(&direct).unwrap(), "oi");
    }

    #[test]
    fn unrenderable_kinds_become_readable_text() {
        let mut m = message("5511988887777@s.whatsapp.net", "");
        m.extra = Some(Extra::Location {
            latitude: -23.5,
            longitude: -46.6,
            name: Some("Paulista".into()),
        });
        assert!(inbound_content(&m).unwrap().contains("maps?q=-23.5,-46.6"));
        m.extra = Some(Extra::Poll {
            question: "Pizza?".into(),
            options: vec!["Yes".into(), "No".into()],
        });
        assert_eq!(inbound_content(&m).unwrap(), "📊 Poll: Pizza?\n- Yes\n- No");
        m.extra = Some(Extra::ContactCard {
            name: "João".into(),
            vcard: Some("BEGIN:VCARD\nTEL;type=CELL:+55 11 91234-5678\nEND:VCARD".into()),
        });
        assert_eq!(
            inbound_content(&m).unwrap(),
            "👤 Contact card: João (+55 11 91234-5678)"
        );
        m.extra = Some(Extra::Call { video: false });
        assert_eq!(inbound_content(&m).unwrap(), "📞 Missed voice call");
    }

    #[test]
    fn signatures_prefix_the_agent_name() {
        let options = ChatwootOptions::default();
        assert_eq!(
            signed(Some("Olá"), Some("Ana"), true, &options).unwrap(),
            "*Ana*:\nOlá"
        );
        assert_eq!(
            signed(Some("Olá"), Some("Ana"), false, &options).unwrap(),
            "Olá"
        );
        assert_eq!(signed(None, Some("Ana"), false, &options), None);
    }

    #[test]
    fn widgets_become_text_with_their_options_and_links() {
        use serde_json::json;
        let select = json!({"items": [{"title": "Vendas", "value": "s"}, {"title": "Suporte", "value": "t"}]});
        assert_eq!(
            interactive(Some("Escolha:"), "input_select", &select).unwrap(),
            "Escolha:\n\n1. Vendas\n2. Suporte"
        );
        let cards = json!({"items": [{"title": "Plano", "description": "R$ 10", "actions": [{"type": "link", "text": "Ver", "uri": "https://x.test/p"}]}]});
        assert_eq!(
            interactive(None, "cards", &cards).unwrap(),
            "*Plano*\nR$ 10\nVer: https://x.test/p"
        );
        let article = json!({"items": [{"title": "FAQ", "link": "https://x.test/faq"}]});
        assert_eq!(
            interactive(Some("Veja"), "article", &article).unwrap(),
            "Veja\n\nFAQ: https://x.test/faq"
        );
        let csat = "Please rate this conversation, https://cw.test/survey/responses/u";
        assert_eq!(
            interactive(Some(csat), "input_csat", &json!({})).unwrap(),
            csat
        );
        assert_eq!(interactive(None, "text", &json!({})), None);
    }
}
