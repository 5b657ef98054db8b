//! Who a WhatsApp chat is in Chatwoot. One contact per person per account:
//! found by the WhatsApp JID (`identifier`) or the E.164 phone number, where
//! a person's hidden-number (LID) and phone-number JIDs, and Brazilian
//! numbers with and without the ninth digit, all name the same contact.

use zapgate_core::jid::{GROUP_SERVER, Jid, LID_SERVER, USER_SERVER};

/// The forms a phone number may take on WhatsApp and in Chatwoot. For a
/// Brazilian mobile number (`55` + area code + 8 or 9 digits) both the form
/// with the ninth digit and the one without it; otherwise the number itself.
pub fn phone_variants(digits: &str) -> Vec<String> {
    let mut variants = vec![digits.to_owned()];
    if let Some(local) = digits.strip_prefix("55") {
        let (area, subscriber) = local.split_at(local.len().min(2));
        let mobile_8 = subscriber.len() == 8 && subscriber.starts_with(['6', '7', '8', '9']);
        let mobile_9 = subscriber.len() == 9 && subscriber.starts_with('9');
        if area.len() == 2 && mobile_8 {
            variants.push(format!("55{area}9{subscriber}"));
        } else if area.len() == 2 && mobile_9 {
            variants.push(format!("55{area}{}", &subscriber[1..]));
        }
    }
    variants
}

/// The one key the bridge files a person's chat under: the Brazilian
/// ninth-digit form when there are two, the number itself otherwise.
pub fn canonical_phone(digits: &str) -> String {
    phone_variants(digits)
        .into_iter()
        .max_by_key(String::len)
        .unwrap_or_default()
}

/// How a chat is identified for lookups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatIdentity {
    /// The JID the chat link is filed under (canonical phone JID, the LID,
    /// or the group).
    pub chat_jid: String,
    /// Other JIDs of the same chat (the LID when the phone is known).
    pub aliases: Vec<String>,
    /// The JID to store as the contact's `identifier` when creating it.
    pub identifier: String,
    /// E.164 with `+`, for a person with a known number.
    pub phone: Option<String>,
    /// `identifier` values that mean this chat (every phone variant, the LID).
    pub identifier_variants: Vec<String>,
    /// `phone_number` values that mean this chat.
    pub phone_variants: Vec<String>,
    pub is_group: bool,
}

impl ChatIdentity {
    /// The identity of the chat `chat`, whose sender may also be known by
    /// `lid` (only meaningful for one-to-one chats).
    pub fn of(chat: &Jid, lid: Option<&Jid>) -> Self {
        // A group, or a person known only by a hidden number: the JID is all.
        if chat.server == GROUP_SERVER || chat.server == LID_SERVER {
            return Self {
                chat_jid: chat.to_string(),
                aliases: Vec::new(),
                identifier: chat.to_string(),
                phone: None,
                identifier_variants: vec![chat.to_string()],
                phone_variants: Vec::new(),
                is_group: chat.server == GROUP_SERVER,
            };
        }
        let variants = phone_variants(&chat.user);
        let mut identifier_variants: Vec<String> = variants
            .iter()
            .map(|v| format!("{v}@{USER_SERVER}"))
            .collect();
        let aliases: Vec<String> = lid.map(ToString::to_string).into_iter().collect();
        identifier_variants.extend(aliases.iter().cloned());
        Self {
            chat_jid: format!("{}@{USER_SERVER}", canonical_phone(&chat.user)),
            aliases,
            identifier: chat.to_string(),
            phone: Some(format!("+{}", chat.user)),
            identifier_variants,
            phone_variants: variants.iter().map(|v| format!("+{v}")).collect(),
            is_group: false,
        }
    }

    /// Every JID the chat may be filed under.
    pub fn all_jids(&self) -> Vec<String> {
        let mut jids = vec![self.chat_jid.clone()];
        jids.extend(self.aliases.iter().cloned());
        jids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brazilian_mobile_numbers_have_two_forms() {
        assert_eq!(
            phone_variants("5511988887777"),
            vec!["5511988887777", "551188887777"]
        );
        assert_eq!(
            phone_variants("551188887777"),
            vec!["551188887777", "5511988887777"]
        );
        assert_eq!(canonical_phone("551188887777"), "5511988887777");
        assert_eq!(canonical_phone("5511988887777"), "5511988887777");
    }

    #[test]
    fn landlines_and_other_countries_have_one_form() {
        assert_eq!(phone_variants("551133334444"), vec!["551133334444"]);
        assert_eq!(phone_variants("14155550100"), vec!["14155550100"]);
        assert_eq!(canonical_phone("14155550100"), "14155550100");
    }

    #[test]
    fn both_forms_and_the_lid_identify_one_person() {
        let chat = Jid::parse("551188887777@s.whatsapp.net").unwrap();
        let lid = Jid::parse("12345@lid").unwrap();
        let id = ChatIdentity::of(&chat, Some(&lid));
        assert_eq!(id.chat_jid, "5511988887777@s.whatsapp.net");
        assert_eq!(id.identifier, "551188887777@s.whatsapp.net");
        assert_eq!(id.phone.as_deref(), Some("+551188887777"));
        assert!(
            id.identifier_variants
                .contains(&"5511988887777@s.whatsapp.net".to_owned())
        );
        assert!(id.identifier_variants.contains(&"12345@lid".to_owned()));
        assert_eq!(id.phone_variants, vec!["+551188887777", "+5511988887777"]);
        assert_eq!(
            id.all_jids(),
            vec!["5511988887777@s.whatsapp.net", "12345@lid"]
        );
    }

    #[test]
    fn groups_are_their_own_contact() {
        let chat = Jid::parse("120363000000000001@g.us").unwrap();
        let id = ChatIdentity::of(&chat, None);
        assert!(id.is_group && id.phone.is_none());
        assert_eq!(id.identifier, "120363000000000001@g.us");
    }
}
