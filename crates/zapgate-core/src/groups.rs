//! Groups, communities, profiles and privacy: what RyzeAPI's group and
//! profile modules manage, as every provider reports it, and the provider
//! operations behind them ([`GroupsAndProfiles`], part of every `WhatsApp`).

use async_trait::async_trait;

use crate::{Error, Result, jid::Jid};

/// Longest group name WhatsApp accepts.
pub const MAX_GROUP_NAME_LEN: usize = 100;
/// Longest group description WhatsApp accepts.
pub const MAX_GROUP_DESCRIPTION_LEN: usize = 2048;
/// Longest profile name and "about" text WhatsApp accepts.
pub const MAX_PROFILE_NAME_LEN: usize = 25;
pub const MAX_ABOUT_LEN: usize = 139;
/// Participants per call: WhatsApp's group size limit.
pub const MAX_PARTICIPANTS: usize = 1024;

/// Who may do what in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSettings {
    /// `false`: only admins edit the name, description and picture ("locked").
    pub members_can_edit_info: bool,
    /// `false`: only admins send ("announcement" group).
    pub members_can_send_messages: bool,
    /// `false`: only admins add members.
    pub members_can_add_others: bool,
    /// Joining by link waits for an admin's approval.
    pub require_admin_approval: bool,
}

impl Default for GroupSettings {
    /// WhatsApp's defaults for a new group.
    fn default() -> Self {
        Self {
            members_can_edit_info: true,
            members_can_send_messages: true,
            members_can_add_others: false,
            require_admin_approval: false,
        }
    }
}

/// The settings a request names; the others stay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupSettingsPatch {
    pub members_can_edit_info: Option<bool>,
    pub members_can_send_messages: Option<bool>,
    pub members_can_add_others: Option<bool>,
    pub require_admin_approval: Option<bool>,
}

impl GroupSettingsPatch {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn apply(&self, settings: &mut GroupSettings) {
        let set = |slot: &mut bool, value: Option<bool>| {
            if let Some(value) = value {
                *slot = value;
            }
        };
        set(
            &mut settings.members_can_edit_info,
            self.members_can_edit_info,
        );
        set(
            &mut settings.members_can_send_messages,
            self.members_can_send_messages,
        );
        set(
            &mut settings.members_can_add_others,
            self.members_can_add_others,
        );
        set(
            &mut settings.require_admin_approval,
            self.require_admin_approval,
        );
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupParticipant {
    /// The member as WhatsApp addresses it: a phone jid or an `@lid`.
    pub jid: Jid,
    /// The phone jid, when WhatsApp gave one for an `@lid` member.
    pub phone: Option<Jid>,
    pub is_admin: bool,
    /// The creator ("superadmin").
    pub is_super_admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub jid: Jid,
    pub name: String,
    pub description: Option<String>,
    /// Present when the account is an admin (only admins see the link).
    pub invite_code: Option<String>,
    pub created_by: Option<Jid>,
    /// Unix seconds.
    pub created_at: Option<i64>,
    pub participant_count: usize,
    /// Empty when members were not asked for.
    pub participants: Vec<GroupParticipant>,
    pub settings: GroupSettings,
    /// The community this group belongs to.
    pub community: Option<Jid>,
    /// The group is a community's parent.
    pub is_community: bool,
    pub picture_url: Option<String>,
}

pub fn invite_link(code: &str) -> String {
    format!("https://chat.whatsapp.com/{code}")
}

/// A group as a request names it: its jid, or an invite code or link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRef {
    Jid(Jid),
    Invite(String),
}

impl GroupRef {
    /// `field` names the request field in the error.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        let raw = raw.trim();
        if raw.contains('@') {
            let jid = Jid::parse(raw).ok().filter(Jid::is_group).ok_or_else(|| {
                Error::bad_request(format!("invalid body: {field} is not a group jid"))
            })?;
            return Ok(Self::Jid(jid));
        }
        parse_invite_code(field, raw).map(Self::Invite)
    }
}

/// The code of an invite: bare, or inside a `chat.whatsapp.com` link.
pub fn parse_invite_code(field: &str, raw: &str) -> Result<String> {
    let raw = raw.trim();
    let code = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))
        .map_or(Some(raw), |rest| {
            rest.strip_prefix("chat.whatsapp.com/")
                .map(|code| code.split(['?', '#', '/']).next().unwrap_or_default())
        })
        .filter(|code| {
            (10..=64).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .ok_or_else(|| {
            Error::bad_request(format!(
                "invalid body: {field} must be a group jid, an invite code or a chat.whatsapp.com link"
            ))
        })?;
    Ok(code.to_owned())
}

/// A group to create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewGroup {
    pub name: String,
    pub participants: Vec<Jid>,
    pub description: Option<String>,
    /// A JPEG, already fetched.
    pub image: Option<Vec<u8>>,
    pub settings: GroupSettingsPatch,
    /// Created inside this community.
    pub community: Option<Jid>,
}

/// The changes to a group; absent fields stay.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupUpdate {
    pub name: Option<String>,
    /// An empty text removes the description.
    pub description: Option<String>,
    pub image: Option<Vec<u8>>,
    pub settings: GroupSettingsPatch,
}

impl GroupUpdate {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.image.is_none()
            && self.settings.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantAction {
    Add,
    Remove,
    Promote,
    Demote,
    /// Lets a pending join request in.
    Approve,
    /// Turns a pending join request down.
    Reject,
}

impl ParticipantAction {
    pub const ALL: [Self; 6] = [
        Self::Add,
        Self::Remove,
        Self::Promote,
        Self::Demote,
        Self::Approve,
        Self::Reject,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Promote => "promote",
            Self::Demote => "demote",
            Self::Approve => "approve",
            Self::Reject => "reject",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }
}

/// WhatsApp answers a participant change per participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantResult {
    pub jid: Jid,
    /// WhatsApp's code: 200 done; 403 not allowed (privacy: invite
    /// instead); 404 not on WhatsApp or not in the group; 409 already in
    /// the group.
    pub code: u16,
}

impl ParticipantResult {
    pub fn ok(&self) -> bool {
        self.code == 200
    }
}

/// Someone asking to join a group that needs approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub jid: Jid,
    /// Unix seconds.
    pub requested_at: Option<i64>,
}

/// A WhatsApp account's public face.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    pub jid: Option<Jid>,
    /// Digits.
    pub phone_number: Option<String>,
    pub lid: Option<Jid>,
    pub name: Option<String>,
    pub about: Option<String>,
    pub picture_url: Option<String>,
    pub is_business: bool,
}

/// Changes to the own profile; absent fields stay.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProfileUpdate {
    pub name: Option<String>,
    pub about: Option<String>,
    /// A JPEG, already fetched.
    pub picture: Option<Vec<u8>>,
}

/// WhatsApp's privacy values (its wire names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivacyValue {
    All,
    Contacts,
    /// "My contacts except ...".
    ContactBlacklist,
    None,
    MatchLastSeen,
    Known,
}

impl PrivacyValue {
    pub const ALL: [Self; 6] = [
        Self::All,
        Self::Contacts,
        Self::ContactBlacklist,
        Self::None,
        Self::MatchLastSeen,
        Self::Known,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Contacts => "contacts",
            Self::ContactBlacklist => "contact_blacklist",
            Self::None => "none",
            Self::MatchLastSeen => "match_last_seen",
            Self::Known => "known",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == raw)
    }
}

/// The privacy categories, each with the values WhatsApp allows for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivacyCategory {
    LastSeen,
    Status,
    Profile,
    Online,
    ReadReceipts,
    CallAdd,
    GroupAdd,
}

impl PrivacyCategory {
    pub fn allowed(self) -> &'static [PrivacyValue] {
        use PrivacyValue::*;
        match self {
            Self::LastSeen | Self::Status | Self::Profile | Self::GroupAdd => {
                &[All, Contacts, ContactBlacklist, None]
            }
            Self::Online => &[All, MatchLastSeen],
            Self::ReadReceipts => &[All, None],
            Self::CallAdd => &[All, Known],
        }
    }

    /// The value for this category, or a 400 naming `field` and the allowed values.
    pub fn parse_value(self, field: &str, raw: &str) -> Result<PrivacyValue> {
        PrivacyValue::parse(raw)
            .filter(|v| self.allowed().contains(v))
            .ok_or_else(|| {
                let allowed: Vec<&str> = self.allowed().iter().map(|v| v.as_str()).collect();
                Error::bad_request(format!(
                    "invalid body: {field} must be one of {}",
                    allowed.join(", ")
                ))
            })
    }
}

/// The account's privacy settings; `None` where WhatsApp did not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Privacy {
    pub last_seen: Option<PrivacyValue>,
    pub status: Option<PrivacyValue>,
    pub profile: Option<PrivacyValue>,
    pub online: Option<PrivacyValue>,
    pub read_receipts: Option<PrivacyValue>,
    pub call_add: Option<PrivacyValue>,
    pub group_add: Option<PrivacyValue>,
}

impl Privacy {
    pub fn get(&self, category: PrivacyCategory) -> Option<PrivacyValue> {
        *self.slot(category)
    }

    pub fn set(&mut self, category: PrivacyCategory, value: PrivacyValue) {
        *self.slot_mut(category) = Some(value);
    }

    fn slot(&self, category: PrivacyCategory) -> &Option<PrivacyValue> {
        match category {
            PrivacyCategory::LastSeen => &self.last_seen,
            PrivacyCategory::Status => &self.status,
            PrivacyCategory::Profile => &self.profile,
            PrivacyCategory::Online => &self.online,
            PrivacyCategory::ReadReceipts => &self.read_receipts,
            PrivacyCategory::CallAdd => &self.call_add,
            PrivacyCategory::GroupAdd => &self.group_add,
        }
    }

    fn slot_mut(&mut self, category: PrivacyCategory) -> &mut Option<PrivacyValue> {
        match category {
            PrivacyCategory::LastSeen => &mut self.last_seen,
            PrivacyCategory::Status => &mut self.status,
            PrivacyCategory::Profile => &mut self.profile,
            PrivacyCategory::Online => &mut self.online,
            PrivacyCategory::ReadReceipts => &mut self.read_receipts,
            PrivacyCategory::CallAdd => &mut self.call_add,
            PrivacyCategory::GroupAdd => &mut self.group_add,
        }
    }
}

/// What happened in a group (RyzeAPI's `group.flow` types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupChangeKind {
    /// Members came in (added, joined by link, approved, or the group was created).
    Joined,
    /// Members went (removed or left).
    Left,
    Promoted,
    Demoted,
    /// The group was renamed.
    Name,
    /// The group was deleted (a community deactivated).
    Delete,
}

impl GroupChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Joined => "joined",
            Self::Left => "left",
            Self::Promoted => "promoted",
            Self::Demoted => "demoted",
            Self::Name => "name",
            Self::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// A phone jid or an `@lid`.
    pub jid: Jid,
    pub lid: Option<Jid>,
    pub name: Option<String>,
}

/// A change in a group, as WhatsApp notifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChange {
    /// WhatsApp's notification id; the same id again is a redelivery.
    pub id: String,
    pub group: Jid,
    pub kind: GroupChangeKind,
    /// The group's (new) name, when known.
    pub group_name: Option<String>,
    pub participants: Vec<GroupMember>,
    /// Who made the change, when WhatsApp says.
    pub author: Option<Jid>,
    /// Unix seconds.
    pub timestamp: i64,
}

/// The group and profile operations every provider offers. Each needs a
/// connected session (`Error::NotConnected` otherwise); a group the account
/// is not in is `404 Group not found`.
#[async_trait]
pub trait GroupsAndProfiles: Send + Sync {
    async fn create_group(&self, instance_id: &str, group: NewGroup) -> Result<GroupInfo>;

    /// The groups the account is in; `participants` filled only with `members`.
    async fn groups(&self, instance_id: &str, members: bool) -> Result<Vec<GroupInfo>>;

    /// A group the account is in (by jid), or the group behind an invite.
    async fn group_info(&self, instance_id: &str, group: &GroupRef) -> Result<GroupInfo>;

    async fn update_group(
        &self,
        instance_id: &str,
        group: &Jid,
        update: GroupUpdate,
    ) -> Result<GroupInfo>;

    async fn group_participants(
        &self,
        instance_id: &str,
        group: &Jid,
        action: ParticipantAction,
        participants: &[Jid],
    ) -> Result<Vec<ParticipantResult>>;

    /// Joins by invite code; the group's jid, or `None` when the group
    /// needs an admin's approval first (the request is pending).
    async fn join_group(&self, instance_id: &str, code: &str) -> Result<Option<Jid>>;

    /// Revokes the invite link; the new code.
    async fn reset_invite(&self, instance_id: &str, group: &Jid) -> Result<String>;

    async fn join_requests(&self, instance_id: &str, group: &Jid) -> Result<Vec<JoinRequest>>;

    async fn leave_group(&self, instance_id: &str, group: &Jid) -> Result<()>;

    /// The groups of a community (without members).
    async fn sub_groups(&self, instance_id: &str, community: &Jid) -> Result<Vec<GroupInfo>>;

    /// The own profile (`None`), or another account's by phone jid or `@lid`.
    async fn profile(&self, instance_id: &str, who: Option<&Jid>) -> Result<Profile>;

    async fn update_profile(&self, instance_id: &str, update: ProfileUpdate) -> Result<()>;

    async fn privacy(&self, instance_id: &str) -> Result<Privacy>;

    /// Sets the categories `changes` names; the settings after the change.
    async fn set_privacy(
        &self,
        instance_id: &str,
        changes: &[(PrivacyCategory, PrivacyValue)],
    ) -> Result<Privacy>;
}

pub const GROUP_NOT_FOUND: &str = "Group not found";
pub const INVITE_NOT_FOUND: &str = "Invite not found";
pub const NOT_GROUP_ADMIN: &str = "Only group admins can do this";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_named_by_jid_code_or_link() {
        assert_eq!(
            GroupRef::parse("identifier", "120363024567890123@g.us").unwrap(),
            GroupRef::Jid(Jid::parse("120363024567890123@g.us").unwrap())
        );
        assert_eq!(
            GroupRef::parse(
                "identifier",
                "https://chat.whatsapp.com/AbCdEfGhIj12345?x=1"
            )
            .unwrap(),
            GroupRef::Invite("AbCdEfGhIj12345".into())
        );
        assert_eq!(
            GroupRef::parse("identifier", "AbCdEfGhIj12345").unwrap(),
            GroupRef::Invite("AbCdEfGhIj12345".into())
        );
        for bad in [
            "5511999999999@s.whatsapp.net",
            "https://example.com/AbCdEfGhIj12345",
            "short",
            "has space in it",
        ] {
            let err = GroupRef::parse("identifier", bad).unwrap_err();
            assert!(err.to_string().contains("identifier"), "{bad}: {err}");
        }
    }

    #[test]
    fn privacy_values_are_checked_per_category() {
        assert_eq!(
            PrivacyCategory::Online
                .parse_value("visibility.online", "match_last_seen")
                .unwrap(),
            PrivacyValue::MatchLastSeen
        );
        let err = PrivacyCategory::ReadReceipts
            .parse_value("privacy.readReceipts", "contacts")
            .unwrap_err();
        assert!(err.to_string().contains("privacy.readReceipts"));
        assert!(
            PrivacyCategory::CallAdd
                .parse_value("permissions.callAdd", "known")
                .is_ok()
        );
    }

    #[test]
    fn a_settings_patch_changes_only_what_it_names() {
        let mut settings = GroupSettings::default();
        GroupSettingsPatch {
            members_can_send_messages: Some(false),
            ..Default::default()
        }
        .apply(&mut settings);
        assert!(!settings.members_can_send_messages);
        assert!(settings.members_can_edit_info);
    }
}
