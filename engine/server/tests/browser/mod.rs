//! A real browser for the pages' tests: Debian's `chromium` driven by Debian's `chromedriver`
//! over the W3C WebDriver protocol (plain HTTP and JSON, so a few calls with `reqwest` suffice),
//! headless, with a profile of its own; and axe-core (npm, `tests/browser/`) injected into a
//! page to check it against WCAG 2.1 A and AA. Without the browser or axe-core the test says so
//! loudly and skips; with `CI` set that is a failure.

// Shared by the server's page tests and the end-to-end demo test, each using part of it.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// The W3C name of an element reference in WebDriver's answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    profile: std::path::PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The session's end closes Chromium (a plain request: no runtime in a drop); then the
        // driver.
        use std::io::{Read as _, Write as _};
        let addr = self.base.trim_start_matches("http://").to_owned();
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
                self.session
            );
            let _ = s.read_to_end(&mut Vec::new());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn skip(why: &str) -> Option<Browser> {
    assert!(
        std::env::var_os("CI").is_none(),
        "the browser tests need Chromium and axe-core in CI: {why} (apt-get install chromium chromium-driver; npm ci --prefix tests/browser)"
    );
    eprintln!(
        "\n*** SKIPPED the browser test: {why} (apt-get install chromium chromium-driver; npm ci --prefix tests/browser) ***\n"
    );
    None
}

/// axe-core in the workspace's `tests/browser/` (found from whichever crate's tests run).
fn axe_path() -> std::path::PathBuf {
    let mut dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let candidate = dir.join("tests/browser/package.json");
        if candidate.exists() || !dir.pop() {
            return dir.join("tests/browser/node_modules/axe-core/axe.min.js");
        }
    }
}

impl Browser {
    /// A fresh headless Chromium, or `None` (skipped) where it cannot run.
    pub async fn start() -> Option<Browser> {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(chromium) = chromium else {
            return skip("chromium is not installed");
        };
        if !axe_path().exists() {
            return skip("axe-core is not installed");
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let driver = match Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return skip(&format!("chromedriver does not run: {e}")),
        };
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        // The driver listens within a few seconds.
        let mut up = false;
        for _ in 0..100 {
            if http
                .get(format!("{base}/status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(up, "chromedriver did not start on port {port}");
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let profile = std::env::temp_dir().join(format!(
            "sf-chromium-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_owned();
        Some(Browser {
            driver,
            base,
            session,
            http,
            profile,
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if let Some(e) = v["value"].get("error") {
            panic!("WebDriver {path}: {e} {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    /// The browser's console since last asked (CSP refusals, errors).
    pub async fn console(&self) -> Value {
        self.call(
            reqwest::Method::POST,
            "/se/log",
            Some(json!({"type": "browser"})),
        )
        .await
    }

    pub async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The elements `css` selects now (none is not an error).
    pub async fn all(&self, css: &str) -> Vec<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_owned())
            .collect()
    }

    /// The first element `css` selects, waiting up to 10 s for it (a click's page may still be
    /// loading).
    pub async fn find(&self, css: &str) -> String {
        let mut found = self.all(css).await;
        for _ in 0..100 {
            if !found.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            found = self.all(css).await;
        }
        assert!(
            !found.is_empty(),
            "no `{css}` on {}: {}",
            self.url().await,
            self.run("return document.body.innerText;", json!([])).await
        );
        found[0].clone()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// The value of the browser's cookie `name` for the page's site (HttpOnly ones too).
    pub async fn cookie(&self, name: &str) -> String {
        let v = self
            .call(reqwest::Method::GET, &format!("/cookie/{name}"), None)
            .await;
        v["value"].as_str().unwrap_or("").to_owned()
    }

    /// The page (the window made `w`×`h` first) saved as `name.png` in `target/screenshots`
    /// (or the folder `STUDYFLOW_SCREENSHOTS` names), to look at how it reads.
    pub async fn screenshot(&self, name: &str, w: u32, h: u32) {
        let folder = std::env::var_os("STUDYFLOW_SCREENSHOTS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                // The workspace's target folder, from whichever test crate includes this one.
                let mut dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
                while !dir.join("Cargo.lock").exists() && dir.pop() {}
                dir.join("target/screenshots")
            });
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": w, "height": h})),
        )
        .await;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            std::path::Path::new(&folder).join(format!("{name}.png")),
            bytes,
        )
        .unwrap();
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": 1280, "height": 900})),
        )
        .await;
    }

    /// Chooses the file at `path` in the file field `css`.
    pub async fn choose_file(&self, css: &str, path: &std::path::Path) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": path.display().to_string() })),
        )
        .await;
    }

    /// The language of the page shown (its `<html lang>`).
    pub async fn lang(&self) -> String {
        self.run("return document.documentElement.lang;", json!([]))
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// The address of the last link named `text` among the links `css` selects on the page
    /// shown, if there is one.
    pub async fn link(&self, css: &str, text: &str) -> Option<String> {
        self.run(
            "const a = [...document.querySelectorAll(arguments[0])].filter(a => a.textContent === arguments[1]).pop(); return a ? a.href : null;",
            json!([css, text]),
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    /// `url` fetched with this browser's cookie `cookie` (the session), as a link of the
    /// site's own page is followed — a download, whose body the browser would save: its
    /// status and body.
    pub async fn download(&self, url: &str, cookie: &str) -> (reqwest::StatusCode, Vec<u8>) {
        let r = self.follow(reqwest::Method::GET, url, cookie).await;
        let status = r.status();
        (status, r.bytes().await.unwrap().to_vec())
    }

    /// [`Browser::download`]'s link asked with `HEAD`: the headers alone.
    pub async fn head(&self, url: &str, cookie: &str) -> reqwest::Response {
        self.follow(reqwest::Method::HEAD, url, cookie).await
    }

    /// `url` asked with `method` and this browser's cookie `cookie`, as the site's own page
    /// would follow a link.
    async fn follow(&self, method: reqwest::Method, url: &str, cookie: &str) -> reqwest::Response {
        let value = self.cookie(cookie).await;
        reqwest::Client::new()
            .request(method, url)
            .header("cookie", format!("{cookie}={value}"))
            .header("sec-fetch-site", "same-origin")
            .send()
            .await
            .unwrap()
    }

    /// Clicks the first element `css` selects, and waits until the page it leads to (if any)
    /// has loaded.
    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.run("window.__sf_before_click = true; return true;", json!([]))
            .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
        // A new document has no marker; wait for it to be complete.
        for _ in 0..100 {
            let v = self
                .run(
                    "return [window.__sf_before_click === true, document.readyState];",
                    json!([]),
                )
                .await;
            if v[0] == false && v[1] == "complete" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The rendered text of the first element `css` selects (waiting for it as [`find`]).
    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{e}/text"), None)
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Runs `script` (a function body; `arguments` as given) in the page.
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// The page's WCAG 2.1 A/AA violations of impact serious or critical, by axe-core, as
    /// `rule: target …` lines.
    pub async fn serious_violations(&self) -> Vec<String> {
        let axe = std::fs::read_to_string(axe_path()).unwrap();
        self.run(&format!("{axe}\nreturn true;"), json!([])).await;
        let v = self
            .call(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({
                    "script": "const done = arguments[arguments.length - 1];
                        axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
                           .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))))
                           .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));",
                    "args": [],
                })),
            )
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .filter(|x| matches!(x["impact"].as_str(), Some("serious" | "critical")))
            .map(|x| format!("{}: {} {}", x["id"], x["help"], x["nodes"]))
            .collect()
    }
}

/// An HTTP client that follows no redirect: a test sees each answer as the server gave it.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The form token of the page at `url`, read with the session `cookie`.
pub async fn page_form_token(http: &reqwest::Client, url: &str, cookie: &str) -> String {
    let html = http
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    form_token(&html)
}

/// The token a page's forms carry (the first `csrf` field of `html`).
pub fn form_token(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap_or_else(|| panic!("no form token in {html}"))
        .to_owned()
}

/// Signs `login` in through the sign-in page of the server at `base` (no browser: the form
/// posted as a browser posts it); the session cookie as a `cookie` header carries it.
pub async fn session_cookie(
    http: &reqwest::Client,
    base: &str,
    login: &str,
    password: &str,
    code: &str,
) -> String {
    let r = http
        .post(format!("{base}/sign-in"))
        .form(&[("login", login), ("password", password), ("code", code)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER, "{login}");
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}
