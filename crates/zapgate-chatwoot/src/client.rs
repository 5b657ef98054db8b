//! The typed Chatwoot REST client. One place for the `api_access_token`
//! header, timeouts, the address guard and error classification. Shapes
//! follow Chatwoot as it really answers (`research/chatwoot-bridge.md` §1),
//! not its swagger: contact creation nests `payload.contact`, message types
//! are integers in responses, errors come as `{"error"}`, `{"message",
//! "attributes"}` or `{"errors":[...]}`.

use std::{fmt, time::Duration};

use reqwest::{Method, StatusCode, multipart};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};
use zapgate_core::token::Token;

use crate::guard::{AddressPolicy, PrivateAddress};

/// How much of Chatwoot's answer an error message carries.
pub const DETAIL_LIMIT: usize = 500;
/// Bodies we read from Chatwoot are bounded: a misconfigured URL could point
/// at something that streams forever.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// The longest `Retry-After` we honour: a receiver asking for more (or for
/// years, overflowing the retry time) is waited for this long.
pub const MAX_RETRY_AFTER_SECS: u64 = 3600;

/// Why a Chatwoot call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatwootError {
    /// The base URL resolves to an address the guard forbids.
    Private(PrivateAddress),
    /// No HTTP answer: refused, DNS, TLS.
    Unreachable(String),
    Timeout,
    /// Chatwoot answered with an error status; `body` is its raw text,
    /// `retry_after` its `Retry-After` seconds when it sent one (at most
    /// [`MAX_RETRY_AFTER_SECS`]).
    Status {
        status: u16,
        body: String,
        retry_after: Option<u64>,
    },
    /// A success status with a body that is not what Chatwoot sends (the URL
    /// is probably not a Chatwoot).
    Unexpected(String),
}

impl ChatwootError {
    /// The raw text after `Detail: `, cut at [`DETAIL_LIMIT`] characters.
    pub fn detail(&self) -> String {
        let raw = match self {
            Self::Private(p) => p.to_string(),
            Self::Unreachable(m) | Self::Unexpected(m) => m.clone(),
            Self::Timeout => "timed out".to_owned(),
            Self::Status { body, .. } => body.clone(),
        };
        raw.chars().take(DETAIL_LIMIT).collect()
    }

    /// Chatwoot's own error text, from whichever error shape it used.
    pub fn chatwoot_message(&self) -> Option<String> {
        let Self::Status { body, .. } = self else {
            return None;
        };
        let value: Value = serde_json::from_str(body).ok()?;
        if let Some(m) = value.get("error").and_then(Value::as_str) {
            return Some(m.to_owned());
        }
        if let Some(m) = value.get("message").and_then(Value::as_str) {
            return Some(m.to_owned());
        }
        let errors = value.get("errors")?.as_array()?;
        let texts: Vec<&str> = errors.iter().filter_map(Value::as_str).collect();
        (!texts.is_empty()).then(|| texts.join(", "))
    }

    /// The fields a 422 names (`attributes`), if any.
    pub fn invalid_attributes(&self) -> Vec<String> {
        let Self::Status { body, .. } = self else {
            return Vec::new();
        };
        serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v.get("attributes").cloned())
            .and_then(|a| serde_json::from_value::<Vec<String>>(a).ok())
            .unwrap_or_default()
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Worth retrying later: Chatwoot was away or overloaded.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable(_) | Self::Timeout => true,
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::Private(_) | Self::Unexpected(_) => false,
        }
    }
}

impl fmt::Display for ChatwootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status { status, .. } => {
                write!(f, "Chatwoot answered HTTP {status}: {}", self.detail())
            }
            _ => f.write_str(&self.detail()),
        }
    }
}

impl std::error::Error for ChatwootError {}

/// The shared HTTP machinery: one connection pool for every integration.
#[derive(Clone)]
pub struct ChatwootHttp {
    client: reqwest::Client,
    policy: AddressPolicy,
}

impl ChatwootHttp {
    /// `honor_proxy_env`: use `HTTP(S)_PROXY`/`ALL_PROXY` (the operator's
    /// `ZAPGATE_HONOR_PROXY_ENV`). Off by default: through a proxy the guard
    /// would see only the proxy's address, never the customer's host.
    pub fn new(
        policy: AddressPolicy,
        request_timeout: Duration,
        honor_proxy_env: bool,
    ) -> reqwest::Result<Self> {
        let mut builder = reqwest::Client::builder();
        if !honor_proxy_env {
            builder = builder.no_proxy();
        }
        let client = builder
            .dns_resolver(policy.resolver())
            // API calls never need a redirect; following one could leave
            // the customer's host.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(request_timeout)
            .connect_timeout(request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("zapgate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, policy })
    }

    /// A client resolving `name` to `addr` without asking the guard: a
    /// stand-in for a public host, to test what the guard does after it.
    #[cfg(test)]
    pub(crate) fn resolving(policy: AddressPolicy, name: &str, addr: std::net::SocketAddr) -> Self {
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(policy.resolver())
            .resolve(name, addr)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("test client");
        Self { client, policy }
    }

    pub fn policy(&self) -> AddressPolicy {
        self.policy
    }

    /// The guarded reqwest client itself, for downloads.
    pub(crate) fn raw(&self) -> &reqwest::Client {
        &self.client
    }

    /// A client for one Chatwoot account.
    pub fn account(&self, base_url: &str, account_id: i64, token: Token) -> ChatwootClient {
        ChatwootClient {
            http: self.clone(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            account_id,
            token,
            timeout: None,
        }
    }
}

#[derive(Clone)]
pub struct ChatwootClient {
    http: ChatwootHttp,
    base_url: String,
    account_id: i64,
    token: Token,
    /// Each call's own deadline, when shorter than the shared client's.
    timeout: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Inbox {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub inbox_identifier: Option<String>,
    /// Webhook signing secret; Chatwoot v4.13+, administrators only.
    #[serde(default)]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Contact {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub identifier: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Conversation {
    /// The per-account `display_id`.
    pub id: i64,
    pub inbox_id: i64,
    pub status: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub id: i64,
    #[serde(default)]
    pub content: Option<String>,
    /// 0 incoming, 1 outgoing, 2 activity, 3 template.
    pub message_type: i64,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub source_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub content_attributes: Value,
    /// Unix seconds.
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub sender: Option<Sender>,
    #[serde(default)]
    pub attachments: Vec<AttachmentInfo>,
}

/// Who wrote a message (an agent, a bot, the contact).
#[derive(Debug, Clone, Deserialize)]
pub struct Sender {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// A stored attachment: `data_url` redirects to the file.
#[derive(Debug, Clone, Deserialize)]
pub struct AttachmentInfo {
    pub data_url: String,
    #[serde(default)]
    pub file_type: Option<String>,
}

/// A contact to create.
#[derive(Debug, Clone, Default)]
pub struct NewContact {
    pub inbox_id: i64,
    pub name: Option<String>,
    /// E.164 with the `+`.
    pub phone_number: Option<String>,
    pub identifier: Option<String>,
    pub source_id: Option<String>,
}

/// A file to attach.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub file_name: String,
    pub mimetype: String,
    pub data: Vec<u8>,
}

/// A message to create.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub content: Option<String>,
    /// `incoming` or `outgoing`.
    pub message_type: &'static str,
    pub source_id: Option<String>,
    pub private: bool,
    pub content_attributes: Option<Value>,
    pub attachments: Vec<Attachment>,
}

#[derive(Deserialize)]
struct Payload<T> {
    payload: T,
}

#[derive(Deserialize)]
struct ContactCreated {
    contact: Contact,
    #[serde(default)]
    contact_inbox: Option<ContactInbox>,
}

#[derive(Deserialize)]
struct ContactInbox {
    source_id: String,
}

#[derive(Deserialize)]
struct ConversationList {
    data: Payload<Vec<Conversation>>,
}

impl ChatwootClient {
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Every call of this client gives up after `timeout` (connecting,
    /// waiting and reading the answer included).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/api/v1/accounts/{}{path}",
            self.base_url, self.account_id
        )
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, ChatwootError> {
        let url = self.url(path);
        let mut request = self.http.client.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.execute(&url, request).await
    }

    async fn execute<T: DeserializeOwned>(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ChatwootError> {
        let parsed = url::Url::parse(url)
            .map_err(|e| ChatwootError::Unreachable(format!("invalid URL {url}: {e}")))?;
        self.http
            .policy
            .check_url(&parsed)
            .map_err(ChatwootError::Private)?;
        let request = match self.timeout {
            Some(timeout) => request.timeout(timeout),
            None => request,
        };
        let response = request
            .header("api_access_token", self.token.expose())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|secs| secs.min(MAX_RETRY_AFTER_SECS));
        let bytes = read_bounded(response).await?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if !status.is_success() {
            return Err(ChatwootError::Status {
                status: status.as_u16(),
                body: text,
                retry_after,
            });
        }
        if status == StatusCode::NO_CONTENT {
            return serde_json::from_value(Value::Null)
                .map_err(|e| ChatwootError::Unexpected(e.to_string()));
        }
        serde_json::from_str(&text).map_err(|_| {
            ChatwootError::Unexpected(format!(
                "not a Chatwoot API answer (HTTP {}): {}",
                status.as_u16(),
                text.chars().take(200).collect::<String>()
            ))
        })
    }

    pub async fn create_inbox(
        &self,
        name: &str,
        webhook_url: &str,
    ) -> Result<Inbox, ChatwootError> {
        let body = json!({
            "name": name,
            "channel": {"type": "api", "webhook_url": webhook_url},
        });
        self.send(Method::POST, "/inboxes", Some(body)).await
    }

    pub async fn get_inbox(&self, inbox_id: i64) -> Result<Inbox, ChatwootError> {
        self.send(Method::GET, &format!("/inboxes/{inbox_id}"), None)
            .await
    }

    /// Points the inbox's webhook at `webhook_url` (empty: stop calling us).
    pub async fn set_inbox_webhook(
        &self,
        inbox_id: i64,
        webhook_url: &str,
    ) -> Result<Inbox, ChatwootError> {
        let body = json!({"channel": {"webhook_url": webhook_url}});
        self.send(Method::PATCH, &format!("/inboxes/{inbox_id}"), Some(body))
            .await
    }

    pub async fn rename_inbox(&self, inbox_id: i64, name: &str) -> Result<Inbox, ChatwootError> {
        let body = json!({"name": name});
        self.send(Method::PATCH, &format!("/inboxes/{inbox_id}"), Some(body))
            .await
    }

    /// Creates a contact; returns it and its contact-inbox `source_id`.
    pub async fn create_contact(
        &self,
        new: &NewContact,
    ) -> Result<(Contact, Option<String>), ChatwootError> {
        let mut body = json!({"inbox_id": new.inbox_id});
        for (key, value) in [
            ("name", &new.name),
            ("phone_number", &new.phone_number),
            ("identifier", &new.identifier),
            ("source_id", &new.source_id),
        ] {
            if let Some(value) = value {
                body[key] = json!(value);
            }
        }
        let created: Payload<ContactCreated> =
            self.send(Method::POST, "/contacts", Some(body)).await?;
        let source_id = created.payload.contact_inbox.map(|ci| ci.source_id);
        Ok((created.payload.contact, source_id))
    }

    /// Contacts whose `attribute` equals any of `values`: one clause per
    /// value joined with OR, because Chatwoot reads only the first value of
    /// a clause.
    pub async fn filter_contacts(
        &self,
        attribute: &str,
        values: &[String],
    ) -> Result<Vec<Contact>, ChatwootError> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let last = values.len() - 1;
        let clauses: Vec<Value> = values
            .iter()
            .enumerate()
            .map(|(i, value)| {
                json!({
                    "attribute_key": attribute,
                    "filter_operator": "equal_to",
                    "values": [value],
                    "query_operator": if i == last { Value::Null } else { json!("OR") },
                })
            })
            .collect();
        let found: Payload<Vec<Contact>> = self
            .send(
                Method::POST,
                "/contacts/filter",
                Some(json!({"payload": clauses})),
            )
            .await?;
        Ok(found.payload)
    }

    pub async fn update_contact(
        &self,
        contact_id: i64,
        changes: Value,
    ) -> Result<Contact, ChatwootError> {
        let updated: Payload<Contact> = self
            .send(
                Method::PUT,
                &format!("/contacts/{contact_id}"),
                Some(changes),
            )
            .await?;
        Ok(updated.payload)
    }

    /// Merges `mergee` into `base`; the mergee is deleted.
    pub async fn merge_contacts(&self, base: i64, mergee: i64) -> Result<(), ChatwootError> {
        let body = json!({"base_contact_id": base, "mergee_contact_id": mergee});
        let _: Value = self
            .send(Method::POST, "/actions/contact_merge", Some(body))
            .await?;
        Ok(())
    }

    pub async fn create_contact_inbox(
        &self,
        contact_id: i64,
        inbox_id: i64,
        source_id: &str,
    ) -> Result<String, ChatwootError> {
        let body = json!({"inbox_id": inbox_id, "source_id": source_id});
        let created: ContactInbox = self
            .send(
                Method::POST,
                &format!("/contacts/{contact_id}/contact_inboxes"),
                Some(body),
            )
            .await?;
        Ok(created.source_id)
    }

    /// The contact's conversations in every inbox (Chatwoot returns the 20 latest).
    pub async fn contact_conversations(
        &self,
        contact_id: i64,
    ) -> Result<Vec<Conversation>, ChatwootError> {
        let list: Payload<Vec<Conversation>> = self
            .send(
                Method::GET,
                &format!("/contacts/{contact_id}/conversations"),
                None,
            )
            .await?;
        Ok(list.payload)
    }

    pub async fn list_conversations(
        &self,
        inbox_id: i64,
        status: &str,
        page: u32,
    ) -> Result<Vec<Conversation>, ChatwootError> {
        let list: ConversationList = self
            .send(
                Method::GET,
                &format!("/conversations?inbox_id={inbox_id}&status={status}&page={page}"),
                None,
            )
            .await?;
        Ok(list.data.payload)
    }

    pub async fn create_conversation(
        &self,
        inbox_id: i64,
        contact_id: i64,
        source_id: &str,
        status: &str,
    ) -> Result<Conversation, ChatwootError> {
        let body = json!({
            "inbox_id": inbox_id,
            "contact_id": contact_id,
            "source_id": source_id,
            "status": status,
        });
        self.send(Method::POST, "/conversations", Some(body)).await
    }

    pub async fn toggle_status(
        &self,
        conversation_id: i64,
        status: &str,
    ) -> Result<(), ChatwootError> {
        let _: Value = self
            .send(
                Method::POST,
                &format!("/conversations/{conversation_id}/toggle_status"),
                Some(json!({"status": status})),
            )
            .await?;
        Ok(())
    }

    /// JSON without attachments, multipart with them.
    pub async fn create_message(
        &self,
        conversation_id: i64,
        message: NewMessage,
    ) -> Result<Message, ChatwootError> {
        let path = format!("/conversations/{conversation_id}/messages");
        if message.attachments.is_empty() {
            let mut body = json!({
                "message_type": message.message_type,
                "private": message.private,
            });
            if let Some(content) = message.content {
                body["content"] = json!(content);
            }
            if let Some(source_id) = message.source_id {
                body["source_id"] = json!(source_id);
            }
            if let Some(attributes) = message.content_attributes {
                body["content_attributes"] = attributes;
            }
            return self.send(Method::POST, &path, Some(body)).await;
        }
        let mut form = multipart::Form::new()
            .text("message_type", message.message_type)
            .text("private", message.private.to_string());
        if let Some(content) = message.content {
            form = form.text("content", content);
        }
        if let Some(source_id) = message.source_id {
            form = form.text("source_id", source_id);
        }
        if let Some(attributes) = message.content_attributes {
            // Multipart carries content_attributes as a JSON string.
            form = form.text("content_attributes", attributes.to_string());
        }
        for attachment in message.attachments {
            let part = multipart::Part::bytes(attachment.data)
                .file_name(attachment.file_name)
                .mime_str(&attachment.mimetype)
                .map_err(|e| ChatwootError::Unexpected(format!("bad mimetype: {e}")))?;
            form = form.part("attachments[]", part);
        }
        let url = self.url(&path);
        let request = self.http.client.post(&url).multipart(form);
        self.execute(&url, request).await
    }

    /// Messages after `after_id`, oldest first (Chatwoot returns up to 100).
    /// Chatwoot's `after` is inclusive (`id >= after`), so the message
    /// `after_id` itself is dropped here.
    pub async fn messages_after(
        &self,
        conversation_id: i64,
        after_id: i64,
    ) -> Result<Vec<Message>, ChatwootError> {
        let list: Payload<Vec<Message>> = self
            .send(
                Method::GET,
                &format!("/conversations/{conversation_id}/messages?after={after_id}"),
                None,
            )
            .await?;
        let mut messages = list.payload;
        messages.retain(|m| m.id > after_id);
        Ok(messages)
    }

    /// The conversation's latest messages (Chatwoot returns 20), oldest first.
    pub async fn latest_messages(
        &self,
        conversation_id: i64,
    ) -> Result<Vec<Message>, ChatwootError> {
        let list: Payload<Vec<Message>> = self
            .send(
                Method::GET,
                &format!("/conversations/{conversation_id}/messages"),
                None,
            )
            .await?;
        Ok(list.payload)
    }

    /// The 20 messages before `before_id`, oldest first.
    pub async fn messages_before(
        &self,
        conversation_id: i64,
        before_id: i64,
    ) -> Result<Vec<Message>, ChatwootError> {
        let list: Payload<Vec<Message>> = self
            .send(
                Method::GET,
                &format!("/conversations/{conversation_id}/messages?before={before_id}"),
                None,
            )
            .await?;
        Ok(list.payload)
    }

    /// `sent`, `delivered`, `read` or `failed` (with `external_error`).
    pub async fn update_message_status(
        &self,
        conversation_id: i64,
        message_id: i64,
        status: &str,
        external_error: Option<&str>,
    ) -> Result<(), ChatwootError> {
        let mut body = json!({"status": status});
        if let Some(error) = external_error {
            body["external_error"] = json!(error);
        }
        let _: Value = self
            .send(
                Method::PATCH,
                &format!("/conversations/{conversation_id}/messages/{message_id}"),
                Some(body),
            )
            .await?;
        Ok(())
    }

    /// Chatwoot's own deletion: the content becomes "This message was
    /// deleted" and `content_attributes.deleted` is set.
    pub async fn delete_message(
        &self,
        conversation_id: i64,
        message_id: i64,
    ) -> Result<(), ChatwootError> {
        let _: Value = self
            .send(
                Method::DELETE,
                &format!("/conversations/{conversation_id}/messages/{message_id}"),
                None,
            )
            .await?;
        Ok(())
    }
}

/// Reads at most [`MAX_RESPONSE_BYTES`].
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, ChatwootError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(ChatwootError::Unexpected(format!(
                "response larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transport error: the guard's refusal, a timeout, or no answer.
pub(crate) fn classify(err: reqwest::Error) -> ChatwootError {
    if err.is_timeout() {
        return ChatwootError::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(private) = e.downcast_ref::<PrivateAddress>() {
            return ChatwootError::Private(*private);
        }
        source = e.source();
    }
    ChatwootError::Unreachable(error_chain(&err))
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
