//! `/contacts`, `/contacts/filter`, `/contacts/search`, contact_inboxes,
//! contact conversations and `/actions/contact_merge`, with Chatwoot's model
//! validations (e164 regex without `^`, per-account uniqueness of phone,
//! identifier and case-insensitive email), the nested create payload, the
//! "resolved contacts only" lookup rule and the filter's `values[0]` quirk.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use serde_json::{Map, Value, json};

use super::{bool_param, id_param, json_body, str_param};
use crate::Shared;
use crate::auth::Ctx;
use crate::errors::{ApiError, ApiResult, ok};
use crate::state::{Contact, State as Db, now};
use crate::views;

const PAGE_SIZE: usize = 15;

/// Chatwoot's `/\+[1-9]\d{1,14}\z/`: no `^` anchor, so it only has to END
/// with `+`, a non-zero digit and 1–14 more digits.
pub(crate) fn is_e164(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = b.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    if digits < 2 || digits >= b.len() {
        return false;
    }
    let plus = b.len() - digits - 1;
    if b[plus] != b'+' {
        return false;
    }
    // Any run of 2..=15 digits right after some '+' that reaches the end.
    // With more than 15 trailing digits there is no '+' right before a
    // suffix of ≤15 digits, so it fails.
    digits <= 15 && b[plus + 1] != b'0'
}

fn opt_str(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Validates a contact the way `Contact` does; `Err` = 422 RecordInvalid.
fn validate(db: &Db, c: &Contact) -> Result<(), ApiError> {
    let others = || {
        db.contacts
            .values()
            .filter(move |o| o.account_id == c.account_id && o.id != c.id)
    };
    let mut errors: Vec<(&str, String)> = Vec::new();
    let email = c.email.as_deref().filter(|e| !e.is_empty());
    if email.is_some_and(|email| {
        others().any(|o| {
            o.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
    }) {
        errors.push(("email", "Email has already been taken".into()));
    }
    let ident = c.identifier.as_deref().filter(|e| !e.is_empty());
    if ident.is_some_and(|ident| others().any(|o| o.identifier.as_deref() == Some(ident))) {
        errors.push(("identifier", "Identifier has already been taken".into()));
    }
    if let Some(phone) = c.phone_number.as_deref().filter(|e| !e.is_empty()) {
        if others().any(|o| o.phone_number.as_deref() == Some(phone)) {
            errors.push(("phone_number", "Phone number has already been taken".into()));
        }
        if !is_e164(phone) {
            errors.push((
                "phone_number",
                "Phone number should be in e164 format".into(),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&errors))
    }
}

fn merge_obj(target: &mut Value, src: Option<&Value>) {
    if let (Some(t), Some(Value::Object(s))) = (target.as_object_mut(), src) {
        for (k, v) in s {
            t.insert(k.clone(), v.clone());
        }
    }
}

/// Applies the permitted contact params of a create/update body.
fn apply(c: &mut Contact, body: &Map<String, Value>) {
    if let Some(v) = body.get("name") {
        c.name = v.as_str().unwrap_or_default().to_string();
    }
    if body.contains_key("email") {
        c.email = opt_str(body.get("email"));
    }
    if body.contains_key("phone_number") {
        c.phone_number = opt_str(body.get("phone_number"));
    }
    if body.contains_key("identifier") {
        c.identifier = opt_str(body.get("identifier"));
    }
    if let Some(b) = bool_param(body, "blocked") {
        c.blocked = b;
    }
    merge_obj(
        &mut c.additional_attributes,
        body.get("additional_attributes"),
    );
    merge_obj(&mut c.custom_attributes, body.get("custom_attributes"));
    // `process_avatar_from_url`: only a present value queues the fetch, and
    // the job drops anything but an http(s) URL without a word.
    if let Some(url) = body
        .get("avatar_url")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
    {
        c.avatar_url = Some(url.to_owned());
    }
}

pub(crate) async fn create(ctx: Ctx, State(shared): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let body = json_body(&body)?;
    let mut st = shared.state.lock().expect("state lock");
    let t = now();
    let mut c = Contact {
        id: 0,
        account_id: ctx.account_id,
        name: String::new(),
        email: None,
        phone_number: None,
        identifier: None,
        additional_attributes: json!({}),
        custom_attributes: json!({}),
        blocked: false,
        created_at: t,
        last_activity_at: None,
        avatar_url: None,
    };
    apply(&mut c, &body);
    validate(&st, &c)?;
    // Transaction: the inbox lookup and contact_inbox happen after save and
    // roll the contact back when they fail.
    let inbox_id = id_param(&body, "inbox_id");
    if let Some(iid) = inbox_id {
        st.inbox_in(ctx.account_id, iid)
            .ok_or_else(ApiError::not_found)?;
    }
    let source_id = str_param(&body, "source_id");
    let taken = |iid: i64, sid: &str| {
        st.contact_inboxes
            .values()
            .any(|ci| ci.inbox_id == iid && ci.source_id == sid)
    };
    let conflict = inbox_id
        .zip(source_id.as_deref())
        .is_some_and(|(iid, sid)| taken(iid, sid));
    if conflict {
        return Err(ApiError::invalid(&[(
            "source_id",
            "Source has already been taken".into(),
        )]));
    }
    c.id = st.next_id("contacts");
    let id = c.id;
    st.contacts.insert(id, c);
    let mut contact_inbox = Value::Null;
    if let Some(iid) = inbox_id {
        let ci = st
            .build_contact_inbox(id, iid, source_id.as_deref(), t)
            .map_err(|_| ApiError::internal())?;
        let ci = &st.contact_inboxes[&ci];
        contact_inbox = json!({
            "inbox": views::inbox_model(&st.inboxes[&iid]),
            "source_id": ci.source_id,
        });
    }
    let contact = views::contact(&st, &st.contacts[&id]);
    ok(json!({"payload": {"contact": contact, "contact_inbox": contact_inbox}}))
}

pub(crate) async fn show(ctx: Ctx, State(shared): State<Arc<Shared>>) -> ApiResult {
    let id = ctx.id("id")?;
    let st = shared.state.lock().expect("state lock");
    let c = st
        .contact_in(ctx.account_id, id)
        .ok_or_else(ApiError::not_found)?;
    ok(json!({"payload": views::contact(&st, c)}))
}

pub(crate) async fn update(ctx: Ctx, State(shared): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let id = ctx.id("id")?;
    let body = json_body(&body)?;
    let mut st = shared.state.lock().expect("state lock");
    let mut c = st
        .contact_in(ctx.account_id, id)
        .cloned()
        .ok_or_else(ApiError::not_found)?;
    apply(&mut c, &body);
    validate(&st, &c)?;
    st.contacts.insert(id, c);
    ok(json!({"payload": views::contact(&st, &st.contacts[&id])}))
}

fn page_of(q: &HashMap<String, String>) -> usize {
    q.get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(1)
}

fn paged(st: &Db, mut found: Vec<&Contact>, page: usize) -> Value {
    found.sort_by(|a, b| {
        b.last_activity_at
            .partial_cmp(&a.last_activity_at)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.id.cmp(&b.id))
    });
    let count = found.len();
    let payload: Vec<Value> = found
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|c| views::contact(st, c))
        .collect();
    json!({"meta": {"count": count, "current_page": page}, "payload": payload})
}

pub(crate) async fn list(
    ctx: Ctx,
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let st = shared.state.lock().expect("state lock");
    let found: Vec<&Contact> = st
        .contacts
        .values()
        .filter(|c| c.account_id == ctx.account_id && c.is_resolved())
        .collect();
    ok(paged(&st, found, page_of(&q)))
}

pub(crate) async fn search(
    ctx: Ctx,
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let Some(term) = q.get("q").filter(|s| !s.is_empty()) else {
        return Err(ApiError::unprocessable(
            "Specify search string with parameter q",
        ));
    };
    let lower = term.to_lowercase();
    let ilike = |v: &Option<String>| {
        v.as_deref()
            .is_some_and(|s| s.to_lowercase().contains(&lower))
    };
    let st = shared.state.lock().expect("state lock");
    let found: Vec<&Contact> = st
        .contacts
        .values()
        .filter(|c| c.account_id == ctx.account_id && c.is_resolved())
        .filter(|c| {
            c.name.to_lowercase().contains(&lower)
                || ilike(&c.email)
                || ilike(&c.phone_number)
                // identifier uses LIKE (case-sensitive) in Chatwoot.
                || c.identifier.as_deref().is_some_and(|s| s.contains(term.as_str()))
        })
        .collect();
    ok(paged(&st, found, page_of(&q)))
}

const FILTER_KEYS: &[&str] = &["name", "email", "phone_number", "identifier"];
const FILTER_OPS: &[&str] = &[
    "equal_to",
    "not_equal_to",
    "contains",
    "does_not_contain",
    "starts_with",
];

struct Clause {
    key: String,
    op: String,
    value: String,
    join_or: bool,
}

fn clause_matches(c: &Contact, cl: &Clause) -> bool {
    let field = match cl.key.as_str() {
        "name" => Some(c.name.clone()),
        "email" => c.email.clone(),
        "phone_number" => c.phone_number.clone(),
        _ => c.identifier.clone(),
    };
    // Text comparisons are case-insensitive (LOWER(...) on both sides).
    let f = field.map(|s| s.to_lowercase());
    let v = cl.value.to_lowercase();
    match cl.op.as_str() {
        "equal_to" => f.as_deref() == Some(v.as_str()),
        "not_equal_to" => f.as_deref() != Some(v.as_str()),
        "contains" => f.is_some_and(|s| s.contains(&v)),
        "does_not_contain" => !f.is_some_and(|s| s.contains(&v)),
        _ => f.is_some_and(|s| s.starts_with(&v)),
    }
}

pub(crate) async fn filter(
    ctx: Ctx,
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    let Some(Value::Array(items)) = body.get("payload") else {
        return Err(ApiError::param_missing("payload"));
    };
    let mut clauses = Vec::new();
    for item in items {
        let key = item
            .get("attribute_key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !FILTER_KEYS.contains(&key.as_str()) {
            return Err(ApiError::unprocessable(format!(
                "Invalid attribute key - [{key}]"
            )));
        }
        let op = item
            .get("filter_operator")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !FILTER_OPS.contains(&op.as_str()) || (op == "starts_with" && key != "phone_number") {
            return Err(ApiError::unprocessable(format!(
                "Invalid operator. The allowed operators for {key} are [equal_to,not_equal_to,contains,does_not_contain]."
            )));
        }
        // Quirk: only values[0] is used.
        let mut value = item
            .get("values")
            .and_then(|v| match v {
                Value::Array(a) => a.first().cloned(),
                other => Some(other.clone()),
            })
            .and_then(|v| opt_str(Some(&v)))
            .unwrap_or_default();
        if key == "phone_number" && !value.starts_with('+') {
            value = format!("+{value}");
        }
        let join_or = item
            .get("query_operator")
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case("or"));
        clauses.push(Clause {
            key,
            op,
            value,
            join_or,
        });
    }
    let st = shared.state.lock().expect("state lock");
    let found: Vec<&Contact> = st
        .contacts
        .values()
        .filter(|c| c.account_id == ctx.account_id && c.is_resolved())
        .filter(|c| eval(c, &clauses))
        .collect();
    ok(paged(&st, found, page_of(&q)))
}

/// SQL precedence: AND binds tighter than OR.
fn eval(c: &Contact, clauses: &[Clause]) -> bool {
    if clauses.is_empty() {
        return true;
    }
    let mut any = false;
    let mut group = true;
    for (i, cl) in clauses.iter().enumerate() {
        group = group && clause_matches(c, cl);
        let last = i + 1 == clauses.len();
        if last || cl.join_or {
            any = any || group;
            group = true;
        }
    }
    any
}

pub(crate) async fn create_contact_inbox(
    ctx: Ctx,
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> ApiResult {
    let id = ctx.id("id")?;
    let body = json_body(&body)?;
    let mut st = shared.state.lock().expect("state lock");
    st.contact_in(ctx.account_id, id)
        .ok_or_else(ApiError::not_found)?;
    let iid = id_param(&body, "inbox_id")
        .filter(|iid| st.inbox_in(ctx.account_id, *iid).is_some())
        .ok_or_else(ApiError::not_found)?;
    let source_id = str_param(&body, "source_id");
    let ci = st
        .build_contact_inbox(id, iid, source_id.as_deref(), now())
        .map_err(|_| ApiError::invalid(&[("source_id", "Source has already been taken".into())]))?;
    let ci = &st.contact_inboxes[&ci];
    ok(json!({"source_id": ci.source_id, "inbox": views::inbox_slim(&st.inboxes[&iid])}))
}

pub(crate) async fn conversations(ctx: Ctx, State(shared): State<Arc<Shared>>) -> ApiResult {
    let id = ctx.id("id")?;
    let st = shared.state.lock().expect("state lock");
    st.contact_in(ctx.account_id, id)
        .ok_or_else(ApiError::not_found)?;
    let mut convs: Vec<_> = st
        .conversations
        .values()
        .filter(|c| c.account_id == ctx.account_id && c.contact_id == id)
        .collect();
    convs.sort_by(|a, b| {
        b.last_activity_at
            .partial_cmp(&a.last_activity_at)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.pk.cmp(&a.pk))
    });
    let payload: Vec<Value> = convs
        .into_iter()
        .take(20)
        .map(|c| views::conversation(&st, &shared.base_url, c, true))
        .collect();
    ok(json!({"payload": payload}))
}

pub(crate) async fn merge(ctx: Ctx, State(shared): State<Arc<Shared>>, body: Bytes) -> ApiResult {
    let body = json_body(&body)?;
    let base_id = id_param(&body, "base_contact_id")
        .ok_or_else(|| ApiError::param_missing("base_contact_id"))?;
    let mergee_id = id_param(&body, "mergee_contact_id")
        .ok_or_else(|| ApiError::param_missing("mergee_contact_id"))?;
    let mut st = shared.state.lock().expect("state lock");
    st.contact_in(ctx.account_id, base_id)
        .ok_or_else(ApiError::not_found)?;
    let mergee = st
        .contact_in(ctx.account_id, mergee_id)
        .cloned()
        .ok_or_else(ApiError::not_found)?;
    if base_id == mergee_id {
        return Err(ApiError::unprocessable(
            "mergee contact is the same as base contact",
        ));
    }
    st.contacts.remove(&mergee_id);
    for conv in st.conversations.values_mut() {
        if conv.contact_id == mergee_id {
            conv.contact_id = base_id;
        }
    }
    for ci in st.contact_inboxes.values_mut() {
        if ci.contact_id == mergee_id {
            ci.contact_id = base_id;
        }
    }
    for m in st.messages.values_mut() {
        if m.sender == crate::state::Sender::Contact(mergee_id) {
            m.sender = crate::state::Sender::Contact(base_id);
        }
    }
    let base = st.contacts.get_mut(&base_id).expect("base exists");
    // Base wins; the mergee only fills blanks.
    let blank = |v: &Option<String>| v.as_deref().is_none_or(str::is_empty);
    if base.name.is_empty() {
        base.name = mergee.name;
    }
    if blank(&base.email) {
        base.email = mergee.email;
    }
    if blank(&base.phone_number) {
        base.phone_number = mergee.phone_number;
    }
    if blank(&base.identifier) {
        base.identifier = mergee.identifier;
    }
    for (target, src) in [
        (&mut base.custom_attributes, &mergee.custom_attributes),
        (
            &mut base.additional_attributes,
            &mergee.additional_attributes,
        ),
    ] {
        if let (Some(t), Some(s)) = (target.as_object_mut(), src.as_object()) {
            for (k, v) in s {
                t.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    let out = views::contact(&st, &st.contacts[&base_id]);
    ok(out)
}
