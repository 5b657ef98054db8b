//! The protos of the send module's structured kinds (location, contact
//! cards, polls, events), built as WhatsApp Web builds them. Pure, like
//! `outbound`: the provider sends what these return.

use whatsapp_rust::{Jid as WaJid, buffa::MessageField, waproto::whatsapp as wa};
use zapgate_core::{
    chat_state::Contact,
    whatsapp::{ContactCard, EventInvite, Location, StatusFont},
};

use super::outbound::{Quote, context, wa_jid};

/// A text status: an extended text with its background and font, as
/// WhatsApp Web posts one.
pub(crate) fn status_text(text: &str, background_argb: u32, font: StatusFont) -> wa::Message {
    wa::Message {
        extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
            text: Some(text.to_owned()),
            background_argb: Some(background_argb),
            font: Some(status_font(font)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn status_font(font: StatusFont) -> wa::message::extended_text_message::FontType {
    use wa::message::extended_text_message::FontType;
    match font {
        StatusFont::System => FontType::SYSTEM,
        StatusFont::SystemText => FontType::SYSTEM_TEXT,
        StatusFont::FbScript => FontType::FB_SCRIPT,
        StatusFont::SystemBold => FontType::SYSTEM_BOLD,
        StatusFont::MorningbreezeRegular => FontType::MORNINGBREEZE_REGULAR,
        StatusFont::CalistogaRegular => FontType::CALISTOGA_REGULAR,
        StatusFont::Exo2Extrabold => FontType::EXO2_EXTRABOLD,
        StatusFont::CourierprimeBold => FontType::COURIERPRIME_BOLD,
    }
}

/// Who sees a status: the address book's contacts (phone jids), as the
/// phone's default "My contacts" privacy. The crate encrypts the post to
/// their devices with a `status@broadcast` sender key.
pub(crate) fn status_audience<'a>(contacts: impl IntoIterator<Item = &'a Contact>) -> Vec<WaJid> {
    let mut audience: Vec<WaJid> = contacts
        .into_iter()
        .filter_map(|c| wa_jid(&c.jid).ok())
        .filter(|j| j.is_pn() || j.is_lid())
        .collect();
    audience.sort_by_key(|j| j.to_string());
    audience.dedup();
    audience
}

/// A pin on the map.
pub(crate) fn location(location: &Location, quote: Option<&Quote>) -> wa::Message {
    wa::Message {
        location_message: MessageField::some(location_proto(location, quote)),
        ..Default::default()
    }
}

fn location_proto(location: &Location, quote: Option<&Quote>) -> wa::message::LocationMessage {
    wa::message::LocationMessage {
        degrees_latitude: Some(location.latitude),
        degrees_longitude: Some(location.longitude),
        name: location.name.clone(),
        address: location.address.clone(),
        context_info: MessageField::from(quote.map(context)),
        ..Default::default()
    }
}

/// One card goes as a contact message, several as a contacts array, as a
/// phone shares them.
pub(crate) fn contacts(cards: &[ContactCard], quote: Option<&Quote>) -> wa::Message {
    let context_info = MessageField::from(quote.map(context));
    let card = |c: &ContactCard| wa::message::ContactMessage {
        display_name: Some(c.full_name.clone()),
        vcard: Some(c.vcard()),
        ..Default::default()
    };
    match cards {
        [one] => wa::Message {
            contact_message: MessageField::some(wa::message::ContactMessage {
                context_info,
                ..card(one)
            }),
            ..Default::default()
        },
        many => wa::Message {
            contacts_array_message: MessageField::some(wa::message::ContactsArrayMessage {
                display_name: Some(format!("{} contacts", many.len())),
                contacts: many.iter().map(card).collect(),
                context_info,
            }),
            ..Default::default()
        },
    }
}

/// A poll. WhatsApp Web sends single-choice polls as v3 and multi-choice
/// ones as v1, and gives each a 32-byte secret voters derive their vote
/// keys from (`secret`).
pub(crate) fn poll(
    question: &str,
    options: &[String],
    selectable: u32,
    secret: [u8; 32],
    quote: Option<&Quote>,
) -> wa::Message {
    let poll = wa::message::PollCreationMessage {
        name: Some(question.to_owned()),
        options: options
            .iter()
            .map(|name| wa::message::poll_creation_message::Option {
                option_name: Some(name.clone()),
                option_hash: None,
            })
            .collect(),
        selectable_options_count: Some(selectable),
        context_info: MessageField::from(quote.map(context)),
        poll_content_type: Some(wa::message::PollContentType::TEXT),
        ..Default::default()
    };
    let mut message = if selectable == 1 {
        wa::Message {
            poll_creation_message_v3: MessageField::some(poll),
            ..Default::default()
        }
    } else {
        wa::Message {
            poll_creation_message: MessageField::some(poll),
            ..Default::default()
        }
    };
    message.message_context_info = with_secret(secret);
    message
}

/// An event invitation; like a poll it carries a secret, which RSVPs are
/// encrypted with (WhatsApp Web rejects an event without one).
pub(crate) fn event(invite: &EventInvite, secret: [u8; 32], quote: Option<&Quote>) -> wa::Message {
    wa::Message {
        event_message: MessageField::some(wa::message::EventMessage {
            context_info: MessageField::from(quote.map(context)),
            is_canceled: invite.canceled.then_some(true),
            name: Some(invite.name.clone()),
            description: invite.description.clone(),
            location: MessageField::from(invite.location.as_ref().map(|l| location_proto(l, None))),
            join_link: invite.join_link.clone(),
            start_time: Some(invite.start),
            end_time: invite.end,
            extra_guests_allowed: Some(invite.extra_guests_allowed),
            is_schedule_call: Some(invite.schedule_call),
            has_reminder: invite.has_reminder.then_some(true),
            reminder_offset_sec: invite.reminder_offset_secs,
        }),
        message_context_info: with_secret(secret),
        ..Default::default()
    }
}

fn with_secret(secret: [u8; 32]) -> MessageField<wa::MessageContextInfo> {
    MessageField::some(wa::MessageContextInfo {
        message_secret: Some(secret.to_vec()),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use whatsapp_rust::Jid as WaJid;

    use super::*;

    #[test]
    fn a_text_status_carries_its_background_and_font_through_the_wire() {
        use wa::message::extended_text_message::FontType;
        use whatsapp_rust::buffa::Message as _;

        let message = status_text("Promoção só hoje!", 0xFF1E_6E4F, StatusFont::FbScript);
        let message = wa::Message::decode_from_slice(&message.encode_to_vec()).unwrap();
        let ext = message.extended_text_message.as_option().unwrap();
        assert_eq!(ext.text.as_deref(), Some("Promoção só hoje!"));
        assert_eq!(ext.background_argb, Some(0xFF1E_6E4F));
        assert_eq!(ext.font, Some(FontType::FB_SCRIPT));
        assert!(ext.context_info.is_unset());
        assert_eq!(message.conversation, None);
        for font in StatusFont::ALL {
            // Every font has its protocol value, by the same name.
            assert_eq!(format!("{:?}", status_font(font)), font.as_str());
        }
    }

    #[test]
    fn a_status_goes_to_the_address_books_people_once_each() {
        use zapgate_core::jid::Jid;
        let contact = |jid: &str| Contact {
            jid: Jid::parse(jid).unwrap(),
            lid: None,
            name: None,
            push_name: None,
        };
        let book = [
            contact("5521998765432@s.whatsapp.net"),
            contact(CONTACT),
            contact("5511988887777:3@s.whatsapp.net"),
            contact("120363041234567890@g.us"),
        ];
        let audience: Vec<String> = status_audience(&book)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(audience, [CONTACT, "5521998765432@s.whatsapp.net"]);
    }

    const CONTACT: &str = "5511988887777@s.whatsapp.net";

    fn quote() -> Quote {
        Quote {
            id: "3A5B9C2D1E0F4A6B8C7D".to_owned(),
            chat: CONTACT.parse::<WaJid>().unwrap(),
            participant: None,
            message: None,
        }
    }

    fn paulista() -> Location {
        Location {
            latitude: -23.561_414,
            longitude: -46.655_881,
            name: Some("MASP".to_owned()),
            address: Some("Av. Paulista, 1578 - Bela Vista, São Paulo".to_owned()),
        }
    }

    fn card(name: &str, phone: &str) -> ContactCard {
        ContactCard {
            full_name: name.to_owned(),
            phone: phone.to_owned(),
            organization: None,
            email: None,
            url: None,
        }
    }

    #[test]
    fn a_location_carries_its_coordinates_name_address_and_quote() {
        let message = location(&paulista(), Some(&quote()));
        let pin = message.location_message.as_option().unwrap();
        assert_eq!(pin.degrees_latitude, Some(-23.561_414));
        assert_eq!(pin.degrees_longitude, Some(-46.655_881));
        assert_eq!(pin.name.as_deref(), Some("MASP"));
        assert_eq!(
            pin.address.as_deref(),
            Some("Av. Paulista, 1578 - Bela Vista, São Paulo")
        );
        assert_eq!(pin.is_live, None);
        let context = pin.context_info.as_option().unwrap();
        assert_eq!(context.stanza_id.as_deref(), Some("3A5B9C2D1E0F4A6B8C7D"));
        assert!(message.live_location_message.is_unset());
    }

    #[test]
    fn one_card_is_a_contact_message_with_a_tappable_vcard() {
        let mut ana = card("Ana Souza", "+55 11 98888-7777");
        ana.organization = Some("Padaria; Central".to_owned());
        let message = contacts(&[ana], None);
        assert!(message.contacts_array_message.is_unset());
        let contact = message.contact_message.as_option().unwrap();
        assert_eq!(contact.display_name.as_deref(), Some("Ana Souza"));
        let vcard = contact.vcard.as_deref().unwrap();
        assert!(vcard.starts_with("BEGIN:VCARD\nVERSION:3.0\nFN:Ana Souza\n"));
        assert!(vcard.contains("ORG:Padaria\\; Central\n"));
        assert!(vcard.contains("TEL;type=CELL;type=VOICE;waid=5511988887777:+55 11 98888-7777\n"));
        assert!(vcard.ends_with("END:VCARD"));
        assert!(contact.context_info.is_unset());
    }

    #[test]
    fn several_cards_are_a_contacts_array() {
        let cards = [card("Ana", "5511988887777"), card("Bruno", "5521998765432")];
        let message = contacts(&cards, Some(&quote()));
        assert!(message.contact_message.is_unset());
        let array = message.contacts_array_message.as_option().unwrap();
        assert_eq!(array.display_name.as_deref(), Some("2 contacts"));
        let names: Vec<_> = array
            .contacts
            .iter()
            .map(|c| c.display_name.as_deref().unwrap())
            .collect();
        assert_eq!(names, ["Ana", "Bruno"]);
        assert!(
            array.contacts[1]
                .vcard
                .as_deref()
                .unwrap()
                .contains("waid=5521998765432:")
        );
        assert!(array.context_info.is_set());
    }

    #[test]
    fn a_single_choice_poll_is_v3_and_carries_its_secret() {
        let options = vec!["Sim".to_owned(), "Não".to_owned()];
        let message = poll("Confirma o pedido?", &options, 1, [7; 32], None);
        assert!(message.poll_creation_message.is_unset());
        let poll = message.poll_creation_message_v3.as_option().unwrap();
        assert_eq!(poll.name.as_deref(), Some("Confirma o pedido?"));
        let names: Vec<_> = poll
            .options
            .iter()
            .map(|o| o.option_name.as_deref().unwrap())
            .collect();
        assert_eq!(names, ["Sim", "Não"]);
        assert_eq!(poll.selectable_options_count, Some(1));
        assert_eq!(
            poll.poll_content_type,
            Some(wa::message::PollContentType::TEXT)
        );
        let info = message.message_context_info.as_option().unwrap();
        assert_eq!(info.message_secret.as_deref(), Some(&[7; 32][..]));
    }

    #[test]
    fn a_multiple_choice_poll_is_v1() {
        let options = vec!["A".to_owned(), "B".to_owned(), "C".to_owned()];
        let message = poll("Quais?", &options, 3, [1; 32], Some(&quote()));
        assert!(message.poll_creation_message_v3.is_unset());
        let poll = message.poll_creation_message.as_option().unwrap();
        assert_eq!(poll.selectable_options_count, Some(3));
        assert!(poll.context_info.is_set());
    }

    #[test]
    fn an_event_carries_its_times_place_link_and_secret() {
        let invite = EventInvite {
            name: "Inauguração".to_owned(),
            description: Some("Venha!".to_owned()),
            start: 1_767_261_600,
            end: Some(1_767_268_800),
            location: Some(paulista()),
            join_link: Some("https://call.whatsapp.com/video/abc".to_owned()),
            schedule_call: false,
            has_reminder: true,
            reminder_offset_secs: Some(3600),
            extra_guests_allowed: true,
            canceled: false,
        };
        let message = event(&invite, [9; 32], None);
        let event = message.event_message.as_option().unwrap();
        assert_eq!(event.name.as_deref(), Some("Inauguração"));
        assert_eq!(event.description.as_deref(), Some("Venha!"));
        assert_eq!(event.start_time, Some(1_767_261_600));
        assert_eq!(event.end_time, Some(1_767_268_800));
        assert_eq!(
            event.location.as_option().unwrap().name.as_deref(),
            Some("MASP")
        );
        assert_eq!(
            event.join_link.as_deref(),
            Some("https://call.whatsapp.com/video/abc")
        );
        assert_eq!(event.has_reminder, Some(true));
        assert_eq!(event.reminder_offset_sec, Some(3600));
        assert_eq!(event.extra_guests_allowed, Some(true));
        assert_eq!(event.is_canceled, None);
        let info = message.message_context_info.as_option().unwrap();
        assert_eq!(info.message_secret.as_deref(), Some(&[9; 32][..]));
    }

    #[test]
    fn every_kind_carries_mentions_in_its_own_context() {
        use zapgate_core::{jid::Jid, whatsapp::SendContext};

        use super::super::outbound::with_context;
        let member = "5521998765432@s.whatsapp.net";
        let context = SendContext {
            mentions: vec![Jid::parse(member).unwrap()],
            quoted_chat: None,
        };
        let options = vec!["A".to_owned(), "B".to_owned()];
        let invite = EventInvite {
            name: "Reunião".to_owned(),
            description: None,
            start: 1_767_261_600,
            end: None,
            location: None,
            join_link: None,
            schedule_call: false,
            has_reminder: false,
            reminder_offset_secs: None,
            extra_guests_allowed: false,
            canceled: false,
        };
        let built = [
            location(&paulista(), None),
            contacts(&[card("Ana", "+55 11 98888-7777")], None),
            contacts(
                &[card("Ana", "+5511988887777"), card("Bia", "+5521977776666")],
                None,
            ),
            poll("Qual?", &options, 1, [1; 32], None),
            poll("Quais?", &options, 2, [1; 32], Some(&quote())),
            event(&invite, [2; 32], None),
        ];
        for message in built {
            let mut message = with_context(message, &context).unwrap();
            let info = super::super::outbound::context_slot(&mut message)
                .and_then(|slot| slot.as_option().cloned())
                .unwrap();
            assert_eq!(info.mentioned_jid, [member], "{message:?}");
        }
    }
}
