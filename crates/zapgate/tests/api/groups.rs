//! The group module end to end on the sandbox: create, list, info, update,
//! participants, invites, join requests, leave, community sub-groups, and
//! the `group.flow` events a webhook receives for the changes.

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Env, Receiver, Reply, TestServer};

/// The first bytes of a JPEG are all the sandbox looks at.
const JPEG_A: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 1,
];
const JPEG_B: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x10, b'E', b'x', b'i', b'f', 2,
];

pub fn data_url(bytes: &[u8]) -> String {
    format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

pub fn ok(reply: &Reply) -> &Value {
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    assert_eq!(reply.body["success"], json!(true), "{}", reply.text);
    &reply.body
}

/// A 400 whose message names `field`.
pub fn refused(reply: &Reply, field: &str) {
    assert_eq!(reply.status.as_u16(), 400, "{}", reply.text);
    let message = reply.error();
    assert!(message.contains(field), "{field} not named in {message:?}");
}

/// The group jid shape a RyzeAPI client accepts.
fn is_group_jid(raw: &str) -> bool {
    let Some(user) = raw.strip_suffix("@g.us") else {
        return false;
    };
    let mut parts = user.splitn(2, '-');
    let digits =
        |s: &str, min, max| (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    parts.next().is_some_and(|p| digits(p, 5, 25)) && parts.next().is_none_or(|p| digits(p, 5, 20))
}

async fn put(server: &TestServer, path: &str, token: &str, body: Value) -> Reply {
    server
        .call(Method::PUT, path, Some(token), Some(body))
        .await
}

/// Instances of one account, each paired with its number; their tokens.
async fn phones(server: &TestServer, phones: &[(&str, &str)]) -> Vec<String> {
    let (_, account) = server.create_account("acme", 10).await;
    let mut tokens = Vec::new();
    for (name, number) in phones {
        let token = server.create_instance(&account, name).await;
        server.pair(&token, name, number).await;
        tokens.push(token);
    }
    tokens
}

async fn create(server: &TestServer, token: &str, body: Value) -> Value {
    let reply = server
        .post("/api/group/create/suporte", Some(token), body)
        .await;
    assert_eq!(ok(&reply)["message"], "Group created successfully");
    reply.body["group"].clone()
}

fn members(group: &Value) -> Vec<(String, bool, bool)> {
    group["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["jid"].as_str().unwrap().to_owned(),
                p["isAdmin"].as_bool().unwrap(),
                p["isSuperAdmin"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_group_is_created_listed_read_updated_and_left() {
    let server = TestServer::start().await;
    let tokens = phones(
        &server,
        &[("suporte", "5511999990000"), ("cliente", "5511988887777")],
    )
    .await;
    let (admin, member) = (&tokens[0], &tokens[1]);

    let group = create(
        &server,
        admin,
        json!({"name": "Suporte VIP", "participants": ["+55 11 98888-7777", "5511977776666"],
               "description": "Atendimento", "image": data_url(JPEG_A),
               "groupSettings": {"membersCanSendMessages": false}}),
    )
    .await;
    let jid = group["groupJid"].as_str().unwrap().to_owned();
    assert!(is_group_jid(&jid), "{jid}");
    assert_eq!(group["name"], "Suporte VIP");
    assert_eq!(group["description"], "Atendimento");
    assert_eq!(group["memberCount"], 3);
    assert_eq!(group["createdBy"], "5511999990000@s.whatsapp.net");
    assert_eq!(
        members(&group),
        [
            ("5511999990000@s.whatsapp.net".to_owned(), true, true),
            ("5511988887777@s.whatsapp.net".to_owned(), false, false),
            ("5511977776666@s.whatsapp.net".to_owned(), false, false),
        ]
    );
    assert_eq!(group["groupSettings"]["membersCanSendMessages"], false);
    assert_eq!(group["groupSettings"]["membersCanEditInfo"], true);
    let code = group["inviteCode"].as_str().unwrap().to_owned();
    assert_eq!(
        group["inviteLink"],
        json!(format!("https://chat.whatsapp.com/{code}"))
    );
    let picture_a = group["pictureUrl"].as_str().unwrap().to_owned();

    // The list as the RyzeAPI setup panel reads it.
    let list = server
        .get("/api/group/list/suporte?includeMembers=false", Some(admin))
        .await;
    assert_eq!(ok(&list)["message"], "1 groups found");
    let item = &list.body["groups"][0];
    assert_eq!(item["groupJid"], json!(jid));
    assert_eq!(item["name"], "Suporte VIP");
    assert_eq!(item["memberCount"], 3);
    assert!(item.get("participants").is_none(), "{item}");
    let with = server
        .get("/api/group/list/suporte?includeMembers=true", Some(admin))
        .await;
    assert_eq!(
        ok(&with)["groups"][0]["participants"][1]["jid"],
        "5511988887777@s.whatsapp.net"
    );
    refused(
        &server
            .get("/api/group/list/suporte?includeMembers=maybe", Some(admin))
            .await,
        "includeMembers",
    );
    // A member who is not an admin does not see the invite.
    let theirs = server.get("/api/group/list/cliente", Some(member)).await;
    assert_eq!(ok(&theirs)["groups"][0]["groupJid"], json!(jid));
    assert_eq!(theirs.body["groups"][0]["inviteCode"], Value::Null);

    // Info by jid, invite code or link.
    for identifier in [
        jid.clone(),
        code.clone(),
        format!("https://chat.whatsapp.com/{code}"),
    ] {
        let info = server
            .get(
                &format!("/api/group/info/suporte?identifier={}", encode(&identifier)),
                Some(admin),
            )
            .await;
        assert_eq!(ok(&info)["group"]["groupJid"], json!(jid), "{identifier}");
    }
    server
        .get(
            "/api/group/info/suporte?identifier=ZZZZZZZZZZZZZZZZZZZZZZ",
            Some(admin),
        )
        .await
        .assert_error(404, "Invite not found");
    server
        .get(
            "/api/group/info/suporte?identifier=120363000000000000@g.us",
            Some(admin),
        )
        .await
        .assert_error(404, "Group not found");
    refused(
        &server
            .get(
                "/api/group/info/suporte?identifier=not%20a%20group",
                Some(admin),
            )
            .await,
        "identifier",
    );
    refused(
        &server.get("/api/group/info/suporte", Some(admin)).await,
        "identifier",
    );

    // Update: name, description, picture, settings.
    let updated = put(
        &server,
        "/api/group/update/suporte",
        admin,
        json!({"groupJid": jid, "name": "Suporte Ouro", "description": "",
               "image": data_url(JPEG_B), "groupSettings": {"requireAdminApproval": true}}),
    )
    .await;
    let updated = &ok(&updated)["group"];
    assert_eq!(updated["name"], "Suporte Ouro");
    assert_eq!(updated["description"], Value::Null);
    assert_eq!(updated["groupSettings"]["requireAdminApproval"], true);
    assert_eq!(updated["groupSettings"]["membersCanSendMessages"], false);
    let picture_b = updated["pictureUrl"].as_str().unwrap();
    assert_ne!(picture_b, picture_a);
    refused(
        &put(
            &server,
            "/api/group/update/suporte",
            admin,
            json!({"groupJid": jid}),
        )
        .await,
        "nothing to update",
    );
    refused(
        &put(
            &server,
            "/api/group/update/suporte",
            admin,
            json!({"name": "x"}),
        )
        .await,
        "groupJid",
    );
    refused(
        &put(
            &server,
            "/api/group/update/suporte",
            admin,
            json!({"groupJid": "5511988887777@s.whatsapp.net", "name": "x"}),
        )
        .await,
        "groupJid",
    );
    refused(
        &put(
            &server,
            "/api/group/update/suporte",
            admin,
            json!({"groupJid": jid, "name": "x".repeat(101)}),
        )
        .await,
        "name",
    );
    refused(
        &put(
            &server,
            "/api/group/update/suporte",
            admin,
            json!({"groupJid": jid, "image": "data:image/png;base64,iVBORw0KGgo="}),
        )
        .await,
        "image must be a JPEG",
    );
    // The image URL goes through the private-address guard.
    refused(
        &put(
            &server,
            "/api/group/update/suporte",
            admin,
            json!({"groupJid": jid, "image": "http://127.0.0.1:9/picture.jpg"}),
        )
        .await,
        "image",
    );
    put(
        &server,
        "/api/group/update/cliente",
        member,
        json!({"groupJid": jid, "groupSettings": {"membersCanEditInfo": false}}),
    )
    .await
    .assert_error(403, "Only group admins can do this");

    // The member leaves: the group is gone from its list and its info.
    let left = server
        .call(
            Method::DELETE,
            &format!("/api/group/leave/cliente?groupJid={jid}"),
            Some(member),
            None,
        )
        .await;
    assert_eq!(ok(&left)["groupJid"], json!(jid));
    assert_eq!(
        ok(&server.get("/api/group/list/cliente", Some(member)).await)["groups"],
        json!([])
    );
    server
        .get(
            &format!("/api/group/info/cliente?identifier={jid}"),
            Some(member),
        )
        .await
        .assert_error(404, "Group not found");
    let info = server
        .get(
            &format!("/api/group/info/suporte?identifier={jid}"),
            Some(admin),
        )
        .await;
    assert_eq!(ok(&info)["group"]["memberCount"], 2);
    refused(
        &server
            .call(
                Method::DELETE,
                "/api/group/leave/cliente",
                Some(member),
                None,
            )
            .await,
        "groupJid",
    );

    // Nothing works while the phone is offline.
    ok(&server
        .post("/api/sandbox/suporte/disconnect", Some(admin), json!({}))
        .await);
    server
        .get("/api/group/list/suporte", Some(admin))
        .await
        .assert_error(503, "Instance is not connected to WhatsApp");
    server.stop().await;
}

fn encode(raw: &str) -> String {
    raw.replace(':', "%3A")
        .replace('/', "%2F")
        .replace('@', "%40")
}

#[tokio::test]
async fn participants_invites_and_join_requests() {
    let server = TestServer::start().await;
    let tokens = phones(
        &server,
        &[
            ("suporte", "5511999990000"),
            ("cliente", "5511988887777"),
            ("terceiro", "5511944443333"),
        ],
    )
    .await;
    let (admin, member, third) = (&tokens[0], &tokens[1], &tokens[2]);
    let group = create(
        &server,
        admin,
        json!({"name": "Equipe", "participants": ["5511988887777"]}),
    )
    .await;
    let jid = group["groupJid"].as_str().unwrap().to_owned();
    let participants =
        |action: &str, who: Value| json!({"groupJid": jid, "action": action, "participants": who});

    // WhatsApp answers per participant.
    let added = server
        .post(
            "/api/group/participants/suporte",
            Some(admin),
            participants("add", json!(["5511988887777", "5511955554444"])),
        )
        .await;
    assert_eq!(ok(&added)["action"], "add");
    assert_eq!(added.body["message"], "1 of 2 participants updated");
    assert_eq!(
        added.body["results"],
        json!([
            {"jid": "5511988887777@s.whatsapp.net", "success": false, "code": 409},
            {"jid": "5511955554444@s.whatsapp.net", "success": true, "code": 200},
        ])
    );
    let removed = server
        .post(
            "/api/group/participants/suporte",
            Some(admin),
            participants("remove", json!(["5511955554444", "5511900000000"])),
        )
        .await;
    assert_eq!(
        ok(&removed)["results"],
        json!([
            {"jid": "5511955554444@s.whatsapp.net", "success": true, "code": 200},
            {"jid": "5511900000000@s.whatsapp.net", "success": false, "code": 404},
        ])
    );
    // Only admins manage participants; a promoted member is one.
    server
        .post(
            "/api/group/participants/cliente",
            Some(member),
            participants("add", json!(["5511955554444"])),
        )
        .await
        .assert_error(403, "Only group admins can do this");
    ok(&server
        .post(
            "/api/group/participants/suporte",
            Some(admin),
            participants("promote", json!(["5511988887777"])),
        )
        .await);
    let reset = server
        .post(
            "/api/group/resetLink/cliente",
            Some(member),
            json!({"groupJid": jid}),
        )
        .await;
    let new_code = ok(&reset)["inviteCode"].as_str().unwrap().to_owned();
    assert_ne!(new_code, group["inviteCode"].as_str().unwrap());
    assert_eq!(
        reset.body["inviteLink"],
        json!(format!("https://chat.whatsapp.com/{new_code}"))
    );
    let demoted = server
        .post(
            "/api/group/participants/suporte",
            Some(admin),
            participants("demote", json!(["5511988887777"])),
        )
        .await;
    assert_eq!(ok(&demoted)["results"][0]["code"], 200);
    let info = server
        .get(
            &format!("/api/group/info/suporte?identifier={jid}"),
            Some(admin),
        )
        .await;
    assert_eq!(
        members(&ok(&info)["group"])[1],
        ("5511988887777@s.whatsapp.net".to_owned(), false, false)
    );

    // Bad input names the field.
    for (body, field) in [
        (participants("kick", json!(["5511955554444"])), "action"),
        (
            json!({"groupJid": jid, "participants": ["5511955554444"]}),
            "action",
        ),
        (participants("add", json!([])), "participants"),
        (
            participants("add", json!(["5511955554444", "nope"])),
            "participants[1]",
        ),
        (
            participants("add", json!(["120363000000000000@g.us"])),
            "participants[0]",
        ),
        (
            json!({"action": "add", "participants": ["5511955554444"]}),
            "groupJid",
        ),
    ] {
        refused(
            &server
                .post("/api/group/participants/suporte", Some(admin), body)
                .await,
            field,
        );
    }

    // The old link is dead; the new one lets a third phone in.
    server
        .post(
            "/api/group/join/terceiro",
            Some(third),
            json!({"identifier": group["inviteCode"]}),
        )
        .await
        .assert_error(404, "Invite not found");
    let joined = server
        .post(
            "/api/group/join/terceiro",
            Some(third),
            json!({"identifier": format!("https://chat.whatsapp.com/{new_code}")}),
        )
        .await;
    assert_eq!(ok(&joined)["status"], "joined");
    assert_eq!(joined.body["groupJid"], json!(jid));
    refused(
        &server
            .post("/api/group/join/terceiro", Some(third), json!({}))
            .await,
        "identifier",
    );
    refused(
        &server
            .post(
                "/api/group/join/terceiro",
                Some(third),
                json!({"identifier": "https://example.com/abc"}),
            )
            .await,
        "identifier",
    );

    // With approval required, joining waits for an admin.
    ok(&server
        .call(
            Method::PUT,
            "/api/group/update/suporte",
            Some(admin),
            Some(json!({"groupJid": jid, "groupSettings": {"requireAdminApproval": true}})),
        )
        .await);
    ok(&server
        .call(
            Method::DELETE,
            &format!("/api/group/leave/terceiro?groupJid={jid}"),
            Some(third),
            None,
        )
        .await);
    let pending = server
        .post(
            "/api/group/join/terceiro",
            Some(third),
            json!({"identifier": new_code}),
        )
        .await;
    assert_eq!(ok(&pending)["status"], "pending");
    let requests = server
        .get(
            &format!("/api/group/requests/suporte?groupJid={jid}"),
            Some(admin),
        )
        .await;
    let listed = ok(&requests)["requests"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["jid"], "5511944443333@s.whatsapp.net");
    assert!(listed[0]["requestedAt"].as_i64().unwrap() > 1_700_000_000);
    server
        .get(
            &format!("/api/group/requests/cliente?groupJid={jid}"),
            Some(member),
        )
        .await
        .assert_error(403, "Only group admins can do this");
    refused(
        &server.get("/api/group/requests/suporte", Some(admin)).await,
        "groupJid",
    );
    let approved = server
        .post(
            "/api/group/participants/suporte",
            Some(admin),
            participants("approve", json!(["5511944443333"])),
        )
        .await;
    assert_eq!(ok(&approved)["results"][0]["code"], 200);
    let requests = server
        .get(
            &format!("/api/group/requests/suporte?groupJid={jid}"),
            Some(admin),
        )
        .await;
    assert_eq!(ok(&requests)["requests"], json!([]));
    let theirs = server.get("/api/group/list/terceiro", Some(third)).await;
    assert_eq!(ok(&theirs)["groups"][0]["groupJid"], json!(jid));
    server.stop().await;
}

#[tokio::test]
async fn a_community_lists_the_groups_created_in_it() {
    let server = TestServer::start().await;
    let tokens = phones(&server, &[("suporte", "5511999990000")]).await;
    let token = &tokens[0];
    let community = server
        .post(
            "/api/sandbox/suporte/community",
            Some(token),
            json!({"name": "Bairro"}),
        )
        .await;
    let community_jid = ok(&community)["communityJid"].as_str().unwrap().to_owned();
    let inside = create(
        &server,
        token,
        json!({"name": "Avisos", "participants": ["5511988887777"], "communityJid": community_jid}),
    )
    .await;
    assert_eq!(inside["communityJid"], json!(community_jid));
    create(
        &server,
        token,
        json!({"name": "Fora", "participants": ["5511988887777"]}),
    )
    .await;
    let subs = server
        .get(
            &format!("/api/community/listSubGroups/suporte?communityJid={community_jid}"),
            Some(token),
        )
        .await;
    assert_eq!(ok(&subs)["communityJid"], json!(community_jid));
    let names: Vec<&str> = subs.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Avisos"]);
    // A plain group is no community.
    server
        .get(
            &format!(
                "/api/community/listSubGroups/suporte?communityJid={}",
                inside["groupJid"].as_str().unwrap()
            ),
            Some(token),
        )
        .await
        .assert_error(404, "Community not found");
    refused(
        &server
            .get("/api/community/listSubGroups/suporte", Some(token))
            .await,
        "communityJid",
    );
    refused(
        &server
            .post(
                "/api/group/create/suporte",
                Some(token),
                json!({"name": "x", "participants": ["5511988887777"], "communityJid": "nope"}),
            )
            .await,
        "communityJid",
    );
    for (body, field) in [
        (json!({"participants": ["5511988887777"]}), "name"),
        (
            json!({"name": "  ", "participants": ["5511988887777"]}),
            "name",
        ),
        (json!({"name": "x"}), "participants"),
        (
            json!({"name": "x", "participants": ["5511988887777"], "description": "d".repeat(2049)}),
            "description",
        ),
        (
            json!({"name": "x", "participants": ["5511988887777"], "image": "ftp://x/y.jpg"}),
            "image",
        ),
    ] {
        refused(
            &server
                .post("/api/group/create/suporte", Some(token), body)
                .await,
            field,
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn the_openapi_document_lists_the_group_and_profile_routes() {
    let server = TestServer::start().await;
    let reply = server.get("/openapi.json", None).await;
    let paths = reply.body["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/group/create/{instance}", "post"),
        ("/api/group/list/{instance}", "get"),
        ("/api/group/info/{instance}", "get"),
        ("/api/group/update/{instance}", "put"),
        ("/api/group/participants/{instance}", "post"),
        ("/api/group/join/{instance}", "post"),
        ("/api/group/resetLink/{instance}", "post"),
        ("/api/group/requests/{instance}", "get"),
        ("/api/group/leave/{instance}", "delete"),
        ("/api/community/listSubGroups/{instance}", "get"),
        ("/api/profile/getAccount/{instance}", "get"),
        ("/api/profile/account/{instance}", "post"),
        ("/api/profile/getPrivacy/{instance}", "get"),
        ("/api/profile/privacy/{instance}", "get"),
        ("/api/profile/privacy/{instance}", "post"),
        ("/api/sandbox/{instance}/community", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    server.stop().await;
}

fn env() -> Env {
    Env::default()
        .with("ZAPGATE_ALLOW_PRIVATE_URLS", "true")
        .with("ZAPGATE_WEBHOOK_POLL_MS", "20")
        .with("ZAPGATE_RATE_LIMIT", "off")
}

/// Group changes reach a webhook as `group.flow` events in the shape a
/// RyzeAPI client reads: `type`, `groupJid`, `groupName`,
/// `participants[{jid, lid, name}]`, an ISO `timestamp` with a zone.
async fn group_changes_reach_a_webhook_as_group_flow(server: TestServer) {
    let tokens = phones(&server, &[("suporte", "5511999990000")]).await;
    let token = &tokens[0];
    let (receiver, url) = Receiver::start().await;
    ok(&server
        .post(
            "/api/events/webhook/suporte",
            Some(token),
            json!({"enabled": true, "url": format!("{url}/ryzeapi/events"), "events": ["group.flow"]}),
        )
        .await);
    ok(&server
        .post(
            "/api/profile/account/suporte",
            Some(token),
            json!({"name": "Central"}),
        )
        .await);
    let group = create(
        &server,
        token,
        json!({"name": "Clientes", "participants": ["5511988887777"]}),
    )
    .await;
    let jid = group["groupJid"].clone();
    let flows = receiver.wait_for("group.flow", 1).await;
    let data = &flows[0].2["data"];
    assert_eq!(flows[0].2["instanceData"]["instance"], "suporte");
    assert_eq!(data["type"], "joined");
    assert_eq!(data["groupJid"], jid);
    assert_eq!(data["groupName"], "Clientes");
    let joined: Vec<&Value> = data["participants"].as_array().unwrap().iter().collect();
    assert_eq!(joined.len(), 2);
    assert_eq!(joined[0]["jid"], "5511999990000@s.whatsapp.net");
    assert_eq!(joined[0]["name"], "Central");
    assert!(joined[0]["lid"].as_str().unwrap().ends_with("@lid"));
    assert_eq!(joined[1]["jid"], "5511988887777@s.whatsapp.net");
    assert!(data["timestamp"].as_str().unwrap().ends_with('Z'), "{data}");

    ok(&server
        .post(
            "/api/group/participants/suporte",
            Some(token),
            json!({"groupJid": jid, "action": "remove", "participants": ["5511988887777"]}),
        )
        .await);
    ok(&server
        .call(
            Method::PUT,
            "/api/group/update/suporte",
            Some(token),
            Some(json!({"groupJid": jid, "name": "Clientes 2"})),
        )
        .await);
    let flows = receiver.wait_for("group.flow", 3).await;
    let kinds: Vec<&Value> = flows.iter().map(|(_, _, b)| &b["data"]["type"]).collect();
    assert_eq!(kinds, [&json!("joined"), &json!("left"), &json!("name")]);
    assert_eq!(
        flows[1].2["data"]["participants"][0]["jid"],
        "5511988887777@s.whatsapp.net"
    );
    assert_eq!(flows[2].2["data"]["groupName"], "Clientes 2");
    // The event log keeps them too.
    let log = server
        .get("/api/events/log/suporte?after=0", Some(token))
        .await;
    let logged = ok(&log).to_string();
    assert!(logged.contains("group.flow"), "{logged}");
    server.stop().await;
}

#[tokio::test]
async fn group_flow_on_sqlite() {
    group_changes_reach_a_webhook_as_group_flow(TestServer::start_with(env()).await).await;
}

#[tokio::test]
async fn group_flow_on_postgres() {
    if let Some(server) = TestServer::start_postgres(env()).await {
        group_changes_reach_a_webhook_as_group_flow(server).await;
    }
}
