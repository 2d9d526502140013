//! A small W3C WebDriver client (HTTP + JSON over reqwest) driving Debian's headless Chromium
//! through chromedriver: start a session, open pages, find elements by CSS, type, click, read
//! text, resize the window, save screenshots. Just what the browser tests need.

use base64::Engine;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver on a free loopback port; stopped when dropped.
pub struct Driver {
    child: Child,
    url: String,
    http: reqwest::Client,
}

/// Whether chromedriver and chromium are installed. With TINBAO_REQUIRE_CLIENTS=1 a missing one
/// fails the test; otherwise the test says it skipped.
pub fn available() -> bool {
    super::client_available("chromedriver", &["--version"])
        && super::client_available("chromium", &["--version"])
}

impl Driver {
    pub async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = driver
                .http
                .get(format!("{}/status", driver.url))
                .send()
                .await
                && let Ok(text) = r.text().await
                && serde_json::from_str::<Value>(&text)
                    .is_ok_and(|v| v["value"]["ready"] == json!(true))
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        driver
    }

    /// A new headless Chromium with a fresh profile and a `width`×`height` window.
    pub async fn session(&self, width: u32, height: u32) -> Session {
        self.open(width, height, None).await
    }

    /// A Chromium emulating a phone `width` CSS pixels wide (touch, mobile viewport rules, so
    /// the page's viewport meta is honoured as on a phone); `height` is the screenshot's.
    pub async fn phone(&self, width: u32, height: u32) -> Session {
        let emulation = json!({ "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1.0, "touch": true } });
        self.open(width, height, Some(emulation)).await
    }

    async fn open(&self, width: u32, height: u32, emulation: Option<Value>) -> Session {
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--lang=vi-VN".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let emulated = emulation.is_some();
        let mut options = json!({ "binary": "/usr/bin/chromium", "args": args });
        if let Some(emulation) = emulation {
            options["mobileEmulation"] = emulation;
        }
        let caps = json!({
            "capabilities": {
                "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": options }
            }
        });
        let value = call(
            &self.http,
            "POST",
            &format!("{}/session", self.url),
            Some(caps),
        )
        .await;
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {value}"))
            .to_string();
        let session = Session {
            url: format!("{}/session/{id}", self.url),
            http: self.http.clone(),
            _profile: profile,
        };
        if !emulated {
            session.resize(width, height).await;
        }
        session
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser window.
pub struct Session {
    url: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

/// An element on the current page.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Session {
    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(&self.http, method, &format!("{}{path}", self.url), body).await
    }

    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).await;
    }

    pub async fn title(&self) -> String {
        self.cmd("GET", "/title", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// The first element matching `css`; panics naming the selector if there is none.
    pub async fn find(&self, css: &str) -> Element {
        let value = self
            .cmd(
                "POST",
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        match value[ELEMENT].as_str() {
            Some(id) => Element(id.to_string()),
            None => panic!("no element matches {css:?}: {value}"),
        }
    }

    /// Clicks a submit button matching `css` and waits until the next page has loaded.
    pub async fn submit(&self, css: &str) {
        let before = self.find("html").await;
        self.click(css).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // Mid-navigation the document may be missing: such answers just mean "not yet".
            let html = format!("{}/element", self.url);
            let value = try_call(
                &self.http,
                "POST",
                &html,
                Some(json!({ "using": "css selector", "value": "html" })),
            )
            .await;
            let state = format!("{}/execute/sync", self.url);
            let ready = try_call(
                &self.http,
                "POST",
                &state,
                Some(json!({ "script": "return document.readyState", "args": [] })),
            )
            .await;
            if let (Ok(value), Ok(ready)) = (value, ready)
                && value[ELEMENT].as_str() != Some(before.0.as_str())
                && ready == json!("complete")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clicking {css:?} loaded no new page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("/element/{}/click", e.0), Some(json!({})))
            .await;
    }

    /// Replaces the text of the input matching `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd("POST", &format!("/element/{}/clear", e.0), Some(json!({})))
            .await;
        self.cmd(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// The rendered text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.cmd("GET", &format!("/element/{}/text", e.0), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn is_selected(&self, css: &str) -> bool {
        let e = self.find(css).await;
        self.cmd("GET", &format!("/element/{}/selected", e.0), None)
            .await
            == json!(true)
    }

    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let e = self.find(css).await;
        self.cmd("GET", &format!("/element/{}/attribute/{name}", e.0), None)
            .await
            .as_str()
            .map(str::to_string)
    }

    /// Saves a PNG of the viewport to `dir/name.png`; returns the path.
    pub async fn screenshot(&self, dir: &Path, name: &str) -> PathBuf {
        let value = self.cmd("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().expect("screenshot data"))
            .expect("screenshot is base64");
        std::fs::create_dir_all(dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    pub async fn quit(self) {
        let _ = self
            .http
            .delete(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status());
    }
}

/// One WebDriver command; panics with the driver's error message on failure.
async fn call(http: &reqwest::Client, method: &str, url: &str, body: Option<Value>) -> Value {
    try_call(http, method, url, body)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// One WebDriver command: its value, or the driver's error.
async fn try_call(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let request = match method {
        "GET" => http.get(url),
        "DELETE" => http.delete(url),
        _ => http
            .post(url)
            .header("content-type", "application/json")
            .body(body.unwrap_or_else(|| json!({})).to_string()),
    };
    let response = request
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap_or_else(|e| panic!("WebDriver {method} {url}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let value: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("WebDriver {method} {url}: not JSON ({e}): {text}"));
    if !status.is_success() {
        return Err(format!(
            "WebDriver {method} {url} failed ({status}): {}",
            value["value"]
        ));
    }
    Ok(value["value"].clone())
}
