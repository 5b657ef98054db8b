//! Cross-cutting behaviour (spec §1): generic errors and their envelope, body
//! limits, content types, rate-limit and request-id headers, and the
//! operational routes (health, metrics, OpenAPI, docs).

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Env, Reply, TestServer};

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// Sends `body` as-is with the given content type.
async fn raw(
    server: &TestServer,
    path: &str,
    token: &str,
    content_type: &str,
    body: String,
) -> Reply {
    let response = server
        .client
        .post(server.url(path))
        .header("token", token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Reply {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// The rate-limit headers of `reply`: (limit, remaining, reset).
fn rate_limit(reply: &Reply, what: &str) -> (u64, u64, i64) {
    let get = |name: &str| {
        reply
            .header(name)
            .unwrap_or_else(|| panic!("{what}: no {name} header ({})", reply.status))
            .to_owned()
    };
    let limit = get("x-ratelimit-limit").parse().expect("numeric limit");
    let remaining = get("x-ratelimit-remaining")
        .parse()
        .expect("numeric remaining");
    let reset: i64 = get("x-ratelimit-reset").parse().expect("numeric reset");
    let now = now_secs();
    assert!(
        reset >= now && reset <= now + 61,
        "{what}: reset {reset} is not within the next minute of {now}"
    );
    assert!(
        remaining < limit,
        "{what}: remaining {remaining} of {limit}"
    );
    (limit, remaining, reset)
}

fn request_id(reply: &Reply, what: &str) -> String {
    let id = reply
        .header("x-request-id")
        .unwrap_or_else(|| panic!("{what}: no x-request-id header"));
    assert!(!id.is_empty(), "{what}: empty x-request-id");
    id.to_owned()
}

#[tokio::test]
async fn an_unknown_route_is_a_404_not_found() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    for path in [
        "/api/nope",
        "/api/instance/unknown/x",
        "/nope",
        "/api/instance/list/extra",
    ] {
        server.get(path, None).await.assert_error(404, "Not found");
        server
            .get(path, Some(&account))
            .await
            .assert_error(404, "Not found");
    }
    server
        .post("/api/instance/bogus", Some(&account), json!({}))
        .await
        .assert_error(404, "Not found");
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_method_is_a_405_method_not_allowed() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    server.create_instance(&account, "suporte").await;
    let cases = [
        (Method::GET, "/api/instance/new"),
        (Method::POST, "/api/instance/list"),
        (Method::DELETE, "/api/instance/connect/suporte"),
        (Method::GET, "/api/instance/logout/suporte"),
        (Method::POST, "/api/instance/delete/suporte"),
        (Method::PUT, "/admin/accounts"),
    ];
    for (method, path) in cases {
        server
            .call(method, path, Some(&account), None)
            .await
            .assert_error(405, "Method not allowed");
    }
    // None of them did anything.
    let list = server.get("/api/instance/list", Some(&account)).await;
    assert_eq!(
        list.body["message"],
        json!("1 Instance found"),
        "{}",
        list.text
    );
    server.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_but_media_routes_take_more() {
    let server =
        TestServer::start_with(Env::default().with("ZAPGATE_MAX_BODY_BYTES", "2048")).await;
    let (_, account) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account, "suporte").await;
    server.pair(&token, "suporte", "5511999990000").await;

    let big = json!({"name": "big", "callRejectMessage": "x".repeat(4000)});
    server
        .post("/api/instance/new", Some(&account), big)
        .await
        .assert_error(413, "Request body too large");
    let list = server.get("/api/instance/list", Some(&account)).await;
    assert_eq!(
        list.body["message"],
        json!("1 Instance found"),
        "{}",
        list.text
    );

    // Just under the limit is fine.
    let small =
        json!({"name": "small", "callRejectMessage": "x".repeat(1000), "padding": "x".repeat(500)});
    let reply = server
        .post("/api/instance/new", Some(&account), small)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);

    // The sandbox's inbound route carries media: its own, larger limit.
    let inbound = server
        .post(
            "/api/sandbox/suporte/inbound",
            Some(&token),
            json!({"from": "5511988887777", "text": "y".repeat(20_000)}),
        )
        .await;
    assert_eq!(inbound.status, StatusCode::OK, "{}", inbound.text);
    assert_eq!(inbound.body["success"], json!(true));
    assert!(!inbound.body["id"].as_str().unwrap().is_empty());

    // Other sandbox routes keep the default limit.
    server
        .post(
            "/api/sandbox/suporte/faults",
            Some(&token),
            json!({"send": "ok", "padding": "z".repeat(4000)}),
        )
        .await
        .assert_error(413, "Request body too large");
    server.stop().await;
}

#[tokio::test]
async fn a_json_route_called_with_another_content_type_is_a_415() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let body = json!({"name": "suporte"}).to_string();
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        raw(
            &server,
            "/api/instance/new",
            &account,
            content_type,
            body.clone(),
        )
        .await
        .assert_error(415, "Content-Type must be application/json");
    }
    // No content type at all.
    let reply = server
        .client
        .post(server.url("/api/instance/new"))
        .header("token", &account)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let list = server.get("/api/instance/list", Some(&account)).await;
    assert_eq!(
        list.body["message"],
        json!("0 Instances found"),
        "{}",
        list.text
    );

    // With a charset parameter it is still JSON.
    let ok = raw(
        &server,
        "/api/instance/new",
        &account,
        "application/json; charset=utf-8",
        body,
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    server.stop().await;
}

#[tokio::test]
async fn malformed_json_is_a_400_invalid_request_body() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    for body in [
        "{",
        "{\"name\": }",
        "not json",
        "",
        "{\"name\": \"a\"} trailing",
    ] {
        raw(
            &server,
            "/api/instance/new",
            &account,
            "application/json",
            body.to_owned(),
        )
        .await
        .assert_error(400, "Invalid request body");
    }
    // Well-formed JSON of the wrong shape is refused the same way.
    for body in [
        json!("suporte"),
        json!(7),
        json!({"name": 42}),
        json!({"name": "a", "autoRejectCalls": "yes"}),
    ] {
        server
            .post("/api/instance/new", Some(&account), body)
            .await
            .assert_error(400, "Invalid request body");
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
async fn health_answers_200() {
    let server = TestServer::start().await;
    let reply = server.get("/health", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["success"], json!(true));
    assert_eq!(reply.body["message"], json!("ok"));
    server.stop().await;
}

#[tokio::test]
async fn the_front_page_is_html_that_links_to_docs_openapi_and_health() {
    let server = TestServer::start().await;
    let page = server.get("/", None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.text
            .contains(&format!("<h1>zapgate {}</h1>", env!("CARGO_PKG_VERSION"))),
        "{}",
        page.text
    );
    for path in ["docs", "openapi.json", "health"] {
        assert!(
            page.text
                .contains(&format!("<a href=\"{path}\">/{path}</a>")),
            "{path}: {}",
            page.text
        );
        // A relative link from `/` lands on `/<path>`, which answers.
        let target = server.get(&format!("/{path}"), None).await;
        assert_eq!(target.status, StatusCode::OK, "/{path}: {}", target.text);
    }
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_http_requests_in_prometheus_format() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    server.get("/api/instance/list", Some(&account)).await;
    server.get("/api/nope", None).await;

    let reply = server.get("/metrics", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{:?}",
        reply.header("content-type")
    );
    assert!(
        reply.text.contains("zapgate_http_requests_total"),
        "{}",
        reply.text
    );
    // Query strings (which may carry tokens) never reach the labels.
    assert!(!reply.text.contains(&account), "metrics leak a token");
    server.stop().await;
}

#[tokio::test]
async fn invented_methods_share_one_metrics_label() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    for n in 0..3 {
        let method = Method::from_bytes(format!("INVENTED{n}").as_bytes()).unwrap();
        refused_on_the_list(&server, &account, method).await;
    }

    let metrics = server.get("/metrics", None).await.text;
    assert!(!metrics.contains("INVENTED"), "{metrics}");
    // No other test invents methods: the three share this one series.
    assert_eq!(
        list_405_sample(&metrics, "zapgate_http_requests_total", "OTHER"),
        Some("3"),
        "{metrics}"
    );
    server.stop().await;
}

/// `method` on `/api/instance/list`, answered 405.
async fn refused_on_the_list(server: &TestServer, account: &str, method: Method) {
    let reply = server
        .call(method, "/api/instance/list", Some(account), None)
        .await;
    assert_eq!(
        reply.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{}",
        reply.text
    );
}

/// The value of `name`'s sample for `method`, `/api/instance/list`, 405.
fn list_405_sample<'a>(metrics: &'a str, name: &str, method: &str) -> Option<&'a str> {
    metrics
        .lines()
        .find(|l| {
            l.starts_with(&format!("{name}{{"))
                && l.contains(&format!(r#"method="{method}""#))
                && l.contains(r#"route="/api/instance/list""#)
                && l.contains(r#"status="405""#)
        })?
        .rsplit(' ')
        .next()
}

#[tokio::test]
async fn every_request_counts_once_in_its_own_series() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    // No other test deletes the list: these series are this test's alone
    // (the metrics registry is the process's).
    for _ in 0..3 {
        refused_on_the_list(&server, &account, Method::DELETE).await;
    }
    refused_on_the_list(&server, &account, Method::PATCH).await;

    let metrics = server.get("/metrics", None).await.text;
    let value = |name: &str, method: &str| {
        list_405_sample(&metrics, name, method)
            .unwrap_or_else(|| panic!("no {name} for {method}: {metrics}"))
    };
    assert_eq!(value("zapgate_http_requests_total", "DELETE"), "3");
    assert_eq!(
        value("zapgate_http_request_duration_seconds_count", "DELETE"),
        "3"
    );
    assert_eq!(value("zapgate_http_requests_total", "PATCH"), "1");
    assert_eq!(
        value("zapgate_http_request_duration_seconds_count", "PATCH"),
        "1"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_openapi_document_is_openapi_3_1_and_lists_the_instance_routes() {
    let server = TestServer::start().await;
    let reply = server.get("/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let version = reply.body["openapi"].as_str().expect("openapi field");
    assert!(version.starts_with("3.1"), "{version}");
    let paths = reply.body["paths"].as_object().expect("paths object");
    for path in [
        "/api/instance/new",
        "/api/instance/connect/{instance}",
        "/api/instance/list",
        "/api/instance/logout/{instance}",
        "/api/instance/delete/{instance}",
        "/api/instance/getSettings/{instance}",
        "/api/instance/settings/{instance}",
        "/api/sandbox/{instance}/call",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys()
        );
    }
    assert!(paths["/api/instance/new"].get("post").is_some());
    assert!(
        paths["/api/instance/settings/{instance}"]
            .get("post")
            .is_some()
    );
    assert!(
        paths["/api/instance/delete/{instance}"]
            .get("delete")
            .is_some()
    );
    // The list's body is described down to its borrowed fields.
    let listed = &paths["/api/instance/list"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"]["$ref"];
    assert_eq!(listed, "#/components/schemas/ListOut");
    let schemas = &reply.body["components"]["schemas"];
    for field in [
        "id",
        "name",
        "createdAt",
        "connection",
        "webhook",
        "settings",
        "chatwoot",
    ] {
        assert!(
            schemas["InstanceOut"]["properties"].get(field).is_some(),
            "InstanceOut.{field} missing: {}",
            schemas["InstanceOut"]
        );
    }
    assert_eq!(
        schemas["WebhookOut"]["properties"]["events"]["type"], "array",
        "{}",
        schemas["WebhookOut"]
    );
    server.stop().await;
}

/// The values of `attr="..."` attributes in `html`.
fn attribute_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!("{attr}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

#[tokio::test]
async fn the_docs_page_is_html_that_loads_only_local_assets() {
    let server = TestServer::start().await;
    let reply = server.get("/docs/", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{:?}",
        reply.header("content-type")
    );
    let html = &reply.text;
    assert!(html.to_ascii_lowercase().contains("<html"), "{html}");

    let mut assets: Vec<&str> = attribute_values(html, "src");
    assets.extend(attribute_values(html, "href"));
    assert!(!assets.is_empty(), "no assets referenced: {html}");
    for asset in &assets {
        assert!(
            !asset.starts_with("http://")
                && !asset.starts_with("https://")
                && !asset.starts_with("//"),
            "docs load a remote asset: {asset}"
        );
    }
    for cdn in ["unpkg.com", "cdn.jsdelivr", "cdnjs", "googleapis"] {
        assert!(!html.contains(cdn), "docs reference a CDN ({cdn})");
    }
    // Every local asset is actually served.
    for asset in assets
        .iter()
        .filter(|a| !a.starts_with("data:") && !a.starts_with('#'))
    {
        let path = if asset.starts_with('/') {
            (*asset).to_owned()
        } else {
            format!("/docs/{}", asset.trim_start_matches("./"))
        };
        let fetched = server.get(&path, None).await;
        assert_eq!(fetched.status, StatusCode::OK, "{path}");
        for cdn in ["unpkg.com", "cdn.jsdelivr", "cdnjs"] {
            assert!(
                !fetched.text.contains(cdn),
                "{path} references a CDN ({cdn})"
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn every_api_response_carries_rate_limit_headers_and_a_request_id() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account, "suporte").await;

    let replies = [
        (
            "list",
            server.get("/api/instance/list", Some(&account)).await,
        ),
        (
            "connect",
            server
                .get("/api/instance/connect/suporte", Some(&token))
                .await,
        ),
        ("401 missing", server.get("/api/instance/list", None).await),
        (
            "401 invalid",
            server.get("/api/instance/list", Some("bogus-token")).await,
        ),
        (
            "404 instance",
            server
                .get("/api/instance/connect/ghost", Some(&account))
                .await,
        ),
        (
            "404 fallback",
            server.get("/api/nope", Some(&account)).await,
        ),
        ("404 fallback outside /api", server.get("/nope", None).await),
        (
            "405",
            server
                .post("/api/instance/list", Some(&account), json!({}))
                .await,
        ),
        (
            "400",
            server
                .get("/api/instance/connect/suporte?number=abc", Some(&account))
                .await,
        ),
        (
            "admin",
            server
                .get("/admin/accounts", Some(crate::harness::ADMIN_TOKEN))
                .await,
        ),
    ];
    let mut ids = Vec::new();
    for (what, reply) in &replies {
        let (limit, _, _) = rate_limit(reply, what);
        assert_eq!(limit, 100, "{what}");
        ids.push(request_id(reply, what));
    }
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        replies.len(),
        "request ids are not unique: {ids:?}"
    );

    // Creation has its own, smaller bucket.
    let created = server
        .post(
            "/api/instance/new",
            Some(&account),
            json!({"name": "other"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let (limit, remaining, _) = rate_limit(&created, "create");
    assert_eq!(limit, 20);
    request_id(&created, "create");
    let refused = server
        .post("/api/instance/new", Some(&account), json!({"name": "a b"}))
        .await;
    refused.assert_error(400, "Invalid instance name");
    let (limit, after, _) = rate_limit(&refused, "create 400");
    assert_eq!(limit, 20);
    assert_eq!(after + 1, remaining);
    request_id(&refused, "create 400");

    // The operational routes carry a request id too.
    for path in ["/health", "/metrics", "/openapi.json"] {
        let reply = server.get(path, None).await;
        request_id(&reply, path);
    }
    server.stop().await;
}

#[tokio::test]
async fn the_remaining_count_goes_down_with_each_request_on_one_token() {
    let server = TestServer::start().await;
    let (_, account) = server.create_account("acme", 10).await;
    let token = server.create_instance(&account, "suporte").await;

    let first = server.get("/api/instance/list", Some(&account)).await;
    let second = server
        .get("/api/instance/connect/ghost", Some(&account))
        .await;
    let (_, r1, reset1) = rate_limit(&first, "first");
    let (_, r2, reset2) = rate_limit(&second, "second");
    assert_eq!(r2 + 1, r1, "errors count too");
    assert_eq!(reset1, reset2);

    // Another token has its own bucket.
    let other = server.get("/api/instance/list", Some(&token)).await;
    let (_, r3, _) = rate_limit(&other, "other token");
    assert!(r3 > r2, "instance token shares the account token's bucket");
    server.stop().await;
}

#[tokio::test]
async fn a_request_id_sent_by_the_client_is_echoed() {
    let server = TestServer::start().await;
    let response = server
        .client
        .get(server.url("/api/instance/list"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("trace-me-123")
    );
    server.stop().await;
}
