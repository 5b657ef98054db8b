//! The operator's API: accounts. Off unless `ZAPGATE_ADMIN_TOKEN` is set.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{delete, get, post},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zapgate_core::{Error, account::Account, account::NewAccount, time::rfc3339, token::Token};

use crate::{
    AppState,
    auth::Admin,
    envelope::{ErrorOut, MessageOut},
    error::ApiResult,
    extract::JsonBody,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/accounts", get(list).post(create))
        .route("/admin/accounts/{id}", delete(remove))
        .route("/admin/jobs/replay", post(replay))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateAccountIn {
    #[schema(min_length = 1, max_length = 128, pattern = r"\S")]
    name: String,
    #[schema(maximum = 4294967295_u64, format = Int64)]
    max_instances: u32,
    /// Requests per minute for this account's tokens; the server default when absent.
    #[schema(minimum = 1, maximum = 4294967295_u64, format = Int64)]
    rate_limit_per_minute: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountOut {
    id: String,
    name: String,
    max_instances: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit_per_minute: Option<u32>,
    created_at: String,
}

impl From<Account> for AccountOut {
    fn from(a: Account) -> Self {
        Self {
            id: a.id,
            name: a.name,
            max_instances: a.max_instances,
            rate_limit_per_minute: a.rate_limit_per_minute,
            created_at: rfc3339(a.created_at_ms),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountCreatedOut {
    success: bool,
    message: &'static str,
    account: AccountOut,
    /// The TokenAccount, shown this once and never again.
    token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountsOut {
    success: bool,
    message: String,
    accounts: Vec<AccountOut>,
}

/// Create an account; its TokenAccount is in the response, once.
#[utoipa::path(post, path = "/admin/accounts", tag = "admin",
    request_body = CreateAccountIn,
    responses((status = 201, body = AccountCreatedOut), (status = 400, body = ErrorOut), (status = 401, body = ErrorOut)),
    security(("admin" = []))
)]
async fn create(
    State(state): State<AppState>,
    _: Admin,
    JsonBody(body): JsonBody<CreateAccountIn>,
) -> ApiResult<(StatusCode, Json<AccountCreatedOut>)> {
    let new = NewAccount::parse(&body.name, body.max_instances, body.rate_limit_per_minute)?;
    let token = Token::generate_account();
    let account = state.store.create_account(&new, &token).await?;
    tracing::info!(account_id = %account.id, "account created");
    Ok((
        StatusCode::CREATED,
        Json(AccountCreatedOut {
            success: true,
            message: "Account created",
            account: account.into(),
            token: token.expose().to_owned(),
        }),
    ))
}

/// List accounts (never their tokens).
#[utoipa::path(get, path = "/admin/accounts", tag = "admin",
    responses((status = 200, body = AccountsOut), (status = 401, body = ErrorOut)),
    security(("admin" = []))
)]
async fn list(State(state): State<AppState>, _: Admin) -> ApiResult<Json<AccountsOut>> {
    let accounts = state.store.list_accounts().await?;
    let message = match accounts.len() {
        1 => "1 Account found".to_owned(),
        n => format!("{n} Accounts found"),
    };
    Ok(Json(AccountsOut {
        success: true,
        message,
        accounts: accounts.into_iter().map(AccountOut::from).collect(),
    }))
}

/// Delete an account with all its instances.
#[utoipa::path(delete, path = "/admin/accounts/{id}", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 200, body = MessageOut), (status = 401, body = ErrorOut), (status = 404, description = "Account not found", body = ErrorOut)),
    security(("admin" = []))
)]
async fn remove(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<MessageOut>> {
    if !state.accounts.delete(&id).await? {
        return Err(Error::not_found("Account not found").into());
    }
    Ok(Json(MessageOut::new("Account deleted")))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
#[schema(as = admin::ReplayIn)]
pub struct ReplayIn {
    /// Only this integration's dead letters (`int_...`); all when absent.
    integration_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayOut {
    success: bool,
    message: String,
    replayed: u64,
}

/// Puts dead-lettered bridge deliveries back in the queue.
#[utoipa::path(post, path = "/admin/jobs/replay", tag = "admin",
    request_body = ReplayIn,
    responses((status = 200, body = ReplayOut), (status = 401, body = ErrorOut)),
    security(("admin" = []))
)]
async fn replay(
    State(state): State<AppState>,
    _: Admin,
    JsonBody(body): JsonBody<ReplayIn>,
) -> ApiResult<Json<ReplayOut>> {
    let replayed = state
        .store
        .replay_dead_jobs(body.integration_id.as_deref(), zapgate_core::time::now_ms())
        .await?;
    tracing::info!(replayed, "dead letters replayed");
    Ok(Json(ReplayOut {
        success: true,
        message: format!("{replayed} jobs replayed"),
        replayed,
    }))
}
