//! `linkPreview` on `message/text` (issue 15): the page a link points at is
//! fetched through the address guard, its title, description and image
//! reach the phone as a preview card, and a page that cannot be previewed
//! never fails the send. The pages are served on loopback, which only the
//! operator's `ZAPGATE_ALLOW_PRIVATE_URLS` opens to the guard.

use std::{io::Cursor, time::Duration};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    harness::{Env, Page, PageServer, TestServer},
    sends::{keyed, last_sent, outbox, paired, send},
};

const CUSTOMER: &str = "5511977776666";

/// A `width` x `height` PNG.
fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    let mut writer = encoder.write_header().unwrap();
    writer
        .write_image_data(&vec![90u8; (width * height * 3) as usize])
        .unwrap();
    writer.finish().unwrap();
    out.into_inner()
}

const PRODUCT: &str = r#"<!doctype html><html><head>
<meta charset="utf-8"><title>Loja - produto 42</title>
<meta property="og:title" content="Tênis de corrida &amp; caminhada">
<meta property="og:description" content="Frete grátis para todo o Brasil">
<meta property="og:image" content="/img/tenis.png">
</head><body>...</body></html>"#;

/// A shop's pages: a product with an image, one whose image is broken,
/// one with only a `<title>`, a missing page and a page that never answers
/// in time.
async fn shop() -> (PageServer, String) {
    PageServer::start([
        ("/produto", Page::new("text/html; charset=utf-8", PRODUCT)),
        ("/img/tenis.png", Page::new("image/png", png(600, 300))),
        (
            "/sem-imagem",
            Page::new(
                "text/html",
                r#"<head><meta property="og:title" content="Sem imagem"><meta property="og:image" content="/img/quebrada.png"></head>"#,
            ),
        ),
        ("/img/quebrada.png", Page::new("image/png", "not a png")),
        (
            "/simples",
            Page::new("text/html", "<title>Só o título</title>"),
        ),
        (
            "/lenta",
            Page {
                delay: Duration::from_secs(30),
                ..Page::new("text/html", PRODUCT)
            },
        ),
    ])
    .await
}

async fn open_server() -> TestServer {
    TestServer::start_with(Env::default().with("ZAPGATE_ALLOW_PRIVATE_URLS", "true")).await
}

/// Sends `message` with `linkPreview: true`; the answer's message id.
async fn previewed(server: &TestServer, token: &str, message: &str) -> String {
    let reply = send(
        server,
        token,
        "text",
        json!({"number": CUSTOMER, "message": message, "linkPreview": true}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["status"], json!("sent"), "{}", reply.text);
    reply.body["data"]["messageId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_text_message_with_link_preview_carries_the_pages_title_description_and_image() {
    let (pages, base) = shop().await;
    let server = open_server().await;
    let token = paired(&server).await;

    let text = format!("Confira: {base}/produto!");
    let id = previewed(&server, &token, &text).await;
    let sent = last_sent(&server, &token, &id).await;
    assert_eq!(sent["text"], json!(text));
    assert_eq!(
        sent["linkPreview"],
        json!({
            "url": format!("{base}/produto"),
            "title": "Tênis de corrida & caminhada",
            "description": "Frete grátis para todo o Brasil",
            // 600 x 300 fitted into 192 x 192, as a JPEG.
            "thumbnail": {"width": 192, "height": 96, "size": sent["linkPreview"]["thumbnail"]["size"], "jpeg": true},
        }),
        "{sent}"
    );
    assert!(sent["linkPreview"]["thumbnail"]["size"].as_u64().unwrap() > 100);
    assert_eq!(pages.hits("/produto"), 1);
    assert_eq!(pages.hits("/img/tenis.png"), 1);

    // A broken image: the card goes without it.
    let id = previewed(&server, &token, &format!("{base}/sem-imagem")).await;
    let sent = last_sent(&server, &token, &id).await;
    assert_eq!(
        sent["linkPreview"],
        json!({"url": format!("{base}/sem-imagem"), "title": "Sem imagem"}),
        "{sent}"
    );
    assert_eq!(pages.hits("/img/quebrada.png"), 1);

    // Only a <title>: that is the card.
    let id = previewed(&server, &token, &format!("veja {base}/simples")).await;
    let sent = last_sent(&server, &token, &id).await;
    assert_eq!(sent["linkPreview"]["title"], json!("Só o título"), "{sent}");

    // No link, a missing page, an image link: sent, without a card.
    for (message, path) in [
        ("sem link nenhum".to_owned(), None),
        (format!("{base}/sumiu"), Some("/sumiu")),
        (format!("{base}/img/tenis.png"), Some("/img/tenis.png")),
    ] {
        let before = path.map(|p| pages.hits(p));
        let id = previewed(&server, &token, &message).await;
        let sent = last_sent(&server, &token, &id).await;
        assert_eq!(sent["text"], json!(message));
        assert_eq!(sent["linkPreview"], Value::Null, "{sent}");
        if let (Some(path), Some(before)) = (path, before) {
            assert_eq!(pages.hits(path), before + 1, "{path} was not asked for");
        }
    }

    // `linkPreview` false or absent: the page is never fetched.
    for body in [
        json!({"number": CUSTOMER, "message": format!("{base}/produto"), "linkPreview": false}),
        json!({"number": CUSTOMER, "message": format!("{base}/produto")}),
    ] {
        let reply = send(&server, &token, "text", body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let id = reply.body["data"]["messageId"].as_str().unwrap();
        assert_eq!(
            last_sent(&server, &token, id).await["linkPreview"],
            Value::Null
        );
    }
    assert_eq!(pages.hits("/produto"), 1);

    send(
        &server,
        &token,
        "text",
        json!({"number": CUSTOMER, "message": "x", "linkPreview": "yes"}),
    )
    .await
    // As every mistyped field of `message/text`.
    .assert_error(400, "Invalid request body");
    server.stop().await;
}

#[tokio::test]
async fn a_link_preview_message_repeated_under_its_idempotency_key_is_fetched_once() {
    let (pages, base) = shop().await;
    let server = open_server().await;
    let token = paired(&server).await;
    let body =
        json!({"number": CUSTOMER, "message": format!("{base}/produto"), "linkPreview": true});
    let first = keyed(&server, &token, "/api/message/text/loja", "promo-1", &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let again = keyed(&server, &token, "/api/message/text/loja", "promo-1", &body).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    // The stored answer, not a second send or fetch.
    assert_eq!(again.body, first.body);
    assert_eq!(outbox(&server, &token).await.len(), 1);
    assert_eq!(pages.hits("/produto"), 1);
    assert_eq!(pages.hits("/img/tenis.png"), 1);
    server.stop().await;
}

#[tokio::test]
async fn without_the_private_url_override_a_loopback_link_message_goes_without_a_preview() {
    let (pages, base) = shop().await;
    let server = TestServer::start().await;
    let token = paired(&server).await;
    let text = format!("{base}/produto");
    let id = previewed(&server, &token, &text).await;
    let sent = last_sent(&server, &token, &id).await;
    assert_eq!(sent["text"], json!(text));
    assert_eq!(sent["linkPreview"], Value::Null, "{sent}");
    // Refused by the guard before any request.
    assert_eq!(pages.hits("/produto"), 0);
    server.stop().await;
}

#[tokio::test]
async fn a_link_preview_message_waits_for_a_slow_page_at_most_five_seconds() {
    let (_pages, base) = shop().await;
    let server = open_server().await;
    let token = paired(&server).await;
    let started = std::time::Instant::now();
    let id = previewed(&server, &token, &format!("{base}/lenta")).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(took >= Duration::from_secs(4), "{took:?}");
    let sent = last_sent(&server, &token, &id).await;
    assert_eq!(sent["linkPreview"], Value::Null, "{sent}");
    server.stop().await;
}
