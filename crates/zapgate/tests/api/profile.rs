//! The profile module end to end on the sandbox: the own account and
//! others' by number or `@lid`, changing name, about and picture, and the
//! privacy settings with their read-back (and their effect on groups).

use serde_json::{Value, json};

use crate::{
    groups::{data_url, ok, refused},
    harness::TestServer,
};

const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 9,
];

async fn two_phones(server: &TestServer) -> (String, String) {
    let (_, account) = server.create_account("acme", 10).await;
    let a = server.create_instance(&account, "suporte").await;
    server.pair(&a, "suporte", "5511999990000").await;
    let b = server.create_instance(&account, "cliente").await;
    server.pair(&b, "cliente", "5511988887777").await;
    (a, b)
}

#[tokio::test]
async fn the_account_profile_reads_back_what_was_set() {
    let server = TestServer::start().await;
    let (token, other) = two_phones(&server).await;

    let own = server
        .get("/api/profile/getAccount/suporte", Some(&token))
        .await;
    let profile = ok(&own)["profile"].clone();
    // What a RyzeAPI client checks: the connected phone and a `<digits>@lid`.
    assert_eq!(profile["jid"], "5511999990000@s.whatsapp.net");
    assert_eq!(profile["phoneNumber"], "5511999990000");
    let lid = profile["lid"].as_str().unwrap().to_owned();
    let digits = lid.strip_suffix("@lid").unwrap();
    assert!(
        (6..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()),
        "{lid}"
    );
    assert_eq!(profile["name"], Value::Null);
    assert_eq!(profile["isBusiness"], false);

    let updated = server
        .post(
            "/api/profile/account/suporte",
            Some(&token),
            json!({"name": "Central", "about": "Atendimento 24h", "picture": data_url(JPEG)}),
        )
        .await;
    assert_eq!(ok(&updated)["message"], "Profile updated");
    assert_eq!(updated.body["profile"]["name"], "Central");
    let own = server
        .get("/api/profile/getAccount/suporte", Some(&token))
        .await;
    assert_eq!(ok(&own)["profile"]["name"], "Central");
    assert_eq!(own.body["profile"]["about"], "Atendimento 24h");
    let picture = own.body["profile"]["pictureUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    // The same bytes make the same picture, as a group picture shows too.
    let group = server
        .post(
            "/api/group/create/suporte",
            Some(&token),
            json!({"name": "G", "participants": ["5511977776666"], "image": data_url(JPEG)}),
        )
        .await;
    assert_eq!(ok(&group)["group"]["pictureUrl"], json!(picture));

    // Another phone reads it by number and by LID.
    for number in ["5511999990000", lid.as_str()] {
        let theirs = server
            .get(
                &format!("/api/profile/getAccount/cliente?number={number}"),
                Some(&other),
            )
            .await;
        let profile = &ok(&theirs)["profile"];
        assert_eq!(profile["jid"], "5511999990000@s.whatsapp.net", "{number}");
        assert_eq!(profile["lid"], json!(lid));
        assert_eq!(profile["name"], "Central");
    }
    server
        .get(
            "/api/profile/getAccount/cliente?number=999999999999999@lid",
            Some(&other),
        )
        .await
        .assert_error(404, "Contact not found");
    refused(
        &server
            .get(
                "/api/profile/getAccount/cliente?number=120363000000000000@g.us",
                Some(&other),
            )
            .await,
        "number",
    );

    for (body, field) in [
        (json!({}), "nothing to update"),
        (json!({"name": "n".repeat(26)}), "name"),
        (json!({"name": " "}), "name"),
        (json!({"about": "a".repeat(140)}), "about"),
        (
            json!({"picture": "data:image/png;base64,iVBORw0KGgo="}),
            "picture",
        ),
        (json!({"picture": "http://127.0.0.1:9/me.jpg"}), "picture"),
    ] {
        refused(
            &server
                .post("/api/profile/account/suporte", Some(&token), body)
                .await,
            field,
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn privacy_settings_are_grouped_read_back_and_take_effect() {
    let server = TestServer::start().await;
    let (token, other) = two_phones(&server).await;

    let before = server
        .get("/api/profile/getPrivacy/suporte", Some(&token))
        .await;
    assert_eq!(ok(&before)["visibility"]["lastSeen"], "all");
    assert_eq!(before.body["privacy"]["readReceipts"], "all");
    assert_eq!(before.body["permissions"]["groupAdd"], "all");

    let set = server
        .post(
            "/api/profile/privacy/suporte",
            Some(&token),
            json!({"visibility": {"lastSeen": "contacts", "online": "match_last_seen"},
                   "privacy": {"readReceipts": "none"},
                   "permissions": {"groupAdd": "none", "callAdd": "known"}}),
        )
        .await;
    assert_eq!(ok(&set)["message"], "Privacy settings updated");
    let expected = json!({
        "visibility": {"lastSeen": "contacts", "status": "contacts", "profile": "all",
                       "online": "match_last_seen"},
        "privacy": {"readReceipts": "none"},
        "permissions": {"callAdd": "known", "groupAdd": "none"},
    });
    for path in [
        "/api/profile/getPrivacy/suporte",
        "/api/profile/privacy/suporte",
    ] {
        let read = server.get(path, Some(&token)).await;
        let body = ok(&read);
        for key in ["visibility", "privacy", "permissions"] {
            assert_eq!(body[key], expected[key], "{path} {key}");
        }
    }

    // Nobody may add this phone to a group now: WhatsApp answers 403 for it.
    let created = server
        .post(
            "/api/group/create/cliente",
            Some(&other),
            json!({"name": "G", "participants": ["5511977776666"]}),
        )
        .await;
    let jid = ok(&created)["group"]["groupJid"].clone();
    let added = server
        .post(
            "/api/group/participants/cliente",
            Some(&other),
            json!({"groupJid": jid, "action": "add", "participants": ["5511999990000"]}),
        )
        .await;
    assert_eq!(
        ok(&added)["results"],
        json!([{"jid": "5511999990000@s.whatsapp.net", "success": false, "code": 403}])
    );

    for (body, field) in [
        (json!({}), "nothing to update"),
        (
            json!({"visibility": {"online": "contacts"}}),
            "visibility.online",
        ),
        (
            json!({"privacy": {"readReceipts": "contacts"}}),
            "privacy.readReceipts",
        ),
        (
            json!({"permissions": {"callAdd": "none"}}),
            "permissions.callAdd",
        ),
        (
            json!({"visibility": {"lastSeen": "everyone"}}),
            "visibility.lastSeen",
        ),
    ] {
        refused(
            &server
                .post("/api/profile/privacy/suporte", Some(&token), body)
                .await,
            field,
        );
    }
    // Nothing was half applied by the refused bodies.
    let read = server
        .get("/api/profile/getPrivacy/suporte", Some(&token))
        .await;
    assert_eq!(ok(&read)["visibility"]["lastSeen"], "contacts");
    server.stop().await;
}
