//! RyzeAPI's profile module (`/api/profile/*`): the account's profile (or
//! another's), and its privacy settings grouped as `visibility`, `privacy`
//! and `permissions`. Either token, ownership checked.

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use zapgate_core::{
    Error,
    groups::{
        MAX_ABOUT_LEN, MAX_PROFILE_NAME_LEN, Privacy, PrivacyCategory, Profile, ProfileUpdate,
    },
    jid::{Jid, LID_SERVER, USER_SERVER},
};

use crate::{
    AppState,
    auth::Caller,
    envelope::ErrorOut,
    error::ApiResult,
    extract::{JsonBody, QueryParams},
    routes::group::picture,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/profile/getAccount/{instance}", get(get_account))
        .route("/api/profile/account/{instance}", post(update_account))
        .route("/api/profile/getPrivacy/{instance}", get(get_privacy))
        .route(
            "/api/profile/privacy/{instance}",
            get(get_privacy_alias).post(set_privacy),
        )
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileOut {
    jid: Option<String>,
    /// Digits.
    phone_number: Option<String>,
    lid: Option<String>,
    name: Option<String>,
    about: Option<String>,
    picture_url: Option<String>,
    is_business: bool,
}

impl From<Profile> for ProfileOut {
    fn from(p: Profile) -> Self {
        Self {
            jid: p.jid.map(|j| j.to_string()),
            phone_number: p.phone_number,
            lid: p.lid.map(|j| j.to_string()),
            name: p.name,
            about: p.about,
            picture_url: p.picture_url,
            is_business: p.is_business,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileReply {
    success: bool,
    profile: ProfileOut,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountQuery {
    /// A phone number or an `@lid`; the own account without it.
    #[param(value_type = Option<crate::openapi::PersonOrBlank>)]
    number: Option<String>,
}

/// The account's own profile, or another account's by number or `@lid`.
#[utoipa::path(get, path = "/api/profile/getAccount/{instance}", tag = "profile",
    params(("instance" = String, Path), AccountQuery),
    responses(
        (status = 200, body = ProfileReply),
        (status = 400, description = "invalid query: number ...", body = ErrorOut),
        (status = 404, description = "Instance not found / Contact not found", body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn get_account(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<AccountQuery>,
) -> ApiResult<Json<ProfileReply>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let who = match query
        .number
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        Some(raw) => Some(
            Jid::parse(raw)
                .ok()
                .filter(|j| j.server == USER_SERVER || j.server == LID_SERVER)
                .ok_or_else(|| {
                    Error::bad_request("invalid query: number must be a phone number or an @lid")
                })?,
        ),
        None => None,
    };
    let profile = state
        .instances
        .whatsapp()
        .profile(&instance.id, who.as_ref())
        .await?;
    Ok(Json(ProfileReply {
        success: true,
        profile: profile.into(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AccountIn {
    /// The push name others see.
    #[schema(min_length = 1, max_length = 25)]
    name: Option<String>,
    /// The "about" text.
    #[schema(min_length = 1, max_length = 139)]
    about: Option<String>,
    /// A JPEG: an http(s) URL or a base64 data URL.
    picture: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountReply {
    success: bool,
    message: &'static str,
    profile: ProfileOut,
}

fn bounded(field: &str, raw: Option<String>, max: usize) -> Result<Option<String>, Error> {
    match raw {
        Some(text) if text.trim().is_empty() || text.chars().count() > max => {
            Err(Error::bad_request(format!(
                "invalid body: {field} must be 1 to {max} characters"
            )))
        }
        other => Ok(other),
    }
}

/// Changes the account's name, about text or picture.
#[utoipa::path(post, path = "/api/profile/account/{instance}", tag = "profile",
    params(("instance" = String, Path)), request_body = AccountIn,
    responses(
        (status = 200, body = AccountReply),
        (status = 400, description = "invalid body: <field> ... / nothing to update", body = ErrorOut),
        (status = 404, body = ErrorOut),
        (status = 502, description = "the picture URL could not be fetched", body = ErrorOut),
        (status = 503, body = ErrorOut),
    ),
    security(("token" = [])))]
async fn update_account(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<AccountIn>,
) -> ApiResult<Json<AccountReply>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let name = bounded("name", body.name, MAX_PROFILE_NAME_LEN)?;
    let about = bounded("about", body.about, MAX_ABOUT_LEN)?;
    let picture = match body.picture.as_deref().filter(|p| !p.is_empty()) {
        Some(raw) => Some(picture(&state, "picture", raw).await?),
        None => None,
    };
    if name.is_none() && about.is_none() && picture.is_none() {
        return Err(
            Error::bad_request("invalid body: nothing to update (name, about or picture)").into(),
        );
    }
    let whatsapp = state.instances.whatsapp();
    whatsapp
        .update_profile(
            &instance.id,
            ProfileUpdate {
                name,
                about,
                picture,
            },
        )
        .await?;
    let profile = whatsapp.profile(&instance.id, None).await?;
    Ok(Json(AccountReply {
        success: true,
        message: "Profile updated",
        profile: profile.into(),
    }))
}

/// Who sees what: `all`, `contacts`, `contact_blacklist` or `none`
/// (`online`: `all` or `match_last_seen`).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VisibilityIo {
    last_seen: Option<String>,
    status: Option<String>,
    profile: Option<String>,
    online: Option<String>,
}

/// `readReceipts`: `all` or `none`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptsIo {
    read_receipts: Option<String>,
}

/// Who may call (`all` or `known`) and add to groups (`all`, `contacts`,
/// `contact_blacklist` or `none`).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionsIo {
    call_add: Option<String>,
    group_add: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PrivacyIn {
    visibility: Option<VisibilityIo>,
    privacy: Option<ReceiptsIo>,
    permissions: Option<PermissionsIo>,
}

/// The settings as they read back: the same groups a POST takes.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrivacyReply {
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
    visibility: VisibilityIo,
    privacy: ReceiptsIo,
    permissions: PermissionsIo,
}

fn privacy_reply(privacy: Privacy, message: Option<&'static str>) -> PrivacyReply {
    let value = |category| privacy.get(category).map(|v| v.as_str().to_owned());
    PrivacyReply {
        success: true,
        message,
        visibility: VisibilityIo {
            last_seen: value(PrivacyCategory::LastSeen),
            status: value(PrivacyCategory::Status),
            profile: value(PrivacyCategory::Profile),
            online: value(PrivacyCategory::Online),
        },
        privacy: ReceiptsIo {
            read_receipts: value(PrivacyCategory::ReadReceipts),
        },
        permissions: PermissionsIo {
            call_add: value(PrivacyCategory::CallAdd),
            group_add: value(PrivacyCategory::GroupAdd),
        },
    }
}

/// The account's privacy settings.
#[utoipa::path(get, path = "/api/profile/getPrivacy/{instance}", tag = "profile",
    params(("instance" = String, Path)),
    responses((status = 200, body = PrivacyReply), (status = 404, body = ErrorOut), (status = 503, body = ErrorOut)),
    security(("token" = [])))]
async fn get_privacy(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<PrivacyReply>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let privacy = state.instances.whatsapp().privacy(&instance.id).await?;
    Ok(Json(privacy_reply(privacy, None)))
}

/// The same as `getPrivacy` (RyzeAPI's alias).
#[utoipa::path(get, path = "/api/profile/privacy/{instance}", tag = "profile",
    params(("instance" = String, Path)),
    responses((status = 200, body = PrivacyReply), (status = 404, body = ErrorOut), (status = 503, body = ErrorOut)),
    security(("token" = [])))]
async fn get_privacy_alias(
    state: State<AppState>,
    caller: Caller,
    name: Path<String>,
) -> ApiResult<Json<PrivacyReply>> {
    get_privacy(state, caller, name).await
}

/// Changes the privacy settings the body names; answers all of them.
#[utoipa::path(post, path = "/api/profile/privacy/{instance}", tag = "profile",
    params(("instance" = String, Path)), request_body = PrivacyIn,
    responses(
        (status = 200, body = PrivacyReply),
        (status = 400, description = "invalid body: visibility.lastSeen must be one of ... / nothing to update", body = ErrorOut),
        (status = 404, body = ErrorOut),
        (status = 503, body = ErrorOut),
    ),
    security(("token" = [])))]
async fn set_privacy(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<PrivacyIn>,
) -> ApiResult<Json<PrivacyReply>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let visibility = body.visibility.unwrap_or_default();
    let receipts = body.privacy.unwrap_or_default();
    let permissions = body.permissions.unwrap_or_default();
    let named = [
        (
            "visibility.lastSeen",
            PrivacyCategory::LastSeen,
            visibility.last_seen,
        ),
        (
            "visibility.status",
            PrivacyCategory::Status,
            visibility.status,
        ),
        (
            "visibility.profile",
            PrivacyCategory::Profile,
            visibility.profile,
        ),
        (
            "visibility.online",
            PrivacyCategory::Online,
            visibility.online,
        ),
        (
            "privacy.readReceipts",
            PrivacyCategory::ReadReceipts,
            receipts.read_receipts,
        ),
        (
            "permissions.callAdd",
            PrivacyCategory::CallAdd,
            permissions.call_add,
        ),
        (
            "permissions.groupAdd",
            PrivacyCategory::GroupAdd,
            permissions.group_add,
        ),
    ];
    let mut changes = Vec::new();
    for (field, category, raw) in named {
        if let Some(raw) = raw {
            changes.push((category, category.parse_value(field, &raw)?));
        }
    }
    if changes.is_empty() {
        return Err(Error::bad_request(
            "invalid body: nothing to update (visibility, privacy or permissions)",
        )
        .into());
    }
    let privacy = state
        .instances
        .whatsapp()
        .set_privacy(&instance.id, &changes)
        .await?;
    Ok(Json(privacy_reply(
        privacy,
        Some("Privacy settings updated"),
    )))
}
