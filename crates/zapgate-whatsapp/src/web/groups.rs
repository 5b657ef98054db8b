//! Groups, communities, profiles and privacy on a live session, over
//! whatsapp-rust's group, community, profile and privacy IQs, and the
//! group notifications (`w:gp2`) that become `group.flow` events.

use async_trait::async_trait;
use whatsapp_rust::{
    Client, Jid as WaJid,
    features::{
        CommunitySubgroup, GroupCreateOptions, GroupDescription, GroupError, GroupMetadata,
        GroupParticipantOptions, GroupSubject, JoinGroupResult, MemberAddMode,
        MembershipApprovalMode, MembershipRequest, ParticipantChangeResponse, PreviousDescription,
    },
    request::IqError,
    wacore::{
        iq::privacy::{
            PrivacyCategory as WaCategory, PrivacySettingsResponse, PrivacyValue as WaValue,
        },
        stanza::groups::GroupNotificationAction,
        types::events::GroupUpdate,
    },
};
use zapgate_core::{
    Error, Result,
    groups::{
        GROUP_NOT_FOUND, GroupChange, GroupChangeKind, GroupInfo, GroupMember, GroupParticipant,
        GroupRef, GroupSettings, GroupSettingsPatch, GroupUpdate as GroupEdit, GroupsAndProfiles,
        INVITE_NOT_FOUND, JoinRequest, NOT_GROUP_ADMIN, NewGroup, ParticipantAction,
        ParticipantResult, Privacy, PrivacyCategory, PrivacyValue, Profile, ProfileUpdate,
    },
    jid::Jid,
};

use super::{WebProvider, inbound::jid_of, outbound::wa_jid};

impl WebProvider {
    pub(super) fn client(&self, instance_id: &str) -> Result<std::sync::Arc<Client>> {
        self.inner
            .session(instance_id)
            .filter(|s| s.is_connected())
            .map(|s| s.client().clone())
            .ok_or(Error::NotConnected)
    }
}

/// WhatsApp's refusals as the contract's errors.
fn refused(err: GroupError) -> Error {
    match err {
        GroupError::Iq(IqError::ServerError { code: 404, .. }) => Error::not_found(GROUP_NOT_FOUND),
        GroupError::Iq(IqError::ServerError {
            code: 401 | 403, ..
        }) => Error::Forbidden(NOT_GROUP_ADMIN.to_owned()),
        GroupError::InvalidRequest(reason) => {
            Error::bad_request(format!("WhatsApp refused the request: {reason}"))
        }
        other => iq_failed(other),
    }
}

fn iq_failed(err: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("WhatsApp did not answer: {err}"))
}

fn invite_refused(err: GroupError) -> Error {
    match err {
        GroupError::Iq(IqError::ServerError {
            code: 404 | 406 | 410,
            ..
        }) => Error::not_found(INVITE_NOT_FOUND),
        other => refused(other),
    }
}

/// The invite code out of the link WhatsApp answers with.
fn code_of(link: &str) -> String {
    link.rsplit('/').next().unwrap_or(link).to_owned()
}

pub(super) fn settings_of(meta: &GroupMetadata) -> GroupSettings {
    GroupSettings {
        members_can_edit_info: !meta.is_locked,
        members_can_send_messages: !meta.is_announcement,
        members_can_add_others: meta.member_add_mode == Some(MemberAddMode::AllMemberAdd),
        require_admin_approval: meta.membership_approval,
    }
}

/// A group as WhatsApp describes it. `invite_code` only for admins (only
/// they may read it).
pub(super) fn group_info(
    meta: &GroupMetadata,
    invite_code: Option<String>,
    members: bool,
) -> GroupInfo {
    let participants = if members {
        meta.participants
            .iter()
            .filter_map(|p| {
                Some(GroupParticipant {
                    jid: jid_of(&p.jid)?,
                    phone: p.phone_number.as_ref().and_then(jid_of),
                    is_admin: p.is_admin(),
                    is_super_admin: p.is_super_admin(),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    GroupInfo {
        jid: jid_of(&meta.id).unwrap_or_else(|| Jid::user(&meta.id.user)),
        name: meta.subject.clone(),
        description: meta.description.clone(),
        invite_code,
        created_by: meta
            .creator_pn
            .as_ref()
            .or(meta.creator.as_ref())
            .and_then(jid_of),
        created_at: meta.creation_time.and_then(|t| i64::try_from(t).ok()),
        participant_count: meta.size.map_or(meta.participants.len(), |n| n as usize),
        participants,
        settings: settings_of(meta),
        community: meta.parent_group_jid.as_ref().and_then(jid_of),
        is_community: meta.is_parent_group,
        picture_url: None,
    }
}

pub(super) fn sub_group_info(group: &CommunitySubgroup, community: &Jid) -> Option<GroupInfo> {
    Some(GroupInfo {
        jid: jid_of(&group.id)?,
        name: group.subject.clone(),
        description: None,
        invite_code: None,
        created_by: group.owner.as_ref().and_then(jid_of),
        created_at: group.creation.and_then(|t| i64::try_from(t).ok()),
        participant_count: group.participant_count.unwrap_or_default() as usize,
        participants: Vec::new(),
        settings: GroupSettings::default(),
        community: Some(community.clone()),
        is_community: false,
        picture_url: None,
    })
}

/// WhatsApp's per-participant answer: no error is 200, else its code.
pub(super) fn participant_results(answers: &[ParticipantChangeResponse]) -> Vec<ParticipantResult> {
    answers
        .iter()
        .filter_map(|answer| {
            let code = match answer.error.as_deref() {
                None => 200,
                Some(code) => code.parse().unwrap_or(500),
            };
            Some(ParticipantResult {
                jid: answer
                    .phone_number
                    .as_ref()
                    .and_then(jid_of)
                    .or_else(|| jid_of(&answer.jid))?,
                code,
            })
        })
        .collect()
}

pub(super) fn join_requests(requests: &[MembershipRequest]) -> Vec<JoinRequest> {
    requests
        .iter()
        .filter_map(|r| {
            Some(JoinRequest {
                jid: jid_of(&r.jid)?,
                requested_at: r.request_time.and_then(|t| i64::try_from(t).ok()),
            })
        })
        .collect()
}

fn wa_category(category: PrivacyCategory) -> WaCategory {
    match category {
        PrivacyCategory::LastSeen => WaCategory::Last,
        PrivacyCategory::Status => WaCategory::Status,
        PrivacyCategory::Profile => WaCategory::Profile,
        PrivacyCategory::Online => WaCategory::Online,
        PrivacyCategory::ReadReceipts => WaCategory::ReadReceipts,
        PrivacyCategory::CallAdd => WaCategory::CallAdd,
        PrivacyCategory::GroupAdd => WaCategory::GroupAdd,
    }
}

fn wa_value(value: PrivacyValue) -> WaValue {
    match value {
        PrivacyValue::All => WaValue::All,
        PrivacyValue::Contacts => WaValue::Contacts,
        PrivacyValue::ContactBlacklist => WaValue::ContactBlacklist,
        PrivacyValue::None => WaValue::None,
        PrivacyValue::MatchLastSeen => WaValue::MatchLastSeen,
        PrivacyValue::Known => WaValue::Known,
    }
}

fn value_of(value: &WaValue) -> Option<PrivacyValue> {
    PrivacyValue::ALL
        .into_iter()
        .find(|v| wa_value(*v) == *value)
}

pub(super) fn privacy_of(response: &PrivacySettingsResponse) -> Privacy {
    let mut privacy = Privacy::default();
    for category in [
        PrivacyCategory::LastSeen,
        PrivacyCategory::Status,
        PrivacyCategory::Profile,
        PrivacyCategory::Online,
        PrivacyCategory::ReadReceipts,
        PrivacyCategory::CallAdd,
        PrivacyCategory::GroupAdd,
    ] {
        if let Some(value) = response
            .get_value(&wa_category(category))
            .and_then(value_of)
        {
            privacy.set(category, value);
        }
    }
    privacy
}

/// A `w:gp2` action as a `group.flow` change; `None` for what the events
/// module does not report (settings, invites, community links).
pub(crate) fn group_change(update: &GroupUpdate) -> Option<GroupChange> {
    let members =
        |participants: &[whatsapp_rust::wacore::stanza::groups::GroupParticipantInfo]| {
            participants
                .iter()
                .filter_map(|p| {
                    Some(GroupMember {
                        jid: p
                            .phone_number
                            .as_ref()
                            .and_then(jid_of)
                            .or_else(|| jid_of(&p.jid))?,
                        lid: p
                            .lid
                            .as_ref()
                            .or(p.jid.is_lid().then_some(&p.jid))
                            .and_then(jid_of),
                        name: p.display_name.clone(),
                    })
                })
                .collect::<Vec<_>>()
        };
    let (kind, participants, group_name) = match &update.action {
        GroupNotificationAction::Add { participants, .. } => {
            (GroupChangeKind::Joined, members(participants), None)
        }
        GroupNotificationAction::Remove { participants, .. } => {
            (GroupChangeKind::Left, members(participants), None)
        }
        GroupNotificationAction::Promote { participants } => {
            (GroupChangeKind::Promoted, members(participants), None)
        }
        GroupNotificationAction::Demote { participants } => {
            (GroupChangeKind::Demoted, members(participants), None)
        }
        GroupNotificationAction::Subject { subject, .. } => {
            (GroupChangeKind::Name, Vec::new(), Some(subject.clone()))
        }
        GroupNotificationAction::Delete { .. } => (GroupChangeKind::Delete, Vec::new(), None),
        _ => return None,
    };
    let group = jid_of(&update.group_jid)?;
    let id = match &update.notification_id {
        Some(id) => format!("{id}:{}", update.action_index),
        // Without an id, what the notification says identifies it.
        None => format!(
            "{group}:{}:{}:{}",
            kind.as_str(),
            update.timestamp.timestamp(),
            update.action_index
        ),
    };
    Some(GroupChange {
        id,
        group,
        kind,
        group_name,
        participants,
        author: update
            .participant_pn
            .as_ref()
            .or(update.participant.as_ref())
            .and_then(jid_of),
        timestamp: update.timestamp.timestamp(),
    })
}

fn wa_jids(jids: &[Jid]) -> Result<Vec<WaJid>> {
    jids.iter().map(wa_jid).collect()
}

async fn apply_settings(client: &Client, group: &WaJid, patch: &GroupSettingsPatch) -> Result<()> {
    let groups = client.groups();
    if let Some(edit) = patch.members_can_edit_info {
        groups
            .set_locked(group.clone(), !edit)
            .await
            .map_err(refused)?;
    }
    if let Some(send) = patch.members_can_send_messages {
        groups
            .set_announce(group.clone(), !send)
            .await
            .map_err(refused)?;
    }
    if let Some(add) = patch.members_can_add_others {
        let mode = if add {
            MemberAddMode::AllMemberAdd
        } else {
            MemberAddMode::AdminAdd
        };
        groups
            .set_member_add_mode(group.clone(), mode)
            .await
            .map_err(refused)?;
    }
    if let Some(approval) = patch.require_admin_approval {
        let mode = if approval {
            MembershipApprovalMode::On
        } else {
            MembershipApprovalMode::Off
        };
        groups
            .set_membership_approval(group.clone(), mode)
            .await
            .map_err(refused)?;
    }
    Ok(())
}

/// The group as its member sees it, with the link when the account is an admin.
async fn describe(client: &Client, group: &WaJid) -> Result<GroupInfo> {
    let meta = client.groups().get_metadata(group).await.map_err(refused)?;
    let me = [client.pn(), client.lid()];
    let admin = meta.participants.iter().any(|p| {
        p.is_admin()
            && me
                .iter()
                .flatten()
                .any(|own| own.user == p.jid.user || p.phone_number.as_ref() == Some(own))
    });
    let code = if admin {
        client
            .groups()
            .get_invite_link(group.clone(), false)
            .await
            .ok()
            .map(|link| code_of(&link))
    } else {
        None
    };
    let mut info = group_info(&meta, code, true);
    info.picture_url = picture_url(client, group).await;
    Ok(info)
}

async fn picture_url(client: &Client, jid: &WaJid) -> Option<String> {
    client
        .contacts()
        .get_profile_picture(jid, false)
        .await
        .ok()
        .flatten()
        .map(|p| p.url)
}

#[async_trait]
impl GroupsAndProfiles for WebProvider {
    async fn create_group(&self, instance_id: &str, group: NewGroup) -> Result<GroupInfo> {
        let client = self.client(instance_id)?;
        let description = group
            .description
            .filter(|d| !d.is_empty())
            .map(GroupDescription::new)
            .transpose()
            .map_err(|e| Error::bad_request(format!("invalid body: description {e}")))?;
        let subject = GroupSubject::new(group.name.clone())
            .map_err(|e| Error::bad_request(format!("invalid body: name {e}")))?;
        let participants = wa_jids(&group.participants)?
            .into_iter()
            .map(GroupParticipantOptions::new)
            .collect();
        let options: GroupCreateOptions = GroupCreateOptions::builder()
            .subject(subject.as_str())
            .participants(participants)
            .maybe_linked_parent(group.community.as_ref().map(wa_jid).transpose()?)
            .maybe_description(description)
            .build();
        let created = client
            .groups()
            .create_group(options)
            .await
            .map_err(refused)?;
        let jid = created.metadata.id.clone();
        apply_settings(&client, &jid, &group.settings).await?;
        if let Some(image) = group.image {
            client
                .groups()
                .set_profile_picture(jid.clone(), image)
                .await
                .map_err(refused)?;
        }
        describe(&client, &jid).await
    }

    async fn groups(&self, instance_id: &str, members: bool) -> Result<Vec<GroupInfo>> {
        let client = self.client(instance_id)?;
        let groups = client.groups().get_participating().await.map_err(refused)?;
        let mut list: Vec<GroupInfo> = groups
            .values()
            .map(|meta| group_info(meta, None, members))
            .collect();
        list.sort_by(|a, b| a.jid.cmp(&b.jid));
        Ok(list)
    }

    async fn group_info(&self, instance_id: &str, group: &GroupRef) -> Result<GroupInfo> {
        let client = self.client(instance_id)?;
        match group {
            GroupRef::Jid(jid) => describe(&client, &wa_jid(jid)?).await,
            GroupRef::Invite(code) => {
                let meta = client
                    .groups()
                    .get_invite_info(code)
                    .await
                    .map_err(invite_refused)?;
                Ok(group_info(&meta, None, true))
            }
        }
    }

    async fn update_group(
        &self,
        instance_id: &str,
        group: &Jid,
        update: GroupEdit,
    ) -> Result<GroupInfo> {
        let client = self.client(instance_id)?;
        let jid = wa_jid(group)?;
        if let Some(name) = update.name {
            let subject = GroupSubject::new(name)
                .map_err(|e| Error::bad_request(format!("invalid body: name {e}")))?;
            client
                .groups()
                .set_subject(jid.clone(), subject)
                .await
                .map_err(refused)?;
        }
        if let Some(description) = update.description {
            let description = Some(description)
                .filter(|d| !d.is_empty())
                .map(GroupDescription::new)
                .transpose()
                .map_err(|e| Error::bad_request(format!("invalid body: description {e}")))?;
            client
                .groups()
                .set_description(jid.clone(), description, PreviousDescription::Resolve)
                .await
                .map_err(refused)?;
        }
        if let Some(image) = update.image {
            client
                .groups()
                .set_profile_picture(jid.clone(), image)
                .await
                .map_err(refused)?;
        }
        apply_settings(&client, &jid, &update.settings).await?;
        describe(&client, &jid).await
    }

    async fn group_participants(
        &self,
        instance_id: &str,
        group: &Jid,
        action: ParticipantAction,
        participants: &[Jid],
    ) -> Result<Vec<ParticipantResult>> {
        let client = self.client(instance_id)?;
        let jid = wa_jid(group)?;
        let who = wa_jids(participants)?;
        let groups = client.groups();
        let answers = match action {
            ParticipantAction::Add => groups.add_participants(jid, &who).await,
            ParticipantAction::Remove => groups.remove_participants(jid, &who).await,
            ParticipantAction::Promote => groups.promote_participants(jid, &who).await,
            ParticipantAction::Demote => groups.demote_participants(jid, &who).await,
            ParticipantAction::Approve => groups.approve_membership_requests(jid, &who).await,
            ParticipantAction::Reject => groups.reject_membership_requests(jid, &who).await,
        }
        .map_err(refused)?;
        Ok(participant_results(&answers))
    }

    async fn join_group(&self, instance_id: &str, code: &str) -> Result<Option<Jid>> {
        let client = self.client(instance_id)?;
        match client
            .groups()
            .join_with_invite_code(code)
            .await
            .map_err(invite_refused)?
        {
            JoinGroupResult::Joined(jid) => Ok(jid_of(&jid)),
            JoinGroupResult::PendingApproval(_) => Ok(None),
        }
    }

    async fn reset_invite(&self, instance_id: &str, group: &Jid) -> Result<String> {
        let client = self.client(instance_id)?;
        let link = client
            .groups()
            .get_invite_link(wa_jid(group)?, true)
            .await
            .map_err(refused)?;
        Ok(code_of(&link))
    }

    async fn join_requests(&self, instance_id: &str, group: &Jid) -> Result<Vec<JoinRequest>> {
        let client = self.client(instance_id)?;
        let requests = client
            .groups()
            .get_membership_requests(wa_jid(group)?)
            .await
            .map_err(refused)?;
        Ok(join_requests(&requests))
    }

    async fn leave_group(&self, instance_id: &str, group: &Jid) -> Result<()> {
        let client = self.client(instance_id)?;
        client.groups().leave(wa_jid(group)?).await.map_err(refused)
    }

    async fn sub_groups(&self, instance_id: &str, community: &Jid) -> Result<Vec<GroupInfo>> {
        let client = self.client(instance_id)?;
        let groups = client
            .community()
            .get_subgroups(&wa_jid(community)?)
            .await
            .map_err(iq_failed)?;
        Ok(groups
            .iter()
            .filter_map(|g| sub_group_info(g, community))
            .collect())
    }

    async fn profile(&self, instance_id: &str, who: Option<&Jid>) -> Result<Profile> {
        let client = self.client(instance_id)?;
        let (pn, lid) = match who {
            None => (client.pn(), client.lid()),
            Some(jid) if jid.is_lid() => {
                let lid = wa_jid(jid)?;
                let pn = client
                    .get_lid_pn_entry(&lid)
                    .await
                    .ok()
                    .flatten()
                    .map(|e| WaJid::pn(&*e.phone_number));
                (pn, Some(lid))
            }
            Some(jid) => (Some(wa_jid(jid)?), None),
        };
        let target = pn
            .clone()
            .or_else(|| lid.clone())
            .ok_or(Error::NotConnected)?;
        let info = client
            .contacts()
            .get_user_info(std::slice::from_ref(&target))
            .await
            .map_err(iq_failed)?
            .remove(&target);
        let name = match who {
            None => Some(client.push_name()).filter(|n| !n.is_empty()),
            Some(_) => info
                .as_ref()
                .and_then(|i| i.verified_name.as_ref())
                .and_then(|v| v.name.clone()),
        };
        Ok(Profile {
            jid: pn.as_ref().and_then(jid_of),
            phone_number: pn.as_ref().map(|p| p.user.to_string()),
            lid: lid
                .or_else(|| info.as_ref().and_then(|i| i.lid.clone()))
                .as_ref()
                .and_then(jid_of),
            name,
            about: info.as_ref().and_then(|i| i.status.clone()),
            picture_url: picture_url(&client, &target).await,
            is_business: info.is_some_and(|i| i.is_business),
        })
    }

    async fn update_profile(&self, instance_id: &str, update: ProfileUpdate) -> Result<()> {
        let client = self.client(instance_id)?;
        let profile = client.profile();
        if let Some(name) = update.name {
            profile.set_push_name(&name).await.map_err(iq_failed)?;
        }
        if let Some(about) = update.about {
            profile.set_status_text(&about).await.map_err(iq_failed)?;
        }
        if let Some(picture) = update.picture {
            profile
                .set_profile_picture(picture)
                .await
                .map_err(iq_failed)?;
        }
        Ok(())
    }

    async fn privacy(&self, instance_id: &str) -> Result<Privacy> {
        let client = self.client(instance_id)?;
        let response = client.fetch_privacy_settings().await.map_err(iq_failed)?;
        Ok(privacy_of(&response))
    }

    async fn set_privacy(
        &self,
        instance_id: &str,
        changes: &[(PrivacyCategory, PrivacyValue)],
    ) -> Result<Privacy> {
        let client = self.client(instance_id)?;
        for (category, value) in changes {
            client
                .set_privacy_setting(wa_category(*category), wa_value(*value))
                .await
                .map_err(iq_failed)?;
        }
        let response = client.fetch_privacy_settings().await.map_err(iq_failed)?;
        Ok(privacy_of(&response))
    }
}

#[cfg(test)]
mod tests {
    use whatsapp_rust::{
        NodeBuilder,
        wacore::{chrono::DateTime, stanza::groups::GroupNotification},
    };

    use super::*;

    fn notification(children: Vec<whatsapp_rust::wacore_binary::Node>) -> GroupNotification {
        let node = NodeBuilder::new("notification")
            .attr("type", "w:gp2")
            .attr("from", "120363012345678901@g.us")
            .attr("id", "GP-1")
            .attr("participant", "5511888888888@s.whatsapp.net")
            .attr("t", "1704067200")
            .children(children)
            .build();
        GroupNotification::try_from_node_ref(&node.as_node_ref()).unwrap()
    }

    fn update(notification: &GroupNotification, index: usize) -> GroupUpdate {
        GroupUpdate::builder()
            .group_jid(notification.group_jid.clone())
            .maybe_notification_id(notification.notification_id.clone())
            .action_index(index as u32)
            .maybe_participant(notification.participant.clone())
            .timestamp(DateTime::from_timestamp(notification.timestamp as i64, 0).unwrap())
            .is_lid_addressing_mode(false)
            .action(notification.actions[index].clone())
            .build()
    }

    #[test]
    fn a_remove_notification_is_a_left_change_with_its_members() {
        let n = notification(vec![
            NodeBuilder::new("remove")
                .children(vec![
                    NodeBuilder::new("participant")
                        .attr("jid", "271060335329480@lid")
                        .attr("phone_number", "5511999999999@s.whatsapp.net")
                        .build(),
                ])
                .build(),
        ]);
        let change = group_change(&update(&n, 0)).unwrap();
        assert_eq!(change.kind, GroupChangeKind::Left);
        assert_eq!(change.id, "GP-1:0");
        assert_eq!(change.group.to_string(), "120363012345678901@g.us");
        assert_eq!(change.timestamp, 1_704_067_200);
        assert_eq!(
            change.author.unwrap().to_string(),
            "5511888888888@s.whatsapp.net"
        );
        assert_eq!(change.participants.len(), 1);
        assert_eq!(
            change.participants[0].jid.to_string(),
            "5511999999999@s.whatsapp.net"
        );
        assert_eq!(
            change.participants[0].lid.as_ref().unwrap().to_string(),
            "271060335329480@lid"
        );
    }

    #[test]
    fn a_subject_notification_renames_and_settings_are_not_reported() {
        let n = notification(vec![
            NodeBuilder::new("subject")
                .attr("subject", "Suporte VIP")
                .attr("s_t", "1704067200")
                .build(),
            NodeBuilder::new("announcement").build(),
        ]);
        let change = group_change(&update(&n, 0)).unwrap();
        assert_eq!(change.kind, GroupChangeKind::Name);
        assert_eq!(change.group_name.as_deref(), Some("Suporte VIP"));
        assert!(group_change(&update(&n, 1)).is_none());
    }

    #[test]
    fn promote_and_add_map_to_their_flow_types() {
        let participant = || {
            NodeBuilder::new("participant")
                .attr("jid", "5511999999999@s.whatsapp.net")
                .build()
        };
        let n = notification(vec![
            NodeBuilder::new("add")
                .children(vec![participant()])
                .build(),
            NodeBuilder::new("promote")
                .children(vec![participant()])
                .build(),
        ]);
        assert_eq!(
            group_change(&update(&n, 0)).unwrap().kind,
            GroupChangeKind::Joined
        );
        let promoted = group_change(&update(&n, 1)).unwrap();
        assert_eq!(promoted.kind, GroupChangeKind::Promoted);
        assert_eq!(promoted.id, "GP-1:1");
    }

    #[test]
    fn participant_answers_carry_whatsapps_codes() {
        let node = |jid: &str, error: Option<&str>| {
            let mut b = NodeBuilder::new("participant").attr("jid", jid);
            if let Some(e) = error {
                b = b.attr("error", e);
            }
            b.build()
        };
        use whatsapp_rust::wacore::protocol::ProtocolNode;
        let answers: Vec<ParticipantChangeResponse> = [
            node("5511999999999@s.whatsapp.net", None),
            node("5511977776666@s.whatsapp.net", Some("403")),
            node("5511955554444@s.whatsapp.net", Some("409")),
        ]
        .iter()
        .map(|n| ParticipantChangeResponse::try_from_node_ref(&n.as_node_ref()).unwrap())
        .collect();
        let results = participant_results(&answers);
        let codes: Vec<(String, u16)> = results
            .iter()
            .map(|r| (r.jid.user.clone(), r.code))
            .collect();
        assert_eq!(
            codes,
            [
                ("5511999999999".to_owned(), 200),
                ("5511977776666".to_owned(), 403),
                ("5511955554444".to_owned(), 409)
            ]
        );
    }

    #[test]
    fn privacy_settings_map_both_ways() {
        use whatsapp_rust::wacore::iq::privacy::PrivacySetting;
        let response = PrivacySettingsResponse {
            settings: vec![
                PrivacySetting {
                    category: WaCategory::Last,
                    value: WaValue::Contacts,
                },
                PrivacySetting {
                    category: WaCategory::Online,
                    value: WaValue::MatchLastSeen,
                },
                PrivacySetting {
                    category: WaCategory::ReadReceipts,
                    value: WaValue::None,
                },
                PrivacySetting {
                    category: WaCategory::Messages,
                    value: WaValue::All,
                },
            ],
        };
        let privacy = privacy_of(&response);
        assert_eq!(privacy.last_seen, Some(PrivacyValue::Contacts));
        assert_eq!(privacy.online, Some(PrivacyValue::MatchLastSeen));
        assert_eq!(privacy.read_receipts, Some(PrivacyValue::None));
        assert_eq!(privacy.group_add, None);
        assert_eq!(wa_category(PrivacyCategory::CallAdd), WaCategory::CallAdd);
    }

    #[test]
    fn a_group_node_becomes_group_info_with_members_and_settings() {
        use whatsapp_rust::wacore::{iq::groups::GroupInfoResponse, protocol::ProtocolNode};
        let node = NodeBuilder::new("group")
            .attr("id", "120363012345678901")
            .attr("subject", "Suporte")
            .attr("creator", "5511888888888@s.whatsapp.net")
            .attr("creation", "1704067200")
            .attr("size", "2")
            .children(vec![
                NodeBuilder::new("participant")
                    .attr("jid", "5511888888888@s.whatsapp.net")
                    .attr("type", "superadmin")
                    .build(),
                NodeBuilder::new("participant")
                    .attr("jid", "271060335329480@lid")
                    .attr("phone_number", "5511999999999@s.whatsapp.net")
                    .build(),
                NodeBuilder::new("description")
                    .attr("id", "D1")
                    .children(vec![
                        NodeBuilder::new("body")
                            .string_content("Atendimento")
                            .build(),
                    ])
                    .build(),
                NodeBuilder::new("announcement").build(),
                NodeBuilder::new("membership_approval_mode")
                    .children(vec![
                        NodeBuilder::new("group_join").attr("state", "on").build(),
                    ])
                    .build(),
                NodeBuilder::new("member_add_mode")
                    .string_content("all_member_add")
                    .build(),
            ])
            .build();
        let meta =
            GroupMetadata::from(GroupInfoResponse::try_from_node_ref(&node.as_node_ref()).unwrap());
        let info = group_info(&meta, Some("AbCdEfGhIj12345".into()), true);
        assert_eq!(info.jid.to_string(), "120363012345678901@g.us");
        assert_eq!(info.name, "Suporte");
        assert_eq!(info.description.as_deref(), Some("Atendimento"));
        assert_eq!(info.created_at, Some(1_704_067_200));
        assert_eq!(
            info.created_by.unwrap().to_string(),
            "5511888888888@s.whatsapp.net"
        );
        assert_eq!(info.participant_count, 2);
        assert_eq!(
            info.settings,
            GroupSettings {
                members_can_edit_info: true,
                members_can_send_messages: false,
                members_can_add_others: true,
                require_admin_approval: true,
            }
        );
        let creator = &info.participants[0];
        assert!(creator.is_admin && creator.is_super_admin);
        let member = &info.participants[1];
        assert_eq!(member.jid.to_string(), "271060335329480@lid");
        assert_eq!(
            member.phone.as_ref().unwrap().to_string(),
            "5511999999999@s.whatsapp.net"
        );
        assert!(!member.is_admin);
        assert!(group_info(&meta, None, false).participants.is_empty());
    }

    #[test]
    fn invite_links_give_their_code() {
        assert_eq!(
            code_of("https://chat.whatsapp.com/AbCdEfGhIj12345"),
            "AbCdEfGhIj12345"
        );
    }
}
