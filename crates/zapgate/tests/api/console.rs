//! The console in a real browser: Debian's Chromium driven through
//! chromedriver's WebDriver protocol (plain HTTP, so `reqwest` is the whole
//! client), against a real sandbox server and the Chatwoot double.
//!
//! Without Chromium and chromedriver the test says loudly that it skipped,
//! unless `ZAPGATE_TEST_REQUIRE_BROWSER=1` (CI), where it fails instead.
//! Every step leaves a screenshot; on failure they are written to
//! `<target>/tmp/console-screenshots/`. With `ZAPGATE_TEST_SCREENSHOTS=<dir>`
//! the README's two screenshots are written there.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use base64::Engine;
use chatwoot_double::{ChatwootDouble, Role};
use futures_util::FutureExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, Env, Receiver, TestServer, free_port};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const WAIT: Duration = Duration::from_secs(20);

fn browser_required() -> bool {
    std::env::var("ZAPGATE_TEST_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Chromium and chromedriver, or `None` (with a loud note) when either is
/// missing and the browser is not required.
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = on_path(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = on_path(&["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        missing if browser_required() => {
            panic!(
                "ZAPGATE_TEST_REQUIRE_BROWSER=1 but Chromium or chromedriver is missing: {missing:?}"
            )
        }
        _ => {
            eprintln!(
                "SKIPPED: the console browser test needs chromium and chromedriver on PATH \
                 (apt-get install chromium chromium-driver)"
            );
            None
        }
    }
}

/// A chromedriver child and one headless Chromium session.
struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
    /// Every step's screenshot, written out if the test fails.
    shots: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    async fn start(chromium: &Path, driver: &Path) -> Self {
        let port = free_port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            session: String::new(),
            driver,
            _profile: profile,
            shots: Mutex::new(Vec::new()),
        };
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        while browser
            .http
            .get(format!("{base}/status"))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let reply: Value = browser
            .http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .unwrap();
        let id = reply["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {reply}"));
        browser.session = format!("{base}/session/{id}");
        browser
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let reply: Value = req
            .send()
            .await
            .expect("WebDriver answers")
            .json()
            .await
            .unwrap();
        if reply["value"]["error"].is_string() {
            panic!("WebDriver {path}: {}", reply["value"]);
        }
        reply["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Replaces a field's text, typed as keys.
    async fn fill(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn js(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// The text of the first element matching `css`, or null when none.
    async fn text(&self, css: &str) -> Value {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            json!([css]),
        )
        .await
    }

    /// Waits until `script` (given `args`) returns true.
    async fn wait(&self, what: &str, script: &str, args: Value) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.js(script, args.clone()).await == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting until {what}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_text(&self, css: &str, expected: &str) {
        self.wait(
            &format!("{css} reads {expected:?}"),
            "const e = document.querySelector(arguments[0]); return !!e && e.textContent === arguments[1];",
            json!([css, expected]),
        )
        .await;
    }

    async fn wait_visible(&self, css: &str) {
        self.wait(
            &format!("{css} is visible"),
            "const e = document.querySelector(arguments[0]); return !!e && !e.hidden && e.getClientRects().length > 0;",
            json!([css]),
        )
        .await;
    }

    async fn screenshot(&self, step: &str) -> Vec<u8> {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        self.shots
            .lock()
            .unwrap()
            .push((step.to_owned(), png.clone()));
        png
    }

    fn write_shots(&self, dir: &Path) {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        for (i, (step, png)) in self.shots.lock().unwrap().iter().enumerate() {
            let file = dir.join(format!("{i:02}-{step}.png"));
            std::fs::write(&file, png).unwrap();
            eprintln!("screenshot: {}", file.display());
        }
    }
}

/// Width and height of a PNG, decoded in full (a broken image fails here).
fn png_size(bytes: &[u8]) -> (u32, u32) {
    let mut reader = png::Decoder::new(bytes).read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("PNG pixels");
    (info.width, info.height)
}

#[tokio::test]
async fn the_console_pairs_a_phone_and_sets_up_chatwoot_in_a_real_browser() {
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let server = TestServer::start_with(
        Env::default()
            .with("ZAPGATE_ALLOW_PRIVATE_URLS", "true")
            .with("ZAPGATE_PUBLIC_URL", "https://zap.example.com")
            .with("ZAPGATE_CHATWOOT_CACHE_SECS", "0"),
    )
    .await;
    let cw = ChatwootDouble::start().await;
    let cw_account = cw.add_account("Acme");
    let (_, cw_token) = cw.add_user(
        "Admin",
        "admin@acme.test",
        Role::Administrator,
        &[cw_account],
    );
    let browser = Browser::start(&chromium, &driver).await;

    let walk = walk(&server, &cw, cw_account, &cw_token, &browser);
    if let Err(panic) = std::panic::AssertUnwindSafe(walk).catch_unwind().await {
        browser.screenshot("failure").await;
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
        browser.write_shots(&dir);
        std::panic::resume_unwind(panic);
    }
    server.stop().await;
}

async fn walk(
    server: &TestServer,
    cw: &ChatwootDouble,
    cw_account: i64,
    cw_token: &str,
    b: &Browser,
) {
    // The front page links to the console.
    b.goto(&server.url("/")).await;
    b.click("a[href='console']").await;
    b.wait_visible("#sign-in-form").await;

    // The operator signs in and creates an account; its token is shown once.
    b.fill("#token", ADMIN_TOKEN).await;
    b.click("#sign-in").await;
    b.wait_visible("#account-form").await;
    b.fill("#account-name", "acme").await;
    b.fill("#account-max", "3").await;
    b.click("#account-create").await;
    b.wait_visible("#account-token").await;
    let account_token = b.text("#account-token").await.as_str().unwrap().to_owned();
    b.wait(
        "the list shows the account",
        "return document.getElementById('accounts').textContent.includes('acme');",
        json!([]),
    )
    .await;
    b.screenshot("accounts").await;
    let reply = server.get("/api/instance/list", Some(&account_token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    // The token lives in sessionStorage only: not in the URL, not in a cookie.
    let kept = b
        .js(
            "return [location.href, document.cookie, sessionStorage.getItem('zapgate.token')];",
            json!([]),
        )
        .await;
    assert!(!kept[0].as_str().unwrap().contains(ADMIN_TOKEN), "{kept}");
    assert_eq!(kept[1], json!(""));
    assert_eq!(kept[2], json!(ADMIN_TOKEN));

    // The account signs in and creates an instance.
    b.click("#sign-out").await;
    b.wait_visible("#sign-in-form").await;
    b.fill("#token", &account_token).await;
    b.click("#sign-in").await;
    b.wait_visible("#instance-form").await;
    b.fill("#instance-name", "shop").await;
    b.click("#instance-create").await;
    b.wait_text("#state", "disconnected").await;
    b.screenshot("instance-created").await;

    // Connect: the QR code is an image, a valid PNG, on screen.
    b.click("#connect-qr").await;
    b.wait_visible("#qr").await;
    b.wait(
        "the QR image is decoded",
        "const i = document.getElementById('qr'); return i.complete && i.naturalWidth > 0;",
        json!([]),
    )
    .await;
    let src = b
        .js(
            "return document.getElementById('qr').getAttribute('src');",
            json!([]),
        )
        .await;
    let png = src
        .as_str()
        .and_then(|s| s.strip_prefix("data:image/png;base64,"))
        .unwrap_or_else(|| panic!("not a PNG data URL: {src}"));
    let png = base64::engine::general_purpose::STANDARD
        .decode(png)
        .unwrap();
    let (w, h) = png_size(&png);
    assert!(w >= 100 && w == h, "QR image {w}x{h}");
    b.wait_text("#state", "connecting").await;
    let shot = b.screenshot("qr").await;
    save_for_readme("console-instance.png", &shot);

    // The phone scans: the page says connected without a reload.
    b.js("window.notReloaded = true; return true;", json!([]))
        .await;
    let reply = server
        .post(
            "/api/sandbox/shop/pair",
            Some(&account_token),
            json!({"number": "5511999990000"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    b.wait_text("#state", "connected").await;
    b.wait(
        "the QR code is gone",
        "return document.getElementById('qr').hidden && window.notReloaded === true;",
        json!([]),
    )
    .await;
    assert_eq!(
        b.text("#number").await,
        json!(" 5511999990000@s.whatsapp.net")
    );
    b.screenshot("connected").await;

    // Chatwoot against the double: activate, status active.
    b.wait_text("#cw-state", "off").await;
    b.fill("#cw-url", &cw.base_url()).await;
    b.fill("#cw-account", &cw_account.to_string()).await;
    b.fill("#cw-token", cw_token).await;
    b.fill("#cw-inbox", "Shop WhatsApp").await;
    b.click("#cw-signMessages").await;
    b.click("#cw-activate").await;
    b.wait_text("#cw-result", "chatwoot integration activated")
        .await;
    b.wait_text("#cw-state", "active").await;
    let inboxes = cw.inboxes(cw_account);
    assert_eq!(inboxes.len(), 1, "{inboxes:?}");
    assert_eq!(inboxes[0]["name"], json!("Shop WhatsApp"));
    let info = server
        .get("/api/chatwoot/list/shop", Some(&account_token))
        .await;
    assert_eq!(info.body["sign_messages"], json!(true), "{}", info.text);
    assert_eq!(info.body["ignore_groups"], json!(false), "{}", info.text);
    b.js(
        "document.getElementById('h-chatwoot').scrollIntoView(); return true;",
        json!([]),
    )
    .await;
    let shot = b.screenshot("chatwoot-active").await;
    save_for_readme("console-chatwoot.png", &shot);
    // Nothing failed, so there is nothing to replay.
    b.click("#cw-replay").await;
    b.wait_text("#cw-result", "dead letters queued again: 0")
        .await;

    // A wrong token: the page shows the server's message, exactly.
    b.fill("#cw-token", "not-the-token").await;
    b.click("#cw-activate").await;
    b.wait(
        "the activation fails",
        "return document.getElementById('cw-result').classList.contains('error');",
        json!([]),
    )
    .await;
    let shown = b.text("#cw-result").await;
    let reply = server
        .post(
            "/api/chatwoot/set/shop",
            Some(&account_token),
            json!({"chatwootBaseUrl": cw.base_url(), "chatwootAccountId": cw_account,
                   "chatwootApiToken": "not-the-token", "inboxName": "Shop WhatsApp",
                   "signMessages": true, "ignoreGroups": false, "startAsPending": false,
                   "reopenResolved": false}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert_eq!(shown, json!(reply.error()));
    assert!(
        reply
            .error()
            .starts_with("Chatwoot rejected the API token - ")
    );
    b.screenshot("chatwoot-wrong-token").await;

    // Deactivate, after a confirmation that says the inbox is kept.
    b.click("#cw-deactivate").await;
    b.wait_visible("#confirm").await;
    let question = b.text("#confirm-text").await;
    assert!(
        question
            .as_str()
            .unwrap()
            .contains("the inbox and its conversations are kept"),
        "{question}"
    );
    b.screenshot("chatwoot-confirm").await;
    b.click("#confirm-ok").await;
    b.wait_text("#cw-result", "chatwoot integration deactivated")
        .await;
    b.wait_text("#cw-state", "off").await;
    let reply = server
        .get("/api/chatwoot/list/shop", Some(&account_token))
        .await;
    reply.assert_error(404, "no chatwoot integration for this instance");
    assert_eq!(cw.inboxes(cw_account).len(), 1, "the inbox is kept");

    // A webhook and the WebSocket setting, then the delivery it made.
    let (receiver, hook_url) = Receiver::start().await;
    b.click("section[aria-labelledby='h-webhooks'] summary")
        .await;
    b.fill("#wh-url", &format!("{hook_url}/hook")).await;
    b.click("#wh-save").await;
    b.wait_text("#wh-result", "Webhook saved").await;
    b.wait(
        "the webhook is listed",
        "return document.getElementById('webhooks').textContent.includes(arguments[0]);",
        json!([hook_url]),
    )
    .await;
    b.click("#ws-enabled").await;
    b.click("#ws-save").await;
    b.wait_text("#ws-result", "WebSocket configuration saved")
        .await;
    let ws = server
        .get("/api/events/getWebsocket/shop", Some(&account_token))
        .await;
    assert_eq!(ws.body["websocket"]["enabled"], json!(true), "{}", ws.text);
    let reply = server
        .post(
            "/api/sandbox/shop/inbound",
            Some(&account_token),
            json!({"from": "5511977776666", "text": "oi"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    receiver.wait_for("message.exchange", 1).await;
    b.wait(
        "the delivery is listed as delivered",
        "document.getElementById('deliveries-reload').click(); \
         const t = document.getElementById('deliveries').textContent; \
         return t.includes('message.exchange') && t.includes('delivered');",
        json!([]),
    )
    .await;
    b.screenshot("deliveries").await;

    // The console's tenancy is the API's: another account's instance is
    // missing, and an instance token sees its own instance only.
    let (_, other_account) = server.create_account("other", 3).await;
    server.create_instance(&other_account, "theirs").await;
    b.goto(&server.url("/console#/instance/theirs")).await;
    b.wait_text("#connect-status", "Instance not found").await;
    let kiosk_token = server.create_instance(&account_token, "kiosk").await;
    b.click("#sign-out").await;
    b.wait_visible("#sign-in-form").await;
    b.fill("#token", &kiosk_token).await;
    b.click("#sign-in").await;
    b.wait(
        "the instance token lists its instance only",
        "const t = document.getElementById('instances-status'); return !!t && t.textContent === '1 Instance found';",
        json!([]),
    )
    .await;
    assert_eq!(
        b.js(
            "return [document.getElementById('instance-form') === null, document.getElementById('instances').textContent.includes('kiosk')];",
            json!([]),
        )
        .await,
        json!([true, true])
    );
    b.screenshot("instance-token").await;

    // The pairing-code alternative, on the instance's own page.
    b.click("a[href='#/instance/kiosk']").await;
    b.wait_text("#state", "disconnected").await;
    b.fill("#pair-phone", "5511988880000").await;
    b.click("#connect-code").await;
    b.wait_visible("#pairing-code").await;
    let code = b.text("#pairing-code").await;
    let code = code.as_str().unwrap();
    assert!(
        code.len() == 8 && code.chars().all(|c| c.is_ascii_alphanumeric()),
        "{code}"
    );
    let reply = server
        .post(
            "/api/sandbox/kiosk/pair",
            Some(&kiosk_token),
            json!({"number": "5511988880000"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    b.wait_text("#state", "connected").await;
    b.wait(
        "the pairing code is gone",
        "return document.getElementById('pairing-code').hidden;",
        json!([]),
    )
    .await;

    // Phone-sized: nothing wider than the screen.
    b.call(
        reqwest::Method::POST,
        "/window/rect",
        Some(json!({"width": 390, "height": 844})),
    )
    .await;
    b.wait(
        "the page fits a phone's width",
        "return document.documentElement.scrollWidth <= window.innerWidth;",
        json!([]),
    )
    .await;
    b.screenshot("phone").await;
}

/// The README's screenshots, made by this test on request.
fn save_for_readme(name: &str, png: &[u8]) {
    if let Ok(dir) = std::env::var("ZAPGATE_TEST_SCREENSHOTS") {
        // Relative to the repository root, not to this crate.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }
}

#[tokio::test]
async fn the_console_is_served_from_the_binary_with_a_strict_policy() {
    let server = TestServer::start().await;
    for (path, content_type) in [
        ("/console", "text/html; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/app.css", "text/css; charset=utf-8"),
    ] {
        let reply = server.get(path, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
        assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
        let policy = reply.header("content-security-policy").unwrap_or("");
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
        // Nothing is fetched from elsewhere: no CDN, no absolute asset URL.
        for external in ["src=\"http", "href=\"http", "url(http", "import "] {
            assert!(!reply.text.contains(external), "{path} has {external}");
        }
    }
    // The page loads its own two assets, relative to /console.
    let page = server.get("/console", None).await;
    assert!(page.text.contains("src=\"console/app.js\""));
    assert!(page.text.contains("href=\"console/app.css\""));
    // The front page links to it.
    let front = server.get("/", None).await;
    assert!(
        front.text.contains("<a href=\"console\">/console</a>"),
        "{}",
        front.text
    );
    server.stop().await;
}
