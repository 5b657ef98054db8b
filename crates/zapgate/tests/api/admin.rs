//! The operator's admin API: accounts, guarded by `ZAPGATE_ADMIN_TOKEN`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, Env, TestServer};

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

/// Every admin route, with a valid body where it needs one.
fn admin_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/admin/accounts", None),
        (
            Method::POST,
            "/admin/accounts",
            Some(json!({"name": "x", "maxInstances": 1})),
        ),
        (Method::DELETE, "/admin/accounts/some-id", None),
    ]
}

#[tokio::test]
async fn creating_an_account_answers_201_with_the_account_and_a_zga_token() {
    let server = TestServer::start().await;
    let reply = server
        .post(
            "/admin/accounts",
            Some(ADMIN_TOKEN),
            json!({"name": "acme", "maxInstances": 5}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(
        keys(&reply.body),
        ["account", "message", "success", "token"]
    );
    assert_eq!(reply.body["success"], json!(true));
    assert_eq!(reply.body["message"], json!("Account created"));
    let account = &reply.body["account"];
    assert_eq!(keys(account), ["createdAt", "id", "maxInstances", "name"]);
    assert!(!account["id"].as_str().unwrap().is_empty());
    assert_eq!(account["name"], json!("acme"));
    assert_eq!(account["maxInstances"], json!(5));
    assert!(
        account["createdAt"].as_str().unwrap().contains('T'),
        "{account}"
    );
    let token = reply.body["token"].as_str().unwrap();
    assert!(token.starts_with("zga_"), "{token}");
    assert!(token.len() > 20, "{token}");

    // The token is a working TokenAccount.
    let list = server.get("/api/instance/list", Some(token)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["message"], json!("0 Instances found"));

    // With a per-account rate limit, it is echoed.
    let reply = server
        .post(
            "/admin/accounts",
            Some(ADMIN_TOKEN),
            json!({"name": "limited", "maxInstances": 1, "rateLimitPerMinute": 7}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body["account"]["rateLimitPerMinute"], json!(7));
    assert_ne!(reply.body["token"], json!(token));
    server.stop().await;
}

#[tokio::test]
async fn listing_accounts_shows_every_account_and_never_a_token() {
    let server = TestServer::start().await;
    let list = server.get("/admin/accounts", Some(ADMIN_TOKEN)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(
        list.body,
        json!({"success": true, "message": "0 Accounts found", "accounts": []})
    );

    let (id_a, token_a) = server.create_account("alpha", 3).await;
    let list = server.get("/admin/accounts", Some(ADMIN_TOKEN)).await;
    assert_eq!(
        list.body["message"],
        json!("1 Account found"),
        "{}",
        list.text
    );

    let (id_b, token_b) = server.create_account("beta", 4).await;
    let list = server.get("/admin/accounts", Some(ADMIN_TOKEN)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["success"], json!(true));
    assert_eq!(list.body["message"], json!("2 Accounts found"));
    let accounts = list.body["accounts"].as_array().unwrap();
    let mut seen: Vec<(String, String, u64)> = accounts
        .iter()
        .map(|a| {
            assert_eq!(keys(a), ["createdAt", "id", "maxInstances", "name"], "{a}");
            (
                a["id"].as_str().unwrap().to_owned(),
                a["name"].as_str().unwrap().to_owned(),
                a["maxInstances"].as_u64().unwrap(),
            )
        })
        .collect();
    seen.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!(
        seen,
        [(id_a, "alpha".to_owned(), 3), (id_b, "beta".to_owned(), 4)]
    );
    assert!(!list.text.contains(&token_a), "{}", list.text);
    assert!(!list.text.contains(&token_b), "{}", list.text);
    assert!(!list.text.contains("token"), "{}", list.text);
    assert!(!list.text.contains("zga_"), "{}", list.text);
    server.stop().await;
}

#[tokio::test]
async fn deleting_an_account_removes_its_instances_and_revokes_all_its_tokens() {
    let server = TestServer::start().await;
    let (id, account) = server.create_account("doomed", 5).await;
    let (_, survivor) = server.create_account("survivor", 5).await;
    let token_one = server.create_instance(&account, "one").await;
    let token_two = server.create_instance(&account, "two").await;
    server.pair(&token_one, "one", "5511933332222").await;
    let kept = server.create_instance(&survivor, "one").await;

    let reply = server
        .delete(&format!("/admin/accounts/{id}"), Some(ADMIN_TOKEN))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({"success": true, "message": "Account deleted"})
    );

    for token in [&account, &token_one, &token_two] {
        server
            .get("/api/instance/list", Some(token))
            .await
            .assert_error(401, "Invalid token");
    }
    server
        .get("/api/instance/connect/one", Some(&token_one))
        .await
        .assert_error(401, "Invalid token");

    let list = server.get("/admin/accounts", Some(ADMIN_TOKEN)).await;
    assert_eq!(
        list.body["message"],
        json!("1 Account found"),
        "{}",
        list.text
    );
    assert_eq!(list.body["accounts"][0]["name"], json!("survivor"));

    // The other account is untouched, its same-named instance included.
    let list = server.get("/api/instance/list", Some(&kept)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["instances"][0]["name"], json!("one"));
    assert_eq!(
        list.body["instances"][0]["connection"]["state"],
        json!("disconnected")
    );

    // Gone means gone.
    server
        .delete(&format!("/admin/accounts/{id}"), Some(ADMIN_TOKEN))
        .await
        .assert_error(404, "Account not found");
    server.stop().await;
}

#[tokio::test]
async fn deleting_an_unknown_account_is_a_404() {
    let server = TestServer::start().await;
    server.create_account("acme", 1).await;
    server
        .delete("/admin/accounts/no-such-account", Some(ADMIN_TOKEN))
        .await
        .assert_error(404, "Account not found");
    let list = server.get("/admin/accounts", Some(ADMIN_TOKEN)).await;
    assert_eq!(
        list.body["message"],
        json!("1 Account found"),
        "{}",
        list.text
    );
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_admin_token_is_a_401_invalid_token_and_a_missing_one_missing_token() {
    let server = TestServer::start().await;
    let (id, _) = server.create_account("acme", 1).await;
    let mut routes = admin_routes();
    routes.push((Method::DELETE, "/admin/accounts/{id}", None));

    for (method, path, body) in &routes {
        let path = path.replace("{id}", &id);
        server
            .call(
                method.clone(),
                &path,
                Some("wrong-admin-token"),
                body.clone(),
            )
            .await
            .assert_error(401, "Invalid token");
        server
            .call(method.clone(), &path, None, body.clone())
            .await
            .assert_error(401, "Missing token in header");
    }
    // Nothing was created or deleted.
    let list = server.get("/admin/accounts", Some(ADMIN_TOKEN)).await;
    assert_eq!(
        list.body["message"],
        json!("1 Account found"),
        "{}",
        list.text
    );
    server.stop().await;
}

#[tokio::test]
async fn an_account_or_instance_token_on_the_admin_api_is_a_401_invalid_token() {
    let server = TestServer::start().await;
    let (id, account) = server.create_account("acme", 2).await;
    let instance = server.create_instance(&account, "suporte").await;
    for token in [&account, &instance] {
        for (method, path, body) in admin_routes() {
            server
                .call(method, path, Some(token), body)
                .await
                .assert_error(401, "Invalid token");
        }
        server
            .delete(&format!("/admin/accounts/{id}"), Some(token))
            .await
            .assert_error(401, "Invalid token");
    }
    let list = server.get("/api/instance/list", Some(&account)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    server.stop().await;
}

#[tokio::test]
async fn the_admin_api_does_not_exist_without_an_admin_token_configured() {
    let server = TestServer::start_with(Env::default().with("ZAPGATE_ADMIN_TOKEN", "")).await;
    for token in [None, Some(ADMIN_TOKEN), Some("")] {
        for (method, path, body) in admin_routes() {
            server
                .call(method, path, token, body)
                .await
                .assert_error(404, "Not found");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn an_invalid_account_body_is_a_400() {
    let server = TestServer::start().await;
    for body in [
        json!({"name": "acme"}),
        json!({"maxInstances": 3}),
        json!({"name": "acme", "maxInstances": -1}),
        json!({"name": "acme", "maxInstances": "many"}),
        json!([]),
    ] {
        server
            .post("/admin/accounts", Some(ADMIN_TOKEN), body)
            .await
            .assert_error(400, "Invalid request body");
    }
    let malformed = server
        .client
        .post(server.url("/admin/accounts"))
        .header("token", ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{\"name\": \"acme\",")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(
        body,
        json!({"success": false, "error": {"message": "Invalid request body"}})
    );

    for name in ["", "   ", &"n".repeat(129)] {
        server
            .post(
                "/admin/accounts",
                Some(ADMIN_TOKEN),
                json!({"name": name, "maxInstances": 1}),
            )
            .await
            .assert_error(400, "Invalid account name: 1-128 characters");
    }
    server
        .post(
            "/admin/accounts",
            Some(ADMIN_TOKEN),
            json!({"name": "acme", "maxInstances": 1, "rateLimitPerMinute": 0}),
        )
        .await
        .assert_error(400, "Invalid rateLimitPerMinute: must be at least 1");

    let list = server.get("/admin/accounts", Some(ADMIN_TOKEN)).await;
    assert_eq!(
        list.body["message"],
        json!("0 Accounts found"),
        "{}",
        list.text
    );
    server.stop().await;
}
