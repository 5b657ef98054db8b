//! Chat state on a live session: read receipts, presence, the app-state
//! (syncd) chat actions (archive, pin, mute, mark read, delete), the block
//! list, usync's "is on WhatsApp", and the address book the phone syncs as
//! app-state `contact` mutations.

use std::collections::HashMap;

use async_trait::async_trait;
use whatsapp_rust::{
    Jid as WaJid,
    features::{AppStateError, IsOnWhatsAppResult},
    wacore::types::events::ContactUpdate,
};
use zapgate_core::{
    Error, Result,
    chat_state::{ChatChange, ChatState, Contact, Mute, NumberCheck},
    jid::Jid,
};

use super::{WebProvider, groups::iq_failed, inbound::jid_of, outbound::wa_jid};

/// Address-book entries a session keeps; the phone syncs a few thousand.
pub(super) const ADDRESS_BOOK_LIMIT: usize = 100_000;

/// A synced address-book entry, keyed by phone digits; `None` when the
/// entry names no phone (a LID-only contact the API could not answer for).
pub(super) fn contact_of(update: &ContactUpdate) -> Option<Contact> {
    let named = |raw: &Option<String>| raw.as_deref().and_then(|j| j.parse::<WaJid>().ok());
    let own = jid_of(&update.jid)?;
    let (phone, lid) = if own.is_lid() {
        (
            named(&update.action.pn_jid).as_ref().and_then(jid_of)?,
            Some(own),
        )
    } else {
        (own, named(&update.action.lid_jid).as_ref().and_then(jid_of))
    };
    let name = update
        .action
        .full_name
        .clone()
        .or_else(|| update.action.first_name.clone())
        .filter(|n| !n.is_empty());
    Some(Contact {
        jid: phone,
        lid,
        name,
        push_name: None,
    })
}

/// usync's answers in the order asked; a number WhatsApp did not answer for
/// is not on WhatsApp.
fn number_checks(asked: &[Jid], results: &[IsOnWhatsAppResult]) -> Vec<NumberCheck> {
    asked
        .iter()
        .map(|number| {
            let found = results.iter().find(|r| {
                jid_of(&r.jid).as_ref() == Some(number)
                    || r.pn_jid.as_ref().and_then(jid_of).as_ref() == Some(number)
            });
            let registered = found.filter(|r| r.is_registered);
            NumberCheck {
                number: number.clone(),
                exists: registered.is_some(),
                jid: registered.and_then(|r| {
                    if r.jid.is_lid() {
                        r.pn_jid.as_ref().and_then(jid_of)
                    } else {
                        jid_of(&r.jid)
                    }
                }),
                lid: registered.and_then(|r| {
                    if r.jid.is_lid() {
                        jid_of(&r.jid)
                    } else {
                        r.lid.as_ref().and_then(jid_of)
                    }
                }),
                is_business: registered.is_some_and(|r| r.is_business),
            }
        })
        .collect()
}

/// A chat action WhatsApp refused as such is the caller's; the rest is
/// WhatsApp (or the keys) failing.
fn action_failed(err: AppStateError) -> Error {
    match err {
        AppStateError::InvalidRequest(reason) => {
            Error::bad_request(format!("WhatsApp refused the request: {reason}"))
        }
        other => Error::Unavailable(format!("WhatsApp chat action failed: {other}")),
    }
}

/// WhatsApp's mute end: Unix milliseconds.
fn mute_end_ms(until_secs: i64) -> i64 {
    until_secs.saturating_mul(1000)
}

impl WebProvider {
    fn book(&self, instance_id: &str) -> Result<HashMap<String, Contact>> {
        self.inner
            .session(instance_id)
            .filter(|s| s.is_connected())
            .map(|s| s.address_book())
            .ok_or(Error::NotConnected)
    }
}

#[async_trait]
impl ChatState for WebProvider {
    async fn contacts(&self, instance_id: &str) -> Result<Vec<Contact>> {
        let mut contacts: Vec<Contact> = self.book(instance_id)?.into_values().collect();
        contacts.sort_by(|a, b| a.jid.cmp(&b.jid));
        Ok(contacts)
    }

    async fn contact(&self, instance_id: &str, who: &Jid) -> Result<Option<Contact>> {
        let client = self.client(instance_id)?;
        let book = self.book(instance_id)?;
        let target = wa_jid(who)?;
        let (own_pn, own_lid) = (client.pn(), client.lid());
        let is_own = [&own_pn, &own_lid]
            .into_iter()
            .flatten()
            .any(|own| own.user == target.user);
        if is_own {
            let Some(jid) = own_pn.as_ref().and_then(jid_of) else {
                return Ok(None);
            };
            return Ok(Some(Contact {
                jid,
                lid: own_lid.as_ref().and_then(jid_of),
                name: None,
                push_name: Some(client.push_name()).filter(|n| !n.is_empty()),
            }));
        }
        // The phone<->LID mapping the session learned: local, no query.
        let mapping = client.get_lid_pn_entry(&target).await.ok().flatten();
        let phone = if who.is_lid() {
            mapping.as_ref().map(|e| Jid::user(&e.phone_number))
        } else {
            Some(who.clone())
        };
        let Some(phone) = phone else {
            return Ok(None);
        };
        let lid = mapping.map(|e| Jid {
            user: e.lid.to_string(),
            server: zapgate_core::jid::LID_SERVER.to_owned(),
        });
        Ok(match (book.get(&phone.user), lid) {
            (Some(entry), lid) => Some(Contact {
                lid: entry.lid.clone().or(lid),
                ..entry.clone()
            }),
            (None, Some(lid)) => Some(Contact {
                jid: phone,
                lid: Some(lid),
                name: None,
                push_name: None,
            }),
            (None, None) => None,
        })
    }

    async fn check_numbers(&self, instance_id: &str, numbers: &[Jid]) -> Result<Vec<NumberCheck>> {
        let client = self.client(instance_id)?;
        let jids = numbers.iter().map(wa_jid).collect::<Result<Vec<_>>>()?;
        let results = client
            .contacts()
            .is_on_whatsapp(&jids)
            .await
            .map_err(iq_failed)?;
        Ok(number_checks(numbers, &results))
    }

    async fn mark_read(
        &self,
        instance_id: &str,
        chat: &Jid,
        sender: Option<&Jid>,
        ids: &[String],
    ) -> Result<()> {
        let client = self.client(instance_id)?;
        let chat = wa_jid(chat)?;
        let sender = sender.map(wa_jid).transpose()?;
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        client
            .mark_as_read(&chat, sender.as_ref(), &ids)
            .await
            .map_err(|err| Error::Unavailable(format!("WhatsApp read receipt failed: {err}")))
    }

    async fn set_presence(&self, instance_id: &str, available: bool) -> Result<()> {
        let client = self.client(instance_id)?;
        let presence = client.presence();
        let sent = if available {
            presence.set_available().await
        } else {
            presence.set_unavailable().await
        };
        sent.map_err(|err| Error::Unavailable(format!("WhatsApp presence failed: {err}")))
    }

    async fn update_chat(&self, instance_id: &str, chat: &Jid, change: ChatChange) -> Result<()> {
        let client = self.client(instance_id)?;
        let chat = wa_jid(chat)?;
        let actions = client.chat_actions();
        let done = match change {
            ChatChange::Archive(true) => actions.archive_chat(&chat, None).await,
            ChatChange::Archive(false) => actions.unarchive_chat(&chat, None).await,
            ChatChange::Pin(true) => actions.pin_chat(&chat).await,
            ChatChange::Pin(false) => actions.unpin_chat(&chat).await,
            ChatChange::Mute(Mute::Forever) => actions.mute_chat(&chat).await,
            ChatChange::Mute(Mute::Until(at)) => {
                actions.mute_chat_until(&chat, mute_end_ms(at)).await
            }
            ChatChange::Mute(Mute::Off) => actions.unmute_chat(&chat).await,
            ChatChange::MarkRead(read) => actions.mark_chat_as_read(&chat, read, None).await,
            ChatChange::Delete => actions.delete_chat(&chat, true, None).await,
        };
        done.map_err(action_failed)
    }

    async fn block(&self, instance_id: &str, who: &Jid, blocked: bool) -> Result<()> {
        let client = self.client(instance_id)?;
        let who = wa_jid(who)?;
        let blocking = client.blocking();
        let done = if blocked {
            blocking.block(&who).await
        } else {
            blocking.unblock(&who).await
        };
        done.map_err(|err| match err {
            whatsapp_rust::features::BlockingError::InvalidJid(reason) => {
                Error::bad_request(format!("invalid body: number cannot be blocked ({reason})"))
            }
            other => iq_failed(other),
        })
    }
}

#[cfg(test)]
mod tests {
    use whatsapp_rust::{
        NodeBuilder,
        wacore::{
            chrono::DateTime,
            iq::{
                spec::IqSpec,
                usync::{IsOnWhatsAppQueryType, IsOnWhatsAppSpec, IsOnWhatsAppUser},
            },
        },
        waproto::whatsapp as wa,
    };

    use super::*;

    fn update(jid: &str, action: wa::sync_action_value::ContactAction) -> ContactUpdate {
        ContactUpdate::builder()
            .jid(jid.parse().unwrap())
            .timestamp(DateTime::from_timestamp(1_704_067_200, 0).unwrap())
            .action(Box::new(action))
            .from_full_sync(true)
            .build()
    }

    #[test]
    fn a_synced_contact_keeps_its_phone_lid_and_name() {
        let contact = contact_of(&update(
            "5511999999999@s.whatsapp.net",
            wa::sync_action_value::ContactAction {
                full_name: Some("Maria Souza".into()),
                first_name: Some("Maria".into()),
                lid_jid: Some("271060335329480@lid".into()),
                ..Default::default()
            },
        ))
        .unwrap();
        assert_eq!(contact.jid.to_string(), "5511999999999@s.whatsapp.net");
        assert_eq!(contact.lid.unwrap().to_string(), "271060335329480@lid");
        assert_eq!(contact.name.as_deref(), Some("Maria Souza"));
    }

    #[test]
    fn a_lid_keyed_contact_is_filed_under_its_phone_or_skipped() {
        let contact = contact_of(&update(
            "271060335329480@lid",
            wa::sync_action_value::ContactAction {
                first_name: Some("Jo".into()),
                pn_jid: Some("5511888888888@s.whatsapp.net".into()),
                ..Default::default()
            },
        ))
        .unwrap();
        assert_eq!(contact.jid.to_string(), "5511888888888@s.whatsapp.net");
        assert_eq!(contact.lid.unwrap().to_string(), "271060335329480@lid");
        assert_eq!(contact.name.as_deref(), Some("Jo"));
        assert!(contact_of(&update("271060335329480@lid", Default::default())).is_none());
    }

    fn usync(users: Vec<whatsapp_rust::wacore_binary::Node>) -> Vec<IsOnWhatsAppResult> {
        let spec = IsOnWhatsAppSpec::new(
            vec![IsOnWhatsAppUser {
                jid: "5511999999999@s.whatsapp.net".parse().unwrap(),
                known_lid: None,
            }],
            "sid",
            IsOnWhatsAppQueryType::Pn,
        );
        let response = NodeBuilder::new("iq")
            .attr("type", "result")
            .children([NodeBuilder::new("usync")
                .children([NodeBuilder::new("list").children(users).build()])
                .build()])
            .build();
        spec.parse_response(&response.as_node_ref()).unwrap()
    }

    #[test]
    fn usync_answers_become_number_checks_in_the_order_asked() {
        let results = usync(vec![
            NodeBuilder::new("user")
                .attr("jid", "5511888888888@s.whatsapp.net")
                .children([NodeBuilder::new("contact").attr("type", "out").build()])
                .build(),
            NodeBuilder::new("user")
                .attr("jid", "5511999999999@s.whatsapp.net")
                .children([
                    NodeBuilder::new("contact").attr("type", "in").build(),
                    NodeBuilder::new("lid")
                        .attr("val", "271060335329480@lid")
                        .build(),
                    NodeBuilder::new("business").build(),
                ])
                .build(),
        ]);
        let asked = [
            Jid::user("5511999999999"),
            Jid::user("5511888888888"),
            Jid::user("5511777777777"),
        ];
        let checks = number_checks(&asked, &results);
        assert_eq!(checks.len(), 3);
        assert!(checks[0].exists && checks[0].is_business);
        assert_eq!(checks[0].jid.as_ref(), Some(&asked[0]));
        assert_eq!(
            checks[0].lid.as_ref().map(Jid::to_string).as_deref(),
            Some("271060335329480@lid")
        );
        // "out": WhatsApp knows no account for it.
        assert!(!checks[1].exists && checks[1].jid.is_none() && checks[1].lid.is_none());
        // Not answered at all.
        assert!(!checks[2].exists);
    }

    #[test]
    fn mutes_end_in_milliseconds_and_refusals_are_the_callers() {
        assert_eq!(mute_end_ms(1_704_067_200), 1_704_067_200_000);
        assert!(matches!(
            action_failed(AppStateError::InvalidRequest("past".into())),
            Error::BadRequest(_)
        ));
    }
}
