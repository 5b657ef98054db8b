//! Drives the sandbox provider through its public surface: the `WhatsApp`
//! trait on one side, the phone-side controls on the other, with a sink that
//! records what the rest of zapgate would receive.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::{Engine, engine::general_purpose::STANDARD};
use zapgate_core::{
    Error, Result,
    instance::{ConnectionState, InstanceSettings, SessionStatus},
    jid::Jid,
    messages,
    whatsapp::{
        CallStatus, Event, EventSink, LoginCode, LoginMethod, Media, MediaKind, Outgoing,
        ReceiptStatus, SendContext, WhatsApp, WhatsAppEvent,
    },
};
use zapgate_whatsapp::{SandboxInbound, SandboxProvider, SendFault};

const ID: &str = "inst-1";
const PHONE: &str = "5511988887777";
const OWN_JID: &str = "5511988887777@s.whatsapp.net";

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<WhatsAppEvent>>,
    fail: Mutex<bool>,
}

impl Recorder {
    fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.event.clone())
            .collect()
    }

    fn last(&self) -> Event {
        self.events().pop().expect("an event")
    }

    fn clear(&self) {
        self.events.lock().unwrap().clear();
    }
}

#[async_trait]
impl EventSink for Recorder {
    async fn deliver(&self, event: WhatsAppEvent) -> Result<()> {
        if *self.fail.lock().unwrap() {
            return Err(Error::internal("sink is down"));
        }
        self.events.lock().unwrap().push(event);
        Ok(())
    }
}

fn setup() -> (Arc<Recorder>, SandboxProvider) {
    let sink = Arc::new(Recorder::default());
    let provider = SandboxProvider::new(sink.clone());
    (sink, provider)
}

async fn connected() -> (Arc<Recorder>, SandboxProvider) {
    let (sink, provider) = setup();
    provider.connect(ID, LoginMethod::QrCode).await.unwrap();
    provider.pair(ID, PHONE).await.unwrap();
    sink.clear();
    (sink, provider)
}

fn jid(raw: &str) -> Jid {
    Jid::parse(raw).unwrap()
}

fn text(body: &str) -> SandboxInbound {
    SandboxInbound {
        from: Some(jid("5511977776666")),
        text: Some(body.to_owned()),
        ..Default::default()
    }
}

fn inbound_of(event: Event) -> zapgate_core::whatsapp::InboundMessage {
    match event {
        Event::Message(m) => *m,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn assert_bad_request(err: Error, message: &str) {
    assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
    assert_eq!(err.public_message(), message);
}

#[tokio::test]
async fn qr_connect_is_connecting_with_a_real_png() {
    let (sink, provider) = setup();
    assert_eq!(provider.name(), "sandbox");
    assert_eq!(provider.status(ID), None);

    let LoginCode::QrCode { code, png_data_url } =
        provider.connect(ID, LoginMethod::QrCode).await.unwrap()
    else {
        panic!("expected a QR code");
    };
    assert!(code.starts_with("2@"), "{code}");
    assert_eq!(code.split(',').count(), 4, "{code}");

    let png = STANDARD
        .decode(png_data_url.strip_prefix("data:image/png;base64,").unwrap())
        .unwrap();
    let reader = png::Decoder::new(png.as_slice()).read_info().unwrap();
    let info = reader.info();
    assert_eq!(info.width, info.height);
    assert!(info.width >= (21 + 8) * 4);

    let connecting = SessionStatus {
        state: ConnectionState::Connecting,
        number_jid: None,
    };
    assert_eq!(provider.status(ID), Some(connecting.clone()));
    assert_eq!(sink.events(), vec![Event::Session(connecting)]);

    // Each attempt shows a new code; the same attempt on a fresh provider the same one.
    let LoginCode::QrCode { code: again, .. } =
        provider.connect(ID, LoginMethod::QrCode).await.unwrap()
    else {
        panic!("expected a QR code");
    };
    assert_ne!(code, again);
    let (_, fresh) = setup();
    let LoginCode::QrCode { code: replay, .. } =
        fresh.connect(ID, LoginMethod::QrCode).await.unwrap()
    else {
        panic!("expected a QR code");
    };
    assert_eq!(code, replay);
}

#[tokio::test]
async fn pairing_codes_are_eight_safe_characters_and_deterministic() {
    let method = || LoginMethod::PairingCode {
        phone: PHONE.to_owned(),
    };
    let (_, a) = setup();
    let (_, b) = setup();
    let LoginCode::PairingCode(code_a) = a.connect(ID, method()).await.unwrap() else {
        panic!("expected a pairing code");
    };
    let LoginCode::PairingCode(code_b) = b.connect(ID, method()).await.unwrap() else {
        panic!("expected a pairing code");
    };
    assert_eq!(code_a, code_b);
    assert_eq!(code_a.len(), 8);
    assert!(
        code_a
            .chars()
            .all(|c| "ABCDEFGHJKLMNPQRSTVWXYZ23456789".contains(c)),
        "{code_a}"
    );

    let LoginCode::PairingCode(other_phone) = b
        .connect(
            "inst-2",
            LoginMethod::PairingCode {
                phone: "5511900001111".to_owned(),
            },
        )
        .await
        .unwrap()
    else {
        panic!("expected a pairing code");
    };
    assert_ne!(code_a, other_phone);
}

#[tokio::test]
async fn pairing_needs_a_pending_login_for_the_same_number() {
    let (_, provider) = setup();
    let err = provider.pair(ID, PHONE).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert_eq!(
        err.public_message(),
        "No login pending: call GET /api/instance/connect/:instance first"
    );

    provider
        .connect(
            ID,
            LoginMethod::PairingCode {
                phone: PHONE.to_owned(),
            },
        )
        .await
        .unwrap();
    let err = provider.pair(ID, "5511900001111").await.unwrap_err();
    assert_bad_request(err, "Pairing code was issued for another number");
    assert_eq!(
        provider.pair(ID, PHONE).await.unwrap().state,
        ConnectionState::Connected
    );

    // The login was consumed.
    assert!(matches!(
        provider.pair(ID, PHONE).await.unwrap_err(),
        Error::Conflict(_)
    ));
}

#[tokio::test]
async fn pairing_connects_and_reports_the_session() {
    let (sink, provider) = setup();
    provider.connect(ID, LoginMethod::QrCode).await.unwrap();
    let status = provider.pair(ID, PHONE).await.unwrap();
    let expected = SessionStatus {
        state: ConnectionState::Connected,
        number_jid: Some(OWN_JID.to_owned()),
    };
    assert_eq!(status, expected);
    assert_eq!(provider.status(ID), Some(expected.clone()));
    assert_eq!(sink.last(), Event::Session(expected));
    assert_eq!(
        provider.connect(ID, LoginMethod::QrCode).await.unwrap(),
        LoginCode::AlreadyConnected
    );
}

#[tokio::test]
async fn sending_needs_a_connected_session() {
    let (_, provider) = setup();
    let message = || Outgoing::Text {
        to: jid("5511977776666"),
        text: "hi".into(),
        quoted_id: None,
        context: SendContext::default(),
        preview: None,
    };
    let err = provider.send(ID, message(), None).await.unwrap_err();
    assert!(matches!(err, Error::NotConnected), "{err:?}");

    provider.connect(ID, LoginMethod::QrCode).await.unwrap();
    let err = provider.send(ID, message(), None).await.unwrap_err();
    assert!(matches!(err, Error::NotConnected), "{err:?}");
}

#[tokio::test]
async fn sends_land_in_the_outbox_in_order() {
    let (_, provider) = connected().await;
    let to = jid("5511977776666");
    let media = Media {
        kind: MediaKind::Image,
        mimetype: "image/png".into(),
        file_name: Some("a.png".into()),
        data: b"png bytes".to_vec().into(),
    };
    let first = provider
        .send(
            ID,
            Outgoing::Text {
                to: to.clone(),
                text: "hello".into(),
                quoted_id: Some("Q1".into()),
                context: SendContext::default(),
                preview: None,
            },
            None,
        )
        .await
        .unwrap();
    assert!(
        first.id.starts_with("3EB0") && first.id.len() == 20,
        "{}",
        first.id
    );
    assert!(
        first.id[4..]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    );
    let sends = [
        Outgoing::Media {
            to: to.clone(),
            media,
            caption: Some("look".into()),
            quoted_id: None,
            context: SendContext::default(),
        },
        Outgoing::Reaction {
            to: to.clone(),
            target_id: first.id.clone(),
            emoji: "👍".into(),
            from_me: true,
            participant: None,
        },
        Outgoing::Edit {
            to: to.clone(),
            target_id: first.id.clone(),
            text: "hello!".into(),
        },
        Outgoing::Revoke {
            to: to.clone(),
            target_id: first.id.clone(),
        },
        Outgoing::Read {
            chat: to.clone(),
            target_id: "IN1".into(),
        },
    ];
    let mut ids = vec![first.id.clone()];
    for message in sends {
        ids.push(provider.send(ID, message, None).await.unwrap().id);
    }

    let outbox = provider.outbox(ID);
    let kinds: Vec<_> = outbox.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        ["text", "media", "reaction", "edit", "revoke", "read"]
    );
    assert_eq!(outbox.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), ids);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len());
    assert!(
        outbox
            .iter()
            .all(|e| e.to == "5511977776666@s.whatsapp.net")
    );
    assert!(outbox.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));

    assert_eq!(outbox[0].text.as_deref(), Some("hello"));
    assert_eq!(outbox[0].quoted_id.as_deref(), Some("Q1"));
    let media = outbox[1].media.as_ref().unwrap();
    assert_eq!((media.kind, media.size), ("image", 9));
    assert_eq!(media.sha256.len(), 64);
    assert_eq!(outbox[1].text.as_deref(), Some("look"));
    assert_eq!(outbox[2].text.as_deref(), Some("👍"));
    assert_eq!(outbox[3].text.as_deref(), Some("hello!"));
    for entry in &outbox[2..5] {
        assert_eq!(entry.target_id.as_deref(), Some(first.id.as_str()));
    }
    assert_eq!(outbox[5].target_id.as_deref(), Some("IN1"));

    let json = serde_json::to_value(&outbox[4]).unwrap();
    assert_eq!(json["targetId"], first.id);
    assert!(json.get("text").is_none() && json.get("media").is_none());

    // Ids are reproducible across providers.
    let (_, again) = connected().await;
    let replay = again
        .send(
            ID,
            Outgoing::Text {
                to,
                text: "other".into(),
                quoted_id: None,
                context: SendContext::default(),
                preview: None,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(replay.id, first.id);
}

#[tokio::test]
async fn send_faults_fail_without_recording_until_cleared() {
    let (_, provider) = connected().await;
    let message = || Outgoing::Text {
        to: jid("5511977776666"),
        text: "hi".into(),
        quoted_id: None,
        context: SendContext::default(),
        preview: None,
    };
    assert_eq!(
        SendFault::parse("not_on_whatsapp"),
        Some(SendFault::NotOnWhatsApp)
    );
    assert_eq!(SendFault::parse("bogus"), None);

    provider
        .set_send_fault(ID, SendFault::NotOnWhatsApp)
        .unwrap();
    for _ in 0..2 {
        let err = provider.send(ID, message(), None).await.unwrap_err();
        assert_bad_request(err, "Number not on WhatsApp: 5511977776666@s.whatsapp.net");
    }

    provider.set_send_fault(ID, SendFault::Error).unwrap();
    let err = provider.send(ID, message(), None).await.unwrap_err();
    assert!(matches!(err, Error::BadGateway(_)), "{err:?}");
    assert_eq!(err.public_message(), "WhatsApp send failed (sandbox fault)");
    assert!(provider.outbox(ID).is_empty());

    provider.set_send_fault(ID, SendFault::Ok).unwrap();
    provider.send(ID, message(), None).await.unwrap();
    assert_eq!(provider.outbox(ID).len(), 1);
}

#[tokio::test]
async fn inbound_is_validated() {
    let (sink, provider) = connected().await;
    let cases = [
        (
            SandboxInbound {
                text: Some("x".into()),
                ..Default::default()
            },
            "from or lid is required",
        ),
        (
            SandboxInbound {
                text: None,
                ..text("")
            },
            zapgate_whatsapp::sandbox::NOTHING_TO_DELIVER,
        ),
        (text(""), zapgate_whatsapp::sandbox::NOTHING_TO_DELIVER),
        (
            SandboxInbound {
                lid: Some(jid("5511977776666")),
                ..text("x")
            },
            "lid must be an @lid id",
        ),
        (
            SandboxInbound {
                group: Some((jid("5511977776666"), None)),
                ..text("x")
            },
            "group must be an @g.us id",
        ),
    ];
    for (message, expected) in cases {
        assert_bad_request(provider.inbound(ID, message).await.unwrap_err(), expected);
    }
    assert!(sink.events().is_empty());

    let err = provider.inbound("nobody", text("x")).await.unwrap_err();
    assert_bad_request(err, messages::INSTANCE_NOT_CONNECTED);
}

#[tokio::test]
async fn inbound_from_a_lid_only_contact() {
    let (sink, provider) = connected().await;
    let lid = jid("123456789@lid");
    let id = provider
        .inbound(
            ID,
            SandboxInbound {
                lid: Some(lid.clone()),
                push_name: Some("Ana".into()),
                text: Some("oi".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    let message = inbound_of(sink.last());
    assert_eq!(message.id, id);
    assert_eq!(message.chat, lid);
    assert_eq!(message.sender, lid);
    assert_eq!(message.sender_lid, Some(lid));
    assert_eq!(message.push_name.as_deref(), Some("Ana"));
    assert!(!message.from_me);
    assert!(message.timestamp > 0);
}

#[tokio::test]
async fn group_inbound_is_in_the_group_from_the_member() {
    let (sink, provider) = connected().await;
    let group = jid("120363024567890123@g.us");
    let member = jid("5511977776666");
    provider
        .inbound(
            ID,
            SandboxInbound {
                group: Some((group.clone(), Some("Team".into()))),
                lid: Some(jid("42@lid")),
                quoted_id: Some("Q9".into()),
                timestamp: Some(1_700_000_000),
                ..text("hi all")
            },
        )
        .await
        .unwrap();
    let message = inbound_of(sink.last());
    assert_eq!(message.chat, group);
    assert_eq!(message.sender, member);
    assert_eq!(message.sender_lid, Some(jid("42@lid")));
    assert_eq!(message.group_subject.as_deref(), Some("Team"));
    assert_eq!(message.quoted_id.as_deref(), Some("Q9"));
    assert_eq!(message.timestamp, 1_700_000_000);
}

#[tokio::test]
async fn from_me_is_sent_by_the_own_number() {
    let (sink, provider) = connected().await;
    provider
        .inbound(
            ID,
            SandboxInbound {
                from_me: true,
                ..text("sent from the phone")
            },
        )
        .await
        .unwrap();
    let message = inbound_of(sink.last());
    assert!(message.from_me);
    assert_eq!(message.sender, jid(OWN_JID));
    assert_eq!(message.chat, jid("5511977776666"));
}

#[tokio::test]
async fn inbound_media_and_generated_ids() {
    let (sink, provider) = connected().await;
    let media = Media {
        kind: MediaKind::Audio,
        mimetype: "audio/ogg".into(),
        file_name: None,
        data: vec![1, 2, 3].into(),
    };
    let a = provider
        .inbound(
            ID,
            SandboxInbound {
                text: None,
                media: Some(media.clone()),
                ..text("")
            },
        )
        .await
        .unwrap();
    let b = provider.inbound(ID, text("second")).await.unwrap();
    assert_ne!(a.id, b.id);
    let events = sink.events();
    let first = inbound_of(events[0].clone());
    let second = inbound_of(events[1].clone());
    assert_eq!(first.media, Some(media));
    assert!(first.timestamp <= second.timestamp);
}

#[tokio::test]
async fn the_same_id_is_delivered_twice() {
    let (sink, provider) = connected().await;
    let message = SandboxInbound {
        id: Some("ABC123".into()),
        ..text("again")
    };
    assert_eq!(
        provider.inbound(ID, message.clone()).await.unwrap().id,
        "ABC123"
    );
    assert_eq!(provider.inbound(ID, message).await.unwrap().id, "ABC123");
    let ids: Vec<_> = sink
        .events()
        .into_iter()
        .map(|e| inbound_of(e).id)
        .collect();
    assert_eq!(ids, ["ABC123", "ABC123"]);
}

#[tokio::test]
async fn a_failing_sink_is_not_acknowledged() {
    let (sink, provider) = connected().await;
    *sink.fail.lock().unwrap() = true;
    assert!(provider.inbound(ID, text("lost?")).await.is_err());
    *sink.fail.lock().unwrap() = false;
    provider.inbound(ID, text("kept")).await.unwrap();
    assert_eq!(sink.events().len(), 1);
}

#[tokio::test]
async fn receipts_need_a_sent_message() {
    let (sink, provider) = connected().await;
    let err = provider
        .receipt(ID, "NOPE", ReceiptStatus::Read)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert_eq!(err.public_message(), "Message not found");

    let sent = provider
        .send(
            ID,
            Outgoing::Text {
                to: jid("5511977776666"),
                text: "hi".into(),
                quoted_id: None,
                context: SendContext::default(),
                preview: None,
            },
            None,
        )
        .await
        .unwrap();
    provider
        .receipt(ID, &sent.id, ReceiptStatus::Delivered)
        .await
        .unwrap();
    assert_eq!(
        sink.last(),
        Event::Receipt {
            message_id: sent.id,
            status: ReceiptStatus::Delivered,
            chat: Some(jid("5511977776666")),
        }
    );
}

#[tokio::test]
async fn logout_unlinks_and_stops_sending() {
    let (sink, provider) = connected().await;
    provider.logout(ID).await.unwrap();
    let logged_out = SessionStatus {
        state: ConnectionState::LoggedOut,
        number_jid: None,
    };
    assert_eq!(provider.status(ID), Some(logged_out.clone()));
    assert_eq!(sink.last(), Event::Session(logged_out));
    let err = provider
        .send(
            ID,
            Outgoing::Text {
                to: jid("5511977776666"),
                text: "hi".into(),
                quoted_id: None,
                context: SendContext::default(),
                preview: None,
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotConnected), "{err:?}");
    assert!(matches!(
        provider.pair(ID, PHONE).await.unwrap_err(),
        Error::Conflict(_)
    ));

    provider.remove(ID).await.unwrap();
    assert_eq!(provider.status(ID), None);
}

#[tokio::test]
async fn resume_restores_a_paired_session_only() {
    let (_, provider) = setup();
    provider
        .resume(ID, &SessionStatus::disconnected())
        .await
        .unwrap();
    provider
        .resume(
            "gone",
            &SessionStatus {
                state: ConnectionState::LoggedOut,
                number_jid: Some(OWN_JID.into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(provider.status(ID), None);
    assert_eq!(provider.status("gone"), None);

    provider
        .resume(
            ID,
            &SessionStatus {
                state: ConnectionState::Disconnected,
                number_jid: Some(OWN_JID.into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        provider.status(ID),
        Some(SessionStatus {
            state: ConnectionState::Connected,
            number_jid: Some(OWN_JID.into()),
        })
    );
}

#[tokio::test]
async fn disconnect_keeps_the_number_and_reconnect_restores() {
    let (sink, provider) = connected().await;
    let err = provider.disconnect("nobody").await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");

    let offline = provider.disconnect(ID).await.unwrap();
    assert_eq!(offline.state, ConnectionState::Disconnected);
    assert_eq!(offline.number_jid.as_deref(), Some(OWN_JID));
    assert_eq!(sink.last(), Event::Session(offline));
    assert!(provider.inbound(ID, text("x")).await.is_err());

    let online = provider.reconnect(ID).await.unwrap();
    assert_eq!(online.state, ConnectionState::Connected);
    assert_eq!(online.number_jid.as_deref(), Some(OWN_JID));
    assert_eq!(sink.last(), Event::Session(online));
    provider.inbound(ID, text("back")).await.unwrap();

    let err = provider.reconnect("nobody").await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
}

// ---------------------------------------------------------------- settings

async fn with_settings(settings: InstanceSettings) -> (Arc<Recorder>, SandboxProvider) {
    let (sink, provider) = connected().await;
    provider.apply_settings(ID, &settings).await;
    (sink, provider)
}

fn in_group(body: &str) -> SandboxInbound {
    SandboxInbound {
        group: Some((jid("120363024567890123@g.us"), Some("Loja".into()))),
        ..text(body)
    }
}

fn status_post(body: &str) -> SandboxInbound {
    SandboxInbound {
        status_post: true,
        ..text(body)
    }
}

#[tokio::test]
async fn ignored_groups_and_status_posts_are_acknowledged_but_not_delivered() {
    let (sink, provider) = connected().await;
    assert!(provider.inbound(ID, in_group("a")).await.unwrap().delivered);
    let post = provider.inbound(ID, status_post("b")).await.unwrap();
    assert!(post.delivered);
    assert!(inbound_of(sink.last()).chat.is_status_broadcast());
    sink.clear();

    provider
        .apply_settings(
            ID,
            &InstanceSettings {
                ignore_group_messages: true,
                ignore_status: true,
                ..InstanceSettings::default()
            },
        )
        .await;
    assert!(!provider.inbound(ID, in_group("c")).await.unwrap().delivered);
    assert!(
        !provider
            .inbound(ID, status_post("d"))
            .await
            .unwrap()
            .delivered
    );
    assert!(provider.inbound(ID, text("e")).await.unwrap().delivered);
    assert_eq!(sink.events().len(), 1);
}

#[tokio::test]
async fn auto_read_marks_stored_messages_of_others_read() {
    let (_sink, provider) = with_settings(InstanceSettings {
        auto_read_messages: true,
        ..InstanceSettings::default()
    })
    .await;
    let id = provider.inbound(ID, text("hi")).await.unwrap().id;
    provider
        .inbound(
            ID,
            SandboxInbound {
                from_me: true,
                ..text("mine")
            },
        )
        .await
        .unwrap();
    provider.inbound(ID, status_post("story")).await.unwrap();
    let reads: Vec<_> = provider
        .outbox(ID)
        .into_iter()
        .filter(|e| e.kind == "read")
        .collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0].target_id.as_deref(), Some(id.as_str()));
    assert_eq!(reads[0].to, "5511977776666@s.whatsapp.net");
}

#[tokio::test]
async fn a_failing_sink_gets_no_read_mark() {
    let (sink, provider) = with_settings(InstanceSettings {
        auto_read_messages: true,
        ..InstanceSettings::default()
    })
    .await;
    *sink.fail.lock().unwrap() = true;
    assert!(provider.inbound(ID, text("lost?")).await.is_err());
    assert!(provider.outbox(ID).is_empty());
}

#[tokio::test]
async fn calls_ring_or_are_rejected_with_the_message() {
    let (sink, provider) = connected().await;
    let caller = jid("5511977776666");
    let ringing = provider.call(ID, caller.clone(), true).await.unwrap();
    assert_eq!(ringing.status, "offer");
    assert!(provider.outbox(ID).is_empty());

    provider
        .apply_settings(
            ID,
            &InstanceSettings {
                auto_reject_calls: true,
                call_reject_message: "Não atendo ligações".into(),
                ..InstanceSettings::default()
            },
        )
        .await;
    sink.clear();
    let rejected = provider.call(ID, caller, false).await.unwrap();
    assert_eq!(rejected.status, "rejected");
    let statuses: Vec<_> = sink
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Call(call) => (call.id, call.status),
            other => panic!("expected a call, got {other:?}"),
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (rejected.id.clone(), CallStatus::Offer),
            (rejected.id.clone(), CallStatus::Rejected)
        ]
    );
    let outbox = provider.outbox(ID);
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].kind, "text");
    assert_eq!(outbox[0].to, "5511977776666@s.whatsapp.net");
    assert_eq!(outbox[0].text.as_deref(), Some("Não atendo ligações"));
    assert_eq!(provider.calls(ID).len(), 2);
}

#[tokio::test]
async fn presence_follows_keep_online_while_connected() {
    let (_sink, provider) = setup();
    provider
        .apply_settings(
            ID,
            &InstanceSettings {
                keep_online_status: true,
                ..InstanceSettings::default()
            },
        )
        .await;
    assert_eq!(provider.presence(ID), None);
    provider.connect(ID, LoginMethod::QrCode).await.unwrap();
    assert_eq!(provider.presence(ID), None);
    provider.pair(ID, PHONE).await.unwrap();
    assert_eq!(provider.presence(ID), Some("available"));
    provider
        .apply_settings(ID, &InstanceSettings::default())
        .await;
    assert_eq!(provider.presence(ID), Some("unavailable"));
    provider.disconnect(ID).await.unwrap();
    assert_eq!(provider.presence(ID), None);
}
