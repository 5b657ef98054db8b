//! RyzeAPI's group module (`/api/group/*`) and community sub-groups
//! (`/api/community/listSubGroups`). Either token, ownership checked; the
//! provider does the work, and the changes reach the event layer as
//! `group.flow` events through the provider's notifications.

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::{delete, get, post, put},
};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use zapgate_core::{
    Error,
    groups::{
        GroupInfo, GroupRef, GroupSettings, GroupSettingsPatch, GroupUpdate, JoinRequest,
        MAX_GROUP_DESCRIPTION_LEN, MAX_GROUP_NAME_LEN, MAX_PARTICIPANTS, NewGroup,
        ParticipantAction, invite_link, parse_invite_code,
    },
    jid::{Jid, LID_SERVER, USER_SERVER},
};

use crate::{
    AppState,
    auth::Caller,
    envelope::ErrorOut,
    error::ApiResult,
    extract::{JsonBody, QueryParams},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/group/create/{instance}", post(create))
        .route("/api/group/list/{instance}", get(list))
        .route("/api/group/info/{instance}", get(info))
        .route("/api/group/update/{instance}", put(update))
        .route("/api/group/participants/{instance}", post(participants))
        .route("/api/group/join/{instance}", post(join))
        .route("/api/group/resetLink/{instance}", post(reset_link))
        .route("/api/group/requests/{instance}", get(requests))
        .route("/api/group/leave/{instance}", delete(leave))
        .route("/api/community/listSubGroups/{instance}", get(sub_groups))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupSettingsIn {
    members_can_edit_info: Option<bool>,
    members_can_send_messages: Option<bool>,
    members_can_add_others: Option<bool>,
    require_admin_approval: Option<bool>,
}

impl From<GroupSettingsIn> for GroupSettingsPatch {
    fn from(s: GroupSettingsIn) -> Self {
        Self {
            members_can_edit_info: s.members_can_edit_info,
            members_can_send_messages: s.members_can_send_messages,
            members_can_add_others: s.members_can_add_others,
            require_admin_approval: s.require_admin_approval,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupSettingsOut {
    members_can_edit_info: bool,
    members_can_send_messages: bool,
    members_can_add_others: bool,
    require_admin_approval: bool,
}

impl From<GroupSettings> for GroupSettingsOut {
    fn from(s: GroupSettings) -> Self {
        Self {
            members_can_edit_info: s.members_can_edit_info,
            members_can_send_messages: s.members_can_send_messages,
            members_can_add_others: s.members_can_add_others,
            require_admin_approval: s.require_admin_approval,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantOut {
    jid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_number: Option<String>,
    is_admin: bool,
    is_super_admin: bool,
}

/// A group, named as a RyzeAPI client reads it (`groupJid`, `memberCount`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupOut {
    group_jid: String,
    name: String,
    description: Option<String>,
    /// Only admins see the invite.
    invite_code: Option<String>,
    invite_link: Option<String>,
    created_by: Option<String>,
    /// Unix seconds.
    created_at: Option<i64>,
    member_count: usize,
    /// Present with members (always on info; on list with `includeMembers=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    participants: Option<Vec<ParticipantOut>>,
    group_settings: GroupSettingsOut,
    community_jid: Option<String>,
    is_community: bool,
    picture_url: Option<String>,
}

fn group_out(info: GroupInfo, members: bool) -> GroupOut {
    GroupOut {
        group_jid: info.jid.to_string(),
        name: info.name,
        description: info.description,
        invite_link: info.invite_code.as_deref().map(invite_link),
        invite_code: info.invite_code,
        created_by: info.created_by.map(|j| j.to_string()),
        created_at: info.created_at,
        member_count: info.participant_count,
        participants: members.then(|| {
            info.participants
                .into_iter()
                .map(|p| ParticipantOut {
                    jid: p.jid.to_string(),
                    phone_number: p.phone.map(|j| j.user),
                    is_admin: p.is_admin,
                    is_super_admin: p.is_super_admin,
                })
                .collect()
        }),
        group_settings: info.settings.into(),
        community_jid: info.community.map(|j| j.to_string()),
        is_community: info.is_community,
        picture_url: info.picture_url,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupReply {
    success: bool,
    message: &'static str,
    group: GroupOut,
}

fn required<'a>(field: &str, raw: Option<&'a str>) -> Result<&'a str, Error> {
    raw.map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Error::bad_request(format!("invalid body: {field} is required")))
}

/// A group jid from `field`.
fn group_jid(field: &str, raw: Option<&str>) -> Result<Jid, Error> {
    Jid::parse(required(field, raw)?)
        .ok()
        .filter(Jid::is_group)
        .ok_or_else(|| {
            Error::bad_request(format!(
                "invalid body: {field} must be a group jid (...@g.us)"
            ))
        })
}

/// People: phone numbers, phone jids or `@lid`s; at least one, at most a group's size.
fn people(field: &str, raw: Option<Vec<String>>) -> Result<Vec<Jid>, Error> {
    let raw =
        raw.ok_or_else(|| Error::bad_request(format!("invalid body: {field} is required")))?;
    if raw.is_empty() || raw.len() > MAX_PARTICIPANTS {
        return Err(Error::bad_request(format!(
            "invalid body: {field} must list 1 to {MAX_PARTICIPANTS} numbers"
        )));
    }
    let mut jids: Vec<Jid> = Vec::with_capacity(raw.len());
    for (i, value) in raw.iter().enumerate() {
        let jid = Jid::parse(value)
            .ok()
            .filter(|j| j.server == USER_SERVER || j.server == LID_SERVER)
            .ok_or_else(|| {
                Error::bad_request(format!(
                    "invalid body: {field}[{i}] is not a phone number or WhatsApp user id"
                ))
            })?;
        if !jids.contains(&jid) {
            jids.push(jid);
        }
    }
    Ok(jids)
}

fn bounded_text(field: &str, raw: Option<String>, max: usize) -> Result<Option<String>, Error> {
    match raw {
        Some(text) if text.chars().count() > max => Err(Error::bad_request(format!(
            "invalid body: {field} must be at most {max} characters"
        ))),
        other => Ok(other),
    }
}

fn group_name(raw: Option<String>) -> Result<Option<String>, Error> {
    match bounded_text("name", raw, MAX_GROUP_NAME_LEN)? {
        Some(name) if name.trim().is_empty() => {
            Err(Error::bad_request("invalid body: name must not be empty"))
        }
        other => Ok(other),
    }
}

/// A JPEG from an http(s) URL (fetched behind the private-address guard)
/// or a base64 data URL: WhatsApp takes pictures as JPEG only.
pub(crate) async fn picture(state: &AppState, field: &str, raw: &str) -> Result<Vec<u8>, Error> {
    let raw = raw.trim();
    let data = if let Some(rest) = raw.strip_prefix("data:") {
        let payload = rest.split_once("base64,").map(|(_, b)| b).ok_or_else(|| {
            Error::bad_request(format!("invalid body: {field} data URL must be base64"))
        })?;
        base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .map_err(|_| Error::bad_request(format!("invalid body: {field} is not valid base64")))?
    } else if raw.starts_with("http://") || raw.starts_with("https://") {
        state
            .downloader
            .fetch(raw)
            .await
            .map_err(|e| match e {
                zapgate_chatwoot::download::Failure::Rejected { error } => {
                    Error::bad_request(format!("invalid body: {field}: {error}"))
                }
                zapgate_chatwoot::download::Failure::Transient { error } => {
                    Error::BadGateway(format!("{field} could not be fetched: {error}"))
                }
            })?
            .data
    } else {
        return Err(Error::bad_request(format!(
            "invalid body: {field} must be an http(s) URL or a base64 data URL"
        )));
    };
    if !data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(Error::bad_request(format!(
            "invalid body: {field} must be a JPEG image"
        )));
    }
    Ok(data)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateIn {
    #[schema(required = true, nullable = false, min_length = 1, pattern = r"\S")]
    name: Option<String>,
    /// Phone numbers (or `@lid`s) to add.
    #[schema(required = true, nullable = false, min_items = 1, max_items = 1024, value_type = Vec<crate::openapi::Person>)]
    participants: Option<Vec<String>>,
    description: Option<String>,
    /// A JPEG: an http(s) URL or a base64 data URL.
    image: Option<String>,
    group_settings: Option<GroupSettingsIn>,
    /// Create the group inside this community.
    #[schema(value_type = Option<crate::openapi::GroupJid>)]
    community_jid: Option<String>,
}

/// Creates a group with the account as its admin.
#[utoipa::path(post, path = "/api/group/create/{instance}", tag = "group",
    params(("instance" = String, Path)), request_body = CreateIn,
    responses(
        (status = 200, body = GroupReply),
        (status = 400, description = "invalid body: <field> ...", body = ErrorOut),
        (status = 404, description = "Instance not found / Community not found", body = ErrorOut),
        (status = 502, description = "the image URL could not be fetched", body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn create(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<CreateIn>,
) -> ApiResult<Json<GroupReply>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let group_name = group_name(body.name)?
        .ok_or_else(|| Error::bad_request("invalid body: name is required"))?;
    let participants = people("participants", body.participants)?;
    let description = bounded_text("description", body.description, MAX_GROUP_DESCRIPTION_LEN)?;
    let community = body
        .community_jid
        .as_deref()
        .map(|raw| group_jid("communityJid", Some(raw)))
        .transpose()?;
    let image = match body.image.as_deref().filter(|i| !i.is_empty()) {
        Some(raw) => Some(picture(&state, "image", raw).await?),
        None => None,
    };
    let group = NewGroup {
        name: group_name,
        participants,
        description,
        image,
        settings: body.group_settings.unwrap_or_default().into(),
        community,
    };
    let info = state
        .instances
        .whatsapp()
        .create_group(&instance.id, group)
        .await?;
    Ok(Json(GroupReply {
        success: true,
        message: "Group created successfully",
        group: group_out(info, true),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// `true` adds each group's participants.
    #[param(value_type = Option<bool>)]
    include_members: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupsReply {
    success: bool,
    message: String,
    groups: Vec<GroupOut>,
}

fn flag(field: &str, raw: Option<&str>) -> Result<bool, Error> {
    match raw {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(_) => Err(Error::bad_request(format!(
            "invalid query: {field} must be true or false"
        ))),
    }
}

/// The groups the account is in.
#[utoipa::path(get, path = "/api/group/list/{instance}", tag = "group",
    params(("instance" = String, Path), ListQuery),
    responses(
        (status = 200, body = GroupsReply),
        (status = 400, description = "invalid query: includeMembers ...", body = ErrorOut),
        (status = 404, body = ErrorOut),
        (status = 503, description = "Instance is not connected to WhatsApp", body = ErrorOut),
    ),
    security(("token" = [])))]
async fn list(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<ListQuery>,
) -> ApiResult<Json<GroupsReply>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let members = flag("includeMembers", query.include_members.as_deref())?;
    let groups = state
        .instances
        .whatsapp()
        .groups(&instance.id, members)
        .await?;
    Ok(Json(GroupsReply {
        success: true,
        message: format!("{} groups found", groups.len()),
        groups: groups.into_iter().map(|g| group_out(g, members)).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InfoQuery {
    /// A group jid, an invite code or a `chat.whatsapp.com` link.
    #[param(required = true, value_type = crate::openapi::GroupIdentifier)]
    identifier: Option<String>,
}

/// A group the account is in, or the group behind an invite.
#[utoipa::path(get, path = "/api/group/info/{instance}", tag = "group",
    params(("instance" = String, Path), InfoQuery),
    responses(
        (status = 200, body = GroupReply),
        (status = 400, description = "invalid query: identifier ...", body = ErrorOut),
        (status = 404, description = "Instance not found / Group not found / Invite not found", body = ErrorOut),
        (status = 503, body = ErrorOut),
    ),
    security(("token" = [])))]
async fn info(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<InfoQuery>,
) -> ApiResult<Json<GroupReply>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let raw = query
        .identifier
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| Error::bad_request("invalid query: identifier is required"))?;
    let group = GroupRef::parse("identifier", &raw)?;
    let info = state
        .instances
        .whatsapp()
        .group_info(&instance.id, &group)
        .await?;
    Ok(Json(GroupReply {
        success: true,
        message: "Group found",
        group: group_out(info, true),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateIn {
    #[schema(required = true, nullable = false, value_type = crate::openapi::GroupJid)]
    group_jid: Option<String>,
    #[schema(min_length = 1, pattern = r"\S")]
    name: Option<String>,
    /// An empty text removes the description.
    description: Option<String>,
    /// A JPEG: an http(s) URL or a base64 data URL.
    image: Option<String>,
    group_settings: Option<GroupSettingsIn>,
}

/// Changes a group's name, description, picture or settings.
#[utoipa::path(put, path = "/api/group/update/{instance}", tag = "group",
    params(("instance" = String, Path)), request_body = UpdateIn,
    responses(
        (status = 200, body = GroupReply),
        (status = 400, description = "invalid body: <field> ... / nothing to update", body = ErrorOut),
        (status = 403, description = "Only group admins can do this", body = ErrorOut),
        (status = 404, description = "Instance not found / Group not found", body = ErrorOut),
        (status = 502, description = "the image URL could not be fetched", body = ErrorOut),
        (status = 503, body = ErrorOut),
    ),
    security(("token" = [])))]
async fn update(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<UpdateIn>,
) -> ApiResult<Json<GroupReply>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let jid = group_jid("groupJid", body.group_jid.as_deref())?;
    let image = match body.image.as_deref().filter(|i| !i.is_empty()) {
        Some(raw) => Some(picture(&state, "image", raw).await?),
        None => None,
    };
    let update = GroupUpdate {
        name: group_name(body.name)?,
        description: bounded_text("description", body.description, MAX_GROUP_DESCRIPTION_LEN)?,
        image,
        settings: body.group_settings.unwrap_or_default().into(),
    };
    if update.is_empty() {
        return Err(Error::bad_request(
            "invalid body: nothing to update (name, description, image or groupSettings)",
        )
        .into());
    }
    let info = state
        .instances
        .whatsapp()
        .update_group(&instance.id, &jid, update)
        .await?;
    Ok(Json(GroupReply {
        success: true,
        message: "Group updated successfully",
        group: group_out(info, true),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantsIn {
    #[schema(required = true, nullable = false, value_type = crate::openapi::GroupJid)]
    group_jid: Option<String>,
    /// `add`, `remove`, `promote`, `demote`, `approve` or `reject`.
    #[schema(
        required = true,
        nullable = false,
        pattern = "^(add|remove|promote|demote|approve|reject)$"
    )]
    action: Option<String>,
    #[schema(required = true, nullable = false, min_items = 1, max_items = 1024, value_type = Vec<crate::openapi::Person>)]
    participants: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantResultOut {
    jid: String,
    success: bool,
    /// WhatsApp's code: 200 done; 403 not allowed (their privacy; send an
    /// invite instead); 404 not on WhatsApp, not in the group or no request;
    /// 409 already in the group.
    code: u16,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantsReply {
    success: bool,
    message: String,
    group_jid: String,
    action: &'static str,
    results: Vec<ParticipantResultOut>,
}

/// Adds, removes, promotes or demotes members, or approves or rejects join
/// requests. WhatsApp answers per participant.
#[utoipa::path(post, path = "/api/group/participants/{instance}", tag = "group",
    params(("instance" = String, Path)), request_body = ParticipantsIn,
    responses(
        (status = 200, body = ParticipantsReply),
        (status = 400, description = "invalid body: <field> ...", body = ErrorOut),
        (status = 403, description = "Only group admins can do this", body = ErrorOut),
        (status = 404, description = "Instance not found / Group not found", body = ErrorOut),
        (status = 503, body = ErrorOut),
    ),
    security(("token" = [])))]
async fn participants(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<ParticipantsIn>,
) -> ApiResult<Json<ParticipantsReply>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let jid = group_jid("groupJid", body.group_jid.as_deref())?;
    let action = required("action", body.action.as_deref()).and_then(|raw| {
        ParticipantAction::parse(raw).ok_or_else(|| {
            Error::bad_request(
                "invalid body: action must be add, remove, promote, demote, approve or reject",
            )
        })
    })?;
    let people = people("participants", body.participants)?;
    let results = state
        .instances
        .whatsapp()
        .group_participants(&instance.id, &jid, action, &people)
        .await?;
    let done = results.iter().filter(|r| r.ok()).count();
    Ok(Json(ParticipantsReply {
        success: true,
        message: format!("{done} of {} participants updated", results.len()),
        group_jid: jid.to_string(),
        action: action.as_str(),
        results: results
            .into_iter()
            .map(|r| ParticipantResultOut {
                success: r.ok(),
                jid: r.jid.to_string(),
                code: r.code,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct JoinIn {
    /// An invite code or a `chat.whatsapp.com` link.
    #[schema(required = true, nullable = false, value_type = crate::openapi::InviteCode)]
    identifier: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinReply {
    success: bool,
    message: &'static str,
    /// `joined`, or `pending` while an admin has to approve.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_jid: Option<String>,
}

/// Joins a group by invite code or link.
#[utoipa::path(post, path = "/api/group/join/{instance}", tag = "group",
    params(("instance" = String, Path)), request_body = JoinIn,
    responses(
        (status = 200, body = JoinReply),
        (status = 400, description = "invalid body: identifier ...", body = ErrorOut),
        (status = 404, description = "Instance not found / Invite not found", body = ErrorOut),
        (status = 503, body = ErrorOut),
    ),
    security(("token" = [])))]
async fn join(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<JoinIn>,
) -> ApiResult<Json<JoinReply>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let code = parse_invite_code(
        "identifier",
        required("identifier", body.identifier.as_deref())?,
    )?;
    let joined = state
        .instances
        .whatsapp()
        .join_group(&instance.id, &code)
        .await?;
    Ok(Json(match joined {
        Some(jid) => JoinReply {
            success: true,
            message: "Joined the group",
            status: "joined",
            group_jid: Some(jid.to_string()),
        },
        None => JoinReply {
            success: true,
            message: "Join requested; an admin has to approve it",
            status: "pending",
            group_jid: None,
        },
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupJidIn {
    #[schema(required = true, nullable = false, value_type = crate::openapi::GroupJid)]
    group_jid: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteReply {
    success: bool,
    message: &'static str,
    group_jid: String,
    invite_code: String,
    invite_link: String,
}

/// Revokes the group's invite link and answers the new one (admins only).
#[utoipa::path(post, path = "/api/group/resetLink/{instance}", tag = "group",
    params(("instance" = String, Path)), request_body = GroupJidIn,
    responses(
        (status = 200, body = InviteReply),
        (status = 400, description = "invalid body: groupJid ...", body = ErrorOut),
        (status = 403, description = "Only group admins can do this", body = ErrorOut),
        (status = 404, body = ErrorOut),
        (status = 503, body = ErrorOut),
    ),
    security(("token" = [])))]
async fn reset_link(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<GroupJidIn>,
) -> ApiResult<Json<InviteReply>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let jid = group_jid("groupJid", body.group_jid.as_deref())?;
    let code = state
        .instances
        .whatsapp()
        .reset_invite(&instance.id, &jid)
        .await?;
    Ok(Json(InviteReply {
        success: true,
        message: "Invite link reset",
        group_jid: jid.to_string(),
        invite_link: invite_link(&code),
        invite_code: code,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct GroupQuery {
    #[param(required = true, value_type = crate::openapi::GroupJid)]
    group_jid: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestOut {
    jid: String,
    /// Unix seconds.
    requested_at: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestsReply {
    success: bool,
    group_jid: String,
    requests: Vec<RequestOut>,
}

/// Pending join requests of a group that needs approval (admins only).
#[utoipa::path(get, path = "/api/group/requests/{instance}", tag = "group",
    params(("instance" = String, Path), GroupQuery),
    responses(
        (status = 200, body = RequestsReply),
        (status = 400, description = "invalid query: groupJid ...", body = ErrorOut),
        (status = 403, body = ErrorOut),
        (status = 404, body = ErrorOut),
        (status = 503, body = ErrorOut),
    ),
    security(("token" = [])))]
async fn requests(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<GroupQuery>,
) -> ApiResult<Json<RequestsReply>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let jid = group_jid("groupJid", query.group_jid.as_deref()).map_err(query_error)?;
    let requests = state
        .instances
        .whatsapp()
        .join_requests(&instance.id, &jid)
        .await?;
    Ok(Json(RequestsReply {
        success: true,
        group_jid: jid.to_string(),
        requests: requests
            .into_iter()
            .map(|JoinRequest { jid, requested_at }| RequestOut {
                jid: jid.to_string(),
                requested_at,
            })
            .collect(),
    }))
}

/// The same error for a query parameter.
fn query_error(err: Error) -> Error {
    match err {
        Error::BadRequest(m) => Error::BadRequest(m.replacen("invalid body", "invalid query", 1)),
        other => other,
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaveReply {
    success: bool,
    message: &'static str,
    group_jid: String,
}

/// Leaves a group.
#[utoipa::path(delete, path = "/api/group/leave/{instance}", tag = "group",
    params(("instance" = String, Path), GroupQuery),
    responses(
        (status = 200, body = LeaveReply),
        (status = 400, description = "invalid query: groupJid ...", body = ErrorOut),
        (status = 404, description = "Instance not found / Group not found", body = ErrorOut),
        (status = 503, body = ErrorOut),
    ),
    security(("token" = [])))]
async fn leave(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<GroupQuery>,
) -> ApiResult<Json<LeaveReply>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let jid = group_jid("groupJid", query.group_jid.as_deref()).map_err(query_error)?;
    state
        .instances
        .whatsapp()
        .leave_group(&instance.id, &jid)
        .await?;
    Ok(Json(LeaveReply {
        success: true,
        message: "Left the group",
        group_jid: jid.to_string(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct CommunityQuery {
    #[param(required = true, value_type = crate::openapi::GroupJid)]
    community_jid: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubGroupsReply {
    success: bool,
    community_jid: String,
    groups: Vec<GroupOut>,
}

/// The groups of a community.
#[utoipa::path(get, path = "/api/community/listSubGroups/{instance}", tag = "group",
    params(("instance" = String, Path), CommunityQuery),
    responses(
        (status = 200, body = SubGroupsReply),
        (status = 400, description = "invalid query: communityJid ...", body = ErrorOut),
        (status = 404, description = "Instance not found / Community not found", body = ErrorOut),
        (status = 503, body = ErrorOut),
    ),
    security(("token" = [])))]
async fn sub_groups(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(name): Path<String>,
    QueryParams(query): QueryParams<CommunityQuery>,
) -> ApiResult<Json<SubGroupsReply>> {
    let instance = state.instances.visible(&principal, &name).await?;
    let jid = group_jid("communityJid", query.community_jid.as_deref()).map_err(query_error)?;
    let groups = state
        .instances
        .whatsapp()
        .sub_groups(&instance.id, &jid)
        .await?;
    Ok(Json(SubGroupsReply {
        success: true,
        community_jid: jid.to_string(),
        groups: groups.into_iter().map(|g| group_out(g, false)).collect(),
    }))
}
