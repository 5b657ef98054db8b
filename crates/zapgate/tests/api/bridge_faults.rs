//! The bridge under faults: Chatwoot down, slow, answering 5xx/429/401,
//! answers lost after the message landed, deliveries that keep failing,
//! lost and duplicated webhooks, and the same round trip on PostgreSQL.
//! Every test counts what reached the other side: nothing lost, nothing
//! duplicated.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use chatwoot_double::{ChatwootDouble, Role};
use serde_json::{Value, json};

use crate::{
    bridge::{CUSTOMER, Fixture, PHONE, bridge_env, chat_messages},
    harness::{ADMIN_TOKEN, Env, TestServer},
};

const OTHER_CUSTOMER: &str = "5511977776666";

/// Waits until `check` holds, for up to `secs` seconds.
async fn wait_for<T>(what: &str, secs: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the async `count` is zero, for up to `secs` seconds.
async fn wait_for_async<F: std::future::Future<Output = i64>>(
    what: &str,
    secs: u64,
    mut count: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = count().await;
        if left == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what} ({left} left)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every non-activity message in the account, across conversations, as
/// (conversation id, message) in id order per conversation.
fn all_messages(f: &Fixture) -> Vec<(i64, Value)> {
    let mut all = Vec::new();
    for conversation in f.conversations() {
        let id = conversation["id"].as_i64().unwrap();
        for message in chat_messages(&f.messages(id)) {
            all.push((id, message));
        }
    }
    all
}

/// How many times each `WAID:` source id is in Chatwoot.
fn posted_counts(f: &Fixture) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (_, message) in all_messages(f) {
        if let Some(source) = message["source_id"].as_str() {
            *counts.entry(source.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

fn times_posted(f: &Fixture, wa_id: &str) -> usize {
    posted_counts(f)
        .get(&format!("WAID:{wa_id}"))
        .copied()
        .unwrap_or(0)
}

/// The contents of the conversation `wa_id` was posted into, in order.
fn conversation_of(f: &Fixture, wa_id: &str) -> (i64, Vec<String>) {
    let source = format!("WAID:{wa_id}");
    let (conversation_id, _) = all_messages(f)
        .into_iter()
        .find(|(_, m)| m["source_id"] == json!(source))
        .unwrap_or_else(|| panic!("{source} is not in Chatwoot"));
    let contents = chat_messages(&f.messages(conversation_id))
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    (conversation_id, contents)
}

async fn text_from(f: &Fixture, from: &str, text: &str) -> String {
    f.inbound(json!({"from": from, "pushName": "Cliente", "text": text}))
        .await
}

/// Sends one message from `from` and waits until it is in Chatwoot, so the
/// chat's contact and conversation exist: later messages cost one call.
async fn warm_up(f: &Fixture, from: &str) -> (String, i64) {
    let id = text_from(f, from, &format!("oi de {from}")).await;
    wait_for("the warm-up message", 10, || {
        (times_posted(f, &id) == 1).then_some(())
    })
    .await;
    let (conversation_id, _) = conversation_of(f, &id);
    (id, conversation_id)
}

/// Asserts each id is in Chatwoot exactly once and nothing else was posted
/// twice, for `settle` more time after it first held.
async fn assert_each_once(f: &Fixture, ids: &[String], secs: u64) {
    wait_for("every message in Chatwoot", secs, || {
        ids.iter().all(|id| times_posted(f, id) >= 1).then_some(())
    })
    .await;
    // Every job finished: a late retry would still be queued.
    wait_for_async("every job finished", secs, || f.server.unfinished_jobs()).await;
    f.quiesce().await;
    let counts = posted_counts(f);
    for id in ids {
        assert_eq!(
            counts.get(&format!("WAID:{id}")),
            Some(&1),
            "{id} is not in Chatwoot exactly once: {counts:?}"
        );
    }
    assert!(
        counts.values().all(|n| *n == 1),
        "something was posted twice: {counts:?}"
    );
}

pub(crate) async fn integration_info(f: &Fixture) -> Value {
    let reply = f
        .server
        .get(
            &format!("/api/chatwoot/list/{}", f.instance),
            Some(&f.token),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    reply.body
}

/// The `chatwoot` block of the instance list (the stored status, no live check).
async fn instance_summary(f: &Fixture) -> Value {
    let reply = f.server.get("/api/instance/list", Some(&f.token)).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    reply.body["instances"][0]["chatwoot"].clone()
}

/// `POST /api/chatwoot/set` again with the stored settings.
async fn set_again(f: &Fixture) {
    let info = integration_info(f).await;
    let reply = f
        .server
        .post(
            &format!("/api/chatwoot/set/{}", f.instance),
            Some(&f.token),
            json!({
                "chatwootBaseUrl": f.double.base_url(),
                "chatwootAccountId": f.account_id,
                "chatwootApiToken": info["chatwoot_api_token"],
            }),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.text);
}

fn message_posts(f: &Fixture) -> usize {
    f.double
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
        .count()
}

async fn outbox_texts(f: &Fixture) -> Vec<String> {
    f.outbox()
        .await
        .iter()
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn chatwoot_down_for_a_while_loses_nothing_duplicates_nothing_and_keeps_each_chats_order() {
    let f = Fixture::start_with(
        json!({}),
        Env::default().with("ZAPGATE_BRIDGE_MAX_ATTEMPTS", "100"),
    )
    .await;
    warm_up(&f, CUSTOMER).await;
    f.double.set_down(true);

    let mut ids = Vec::new();
    for i in 0..20 {
        // A new contact among them: its first delivery needs three calls.
        let from = if i % 2 == 0 { CUSTOMER } else { OTHER_CUSTOMER };
        let started = Instant::now();
        ids.push(text_from(&f, from, &format!("mensagem {i}")).await);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the API waited for Chatwoot: {:?}",
            started.elapsed()
        );
    }
    f.quiesce().await;
    assert!(
        ids.iter().all(|id| times_posted(&f, id) == 0),
        "posted while Chatwoot was down?"
    );
    f.double.set_down(false);

    assert_each_once(&f, &ids, 20).await;
    let (_, first) = conversation_of(&f, &ids[0]);
    let (_, second) = conversation_of(&f, &ids[1]);
    let expected = |parity: usize| -> Vec<String> {
        (0..20)
            .filter(|i| i % 2 == parity)
            .map(|i| format!("mensagem {i}"))
            .collect()
    };
    assert_eq!(&first[1..], expected(0).as_slice(), "order in chat 1");
    assert_eq!(second, expected(1), "order in chat 2");
}

#[tokio::test]
async fn three_5xx_answers_in_a_row_still_deliver_the_message_once() {
    let f = Fixture::start(json!({})).await;
    warm_up(&f, CUSTOMER).await;
    let posts = message_posts(&f);

    f.double.fail_next(3, 500);
    let id = text_from(&f, CUSTOMER, "depois do erro").await;
    assert_each_once(&f, std::slice::from_ref(&id), 10).await;
    // The failed tries were real tries, and nothing was posted twice.
    assert!(message_posts(&f) > posts + 1, "no retry was made");

    f.double.fail_next(2, 502);
    let id = text_from(&f, CUSTOMER, "depois do nginx").await;
    assert_each_once(&f, std::slice::from_ref(&id), 10).await;
}

#[tokio::test]
async fn a_429_is_retried_no_sooner_than_its_retry_after_and_delivers_once() {
    // Backoff alone would retry within 400 ms; the double asks for 60 s.
    let f = Fixture::start(json!({})).await;
    warm_up(&f, CUSTOMER).await;
    let posts = message_posts(&f);

    f.double.fail_next(1, 429);
    let id = text_from(&f, CUSTOMER, "devagar").await;
    wait_for("the throttled try", 5, || {
        (message_posts(&f) > posts).then_some(())
    })
    .await;
    // Time itself is under test here: the retry must wait it out.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(times_posted(&f, &id), 0, "retried before Retry-After");
    assert_eq!(
        message_posts(&f),
        posts + 1,
        "Chatwoot was called again before Retry-After"
    );

    // Waiting out 60 s is too slow for a test: a new `set` wakes held
    // deliveries, and the retry still posts the message once.
    set_again(&f).await;
    assert_each_once(&f, std::slice::from_ref(&id), 10).await;
}

#[tokio::test]
async fn a_slow_chatwoot_within_the_timeout_gets_every_message_once_in_order() {
    let f = Fixture::start(json!({})).await;
    let (_, _) = warm_up(&f, CUSTOMER).await;
    f.double.set_delay(Duration::from_millis(300));
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(text_from(&f, CUSTOMER, &format!("lento {i}")).await);
    }
    assert_each_once(&f, &ids, 15).await;
    let (_, contents) = conversation_of(&f, &ids[0]);
    let expected: Vec<String> = (0..5).map(|i| format!("lento {i}")).collect();
    assert_eq!(&contents[1..], expected.as_slice());
}

#[tokio::test]
async fn a_post_that_timed_out_is_not_posted_twice_whether_or_not_it_landed() {
    // Every Chatwoot call gives up after 1 s; retries wait 2 s, by which
    // time a post held for 1.5 s has landed (if the double finished it).
    let f = Fixture::start_with(
        json!({}),
        Env::default()
            .with("ZAPGATE_CHATWOOT_SET_TIMEOUT_SECS", "1")
            .with("ZAPGATE_BRIDGE_RETRY_BASE_MS", "2000")
            .with("ZAPGATE_BRIDGE_RETRY_MAX_MS", "2000"),
    )
    .await;
    warm_up(&f, CUSTOMER).await;
    let posts = message_posts(&f);

    f.double.set_delay(Duration::from_millis(1500));
    let id = text_from(&f, CUSTOMER, "chegou?").await;
    wait_for("the slow post", 5, || {
        (message_posts(&f) > posts).then_some(())
    })
    .await;
    // Only that post is slow; the retry's look-up and post are not.
    f.double.set_delay(Duration::ZERO);

    assert_each_once(&f, std::slice::from_ref(&id), 15).await;
    eprintln!(
        "timed-out post: {} post(s) made for one message",
        message_posts(&f) - posts
    );
}

#[tokio::test]
async fn a_post_whose_answer_was_lost_is_found_by_its_source_id_and_not_posted_again() {
    // The retry waits 2 s: time for this test to put the message into
    // Chatwoot itself, as if the failed post had landed after all.
    let f = Fixture::start_with(
        json!({}),
        Env::default()
            .with("ZAPGATE_BRIDGE_RETRY_BASE_MS", "2000")
            .with("ZAPGATE_BRIDGE_RETRY_MAX_MS", "2000"),
    )
    .await;
    let (_, conversation_id) = warm_up(&f, CUSTOMER).await;
    let posts = message_posts(&f);

    f.double.fail_next(1, 503);
    let id = text_from(&f, CUSTOMER, "perdi a resposta").await;
    wait_for("the failed post", 5, || {
        (message_posts(&f) > posts).then_some(())
    })
    .await;

    let (_, admin) =
        f.double
            .add_user("Ops", "ops@acme.test", Role::Administrator, &[f.account_id]);
    let landed = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/accounts/{}/conversations/{conversation_id}/messages",
            f.double.base_url(),
            f.account_id
        ))
        .header("api_access_token", &admin)
        .json(&json!({
            "content": "perdi a resposta",
            "message_type": "incoming",
            "source_id": format!("WAID:{id}"),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(landed.status().as_u16(), 200);
    let posts = message_posts(&f);

    // The retry finds it instead of posting again.
    wait_for("the retry's look-up", 10, || {
        f.double
            .requests()
            .iter()
            .any(|r| {
                r.method == "GET"
                    && r.path
                        .ends_with(&format!("/conversations/{conversation_id}/messages"))
            })
            .then_some(())
    })
    .await;
    f.quiesce().await;
    assert_eq!(message_posts(&f), posts, "the bridge posted again");
    assert_eq!(times_posted(&f, &id), 1);

    // The link was remembered: a receipt for it finds the Chatwoot message.
    let next = text_from(&f, CUSTOMER, "e agora").await;
    assert_each_once(&f, &[id, next], 10).await;
}

#[tokio::test]
async fn the_instance_replays_its_own_dead_letters_and_only_its_own() {
    let f = Fixture::start_with(
        json!({}),
        Env::default().with("ZAPGATE_BRIDGE_MAX_ATTEMPTS", "2"),
    )
    .await;
    warm_up(&f, CUSTOMER).await;
    let replay_path = format!("/api/chatwoot/replay/{}", f.instance);

    f.double.set_down(true);
    let dead = text_from(&f, CUSTOMER, "volta depois").await;
    let info = wait_for_info(&f, 10, |info| {
        info["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("could not be delivered"))
    })
    .await;
    let last_error = info["last_error"].as_str().unwrap();
    assert!(last_error.contains(&replay_path), "{last_error}");
    f.double.set_down(false);
    assert_eq!(times_posted(&f, &dead), 0);

    // Another account's token finds no such instance and replays nothing.
    let (_, stranger) = f.server.create_account("globex", 1).await;
    f.server
        .post(&replay_path, Some(&stranger), json!({}))
        .await
        .assert_error(404, "instance not found");
    assert_eq!(times_posted(&f, &dead), 0);

    let reply = f.server.post(&replay_path, Some(&f.token), json!({})).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"message": "dead letters queued again", "replayed": 1})
    );
    assert_each_once(&f, &[dead], 10).await;
    assert_eq!(integration_info(&f).await["last_error"], json!(""));
    let reply = f.server.post(&replay_path, Some(&f.token), json!({})).await;
    assert_eq!(reply.body["replayed"], json!(0), "{}", reply.text);
}

#[tokio::test]
async fn a_message_that_keeps_failing_is_parked_shown_replayed_and_does_not_block_its_chat() {
    let f = Fixture::start_with(
        json!({}),
        Env::default().with("ZAPGATE_BRIDGE_MAX_ATTEMPTS", "2"),
    )
    .await;
    warm_up(&f, CUSTOMER).await;
    warm_up(&f, OTHER_CUSTOMER).await;
    assert_eq!(integration_info(&f).await["last_error"], json!(""));

    f.double.set_down(true);
    let dead = text_from(&f, CUSTOMER, "vai morrer").await;
    let info = wait_for_info(&f, 10, |info| {
        info["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("could not be delivered"))
    })
    .await;
    let last_error = info["last_error"].as_str().unwrap();
    assert!(last_error.starts_with("1 message(s)"), "{last_error}");
    assert!(last_error.contains("/admin/jobs/replay"), "{last_error}");
    f.double.set_down(false);

    // Neither another chat nor its own chat waits for the dead letter.
    let other = text_from(&f, OTHER_CUSTOMER, "outra conversa").await;
    let same = text_from(&f, CUSTOMER, "mesma conversa").await;
    assert_each_once(&f, &[other.clone(), same.clone()], 10).await;
    assert_eq!(times_posted(&f, &dead), 0);

    let reply = f
        .server
        .post("/admin/jobs/replay", Some(ADMIN_TOKEN), json!({}))
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert_eq!(reply.body["replayed"], json!(1), "{}", reply.text);
    assert_each_once(&f, &[dead.clone(), other, same], 10).await;
    let (_, contents) = conversation_of(&f, &dead);
    assert_eq!(
        contents.iter().filter(|c| *c == "vai morrer").count(),
        1,
        "{contents:?}"
    );
    assert_eq!(integration_info(&f).await["last_error"], json!(""));

    // Nothing is left to replay.
    let reply = f
        .server
        .post("/admin/jobs/replay", Some(ADMIN_TOKEN), json!({}))
        .await;
    assert_eq!(reply.body["replayed"], json!(0), "{}", reply.text);
}

async fn wait_for_info(f: &Fixture, secs: u64, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let info = integration_info(f).await;
        if check(&info) {
            return info;
        }
        assert!(
            Instant::now() < deadline,
            "the integration never showed it: {info}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Points the inbox's webhook at `url` through Chatwoot's API.
async fn set_inbox_webhook(f: &Fixture, admin: &str, url: &str) {
    let inbox_id = f.double.inboxes(f.account_id)[0]["id"].as_i64().unwrap();
    let reply = reqwest::Client::new()
        .patch(format!(
            "{}/api/v1/accounts/{}/inboxes/{inbox_id}",
            f.double.base_url(),
            f.account_id
        ))
        .header("api_access_token", admin)
        .json(&json!({"channel": {"webhook_url": url}}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
}

#[tokio::test]
async fn a_reply_whose_webhook_was_lost_is_sent_once_by_the_reconciler() {
    let f = Fixture::start_with(
        json!({}),
        Env::default()
            .with("ZAPGATE_RECONCILE_INTERVAL_SECS", "1")
            .with("ZAPGATE_RECONCILE_GRACE_SECS", "0"),
    )
    .await;
    let (_, conversation_id) = warm_up(&f, CUSTOMER).await;
    let (_, admin) =
        f.double
            .add_user("Ops", "ops@acme.test", Role::Administrator, &[f.account_id]);
    let webhook = f.double.inboxes(f.account_id)[0]["webhook_url"]
        .as_str()
        .unwrap()
        .to_owned();

    // A reply delivered normally is sent once, and passes of the reconciler
    // afterwards do not send it again.
    f.double.agent_reply(
        f.account_id,
        conversation_id,
        f.agent_id,
        "entregue pelo webhook",
        Vec::new(),
        false,
        None,
    );
    let dead = format!("http://127.0.0.1:{}/lost", crate::harness::free_port());
    wait_for_outbox(&f, &["entregue pelo webhook"], 10).await;

    // The next webhook goes nowhere (zapgate unreachable for Chatwoot).
    set_inbox_webhook(&f, &admin, &dead).await;
    let before = f.double.webhook_deliveries().len();
    f.double.agent_reply(
        f.account_id,
        conversation_id,
        f.agent_id,
        "webhook perdido",
        Vec::new(),
        false,
        None,
    );
    let lost = f
        .double
        .wait_for_deliveries(before + 1, Duration::from_secs(10))
        .await;
    assert!(lost[before].error.is_some(), "{:?}", lost[before]);
    set_inbox_webhook(&f, &admin, &webhook).await;

    wait_for_outbox(&f, &["entregue pelo webhook", "webhook perdido"], 10).await;
    // Several more reconciler passes: still once each.
    for _ in 0..3 {
        f.server.bridge().reconcile_all().await.unwrap();
        f.quiesce().await;
    }
    assert_eq!(
        outbox_texts(&f).await,
        ["entregue pelo webhook", "webhook perdido"]
    );
}

/// Waits until the outbox holds exactly `texts`, in order, each once.
async fn wait_for_outbox(f: &Fixture, texts: &[&str], secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let outbox = outbox_texts(f).await;
        if outbox.len() >= texts.len() {
            assert_eq!(outbox, texts, "the outbox");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the outbox never had {texts:?}: {outbox:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_webhook_delivered_twice_sends_the_reply_once() {
    let f = Fixture::start(json!({})).await;
    let (_, conversation_id) = warm_up(&f, CUSTOMER).await;
    let before = f.double.webhook_deliveries().len();
    f.double.agent_reply(
        f.account_id,
        conversation_id,
        f.agent_id,
        "uma vez só",
        Vec::new(),
        false,
        None,
    );
    wait_for_outbox(&f, &["uma vez só"], 10).await;
    let deliveries = f
        .double
        .wait_for_deliveries(before + 1, Duration::from_secs(5))
        .await;
    let delivery = deliveries[before..]
        .iter()
        .find(|d| d.event == "message_created")
        .expect("the message_created webhook")
        .clone();
    assert_eq!(delivery.status_code, Some(200), "{delivery:?}");

    // Chatwoot (or a proxy) delivers the same event again, signed anew.
    let secret = f.double.inboxes(f.account_id)[0]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let raw = serde_json::to_vec(&delivery.body).unwrap();
    for _ in 0..2 {
        let timestamp = chrono_now();
        let reply = reqwest::Client::new()
            .post(&delivery.url)
            .header("content-type", "application/json")
            .header(
                "X-Chatwoot-Signature",
                chatwoot_double::sign_webhook(&secret, timestamp, &raw),
            )
            .header("X-Chatwoot-Timestamp", timestamp.to_string())
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status().as_u16(), 200);
    }
    f.quiesce().await;
    assert_eq!(outbox_texts(&f).await, ["uma vez só"]);
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn a_refused_token_puts_the_integration_in_error_and_a_new_set_delivers_the_held_message_once()
 {
    let f = Fixture::start(json!({})).await;
    warm_up(&f, CUSTOMER).await;
    assert_eq!(instance_summary(&f).await["status"], json!("active"));

    // The token is revoked: the delivery and the live check both get 401.
    f.double.fail_next(2, 401);
    let id = text_from(&f, CUSTOMER, "token revogado").await;
    wait_for_summary_status(&f, "error").await;
    let info = integration_info(&f).await;
    assert_eq!(info["status"], json!("error"), "{info}");
    let last_error = info["last_error"].as_str().unwrap();
    assert!(
        last_error.contains("token") && last_error.contains("/api/chatwoot/set"),
        "{last_error}"
    );
    f.quiesce().await;
    assert_eq!(times_posted(&f, &id), 0, "delivered while refused");

    // The operator fixes the token: the held message goes, once.
    set_again(&f).await;
    assert_each_once(&f, std::slice::from_ref(&id), 10).await;
    assert_eq!(instance_summary(&f).await["status"], json!("active"));
    let info = integration_info(&f).await;
    assert_eq!(info["status"], json!("active"), "{info}");
    assert_eq!(info["last_error"], json!(""), "{info}");
}

async fn wait_for_summary_status(f: &Fixture, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let summary = instance_summary(f).await;
        if summary["status"] == json!(status) {
            return;
        }
        assert!(Instant::now() < deadline, "never {status}: {summary}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// [`Fixture::start_with`]'s steps on a PostgreSQL server; `None` when
/// PostgreSQL is unreachable and not required.
async fn postgres_fixture() -> Option<Fixture> {
    let double = ChatwootDouble::start().await;
    let account_id = double.add_account("Acme");
    let (agent_id, cw_token) =
        double.add_user("Ana", "ana@acme.test", Role::Administrator, &[account_id]);
    let env = Env::default()
        .with("ZAPGATE_ALLOW_PRIVATE_URLS", "true")
        .with("ZAPGATE_BRIDGE_RETRY_BASE_MS", "50")
        .with("ZAPGATE_BRIDGE_RETRY_MAX_MS", "400")
        .with("ZAPGATE_BRIDGE_POLL_MS", "20")
        .with("ZAPGATE_BRIDGE_WAIT_POLL_MS", "200")
        .with("ZAPGATE_RECONCILE_INTERVAL_SECS", "0")
        .with("ZAPGATE_RATE_LIMIT", "off");
    let server = TestServer::start_postgres(env).await?;
    let (_, account_token) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account_token, "suporte").await;
    server.pair(&token, "suporte", PHONE).await;
    let reply = server
        .post(
            "/api/chatwoot/set/suporte",
            Some(&token),
            json!({
                "chatwootBaseUrl": double.base_url(),
                "chatwootAccountId": account_id,
                "chatwootApiToken": cw_token,
            }),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.text);
    Some(Fixture {
        server,
        double,
        account_id,
        agent_id,
        token,
        instance: "suporte",
    })
}

#[tokio::test]
async fn a_round_trip_with_a_5xx_on_the_way_works_on_postgresql() {
    let Some(f) = postgres_fixture().await else {
        return;
    };
    let (first, conversation_id) = warm_up(&f, CUSTOMER).await;
    f.double.fail_next(2, 500);
    let second = text_from(&f, CUSTOMER, "no postgres").await;
    assert_each_once(&f, &[first, second], 10).await;

    f.double.agent_reply(
        f.account_id,
        conversation_id,
        f.agent_id,
        "resposta no postgres",
        Vec::new(),
        false,
        None,
    );
    wait_for_outbox(&f, &["resposta no postgres"], 10).await;
    f.quiesce().await;
    assert_eq!(outbox_texts(&f).await, ["resposta no postgres"]);
}

/// Shutdown while a delivery is in flight against a slow Chatwoot: `stop`
/// returns within the drain, not the call; the job is released (queued, no
/// lease, no attempt counted, the cut recorded), and after a restart on the
/// same data the message is in Chatwoot exactly once.
#[tokio::test]
async fn a_delivery_in_flight_at_shutdown_is_released_and_arrives_once_after_a_restart() {
    let env = Env::default()
        .with("ZAPGATE_BRIDGE_DRAIN_MS", "200")
        .with("ZAPGATE_BRIDGE_LEASE_SECS", "2");
    let f = Fixture::start_with(json!({}), env.clone()).await;
    warm_up(&f, CUSTOMER).await;
    f.double.set_delay(Duration::from_millis(1200));
    let before = message_posts(&f);
    let id = text_from(&f, CUSTOMER, "no meio do desligamento").await;
    wait_for("the post in flight", 10, || {
        (message_posts(&f) > before).then_some(())
    })
    .await;

    let Fixture {
        server,
        double,
        account_id,
        agent_id,
        token,
        instance,
    } = f;
    let stopping = Instant::now();
    let dir = server.stop_keeping_data().await;
    assert!(
        stopping.elapsed() < Duration::from_millis(1000),
        "stop waited {:?} for the slow call",
        stopping.elapsed()
    );
    let file = dir.path().join("zapgate.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let (status, attempts, locked, last_error): (String, i64, Option<i64>, String) =
        sqlx::query_as(
            "SELECT status, attempts, locked_until, last_error FROM bridge_jobs \
             WHERE direction = 'inbound'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(status, "queued");
    assert_eq!(attempts, 0, "shutdown counted an attempt");
    assert_eq!(locked, None);
    assert!(last_error.contains("shutdown"), "{last_error}");

    double.set_delay(Duration::ZERO);
    let mut vars = bridge_env();
    vars.0.extend(env.0);
    let server = TestServer::start_in(dir.path(), vars).await;
    let f = Fixture {
        server,
        double,
        account_id,
        agent_id,
        token,
        instance,
    };
    assert_each_once(&f, std::slice::from_ref(&id), 15).await;
    let (_, contents) = conversation_of(&f, &id);
    assert_eq!(
        contents.last().map(String::as_str),
        Some("no meio do desligamento")
    );
}
