//! The sandbox's groups, communities, profiles and privacy: one world shared
//! by every instance of the provider, as WhatsApp's is, so an instance can
//! join a group another one created. Members are phone jids; a paired
//! instance is the member whose number it was paired with. Every change is
//! notified as WhatsApp does: a `group.flow` event to each connected
//! instance that is (or just was) in the group.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use zapgate_core::{
    Error, Result,
    groups::{
        GROUP_NOT_FOUND, GroupChange, GroupChangeKind, GroupInfo, GroupMember, GroupParticipant,
        GroupRef, GroupSettings, GroupUpdate, GroupsAndProfiles, INVITE_NOT_FOUND, JoinRequest,
        NOT_GROUP_ADMIN, NewGroup, ParticipantAction, ParticipantResult, Privacy, PrivacyCategory,
        PrivacyValue, Profile, ProfileUpdate,
    },
    jid::{Jid, LID_SERVER},
    time::now_secs,
    whatsapp::Event,
};

use super::SandboxProvider;

/// Invite codes use WhatsApp's alphabet: letters and digits.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const CODE_LEN: usize = 22;
pub const CONTACT_NOT_FOUND: &str = "Contact not found";
pub const NOT_A_COMMUNITY: &str = "Community not found";

#[derive(Debug, Default)]
pub(super) struct World {
    groups: BTreeMap<Jid, Group>,
    /// Feeds group jids, invite codes and notification ids.
    counter: u64,
    /// By phone digits.
    profiles: HashMap<String, ProfileState>,
    privacy: HashMap<String, Privacy>,
}

#[derive(Debug, Clone)]
struct Group {
    jid: Jid,
    name: String,
    description: Option<String>,
    created_by: Jid,
    created_at: i64,
    members: Vec<Member>,
    settings: GroupSettings,
    invite_code: String,
    requests: Vec<JoinRequest>,
    /// SHA-256 of the picture's bytes.
    picture: Option<String>,
    community: Option<Jid>,
    is_community: bool,
}

#[derive(Debug, Clone)]
struct Member {
    jid: Jid,
    admin: bool,
    super_admin: bool,
}

#[derive(Debug, Clone, Default)]
struct ProfileState {
    name: Option<String>,
    about: Option<String>,
    picture: Option<String>,
}

impl Group {
    fn member(&self, jid: &Jid) -> Option<&Member> {
        self.members.iter().find(|m| m.jid == *jid)
    }

    fn is_admin(&self, jid: &Jid) -> bool {
        self.member(jid).is_some_and(|m| m.admin)
    }

    fn info(&self, me: &Jid, members: bool) -> GroupInfo {
        GroupInfo {
            jid: self.jid.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            invite_code: self.is_admin(me).then(|| self.invite_code.clone()),
            created_by: Some(self.created_by.clone()),
            created_at: Some(self.created_at),
            participant_count: self.members.len(),
            participants: if members {
                self.members
                    .iter()
                    .map(|m| GroupParticipant {
                        jid: m.jid.clone(),
                        phone: None,
                        is_admin: m.admin,
                        is_super_admin: m.super_admin,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            settings: self.settings,
            community: self.community.clone(),
            is_community: self.is_community,
            picture_url: self.picture.as_deref().map(picture_url),
        }
    }
}

/// The sandbox shows a picture as a URL naming its bytes' SHA-256, so a
/// client can tell which picture is set (`.invalid` never resolves).
fn picture_url(sha256: &str) -> String {
    format!("https://sandbox.invalid/picture/{sha256}.jpg")
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// WhatsApp's defaults for a new account.
fn default_privacy() -> Privacy {
    Privacy {
        last_seen: Some(PrivacyValue::All),
        status: Some(PrivacyValue::Contacts),
        profile: Some(PrivacyValue::All),
        online: Some(PrivacyValue::All),
        read_receipts: Some(PrivacyValue::All),
        call_add: Some(PrivacyValue::All),
        group_add: Some(PrivacyValue::All),
    }
}

/// A change to notify, decided under the lock.
struct Notice {
    change: GroupChange,
    /// Who hears of it: the members after the change, and those who left.
    audience: Vec<Jid>,
}

impl SandboxProvider {
    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        // Mutations complete before anything that can panic.
        self.world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The account's own jid; the session must be up.
    fn me(&self, instance_id: &str) -> Result<Jid> {
        let slots = self.slots();
        slots
            .get(instance_id)
            .filter(|s| s.is_connected())
            .and_then(|s| s.session.as_ref()?.number_jid.as_deref())
            .and_then(|jid| Jid::parse(jid).ok())
            .ok_or(Error::NotConnected)
    }

    /// A stable `@lid` for a phone number, as WhatsApp gives each account one.
    pub(super) fn lid_of(&self, phone: &Jid) -> Jid {
        let hash = self.digest(&[b"lid", phone.user.as_bytes()]);
        let n = u64::from_be_bytes(hash[..8].try_into().unwrap_or_default());
        Jid {
            user: format!("{}", 100_000_000_000_000 + n % 900_000_000_000_000),
            server: LID_SERVER.to_owned(),
        }
    }

    fn new_group_jid(&self, counter: u64) -> Jid {
        let hash = self.digest(&[b"group", &counter.to_be_bytes()]);
        let n = u64::from_be_bytes(hash[..8].try_into().unwrap_or_default());
        Jid {
            user: format!("1203630{:011}", n % 100_000_000_000),
            server: zapgate_core::jid::GROUP_SERVER.to_owned(),
        }
    }

    fn new_invite_code(&self, counter: u64) -> String {
        self.digest(&[b"invite", &counter.to_be_bytes()])
            .iter()
            .take(CODE_LEN)
            .map(|b| char::from(CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()]))
            .collect()
    }

    fn notice(
        &self,
        world: &mut World,
        group: &Group,
        kind: GroupChangeKind,
        participants: &[Jid],
        author: &Jid,
        left: &[Jid],
    ) -> Notice {
        world.counter += 1;
        let id = hex::encode_upper(&self.digest(&[b"notice", &world.counter.to_be_bytes()])[..8]);
        let mut audience: Vec<Jid> = group.members.iter().map(|m| m.jid.clone()).collect();
        audience.extend(left.iter().cloned());
        Notice {
            change: GroupChange {
                id,
                group: group.jid.clone(),
                kind,
                group_name: Some(group.name.clone()),
                participants: participants
                    .iter()
                    .map(|jid| GroupMember {
                        jid: jid.clone(),
                        lid: Some(self.lid_of(jid)),
                        name: world.profiles.get(&jid.user).and_then(|p| p.name.clone()),
                    })
                    .collect(),
                author: Some(author.clone()),
                timestamp: now_secs(),
            },
            audience,
        }
    }

    /// Hands each notice to every connected instance in its audience.
    async fn notify(&self, notices: Vec<Notice>) -> Result<()> {
        for notice in notices {
            let instances: Vec<String> = {
                let slots = self.slots();
                slots
                    .iter()
                    .filter(|(_, slot)| slot.is_connected())
                    .filter(|(_, slot)| {
                        slot.session
                            .as_ref()
                            .and_then(|s| s.number_jid.as_deref())
                            .and_then(|n| Jid::parse(n).ok())
                            .is_some_and(|n| notice.audience.contains(&n))
                    })
                    .map(|(id, _)| id.clone())
                    .collect()
            };
            for instance_id in instances {
                self.emit(&instance_id, Event::Group(notice.change.clone()))
                    .await?;
            }
        }
        Ok(())
    }

    /// The group `jid` if `me` is in it.
    fn member_group<'w>(world: &'w mut World, jid: &Jid, me: &Jid) -> Result<&'w mut Group> {
        world
            .groups
            .get_mut(jid)
            .filter(|g| g.member(me).is_some())
            .ok_or_else(|| Error::not_found(GROUP_NOT_FOUND))
    }

    fn admin_group<'w>(world: &'w mut World, jid: &Jid, me: &Jid) -> Result<&'w mut Group> {
        let group = Self::member_group(world, jid, me)?;
        if !group.is_admin(me) {
            return Err(Error::Forbidden(NOT_GROUP_ADMIN.to_owned()));
        }
        Ok(group)
    }

    /// The phone side creates a community (RyzeAPI has no route for it).
    pub async fn create_community(&self, instance_id: &str, name: &str) -> Result<GroupInfo> {
        let me = self.me(instance_id)?;
        let (info, notice) = {
            let mut world = self.world();
            let group = self.new_group(&mut world, &me, name, &[], None);
            let group = Group {
                is_community: true,
                ..group
            };
            world.groups.insert(group.jid.clone(), group.clone());
            let notice = self.notice(
                &mut world,
                &group,
                GroupChangeKind::Joined,
                std::slice::from_ref(&me),
                &me,
                &[],
            );
            (group.info(&me, true), notice)
        };
        self.notify(vec![notice]).await?;
        Ok(info)
    }

    fn new_group(
        &self,
        world: &mut World,
        me: &Jid,
        name: &str,
        participants: &[Jid],
        community: Option<Jid>,
    ) -> Group {
        world.counter += 1;
        let counter = world.counter;
        let mut members = vec![Member {
            jid: me.clone(),
            admin: true,
            super_admin: true,
        }];
        for jid in participants {
            if members.iter().all(|m| m.jid != *jid) {
                members.push(Member {
                    jid: jid.clone(),
                    admin: false,
                    super_admin: false,
                });
            }
        }
        Group {
            jid: self.new_group_jid(counter),
            name: name.to_owned(),
            description: None,
            created_by: me.clone(),
            created_at: now_secs(),
            members,
            settings: GroupSettings::default(),
            invite_code: self.new_invite_code(counter),
            requests: Vec::new(),
            picture: None,
            community,
            is_community: false,
        }
    }

    /// `group_add` privacy of `jid`: whether the account may add it.
    fn may_add(world: &World, jid: &Jid) -> bool {
        world
            .privacy
            .get(&jid.user)
            .and_then(|p| p.group_add)
            .is_none_or(|v| v != PrivacyValue::None)
    }
}

#[async_trait]
impl GroupsAndProfiles for SandboxProvider {
    async fn create_group(&self, instance_id: &str, request: NewGroup) -> Result<GroupInfo> {
        let me = self.me(instance_id)?;
        let (info, notice) = {
            let mut world = self.world();
            if let Some(community) = &request.community {
                let parent = Self::admin_group(&mut world, community, &me)?;
                if !parent.is_community {
                    return Err(Error::not_found(NOT_A_COMMUNITY));
                }
            }
            // Those whose privacy refuses being added are left out, as
            // WhatsApp does (they would get an invite instead).
            let addable: Vec<Jid> = request
                .participants
                .iter()
                .filter(|jid| Self::may_add(&world, jid))
                .cloned()
                .collect();
            let mut group = self.new_group(
                &mut world,
                &me,
                &request.name,
                &addable,
                request.community.clone(),
            );
            group.description = request.description.filter(|d| !d.is_empty());
            request.settings.apply(&mut group.settings);
            group.picture = request.image.as_deref().map(sha256_hex);
            world.groups.insert(group.jid.clone(), group.clone());
            let joined: Vec<Jid> = group.members.iter().map(|m| m.jid.clone()).collect();
            let notice = self.notice(
                &mut world,
                &group,
                GroupChangeKind::Joined,
                &joined,
                &me,
                &[],
            );
            (group.info(&me, true), notice)
        };
        self.notify(vec![notice]).await?;
        Ok(info)
    }

    async fn groups(&self, instance_id: &str, members: bool) -> Result<Vec<GroupInfo>> {
        let me = self.me(instance_id)?;
        Ok(self
            .world()
            .groups
            .values()
            .filter(|g| g.member(&me).is_some())
            .map(|g| g.info(&me, members))
            .collect())
    }

    async fn group_info(&self, instance_id: &str, group: &GroupRef) -> Result<GroupInfo> {
        let me = self.me(instance_id)?;
        let mut world = self.world();
        match group {
            GroupRef::Jid(jid) => Ok(Self::member_group(&mut world, jid, &me)?.info(&me, true)),
            GroupRef::Invite(code) => world
                .groups
                .values()
                .find(|g| g.invite_code == *code)
                .map(|g| g.info(&me, true))
                .ok_or_else(|| Error::not_found(INVITE_NOT_FOUND)),
        }
    }

    async fn update_group(
        &self,
        instance_id: &str,
        jid: &Jid,
        update: GroupUpdate,
    ) -> Result<GroupInfo> {
        let me = self.me(instance_id)?;
        let (info, notices) = {
            let mut world = self.world();
            let group = Self::member_group(&mut world, jid, &me)?;
            let admin = group.is_admin(&me);
            let edits_info =
                update.name.is_some() || update.description.is_some() || update.image.is_some();
            if (!update.settings.is_empty()
                || (edits_info && !group.settings.members_can_edit_info))
                && !admin
            {
                return Err(Error::Forbidden(NOT_GROUP_ADMIN.to_owned()));
            }
            let renamed = update.name.as_ref().is_some_and(|n| *n != group.name);
            if let Some(name) = update.name {
                group.name = name;
            }
            if let Some(description) = update.description {
                group.description = Some(description).filter(|d| !d.is_empty());
            }
            if let Some(image) = &update.image {
                group.picture = Some(sha256_hex(image));
            }
            update.settings.apply(&mut group.settings);
            let group = group.clone();
            let mut notices = Vec::new();
            if renamed {
                notices.push(self.notice(&mut world, &group, GroupChangeKind::Name, &[], &me, &[]));
            }
            (group.info(&me, true), notices)
        };
        self.notify(notices).await?;
        Ok(info)
    }

    async fn group_participants(
        &self,
        instance_id: &str,
        jid: &Jid,
        action: ParticipantAction,
        participants: &[Jid],
    ) -> Result<Vec<ParticipantResult>> {
        let me = self.me(instance_id)?;
        let (results, notice) = {
            let mut world = self.world();
            let blocked: Vec<bool> = participants
                .iter()
                .map(|p| !Self::may_add(&world, p))
                .collect();
            let group = Self::admin_group(&mut world, jid, &me)?;
            let mut results = Vec::with_capacity(participants.len());
            let mut changed = Vec::new();
            for (participant, blocked) in participants.iter().zip(blocked) {
                let present = group.members.iter().position(|m| m.jid == *participant);
                let requested = group.requests.iter().position(|r| r.jid == *participant);
                let code = match (action, present, requested) {
                    (ParticipantAction::Add, Some(_), _) => 409,
                    (ParticipantAction::Add, None, _) if blocked => 403,
                    (ParticipantAction::Add | ParticipantAction::Approve, None, request) => {
                        if action == ParticipantAction::Approve && request.is_none() {
                            404
                        } else {
                            group.requests.retain(|r| r.jid != *participant);
                            group.members.push(Member {
                                jid: participant.clone(),
                                admin: false,
                                super_admin: false,
                            });
                            200
                        }
                    }
                    (ParticipantAction::Approve, Some(_), _) => 409,
                    (ParticipantAction::Reject, _, Some(i)) => {
                        group.requests.remove(i);
                        200
                    }
                    (ParticipantAction::Reject, _, None) => 404,
                    (_, None, _) => 404,
                    (ParticipantAction::Remove, Some(i), _) => {
                        // Nobody removes the group's creator.
                        if group.members[i].super_admin {
                            403
                        } else {
                            group.members.remove(i);
                            200
                        }
                    }
                    (ParticipantAction::Promote | ParticipantAction::Demote, Some(i), _) => {
                        if group.members[i].super_admin {
                            403
                        } else {
                            group.members[i].admin = action == ParticipantAction::Promote;
                            200
                        }
                    }
                };
                if code == 200 && action != ParticipantAction::Reject {
                    changed.push(participant.clone());
                }
                results.push(ParticipantResult {
                    jid: participant.clone(),
                    code,
                });
            }
            let group = group.clone();
            let kind = match action {
                ParticipantAction::Add | ParticipantAction::Approve => GroupChangeKind::Joined,
                ParticipantAction::Remove => GroupChangeKind::Left,
                ParticipantAction::Promote => GroupChangeKind::Promoted,
                ParticipantAction::Demote => GroupChangeKind::Demoted,
                ParticipantAction::Reject => GroupChangeKind::Left,
            };
            let notice = (!changed.is_empty()).then(|| {
                let left = if kind == GroupChangeKind::Left {
                    changed.clone()
                } else {
                    Vec::new()
                };
                self.notice(&mut world, &group, kind, &changed, &me, &left)
            });
            (results, notice)
        };
        self.notify(notice.into_iter().collect()).await?;
        Ok(results)
    }

    async fn join_group(&self, instance_id: &str, code: &str) -> Result<Option<Jid>> {
        let me = self.me(instance_id)?;
        let (joined, notice) = {
            let mut world = self.world();
            let group = world
                .groups
                .values_mut()
                .find(|g| g.invite_code == code)
                .ok_or_else(|| Error::not_found(INVITE_NOT_FOUND))?;
            if group.member(&me).is_some() {
                return Ok(Some(group.jid.clone()));
            }
            if group.settings.require_admin_approval {
                if group.requests.iter().all(|r| r.jid != me) {
                    group.requests.push(JoinRequest {
                        jid: me.clone(),
                        requested_at: Some(now_secs()),
                    });
                }
                return Ok(None);
            }
            group.members.push(Member {
                jid: me.clone(),
                admin: false,
                super_admin: false,
            });
            let group = group.clone();
            let notice = self.notice(
                &mut world,
                &group,
                GroupChangeKind::Joined,
                std::slice::from_ref(&me),
                &me,
                &[],
            );
            (group.jid, notice)
        };
        self.notify(vec![notice]).await?;
        Ok(Some(joined))
    }

    async fn reset_invite(&self, instance_id: &str, jid: &Jid) -> Result<String> {
        let me = self.me(instance_id)?;
        let mut world = self.world();
        world.counter += 1;
        let code = self.new_invite_code(world.counter);
        Self::admin_group(&mut world, jid, &me)?.invite_code = code.clone();
        Ok(code)
    }

    async fn join_requests(&self, instance_id: &str, jid: &Jid) -> Result<Vec<JoinRequest>> {
        let me = self.me(instance_id)?;
        let mut world = self.world();
        Ok(Self::admin_group(&mut world, jid, &me)?.requests.clone())
    }

    async fn leave_group(&self, instance_id: &str, jid: &Jid) -> Result<()> {
        let me = self.me(instance_id)?;
        let notice = {
            let mut world = self.world();
            let group = Self::member_group(&mut world, jid, &me)?;
            group.members.retain(|m| m.jid != me);
            // WhatsApp hands the group to someone when its last admin leaves.
            if !group.members.is_empty() && group.members.iter().all(|m| !m.admin) {
                group.members[0].admin = true;
            }
            let group = group.clone();
            if group.members.is_empty() {
                world.groups.remove(jid);
            }
            self.notice(
                &mut world,
                &group,
                GroupChangeKind::Left,
                std::slice::from_ref(&me),
                &me,
                std::slice::from_ref(&me),
            )
        };
        self.notify(vec![notice]).await
    }

    async fn sub_groups(&self, instance_id: &str, community: &Jid) -> Result<Vec<GroupInfo>> {
        let me = self.me(instance_id)?;
        let mut world = self.world();
        if !Self::member_group(&mut world, community, &me)?.is_community {
            return Err(Error::not_found(NOT_A_COMMUNITY));
        }
        Ok(world
            .groups
            .values()
            .filter(|g| g.community.as_ref() == Some(community))
            .map(|g| g.info(&me, false))
            .collect())
    }

    async fn profile(&self, instance_id: &str, who: Option<&Jid>) -> Result<Profile> {
        let me = self.me(instance_id)?;
        let world = self.world();
        let phone = match who {
            None => me,
            Some(jid) if jid.is_lid() => {
                // The numbers the sandbox knows: accounts with a profile and group members.
                let known = world
                    .profiles
                    .keys()
                    .map(|digits| Jid::user(digits))
                    .chain(std::iter::once(me))
                    .chain(
                        world
                            .groups
                            .values()
                            .flat_map(|g| g.members.iter().map(|m| m.jid.clone())),
                    );
                let mut found = None;
                for phone in known {
                    if self.lid_of(&phone) == *jid {
                        found = Some(phone);
                        break;
                    }
                }
                found.ok_or_else(|| Error::not_found(CONTACT_NOT_FOUND))?
            }
            Some(jid) if jid.server == zapgate_core::jid::USER_SERVER => jid.clone(),
            Some(_) => return Err(Error::not_found(CONTACT_NOT_FOUND)),
        };
        let state = world.profiles.get(&phone.user).cloned().unwrap_or_default();
        Ok(Profile {
            lid: Some(self.lid_of(&phone)),
            phone_number: Some(phone.user.clone()),
            jid: Some(phone),
            name: state.name,
            about: state.about,
            picture_url: state.picture.as_deref().map(picture_url),
            is_business: false,
        })
    }

    async fn update_profile(&self, instance_id: &str, update: ProfileUpdate) -> Result<()> {
        let me = self.me(instance_id)?;
        let mut world = self.world();
        let state = world.profiles.entry(me.user).or_default();
        if let Some(name) = update.name {
            state.name = Some(name);
        }
        if let Some(about) = update.about {
            state.about = Some(about);
        }
        if let Some(picture) = &update.picture {
            state.picture = Some(sha256_hex(picture));
        }
        Ok(())
    }

    async fn privacy(&self, instance_id: &str) -> Result<Privacy> {
        let me = self.me(instance_id)?;
        Ok(self
            .world()
            .privacy
            .get(&me.user)
            .copied()
            .unwrap_or_else(default_privacy))
    }

    async fn set_privacy(
        &self,
        instance_id: &str,
        changes: &[(PrivacyCategory, PrivacyValue)],
    ) -> Result<Privacy> {
        let me = self.me(instance_id)?;
        let mut world = self.world();
        let privacy = world.privacy.entry(me.user).or_insert_with(default_privacy);
        for (category, value) in changes {
            privacy.set(*category, *value);
        }
        Ok(*privacy)
    }
}
