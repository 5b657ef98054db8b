//! Text as people read it on the other side: group senders named, kinds
//! Chatwoot cannot show rendered as readable placeholders (never dropped),
//! agent signatures.

use zapgate_core::whatsapp::Extra;

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

/// `*Ana*:` and a newline before the agent's text, when signing.
pub fn signed(content: Option<&str>, agent: Option<&str>, sign: bool) -> Option<String> {
    let content = content.filter(|c| !c.is_empty());
    match (sign, agent.filter(|a| !a.trim().is_empty())) {
        (true, Some(agent)) => Some(match content {
            Some(text) => format!("*{agent}*:\n{text}"),
            None => format!("*{agent}*:"),
        }),
        _ => content.map(str::to_owned),
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
        assert_eq!(
            signed(Some("Olá"), Some("Ana"), true).unwrap(),
            "*Ana*:\nOlá"
        );
        assert_eq!(signed(Some("Olá"), Some("Ana"), false).unwrap(), "Olá");
        assert_eq!(signed(None, Some("Ana"), false), None);
    }
}
