//! Incoming calls as zapgate reports them. Pure mapping; the session
//! rejects offers when `autoRejectCalls` is on.

use std::collections::HashMap;

use whatsapp_rust::types::call::{CallAction, IncomingCall, MissedCall};
use zapgate_core::whatsapp::{CallEvent, CallStatus};

use super::inbound::jid_of;

/// Calls still ringing, by call id, so the end of a call names the caller
/// and the media as its offer did. Bounded: a lost ending must not pin memory.
#[derive(Default)]
pub(crate) struct Ringing(HashMap<String, CallEvent>);

const MAX_RINGING: usize = 64;

impl Ringing {
    /// Forgets a call, e.g. once zapgate rejected it.
    pub(crate) fn end(&mut self, call_id: &str) {
        self.0.remove(call_id);
    }
}

/// An offer, or the end of a call; `None` for the signalling in between.
/// WhatsApp ends a call answered or declined on the phone with the reason
/// `accepted_elsewhere` / `rejected_elsewhere`.
pub(crate) fn map_call(call: &IncomingCall, ringing: &mut Ringing) -> Option<CallEvent> {
    match &call.action {
        CallAction::Offer {
            call_id,
            call_creator,
            caller_pn,
            is_video,
            ..
        } => {
            // People know contacts by phone number; the creator may be a LID.
            let from = caller_pn
                .as_ref()
                .and_then(jid_of)
                .or_else(|| jid_of(call_creator))?;
            let event = CallEvent {
                id: call_id.clone(),
                from,
                video: *is_video,
                status: CallStatus::Offer,
                timestamp: call.timestamp.timestamp(),
            };
            if ringing.0.len() >= MAX_RINGING {
                ringing.0.clear();
            }
            ringing.0.insert(call_id.clone(), event.clone());
            Some(event)
        }
        CallAction::Terminate {
            call_id,
            call_creator,
            reason,
            ..
        } => {
            let status = match reason.as_deref() {
                Some("accepted_elsewhere") => CallStatus::Accepted,
                Some("rejected_elsewhere") => CallStatus::Rejected,
                _ => CallStatus::Terminated,
            };
            let (from, video) = match ringing.0.remove(call_id) {
                Some(offer) => (offer.from, offer.video),
                None => (jid_of(call_creator)?, false),
            };
            Some(CallEvent {
                id: call_id.clone(),
                from,
                video,
                status,
                timestamp: call.timestamp.timestamp(),
            })
        }
        _ => None,
    }
}

/// An offer WhatsApp replayed after we were offline: the call is over.
pub(crate) fn map_missed(missed: &MissedCall) -> Option<CallEvent> {
    Some(CallEvent {
        id: missed.call_id.clone(),
        from: jid_of(&missed.from)?,
        video: false,
        status: CallStatus::Terminated,
        timestamp: missed.timestamp.timestamp(),
    })
}

#[cfg(test)]
mod tests {
    use whatsapp_rust::{
        Jid as WaJid,
        chrono::DateTime,
        types::call::{MissedCall, MissedReason},
    };
    use zapgate_core::jid::Jid;

    use super::*;

    const CALLER_LID: &str = "203571934891234@lid";
    const CALLER_PN: &str = "5511988887777@s.whatsapp.net";
    const AT: i64 = 1_732_260_000;

    fn wa(jid: &str) -> WaJid {
        jid.parse().unwrap()
    }

    fn incoming(action: CallAction) -> IncomingCall {
        IncomingCall::builder()
            .from(wa("203571934891234:4@lid"))
            .stanza_id("1F2E3D4C".to_owned())
            .timestamp(DateTime::from_timestamp(AT, 0).unwrap())
            .offline(false)
            .action(action)
            .build()
    }

    fn offer(video: bool) -> IncomingCall {
        incoming(CallAction::Offer {
            call_id: "CALL-1".to_owned(),
            call_creator: wa(CALLER_LID),
            caller_pn: Some(wa(CALLER_PN)),
            caller_country_code: Some("BR".to_owned()),
            device_class: None,
            joinable: false,
            is_video: video,
            audio: Vec::new(),
            group_jid: None,
        })
    }

    fn terminate(reason: Option<&str>) -> IncomingCall {
        incoming(CallAction::Terminate {
            call_id: "CALL-1".to_owned(),
            call_creator: wa(CALLER_LID),
            reason: reason.map(str::to_owned),
            duration: None,
            audio_duration: None,
        })
    }

    #[test]
    fn an_offer_names_the_callers_phone_number() {
        let mut ringing = Ringing::default();
        let call = map_call(&offer(true), &mut ringing).unwrap();
        assert_eq!(
            call,
            CallEvent {
                id: "CALL-1".to_owned(),
                from: Jid::parse(CALLER_PN).unwrap(),
                video: true,
                status: CallStatus::Offer,
                timestamp: AT,
            }
        );
    }

    #[test]
    fn the_end_of_a_call_reads_like_its_offer() {
        for (reason, status) in [
            (None, CallStatus::Terminated),
            (Some("timeout"), CallStatus::Terminated),
            (Some("accepted_elsewhere"), CallStatus::Accepted),
            (Some("rejected_elsewhere"), CallStatus::Rejected),
        ] {
            let mut ringing = Ringing::default();
            map_call(&offer(true), &mut ringing).unwrap();
            let end = map_call(&terminate(reason), &mut ringing).unwrap();
            assert_eq!(end.status, status, "{reason:?}");
            assert_eq!(end.from, Jid::parse(CALLER_PN).unwrap());
            assert!(end.video);
        }
        // An end whose offer this session never saw names the creator.
        let end = map_call(&terminate(None), &mut Ringing::default()).unwrap();
        assert_eq!(end.from, Jid::parse(CALLER_LID).unwrap());
        assert!(!end.video);
    }

    #[test]
    fn a_rejected_call_is_forgotten_and_signalling_is_not_reported() {
        let mut ringing = Ringing::default();
        map_call(&offer(false), &mut ringing).unwrap();
        ringing.end("CALL-1");
        assert!(ringing.0.is_empty());
        let latency = incoming(CallAction::RelayLatency {
            call_id: "CALL-1".to_owned(),
            call_creator: wa(CALLER_LID),
        });
        assert_eq!(map_call(&latency, &mut ringing), None);
    }

    #[test]
    fn a_call_missed_while_offline_is_over() {
        let missed = MissedCall::new(
            wa(CALLER_PN),
            "CALL-2".to_owned(),
            DateTime::from_timestamp(AT, 0).unwrap(),
            MissedReason::Offline,
        );
        let call = map_missed(&missed).unwrap();
        assert_eq!(call.status, CallStatus::Terminated);
        assert_eq!(call.from, Jid::parse(CALLER_PN).unwrap());
    }
}
