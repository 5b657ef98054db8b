//! The newcomer path in-process: account, instance, connect, pair, list (the
//! README's own walk-through is run by `.ci/walkthrough`).

use serde_json::json;

use crate::harness::TestServer;

#[tokio::test]
async fn the_readme_walk_through_works() {
    let server = TestServer::start().await;
    let (_, account_token) = server.create_account("acme", 10).await;
    let instance_token = server.create_instance(&account_token, "suporte").await;
    assert!(instance_token.starts_with("zgi_"));
    server
        .pair(&instance_token, "suporte", "5511999990000")
        .await;

    let list = server.get("/api/instance/list", Some(&account_token)).await;
    assert_eq!(list.status.as_u16(), 200, "{}", list.text);
    assert_eq!(list.body["message"], json!("1 Instance found"));
    let item = &list.body["instances"][0];
    assert_eq!(item["name"], json!("suporte"));
    assert_eq!(item["connection"]["state"], json!("connected"));
    assert_eq!(
        item["connection"]["numberJid"],
        json!("5511999990000@s.whatsapp.net")
    );
    server.stop().await;
}
