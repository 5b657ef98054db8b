//! The instance module (spec §2): create, connect, list, logout, delete, with
//! every success body checked field by field and every documented error.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Reply, TestServer};

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The keys of a JSON object, sorted.
fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn names(list: &Reply) -> Vec<String> {
    let mut names: Vec<String> = list.body["instances"]
        .as_array()
        .unwrap_or_else(|| panic!("no instances array: {}", list.text))
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn assert_ok(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

async fn create(server: &TestServer, token: &str, body: Value) -> Reply {
    server.post("/api/instance/new", Some(token), body).await
}

/// The list item of `name`, seen with `token`.
async fn list_item(server: &TestServer, token: &str, name: &str) -> Value {
    let list = server
        .get(
            &format!("/api/instance/list?instanceName={name}"),
            Some(token),
        )
        .await;
    assert_ok(&list);
    assert_eq!(
        list.body["message"],
        json!("1 Instance found"),
        "{}",
        list.text
    );
    list.body["instances"][0].clone()
}

#[tokio::test]
async fn creating_an_instance_answers_201_with_exactly_name_token_and_disconnected_status() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;

    let reply = create(&server, &account, json!({"name": "suporte"})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let token = reply.body["instance"]["token"]
        .as_str()
        .expect("instance.token");
    assert!(token.starts_with("zgi_"), "{token}");
    assert_eq!(
        reply.body,
        json!({
            "success": true,
            "message": "Instance created",
            "instance": {"name": "suporte", "token": token, "status": "disconnected"}
        })
    );

    let item = list_item(&server, &account, "suporte").await;
    assert_eq!(item["connection"]["state"], json!("disconnected"));
    assert_eq!(item["connection"]["numberJid"], Value::Null);
    assert_eq!(item["chatwoot"], json!({"enabled": false}));
    server.stop().await;
}

#[tokio::test]
async fn connect_without_a_number_answers_a_qr_code_and_a_png_data_url() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account, "suporte").await;

    for caller in [&account, &token] {
        let reply = server
            .get("/api/instance/connect/suporte", Some(caller))
            .await;
        assert_ok(&reply);
        assert_eq!(
            keys(&reply.body),
            ["message", "qrCode", "qrCodeBase64", "status", "success"]
        );
        assert_eq!(reply.body["success"], json!(true));
        assert_eq!(reply.body["message"], json!("QR code generated"));
        assert_eq!(reply.body["status"], json!("qr"));
        let code = reply.body["qrCode"].as_str().unwrap();
        assert!(!code.is_empty());
        let url = reply.body["qrCodeBase64"].as_str().unwrap();
        let b64 = url
            .strip_prefix("data:image/png;base64,")
            .unwrap_or_else(|| panic!("not a PNG data URL: {url}"));
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("valid base64");
        assert!(png.starts_with(PNG_SIGNATURE), "not a PNG");
        assert!(png.len() > 100, "PNG suspiciously small");
    }

    let item = list_item(&server, &account, "suporte").await;
    assert_eq!(item["connection"]["state"], json!("connecting"));
    server.stop().await;
}

#[tokio::test]
async fn connect_with_a_number_answers_an_eight_character_pairing_code() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    server.create_instance(&account, "suporte").await;

    let reply = server
        .get(
            "/api/instance/connect/suporte?number=5511999990000",
            Some(&account),
        )
        .await;
    assert_ok(&reply);
    assert_eq!(
        keys(&reply.body),
        ["message", "pairingCode", "status", "success"]
    );
    assert_eq!(reply.body["success"], json!(true));
    assert_eq!(reply.body["message"], json!("Pairing code generated"));
    assert_eq!(reply.body["status"], json!("pairing"));
    let code = reply.body["pairingCode"].as_str().unwrap();
    assert_eq!(code.chars().count(), 8, "{code}");
    assert!(
        code.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()),
        "{code}"
    );

    // The pairing code links the phone it was issued for.
    let paired = server
        .post(
            "/api/sandbox/suporte/pair",
            Some(&account),
            json!({"number": "5511999990000"}),
        )
        .await;
    assert_ok(&paired);
    let item = list_item(&server, &account, "suporte").await;
    assert_eq!(item["connection"]["state"], json!("connected"));
    server.stop().await;
}

#[tokio::test]
async fn connect_on_a_connected_instance_says_it_is_already_connected() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account, "suporte").await;
    server.pair(&token, "suporte", "5511999990000").await;

    let reply = server
        .get("/api/instance/connect/suporte", Some(&token))
        .await;
    assert_ok(&reply);
    assert_eq!(
        reply.body,
        json!({"success": true, "message": "Instance already connected", "status": "connected"})
    );
    // Asking again does not unlink the phone.
    let item = list_item(&server, &account, "suporte").await;
    assert_eq!(item["connection"]["state"], json!("connected"));
    assert_eq!(
        item["connection"]["numberJid"],
        json!("5511999990000@s.whatsapp.net")
    );
    server.stop().await;
}

#[tokio::test]
async fn connect_with_a_malformed_number_is_a_400() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    server.create_instance(&account, "suporte").await;

    for bad in ["abc", "123", "0551199999000"] {
        let reply = server
            .get(
                &format!("/api/instance/connect/suporte?number={bad}"),
                Some(&account),
            )
            .await;
        reply.assert_error(
            400,
            &format!("Invalid phone number: {bad} (international format, 8-15 digits)"),
        );
    }
    // Nothing was started.
    let item = list_item(&server, &account, "suporte").await;
    assert_eq!(item["connection"]["state"], json!("disconnected"));
    server.stop().await;
}

#[tokio::test]
async fn connect_without_an_instance_name_is_a_400_instance_name_is_required() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    server
        .get("/api/instance/connect/", Some(&account))
        .await
        .assert_error(400, "Instance name is required");
    server
        .get("/api/instance/connect", Some(&account))
        .await
        .assert_error(400, "Instance name is required");
    server.stop().await;
}

#[tokio::test]
async fn connect_on_an_unknown_instance_is_a_404() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    server
        .get("/api/instance/connect/ghost", Some(&account))
        .await
        .assert_error(404, "Instance not found");
    server.stop().await;
}

#[tokio::test]
async fn list_counts_zero_one_and_several_instances_in_its_message() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;

    let list = server.get("/api/instance/list", Some(&account)).await;
    assert_ok(&list);
    assert_eq!(
        list.body,
        json!({"success": true, "message": "0 Instances found", "instances": []})
    );

    server.create_instance(&account, "one").await;
    let list = server.get("/api/instance/list", Some(&account)).await;
    assert_ok(&list);
    assert_eq!(list.body["success"], json!(true));
    assert_eq!(list.body["message"], json!("1 Instance found"));
    assert_eq!(names(&list), ["one"]);

    server.create_instance(&account, "two").await;
    server.create_instance(&account, "three").await;
    let list = server.get("/api/instance/list", Some(&account)).await;
    assert_ok(&list);
    assert_eq!(list.body["message"], json!("3 Instances found"));
    assert_eq!(names(&list), ["one", "three", "two"]);
    server.stop().await;
}

/// The whole list's answer is rendered once and reused (bench/README.md);
/// every change must still show on the next read.
#[tokio::test]
async fn the_whole_list_shows_each_change_on_the_next_read() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account, "suporte").await;
    let whole = || async {
        let list = server.get("/api/instance/list", Some(&account)).await;
        assert_ok(&list);
        list.body["instances"][0].clone()
    };
    let first = whole().await;
    assert_eq!(whole().await, first, "nothing changed");
    assert_eq!(first["connection"]["state"], json!("disconnected"));

    // A live change: the store's rows are the same.
    server.pair(&token, "suporte", "5511999990000").await;
    let paired = whole().await;
    assert_eq!(paired["connection"]["state"], json!("connected"));
    assert_eq!(
        paired["connection"]["numberJid"],
        json!("5511999990000@s.whatsapp.net")
    );

    // A write through the store.
    let reply = server
        .post(
            "/api/instance/settings/suporte",
            Some(&token),
            json!({"ignoreGroupMessages": true}),
        )
        .await;
    assert_ok(&reply);
    assert_eq!(
        whole().await["settings"]["ignoreGroupMessages"],
        json!(true)
    );

    let reply = server
        .delete("/api/instance/logout/suporte", Some(&token))
        .await;
    assert_ok(&reply);
    assert_eq!(whole().await["connection"]["state"], json!("loggedout"));
    server.stop().await;
}

#[tokio::test]
async fn list_items_carry_id_connection_profile_webhook_settings_and_chatwoot() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    server.create_instance(&account, "suporte").await;

    let item = list_item(&server, &account, "suporte").await;
    assert_eq!(
        keys(&item),
        [
            "chatwoot",
            "connection",
            "createdAt",
            "id",
            "name",
            "profile",
            "settings",
            "webhook"
        ]
    );
    assert!(!item["id"].as_str().unwrap().is_empty());
    assert!(item["createdAt"].as_str().unwrap().contains('T'), "{item}");
    assert_eq!(
        keys(&item["connection"]),
        ["displayStatus", "numberJid", "presenceStatus", "state"]
    );
    // Defaults: history sync off, as RyzeAPI documents; webhook off.
    assert_eq!(
        item["settings"],
        json!({
            "autoRejectCalls": false,
            "callRejectMessage": "",
            "ignoreGroupMessages": false,
            "keepOnlineStatus": false,
            "autoReadMessages": false,
            "disableHistorySync": true,
            "ignoreStatus": false
        })
    );
    assert_eq!(item["webhook"]["enabled"], json!(false));
    // The TokenInstance is never listed.
    assert!(item.get("token").is_none());
    server.stop().await;
}

#[tokio::test]
async fn list_with_several_names_returns_those_and_ignores_unknown_ones() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    for name in ["a", "b", "c"] {
        server.create_instance(&account, name).await;
    }

    let list = server
        .get("/api/instance/list?instanceName=a,ghost,c", Some(&account))
        .await;
    assert_ok(&list);
    assert_eq!(list.body["message"], json!("2 Instances found"));
    assert_eq!(names(&list), ["a", "c"]);

    // Only unknown names among several: nothing found, not an error.
    let list = server
        .get(
            "/api/instance/list?instanceName=ghost,phantom",
            Some(&account),
        )
        .await;
    assert_ok(&list);
    assert_eq!(list.body["message"], json!("0 Instances found"));
    assert_eq!(list.body["instances"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn list_with_a_single_unknown_name_is_a_404() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    server.create_instance(&account, "a").await;
    server
        .get("/api/instance/list?instanceName=ghost", Some(&account))
        .await
        .assert_error(404, "Instance not found");

    let list = server
        .get("/api/instance/list?instanceName=a", Some(&account))
        .await;
    assert_ok(&list);
    assert_eq!(names(&list), ["a"]);
    server.stop().await;
}

#[tokio::test]
async fn list_with_an_instance_token_ignores_the_filter_and_shows_only_its_instance() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let token_a = server.create_instance(&account, "a").await;
    server.create_instance(&account, "b").await;
    server.create_instance(&account, "c").await;

    for path in [
        "/api/instance/list",
        "/api/instance/list?instanceName=b",
        "/api/instance/list?instanceName=b,c",
        "/api/instance/list?instanceName=ghost",
    ] {
        let list = server.get(path, Some(&token_a)).await;
        assert_ok(&list);
        assert_eq!(list.body["message"], json!("1 Instance found"), "{path}");
        assert_eq!(names(&list), ["a"], "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn logout_answers_loggedout_and_the_list_shows_it() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account, "suporte").await;
    server.pair(&token, "suporte", "5511999990000").await;

    let reply = server
        .delete("/api/instance/logout/suporte", Some(&token))
        .await;
    assert_ok(&reply);
    assert_eq!(
        reply.body,
        json!({"success": true, "message": "Instance logged out", "instance": {"status": "loggedout"}})
    );

    let item = list_item(&server, &account, "suporte").await;
    assert_eq!(item["connection"]["state"], json!("loggedout"));
    assert_eq!(item["connection"]["numberJid"], Value::Null);
    // The instance and its token are kept.
    assert_ok(&server.get("/api/instance/list", Some(&token)).await);
    server.stop().await;
}

#[tokio::test]
async fn logout_with_the_account_token_works_too() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account, "suporte").await;
    server.pair(&token, "suporte", "5511999990000").await;

    let reply = server
        .delete("/api/instance/logout/suporte", Some(&account))
        .await;
    assert_ok(&reply);
    assert_eq!(reply.body["instance"]["status"], json!("loggedout"));
    let item = list_item(&server, &account, "suporte").await;
    assert_eq!(item["connection"]["state"], json!("loggedout"));

    server
        .delete("/api/instance/logout/ghost", Some(&account))
        .await
        .assert_error(404, "Instance not found");
    server.stop().await;
}

#[tokio::test]
async fn delete_answers_deleted_removes_the_instance_and_revokes_its_token() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account, "suporte").await;
    server.create_instance(&account, "vendas").await;
    server.pair(&token, "suporte", "5511999990000").await;

    let reply = server
        .delete("/api/instance/delete/suporte", Some(&account))
        .await;
    assert_ok(&reply);
    assert_eq!(
        reply.body,
        json!({"success": true, "message": "Instance deleted", "instance": {"status": "deleted"}})
    );

    let list = server.get("/api/instance/list", Some(&account)).await;
    assert_ok(&list);
    assert_eq!(list.body["message"], json!("1 Instance found"));
    assert_eq!(names(&list), ["vendas"]);
    server
        .get("/api/instance/list?instanceName=suporte", Some(&account))
        .await
        .assert_error(404, "Instance not found");

    server
        .get("/api/instance/list", Some(&token))
        .await
        .assert_error(401, "Invalid token");
    server
        .get("/api/instance/connect/suporte", Some(&token))
        .await
        .assert_error(401, "Invalid token");

    // Deleting twice: it is gone.
    server
        .delete("/api/instance/delete/suporte", Some(&account))
        .await
        .assert_error(404, "Instance not found");

    // The name is free again.
    let reply = create(&server, &account, json!({"name": "suporte"})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_ne!(reply.body["instance"]["token"], json!(token));
    let item = list_item(&server, &account, "suporte").await;
    assert_eq!(item["connection"]["state"], json!("disconnected"));
    server.stop().await;
}

#[tokio::test]
async fn invalid_instance_names_are_a_400() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;

    let too_long = "x".repeat(65);
    for bad in [
        "",
        too_long.as_str(),
        "has space",
        "a.b",
        "a/b",
        "ação",
        "a@b",
    ] {
        create(&server, &account, json!({"name": bad}))
            .await
            .assert_error(400, "Invalid instance name");
    }
    create(&server, &account, json!({}))
        .await
        .assert_error(400, "Invalid instance name");
    create(&server, &account, json!({"name": null}))
        .await
        .assert_error(400, "Invalid instance name");

    let list = server.get("/api/instance/list", Some(&account)).await;
    assert_eq!(
        list.body["message"],
        json!("0 Instances found"),
        "{}",
        list.text
    );

    // The boundaries that are allowed.
    let longest = "y".repeat(64);
    for good in ["a", longest.as_str(), "Loja-01_b"] {
        let reply = create(&server, &account, json!({"name": good})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{good}: {}", reply.text);
        assert_eq!(reply.body["instance"]["name"], json!(good));
    }
    server.stop().await;
}

#[tokio::test]
async fn a_taken_name_is_a_409_but_another_account_may_use_it() {
    let server = TestServer::start().await;
    let (_, account_a) = server.create_account("a", 10).await;
    let (_, account_b) = server.create_account("b", 10).await;
    server.create_instance(&account_a, "suporte").await;

    create(&server, &account_a, json!({"name": "suporte"}))
        .await
        .assert_error(409, "Instance name already exists");

    let reply = create(&server, &account_b, json!({"name": "suporte"})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body["instance"]["name"], json!("suporte"));

    for account in [&account_a, &account_b] {
        let list = server.get("/api/instance/list", Some(account)).await;
        assert_eq!(
            list.body["message"],
            json!("1 Instance found"),
            "{}",
            list.text
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn creating_beyond_the_account_quota_is_a_403() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("small", 2).await;
    server.create_instance(&account, "one").await;
    server.create_instance(&account, "two").await;

    create(&server, &account, json!({"name": "three"}))
        .await
        .assert_error(403, "Account instance quota exceeded");
    let list = server.get("/api/instance/list", Some(&account)).await;
    assert_eq!(
        list.body["message"],
        json!("2 Instances found"),
        "{}",
        list.text
    );

    // Deleting one frees a slot.
    assert_ok(
        &server
            .delete("/api/instance/delete/one", Some(&account))
            .await,
    );
    let reply = create(&server, &account, json!({"name": "three"})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    server.stop().await;
}

#[tokio::test]
async fn a_custom_token_shorter_than_16_characters_is_a_400() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;

    for short in ["", "short", "0123456789abcde"] {
        create(
            &server,
            &account,
            json!({"name": "suporte", "token": short}),
        )
        .await
        .assert_error(400, "Invalid token: at least 16 characters");
    }
    let list = server.get("/api/instance/list", Some(&account)).await;
    assert_eq!(
        list.body["message"],
        json!("0 Instances found"),
        "{}",
        list.text
    );
    server.stop().await;
}

#[tokio::test]
async fn a_custom_token_is_returned_and_works_as_the_instance_token() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    server.create_instance(&account, "other").await;
    let custom = "my-own-token-0123456789";

    let reply = create(
        &server,
        &account,
        json!({"name": "suporte", "token": custom}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({
            "success": true,
            "message": "Instance created",
            "instance": {"name": "suporte", "token": custom, "status": "disconnected"}
        })
    );

    let list = server.get("/api/instance/list", Some(custom)).await;
    assert_ok(&list);
    assert_eq!(names(&list), ["suporte"]);
    let connect = server
        .get("/api/instance/connect/suporte", Some(custom))
        .await;
    assert_ok(&connect);
    assert_eq!(connect.body["status"], json!("qr"));
    server
        .get("/api/instance/connect/other", Some(custom))
        .await
        .assert_error(404, "Instance not found");
    server.stop().await;
}

#[tokio::test]
async fn a_custom_token_already_in_use_is_a_409_even_across_accounts() {
    let server = TestServer::start().await;
    let (_, account_a) = server.create_account("a", 10).await;
    let (_, account_b) = server.create_account("b", 10).await;
    let custom = "shared-secret-token-0001";
    let reply = create(
        &server,
        &account_a,
        json!({"name": "first", "token": custom}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);

    create(
        &server,
        &account_a,
        json!({"name": "second", "token": custom}),
    )
    .await
    .assert_error(409, "Token already in use");
    create(
        &server,
        &account_b,
        json!({"name": "second", "token": custom}),
    )
    .await
    .assert_error(409, "Token already in use");
    // A generated instance token and an account token are taken too.
    let generated = server.create_instance(&account_a, "generated").await;
    create(
        &server,
        &account_b,
        json!({"name": "third", "token": generated}),
    )
    .await
    .assert_error(409, "Token already in use");
    create(
        &server,
        &account_b,
        json!({"name": "fourth", "token": account_a}),
    )
    .await
    .assert_error(409, "Token already in use");

    let list = server.get("/api/instance/list", Some(&account_b)).await;
    assert_eq!(
        list.body["message"],
        json!("0 Instances found"),
        "{}",
        list.text
    );
    // The token still names the first instance only.
    let list = server.get("/api/instance/list", Some(custom)).await;
    assert_ok(&list);
    assert_eq!(names(&list), ["first"]);
    server.stop().await;
}

#[tokio::test]
async fn settings_flags_are_persisted_and_shown_in_the_list() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let reply = create(
        &server,
        &account,
        json!({
            "name": "suporte",
            "autoRejectCalls": true,
            "callRejectMessage": "Não atendemos ligações",
            "ignoreGroupMessages": true,
            "keepOnlineStatus": true,
            "autoReadMessages": true,
            "disableHistorySync": true,
            "ignoreStatus": true
        }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert!(reply.body.get("webhook").is_none(), "{}", reply.text);

    let item = list_item(&server, &account, "suporte").await;
    assert_eq!(
        item["settings"],
        json!({
            "autoRejectCalls": true,
            "callRejectMessage": "Não atendemos ligações",
            "ignoreGroupMessages": true,
            "keepOnlineStatus": true,
            "autoReadMessages": true,
            "disableHistorySync": true,
            "ignoreStatus": true
        })
    );
    server.stop().await;
}

#[tokio::test]
async fn the_webhook_block_is_persisted_and_shown_without_its_authorization() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let secret = "Bearer very-secret-webhook-auth";
    let reply = create(
        &server,
        &account,
        json!({
            "name": "suporte",
            "webhookEnabled": true,
            "webhookURL": "https://hooks.example.com/zapgate",
            "webhookAuthorization": secret,
            "webhookByEvents": true,
            "webhookEvents": ["message.exchange", "instance.state"],
            "webhookMediaBase64": true
        }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert!(reply.body.get("webhook").is_none(), "{}", reply.text);

    let list = server
        .get("/api/instance/list?instanceName=suporte", Some(&account))
        .await;
    assert_ok(&list);
    assert_eq!(
        list.body["instances"][0]["webhook"],
        json!({
            "enabled": true,
            "url": "https://hooks.example.com/zapgate",
            "byEvents": true,
            "events": ["message.exchange", "instance.state"],
            "mediaBase64": true
        })
    );
    assert!(
        !list.text.contains("very-secret-webhook-auth"),
        "{}",
        list.text
    );
    server.stop().await;
}

#[tokio::test]
async fn an_invalid_webhook_url_does_not_abort_the_creation() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    for (name, url) in [
        ("one", "not a url"),
        ("two", "ftp://example.com/x"),
        ("three", ""),
    ] {
        let reply = create(
            &server,
            &account,
            json!({"name": name, "webhookEnabled": true, "webhookURL": url, "autoRejectCalls": true}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{url}: {}", reply.text);
        let token = reply.body["instance"]["token"].as_str().unwrap();
        assert_eq!(
            reply.body,
            json!({
                "success": true,
                "message": "Instance created",
                "instance": {"name": name, "token": token, "status": "disconnected"},
                "webhook": {
                    "status": "error",
                    "error": "Invalid webhookURL: an absolute http(s) URL is required"
                }
            })
        );
        let item = list_item(&server, &account, name).await;
        assert_eq!(item["webhook"]["enabled"], json!(false), "{item}");
        // The rest of the body was applied.
        assert_eq!(item["settings"]["autoRejectCalls"], json!(true), "{item}");
    }
    server.stop().await;
}

#[tokio::test]
async fn logout_of_a_never_connected_instance_still_answers_loggedout() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account, "suporte").await;

    for _ in 0..2 {
        let reply = server
            .delete("/api/instance/logout/suporte", Some(&token))
            .await;
        assert_ok(&reply);
        assert_eq!(
            reply.body,
            json!({"success": true, "message": "Instance logged out", "instance": {"status": "loggedout"}})
        );
    }
    let item = list_item(&server, &account, "suporte").await;
    assert_eq!(item["connection"]["state"], json!("loggedout"));
    server.stop().await;
}

#[tokio::test]
async fn after_logout_connect_issues_a_new_qr_code_and_the_phone_can_pair_again() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account, "suporte").await;
    server.pair(&token, "suporte", "5511999990000").await;
    assert_ok(
        &server
            .delete("/api/instance/logout/suporte", Some(&token))
            .await,
    );

    let reply = server
        .get("/api/instance/connect/suporte", Some(&token))
        .await;
    assert_ok(&reply);
    assert_eq!(reply.body["message"], json!("QR code generated"));
    assert_eq!(reply.body["status"], json!("qr"));
    let item = list_item(&server, &account, "suporte").await;
    assert_eq!(item["connection"]["state"], json!("connecting"));

    let paired = server
        .post(
            "/api/sandbox/suporte/pair",
            Some(&token),
            json!({"number": "5511977770000"}),
        )
        .await;
    assert_ok(&paired);
    let item = list_item(&server, &account, "suporte").await;
    assert_eq!(item["connection"]["state"], json!("connected"));
    assert_eq!(
        item["connection"]["numberJid"],
        json!("5511977770000@s.whatsapp.net")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_webhook_block_that_is_not_enabled_is_ignored_without_an_error() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let reply = create(
        &server,
        &account,
        json!({"name": "suporte", "webhookEnabled": false, "webhookURL": "not a url"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert!(reply.body.get("webhook").is_none(), "{}", reply.text);
    let item = list_item(&server, &account, "suporte").await;
    assert_eq!(item["webhook"]["enabled"], json!(false));
    server.stop().await;
}
