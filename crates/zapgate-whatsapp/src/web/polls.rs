//! Votes on the polls this instance sent. WhatsApp encrypts each vote with
//! the poll's secret: `send` keeps it in the session store, keyed as the
//! crate keys message secrets (chat, creator, id); a vote is decrypted with
//! it and reported by the SHA-256 of the options picked.

use whatsapp_rust::{
    Client, Jid as WaJid, features::PollVoteCiphertext, types::message::MessageInfo,
    waproto::whatsapp as wa,
};
use zapgate_core::whatsapp::PollVote;

use super::inbound::{jid_of, person, unwrap};

/// A vote as it arrives, still encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EncryptedVote {
    pub poll_id: String,
    pub payload: Vec<u8>,
    pub iv: Vec<u8>,
    /// The voter's time, Unix milliseconds.
    pub timestamp_ms: Option<i64>,
}

/// The encrypted vote `message` carries, if it is one.
pub(crate) fn encrypted_vote(message: &wa::Message) -> Option<EncryptedVote> {
    let update = unwrap(message).poll_update_message.as_option()?;
    let vote = update.vote.as_option()?;
    Some(EncryptedVote {
        poll_id: update.poll_creation_message_key.as_option()?.id.clone()?,
        payload: vote.enc_payload.clone()?,
        iv: vote.enc_iv.clone()?,
        timestamp_ms: update.sender_timestamp_ms,
    })
}

/// The vote as zapgate reports it, from the option hashes it decrypted to:
/// in a group chat the group, else the voter's chat; the voter by phone
/// number when WhatsApp gave one.
pub(crate) fn vote_of(
    info: &MessageInfo,
    vote: &EncryptedVote,
    hashes: Vec<Vec<u8>>,
) -> Option<PollVote> {
    let source = &info.source;
    let (voter, _) = person(&source.sender, source.sender_alt.as_ref())?;
    let chat = if source.is_group {
        jid_of(&source.chat)?
    } else {
        voter.clone()
    };
    Some(PollVote {
        poll_id: vote.poll_id.clone(),
        chat,
        voter,
        options: hashes
            .into_iter()
            .filter_map(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
            .collect(),
        timestamp_ms: vote
            .timestamp_ms
            .unwrap_or_else(|| info.timestamp.timestamp_millis()),
    })
}

/// Keeps the secret of the poll `poll_id` just sent to `chat`, where
/// [`decrypt`] looks for it.
pub(crate) async fn keep_secret(client: &Client, chat: &WaJid, poll_id: &str, secret: &[u8; 32]) {
    let Some(own) = client.pn() else {
        return;
    };
    let backend = client.persistence_manager().backend();
    let kept = backend
        .put_msg_secret(
            &chat.to_non_ad_string(),
            &own.to_non_ad_string(),
            poll_id,
            secret,
        )
        .await;
    if let Err(err) = kept {
        tracing::warn!(%poll_id, error = %err, "could not keep a poll's secret: its votes will not be read");
    }
}

/// The option hashes of `vote`, decrypted with the secret of the poll this
/// instance sent; `None` for a poll it did not send (or whose secret is
/// gone) and a vote that does not open.
pub(crate) async fn decrypt(
    client: &Client,
    info: &MessageInfo,
    vote: &EncryptedVote,
) -> Option<Vec<Vec<u8>>> {
    let own = client.pn()?.to_non_ad();
    let source = &info.source;
    // The chat the poll went to, as the vote may name it: the group, or
    // the contact by LID or by phone number.
    let mut chats = vec![source.chat.to_non_ad()];
    if !source.is_group {
        chats.extend(source.sender_alt.iter().map(WaJid::to_non_ad));
        chats.push(source.sender.to_non_ad());
    }
    let backend = client.persistence_manager().backend();
    let mut secret = None;
    for chat in &chats {
        if let Ok(Some(found)) = backend
            .get_msg_secret(&chat.to_string(), &own.to_string(), &vote.poll_id)
            .await
        {
            secret = Some(found);
            break;
        }
    }
    let secret = secret?;
    let ciphertext = PollVoteCiphertext {
        enc_payload: &vote.payload,
        enc_iv: &vote.iv,
    };
    client
        .polls()
        .decrypt_vote(ciphertext, &secret, &vote.poll_id, &own, &source.sender)
        .await
        .map_err(|err| {
            tracing::warn!(poll_id = %vote.poll_id, error = %err, "a poll vote did not decrypt");
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use whatsapp_rust::{
        buffa::MessageField,
        chrono::DateTime,
        types::message::MessageSource,
        wacore::poll::{decrypt_poll_vote_with_secret, encrypt_poll_vote_with_secret},
    };

    use super::*;

    const OWN: &str = "5511977776666@s.whatsapp.net";
    const VOTER_LID: &str = "203571934891234@lid";
    const VOTER: &str = "5511988887777@s.whatsapp.net";
    const GROUP: &str = "120363041234567890@g.us";
    const POLL: &str = "3EB0A1B2C3D4E5F60718";

    fn wa(jid: &str) -> WaJid {
        jid.parse().unwrap()
    }

    /// The vote a phone sends, encrypted as WhatsApp clients encrypt it.
    fn update(secret: &[u8; 32], voter: &str, options: &[&str]) -> wa::Message {
        let hashes: Vec<Vec<u8>> = options
            .iter()
            .map(|o| PollVote::option_hash(o).to_vec())
            .collect();
        let (payload, iv) =
            encrypt_poll_vote_with_secret(&hashes, secret, POLL, OWN, voter).unwrap();
        wa::Message {
            poll_update_message: MessageField::some(wa::message::PollUpdateMessage {
                poll_creation_message_key: MessageField::some(wa::MessageKey {
                    remote_jid: Some(GROUP.to_owned()),
                    from_me: Some(false),
                    id: Some(POLL.to_owned()),
                    participant: Some(OWN.to_owned()),
                }),
                vote: MessageField::some(wa::message::PollEncValue {
                    enc_payload: Some(payload),
                    enc_iv: Some(iv.to_vec()),
                }),
                metadata: MessageField::none(),
                sender_timestamp_ms: Some(1_732_260_000_123),
            }),
            ..Default::default()
        }
    }

    fn in_group() -> MessageInfo {
        MessageInfo {
            id: "3A99".to_owned(),
            source: MessageSource {
                chat: wa(GROUP),
                sender: wa(VOTER_LID),
                sender_alt: Some(wa(VOTER)),
                is_group: true,
                ..Default::default()
            },
            timestamp: DateTime::from_timestamp(1_732_260_001, 0).unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn a_group_vote_opens_with_the_polls_secret_and_names_its_options() {
        let secret = [7u8; 32];
        let message = update(&secret, VOTER_LID, &["Sim", "Talvez"]);
        let encrypted = encrypted_vote(&message).unwrap();
        assert_eq!(encrypted.poll_id, POLL);
        assert_eq!(encrypted.timestamp_ms, Some(1_732_260_000_123));
        let ciphertext = PollVoteCiphertext {
            enc_payload: &encrypted.payload,
            enc_iv: &encrypted.iv,
        };
        let hashes =
            decrypt_poll_vote_with_secret(ciphertext, &secret, POLL, OWN, VOTER_LID).unwrap();
        let vote = vote_of(&in_group(), &encrypted, hashes).unwrap();
        assert_eq!(vote.poll_id, POLL);
        assert_eq!(vote.chat.to_string(), GROUP);
        assert_eq!(vote.voter.to_string(), VOTER, "by phone number when known");
        assert_eq!(
            vote.options,
            [
                PollVote::option_hash("Sim"),
                PollVote::option_hash("Talvez")
            ]
        );
        assert_eq!(vote.timestamp_ms, 1_732_260_000_123);

        // Another poll's secret does not open it.
        let wrong = decrypt_poll_vote_with_secret(
            PollVoteCiphertext {
                enc_payload: &encrypted.payload,
                enc_iv: &encrypted.iv,
            },
            &[8u8; 32],
            POLL,
            OWN,
            VOTER_LID,
        );
        assert!(wrong.is_err());
    }

    #[test]
    fn a_withdrawn_vote_has_no_options_and_other_messages_are_no_votes() {
        let secret = [1u8; 32];
        let message = update(&secret, VOTER_LID, &[]);
        let encrypted = encrypted_vote(&message).unwrap();
        let hashes = decrypt_poll_vote_with_secret(
            PollVoteCiphertext {
                enc_payload: &encrypted.payload,
                enc_iv: &encrypted.iv,
            },
            &secret,
            POLL,
            OWN,
            VOTER_LID,
        )
        .unwrap();
        assert!(
            vote_of(&in_group(), &encrypted, hashes)
                .unwrap()
                .options
                .is_empty()
        );
        let text = wa::Message {
            conversation: Some("oi".to_owned()),
            ..Default::default()
        };
        assert_eq!(encrypted_vote(&text), None);
    }
}
