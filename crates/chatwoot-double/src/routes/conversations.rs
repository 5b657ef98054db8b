//! `/conversations`: create (contact_inbox via inbox_id+contact_id or the
//! legacy `source_id` lookup, `lock_to_single_conversation`, per-account
//! `display_id`), list with counts meta, show, and `toggle_status`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use serde_json::{Value, json};

use super::{id_param, json_body, str_param};
use crate::Shared;
use crate::auth::Ctx;
use crate::errors::{ApiError, ApiResult, ok};
use crate::state::{Conversation, now};
use crate::views;

const STATUSES: &[&str] = &["open", "resolved", "pending", "snoozed"];
const PAGE_SIZE: usize = 25;

pub(crate) async fn create(ctx: Ctx, State(shared): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let body = json_body(&body)?;
    let mut st = shared.state.lock().expect("state lock");
    let t = now();
    let source_id = str_param(&body, "source_id");
    let ci_id = match (id_param(&body, "contact_id"), id_param(&body, "inbox_id")) {
        (Some(cid), Some(iid)) => {
            st.contact_in(ctx.account_id, cid)
                .ok_or_else(ApiError::not_found)?;
            st.inbox_in(ctx.account_id, iid)
                .ok_or_else(ApiError::not_found)?;
            st.build_contact_inbox(cid, iid, source_id.as_deref(), t)
                .map_err(|_| ApiError::unprocessable("source_id should be unique"))?
        }
        _ => {
            // Legacy: ContactInbox.find_by!(source_id:) (scoped to the account here).
            let sid = source_id.ok_or_else(ApiError::not_found)?;
            st.contact_inboxes
                .values()
                .find(|ci| {
                    ci.source_id == sid
                        && st
                            .inboxes
                            .get(&ci.inbox_id)
                            .is_some_and(|i| i.account_id == ctx.account_id)
                })
                .map(|ci| ci.id)
                .ok_or_else(ApiError::not_found)?
        }
    };
    let ci = st.contact_inboxes[&ci_id].clone();
    let lock = st
        .inboxes
        .get(&ci.inbox_id)
        .is_some_and(|i| i.lock_to_single_conversation());
    let existing = st
        .conversations
        .values()
        .filter(|c| lock && c.contact_inbox_id == ci_id)
        .max_by_key(|c| c.pk);
    if let Some(existing) = existing {
        return ok(views::conversation(&st, &shared.base_url, existing, false));
    }
    let status = match body.get("status") {
        None | Some(Value::Null) => "open".to_string(),
        Some(Value::String(s)) if s.is_empty() => "open".to_string(),
        Some(Value::String(s)) if STATUSES.contains(&s.as_str()) => s.clone(),
        // Rails enum assignment raises ArgumentError → unhandled → 500.
        Some(_) => return Err(ApiError::internal()),
    };
    let snoozed_until = if status == "snoozed" {
        id_param(&body, "snoozed_until")
    } else {
        None
    };
    let pk = st.next_id("conversations");
    let account = st
        .accounts
        .get_mut(&ctx.account_id)
        .expect("account exists");
    account.next_display_id += 1;
    let display_id = account.next_display_id;
    let obj = |k: &str| match body.get(k) {
        Some(v @ Value::Object(_)) => v.clone(),
        _ => json!({}),
    };
    st.conversations.insert(
        pk,
        Conversation {
            pk,
            account_id: ctx.account_id,
            display_id,
            inbox_id: ci.inbox_id,
            contact_id: ci.contact_id,
            contact_inbox_id: ci_id,
            status,
            uuid: uuid::Uuid::new_v4().to_string(),
            snoozed_until,
            custom_attributes: obj("custom_attributes"),
            additional_attributes: obj("additional_attributes"),
            created_at: t,
            updated_at: t,
            last_activity_at: t,
        },
    );
    ok(views::conversation(
        &st,
        &shared.base_url,
        &st.conversations[&pk],
        false,
    ))
}

pub(crate) async fn list(
    ctx: Ctx,
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let st = shared.state.lock().expect("state lock");
    let status = q.get("status").map(String::as_str).unwrap_or("open");
    let inbox = q.get("inbox_id").and_then(|s| s.parse::<i64>().ok());
    let page = q
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(1);
    let mut convs: Vec<&Conversation> = st
        .conversations
        .values()
        .filter(|c| c.account_id == ctx.account_id)
        .filter(|c| inbox.is_none_or(|i| c.inbox_id == i))
        .filter(|c| status == "all" || c.status == status)
        .collect();
    convs.sort_by(|a, b| {
        b.last_activity_at
            .partial_cmp(&a.last_activity_at)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.pk.cmp(&a.pk))
    });
    let all = convs.len();
    let payload: Vec<Value> = convs
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|c| views::conversation(&st, &shared.base_url, c, true))
        .collect();
    ok(json!({"data": {
        "meta": {"mine_count": 0, "assigned_count": 0, "unassigned_count": all, "all_count": all},
        "payload": payload,
    }}))
}

pub(crate) async fn show(ctx: Ctx, State(shared): State<Arc<Shared>>) -> ApiResult {
    let id = ctx.id("id")?;
    let st = shared.state.lock().expect("state lock");
    let pk = st
        .conversation_pk(ctx.account_id, id)
        .ok_or_else(ApiError::not_found)?;
    ok(views::conversation(
        &st,
        &shared.base_url,
        &st.conversations[&pk],
        true,
    ))
}

pub(crate) async fn toggle_status(
    ctx: Ctx,
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> ApiResult {
    let id = ctx.id("id")?;
    let body = json_body(&body)?;
    let mut st = shared.state.lock().expect("state lock");
    let pk = st
        .conversation_pk(ctx.account_id, id)
        .ok_or_else(ApiError::not_found)?;
    let current = st.conversations[&pk].status.clone();
    let target = match str_param(&body, "status") {
        Some(s) if STATUSES.contains(&s.as_str()) => s,
        Some(_) => return Err(ApiError::internal()),
        None if current == "open" => "resolved".to_string(),
        None => "open".to_string(),
    };
    let snoozed_until = id_param(&body, "snoozed_until");
    crate::ops::change_status(
        &shared,
        &mut st,
        pk,
        &target,
        snoozed_until,
        Some(ctx.user_id),
    );
    let c = &st.conversations[&pk];
    ok(json!({"meta": {}, "payload": {
        "success": true,
        "conversation_id": c.display_id,
        "current_status": c.status,
        "snoozed_until": c.snoozed_until,
    }}))
}
