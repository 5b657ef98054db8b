//! Secrets at rest: tokens and webhook credentials never appear in the
//! database in the clear, whatever table or column one looks in.

use serde_json::json;
use sqlx::{Column, Row, SqlitePool, TypeInfo, ValueRef, sqlite::SqliteRow};

use crate::harness::TestServer;

/// Every cell of `row` that holds text or bytes, as bytes.
fn cells(row: &SqliteRow) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, column) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i).unwrap();
        if raw.is_null() {
            continue;
        }
        let kind = raw.type_info().name().to_owned();
        let bytes = match kind.as_str() {
            "TEXT" => row.try_get_unchecked::<String, _>(i).unwrap().into_bytes(),
            "BLOB" => row.try_get_unchecked::<Vec<u8>, _>(i).unwrap(),
            _ => continue,
        };
        out.push((column.name().to_owned(), bytes));
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn no_token_or_webhook_authorization_is_stored_in_the_clear() {
    let server = TestServer::start().await;
    let (_, account_token) = server.create_account("acme", 10).await;
    let instance_token = "my-own-instance-token-0123456789";
    let authorization = "Bearer webhook-secret-9f8e7d6c5b4a";
    let created = server
        .post(
            "/api/instance/new",
            Some(&account_token),
            json!({
                "name": "suporte",
                "token": instance_token,
                "webhookEnabled": true,
                "webhookURL": "https://hooks.example.com/zapgate",
                "webhookAuthorization": authorization,
            }),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    assert_eq!(created.body["instance"]["token"], json!(instance_token));
    assert!(
        created.body.get("webhook").is_none(),
        "webhook block refused: {}",
        created.text
    );

    // The instance works with its token and kept its webhook.
    let list = server.get("/api/instance/list", Some(instance_token)).await;
    assert_eq!(list.status.as_u16(), 200, "{}", list.text);
    let webhook = &list.body["instances"][0]["webhook"];
    assert_eq!(webhook["enabled"], json!(true));
    assert_eq!(webhook["url"], json!("https://hooks.example.com/zapgate"));
    assert!(
        !list.text.contains("webhook-secret"),
        "the list leaks the authorization"
    );

    let pool = SqlitePool::connect(&format!("sqlite://{}", server.sqlite_file().display()))
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(tables.iter().any(|t| t == "accounts"), "{tables:?}");
    assert!(tables.iter().any(|t| t == "instances"), "{tables:?}");

    let secrets = [
        ("account token", account_token.as_str()),
        ("instance token", instance_token),
        ("webhook authorization", authorization),
        // The distinctive part alone, in case a prefix is stripped.
        ("webhook secret", "webhook-secret-9f8e7d6c5b4a"),
    ];
    let mut cells_seen = 0;
    let mut sealed_authorization = false;
    for table in &tables {
        let rows = sqlx::query(&format!("SELECT * FROM \"{table}\""))
            .fetch_all(&pool)
            .await
            .unwrap();
        for row in &rows {
            for (column, bytes) in cells(row) {
                cells_seen += 1;
                if table == "instances" && column == "webhook_authorization_sealed" {
                    sealed_authorization = true;
                }
                for (what, secret) in secrets {
                    assert!(
                        !contains(&bytes, secret.as_bytes()),
                        "the {what} is in {table}.{column}"
                    );
                }
            }
        }
    }
    assert!(
        cells_seen > 10,
        "only {cells_seen} text/blob cells: the dump looked nowhere"
    );
    assert!(
        sealed_authorization,
        "the webhook authorization was not stored at all"
    );
    pool.close().await;
    server.stop().await;
}
