//! The last rendered answer of each account's whole instance list. A
//! dashboard polls `GET /api/instance/list`, and rendering the instances'
//! JSON was a third of the route's CPU (bench/README.md). An answer is
//! reused only while it would render byte for byte the same: it was rendered
//! from the very same store reads (the store's read cache hands out the same
//! `Arc` until a write or its TTL replaces it, and the answer keeps those
//! `Arc`s alive, so an address cannot be reused by other rows) and from the
//! same live sessions.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::body::Bytes;
use zapgate_core::{
    chatwoot::IntegrationSummary,
    instance::{Instance, SessionStatus},
};

/// Answers of more accounts than this and the cache starts over.
const MAX_ANSWERS: usize = 1_000;
/// Larger answers (a few hundred instances) are rendered every time: their
/// rendering is small beside their transfer, and memory stays bounded.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// What one answer was rendered from.
pub struct ListSources<'a> {
    pub instances: &'a Arc<[Instance]>,
    pub summaries: &'a Arc<[IntegrationSummary]>,
    pub sessions: &'a [SessionStatus],
}

struct Rendered {
    instances: Arc<[Instance]>,
    summaries: Arc<[IntegrationSummary]>,
    sessions: Vec<SessionStatus>,
    body: Bytes,
}

impl Rendered {
    fn rendered_from(&self, sources: &ListSources<'_>) -> bool {
        Arc::ptr_eq(&self.instances, sources.instances)
            && Arc::ptr_eq(&self.summaries, sources.summaries)
            && self.sessions == sources.sessions
    }
}

#[derive(Default)]
pub struct ListAnswers {
    by_account: Mutex<HashMap<String, Rendered>>,
}

impl ListAnswers {
    /// The answer rendered for `account_id` from exactly `sources`, if any.
    pub fn get(&self, account_id: &str, sources: &ListSources<'_>) -> Option<Bytes> {
        let answers = self.by_account.lock().unwrap_or_else(|e| e.into_inner());
        answers
            .get(account_id)
            .filter(|rendered| rendered.rendered_from(sources))
            .map(|rendered| rendered.body.clone())
    }

    /// Keeps `body`, rendered from `sources`, as `account_id`'s answer.
    pub fn put(&self, account_id: &str, sources: &ListSources<'_>, body: Bytes) {
        if body.len() > MAX_ANSWER_BYTES {
            return;
        }
        let rendered = Rendered {
            instances: sources.instances.clone(),
            summaries: sources.summaries.clone(),
            sessions: sources.sessions.to_vec(),
            body,
        };
        let mut answers = self.by_account.lock().unwrap_or_else(|e| e.into_inner());
        if answers.len() >= MAX_ANSWERS && !answers.contains_key(account_id) {
            answers.clear();
        }
        answers.insert(account_id.to_owned(), rendered);
    }
}

#[cfg(test)]
mod tests {
    use zapgate_core::{chatwoot::IntegrationStatus, instance::ConnectionState};

    use super::*;

    fn instances() -> Arc<[Instance]> {
        Arc::new([Instance {
            id: "ins_1".to_owned(),
            account_id: "acc_1".to_owned(),
            name: "shop".to_owned(),
            settings: Default::default(),
            webhook: Default::default(),
            session: SessionStatus::disconnected(),
            created_at_ms: 0,
        }])
    }

    fn summaries() -> Arc<[IntegrationSummary]> {
        Arc::new([IntegrationSummary {
            instance_id: "ins_1".to_owned(),
            status: IntegrationStatus::Active,
            inbox_id: 7,
        }])
    }

    #[test]
    fn an_answer_is_reused_only_for_the_same_reads_and_sessions() {
        let answers = ListAnswers::default();
        let (instances, summaries) = (instances(), summaries());
        let sessions = vec![SessionStatus::disconnected()];
        let sources = ListSources {
            instances: &instances,
            summaries: &summaries,
            sessions: &sessions,
        };
        assert_eq!(answers.get("acc_1", &sources), None);
        answers.put("acc_1", &sources, Bytes::from_static(b"[1]"));
        assert_eq!(
            answers.get("acc_1", &sources),
            Some(Bytes::from_static(b"[1]"))
        );
        assert_eq!(answers.get("acc_2", &sources), None, "another account");

        // Equal rows read again (a write or the store cache's TTL) are
        // another read: rendered again.
        let reread = self::instances();
        let other_read = ListSources {
            instances: &reread,
            ..sources
        };
        assert_eq!(answers.get("acc_1", &other_read), None);
        let resummarised = self::summaries();
        let other_summaries = ListSources {
            summaries: &resummarised,
            ..sources
        };
        assert_eq!(answers.get("acc_1", &other_summaries), None);

        // The same reads, but the phone connected since.
        let connected = vec![SessionStatus {
            state: ConnectionState::Connected,
            number_jid: Some("5511999999999@s.whatsapp.net".to_owned()),
        }];
        let live = ListSources {
            sessions: &connected,
            ..sources
        };
        assert_eq!(answers.get("acc_1", &live), None);
    }

    #[test]
    fn large_answers_are_not_kept() {
        let answers = ListAnswers::default();
        let (instances, summaries) = (instances(), summaries());
        let sources = ListSources {
            instances: &instances,
            summaries: &summaries,
            sessions: &[],
        };
        answers.put(
            "acc_1",
            &sources,
            Bytes::from(vec![b' '; MAX_ANSWER_BYTES + 1]),
        );
        assert_eq!(answers.get("acc_1", &sources), None);
    }
}
