//! End-to-end tests of the web pages in headless Chromium, driven over WebDriver (fantoccini
//! and Debian's chromedriver) against the real server on 127.0.0.1. On a failure the test
//! saves a screenshot and the HTML of the page it was on under
//! `target/browser-artifacts/<test>/` and then fails.
//!
//! Needs `chromium` and `chromedriver` (Debian packages chromium and chromium-driver, which
//! `scripts/test` installs when missing); `KILN_CHROMEDRIVER` and `KILN_CHROMIUM` override
//! the paths.

mod support;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Method;
use serde_json::{Value, json};
use support::Server;

type Outcome = Result<(), String>;
type Step<'a> = Pin<Box<dyn Future<Output = Outcome> + 'a>>;

/// How long a step waits for the page to show what it expects.
const WAIT: Duration = Duration::from_secs(20);

/// Browser tests run one at a time: two Chromiums on a 2-core machine slow each other into
/// timeouts.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn tool(env: &str, default: &str) -> String {
    std::env::var(env).unwrap_or_else(|_| default.to_string())
}

/// A chromedriver process on a free loopback port, killed on drop.
struct Driver {
    child: std::process::Child,
    url: String,
}

impl Driver {
    async fn start() -> Driver {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let path = tool("KILN_CHROMEDRIVER", "/usr/bin/chromedriver");
        let child = std::process::Command::new(&path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {path} ({e}): install Debian's chromium and chromium-driver \
                     (scripts/test does), or set KILN_CHROMEDRIVER"
                )
            });
        // Owned by the Driver at once, so every path below kills and reaps it.
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http
                .get(format!("{}/status", driver.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not answer on {}", driver.url);
    }

    /// A fresh browser: its own profile, so no cookies from any other.
    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": tool("KILN_CHROMIUM", "/usr/bin/chromium"),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000",
                         "--no-first-run", "--disable-extensions"],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("chromium starts under chromedriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `scenario` with a server, a driver and a signed-out browser; on failure saves a
/// screenshot and the page source of every open browser, then panics with the step's error.
async fn run(
    name: &str,
    scenario: impl for<'a> FnOnce(&'a Server, &'a Driver, &'a Client) -> Step<'a>,
) {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = support::start(1 << 20).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    let outcome = scenario(&server, &driver, &browser).await;
    // KILN_BROWSER_SHOTS=1 keeps the last page of a passing test too (to look at the pages).
    if outcome.is_err() || std::env::var_os("KILN_BROWSER_SHOTS").is_some() {
        if outcome.is_ok() {
            // The whole page in one picture.
            let height = browser
                .execute("return document.documentElement.scrollHeight", vec![])
                .await
                .ok()
                .and_then(|v| v.as_u64())
                .unwrap_or(1000);
            let _ = browser.set_window_size(1280, height.min(8000) as u32).await;
        }
        save_page(&browser, &artifacts(name)).await;
    }
    if let Err(e) = &outcome {
        let dir = artifacts(name);
        let url = browser.current_url().await.map(|u| u.to_string());
        let _ = browser.close().await;
        panic!(
            "{name}: {e}\n  at {}\n  screenshot and HTML in {}",
            url.unwrap_or_default(),
            dir.display()
        );
    }
    let _ = browser.close().await;
}

/// Saves a screenshot and the HTML of the browser's page into `dir`.
async fn save_page(browser: &Client, dir: &std::path::Path) {
    let _ = std::fs::create_dir_all(dir);
    if let Ok(png) = browser.screenshot().await {
        let _ = std::fs::write(dir.join("page.png"), png);
    }
    if let Ok(html) = browser.source().await {
        let _ = std::fs::write(dir.join("page.html"), html);
    }
}

fn artifacts(test: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("browser-artifacts").join(test)
}

/// Turns a WebDriver error into the step's failure.
fn wd(what: &str) -> impl FnOnce(fantoccini::error::CmdError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn check(ok: bool, what: impl Into<String>) -> Outcome {
    if ok { Ok(()) } else { Err(what.into()) }
}

/// Waits until `css` matches an element whose text contains `text`.
async fn wait_text(b: &Client, css: &str, text: &str) -> Result<Element, String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(found) = b.find_all(Locator::Css(css)).await {
            for e in found {
                if e.text().await.is_ok_and(|t| t.contains(text)) {
                    return Ok(e);
                }
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("no `{css}` containing {text:?} within {WAIT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn find(b: &Client, css: &str) -> Result<Element, String> {
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .map_err(wd(css))
}

async fn fill(b: &Client, css: &str, text: &str) -> Outcome {
    let e = find(b, css).await?;
    e.clear().await.map_err(wd(css))?;
    e.send_keys(text).await.map_err(wd(css))
}

async fn click(b: &Client, css: &str) -> Outcome {
    find(b, css).await?.click().await.map_err(wd(css))
}

async fn sign_in(s: &Server, b: &Client) -> Outcome {
    b.goto(&format!("{}/login?token={}", s.base, s.alice))
        .await
        .map_err(wd("open the sign-in link"))?;
    // The link asks before it signs in (a planted link must not sign anyone in).
    wait_text(b, "form[action='/login'] button", "Sign in as alice").await?;
    click(b, "form[action='/login'] button").await?;
    wait_text(b, "h1", "Sessions").await.map(|_| ())
}

/// Creates a session over the API with one answered message; returns its id.
async fn seeded_session(s: &Server, name: &str) -> String {
    let (_, sess) = s
        .request(
            Method::POST,
            "/v1/sessions",
            Some(&s.alice),
            Some(json!({"name": name})),
        )
        .await;
    let id = sess["id"].as_str().unwrap().to_string();
    let (status, _) = s
        .request(
            Method::POST,
            &format!("/v1/sessions/{id}/query"),
            Some(&s.alice),
            Some(json!({"message": "Analyse LiFePO4"})),
        )
        .await;
    assert!(status.is_success());
    id
}

/// Sends `text` from the composer and waits for the streamed answer to finish.
async fn send(b: &Client, text: &str) -> Outcome {
    fill(b, "#message", text).await?;
    click(b, "#composer button[type=submit]").await?;
    wait_text(b, "#composer-status", "Answered").await?;
    Ok(())
}

/// Fails when the page is wider than the window (a phone would scroll sideways).
async fn no_sideways_scroll(b: &Client, page: &str) -> Outcome {
    let overflow: Value = b
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth + 1",
            vec![],
        )
        .await
        .map_err(wd("measure"))?;
    check(
        overflow == json!(false),
        format!("{page} scrolls sideways at phone width"),
    )
}

async fn page_text(b: &Client) -> Result<String, String> {
    find(b, "body").await?.text().await.map_err(wd("body text"))
}

#[tokio::test]
async fn sign_in_create_a_session_and_see_the_answer_stream_in() {
    run("stream", |s, _, b| {
        Box::pin(async move {
            // The sign-in form.
            b.goto(&format!("{}/", s.base))
                .await
                .map_err(wd("open /"))?;
            fill(b, "input[name=token]", &s.alice).await?;
            click(b, "form button[type=submit]").await?;
            wait_text(b, "h1", "Sessions").await?;
            // A new session from the form opens its page.
            click(b, "details summary").await?;
            fill(
                b,
                "form[action='/web/sessions'] input[name=name]",
                "Cathode screen",
            )
            .await?;
            click(b, "form[action='/web/sessions'] button[type=submit]").await?;
            wait_text(b, "h1", "Cathode screen").await?;
            // The answer streams into the page (no reload) and the tool call shows compactly.
            send(b, "Analyse LiFePO4").await?;
            let answer = wait_text(b, "#conversation article.assistant", "157.755").await?;
            let class = answer
                .attr("class")
                .await
                .map_err(wd("class"))?
                .unwrap_or_default();
            check(
                !class.contains("streaming"),
                "the answer is marked finished",
            )?;
            let call = wait_text(
                b,
                "#conversation details.tool summary",
                "materials_analyzer",
            )
            .await?;
            // Expanding the result shows the tool's full text.
            let result = wait_text(b, "#conversation details.result", "materials_analyzer").await?;
            check(
                result.attr("open").await.map_err(wd("open"))?.is_none(),
                "tool results start collapsed",
            )?;
            call.click().await.map_err(wd("expand the tool call"))?;
            // The side panels catch up without a reload.
            wait_text(b, "#materials", "LiFePO4").await?;
            // Edit the details (PATCH with If-Match): the heading follows.
            click(b, "#edit-session summary").await?;
            fill(b, "#edit-form input[name=name]", "Cathode screen II").await?;
            fill(b, "#edit-form input[name=tags]", "olivine, lfp").await?;
            click(b, "#edit-form button[type=submit]").await?;
            wait_text(b, "h1", "Cathode screen II").await?;
            wait_text(b, "header", "olivine, lfp").await?;
            // A hypothesis from its form.
            fill(
                b,
                "#hypothesis-form input[name=statement]",
                "Olivine survives 1000 cycles",
            )
            .await?;
            click(b, "#hypothesis-form button[type=submit]").await?;
            wait_text(b, "#hypotheses", "[open] Olivine survives 1000 cycles").await?;
            // After a reload the stored conversation and the panels show the same turn.
            b.refresh().await.map_err(wd("reload"))?;
            wait_text(b, "#conversation article.user", "Analyse LiFePO4").await?;
            wait_text(b, "#conversation article.assistant", "157.755").await?;
            wait_text(b, "#materials", "LiFePO4").await?;
            wait_text(b, "#audit-state", "Chain verified").await?;
            let ctx = find(b, "#context-tokens")
                .await?
                .text()
                .await
                .map_err(wd("tokens"))?;
            check(
                ctx.parse::<u32>().is_ok_and(|n| n > 0),
                format!("the context view counts tokens ({ctx})"),
            )?;
            // A phone-width window still shows the composer without sideways scrolling.
            b.set_window_size(390, 844).await.map_err(wd("resize"))?;
            no_sideways_scroll(b, "the session page").await?;
            b.goto(&format!("{}/", s.base))
                .await
                .map_err(wd("open /"))?;
            wait_text(b, "h1", "Sessions").await?;
            no_sideways_scroll(b, "the sessions page").await?;
            Ok(())
        })
    })
    .await;
}

#[tokio::test]
async fn branch_switch_send_and_merge_back_with_the_conflict_dialog() {
    run("branches", |s, _, b| {
        Box::pin(async move {
            let id = seeded_session(s, "Branching").await;
            sign_in(s, b).await?;
            b.goto(&format!("{}/web/sessions/{id}", s.base))
                .await
                .map_err(wd("open the session"))?;
            // Create a branch from the head of main: the page switches to it.
            fill(b, "#new-branch-form input[name=name]", "cobalt").await?;
            click(b, "#new-branch-form button[type=submit]").await?;
            wait_text(b, "#current-branch", "cobalt").await?;
            send(b, "Analyse LiCoO2").await?;
            wait_text(b, "#conversation article.assistant", "LiCoO2").await?;
            // Both branches pin the same key differently: the merge must ask.
            for (branch, value) in [("main", "ours"), ("cobalt", "theirs")] {
                let (st, _) = s
                    .request(
                        Method::POST,
                        &format!("/v1/sessions/{id}/branches/{branch}/events"),
                        Some(&s.alice),
                        Some(json!({"kind": "context_pin", "key": "goal", "value": value})),
                    )
                    .await;
                check(st.is_success(), "pin recorded")?;
            }
            // The switcher goes back and forth.
            b.goto(&format!("{}/web/sessions/{id}?branch=main", s.base))
                .await
                .map_err(wd("main"))?;
            wait_text(b, "#current-branch", "main").await?;
            let on_main = page_text(b).await?;
            check(
                !on_main.contains("Analyse LiCoO2"),
                "main does not show cobalt's message",
            )?;
            let select = find(b, "#branch-switcher select").await?;
            select
                .select_by_value("cobalt")
                .await
                .map_err(wd("switch"))?;
            wait_text(b, "#current-branch", "cobalt").await?;
            // Merge cobalt into main: a conflict dialog offers ours / theirs / union.
            click(b, "#merge-form button[type=submit]").await?;
            wait_text(b, "#conflict-dialog", "context.goal").await?;
            // The dialog is modal and takes the keyboard focus.
            let focused: Value = b
                .execute(
                    "const a = document.activeElement; \
                     return a && a.closest('#conflict-dialog') ? a.dataset.strategy : null",
                    vec![],
                )
                .await
                .map_err(wd("focus"))?;
            check(
                focused == json!("ours"),
                format!("focus in the dialog: {focused}"),
            )?;
            click(b, "#conflict-dialog button[data-strategy=theirs]").await?;
            wait_text(b, "#current-branch", "main").await?;
            wait_text(b, "#conversation article.merge", "cobalt").await?;
            wait_text(b, "dl", "theirs").await?;
            wait_text(b, ".tree", "merged cobalt").await?;
            Ok(())
        })
    })
    .await;
}

#[tokio::test]
async fn checkpoint_then_restore_brings_the_branch_back() {
    run("checkpoints", |s, _, b| {
        Box::pin(async move {
            let id = seeded_session(s, "Checkpoints").await;
            sign_in(s, b).await?;
            b.goto(&format!("{}/web/sessions/{id}", s.base))
                .await
                .map_err(wd("open the session"))?;
            fill(b, "#new-checkpoint-form input[name=name]", "before-cobalt").await?;
            click(b, "#new-checkpoint-form button[type=submit]").await?;
            wait_text(b, "#checkpoints", "before-cobalt").await?;
            send(b, "Analyse LiCoO2").await?;
            b.refresh().await.map_err(wd("reload"))?;
            wait_text(b, "#conversation", "Analyse LiCoO2").await?;
            // Restore asks first, then moves the head back and keeps the old one.
            click(b, "#checkpoints form[data-path*='before-cobalt'] button").await?;
            b.accept_alert().await.map_err(wd("confirm the restore"))?;
            wait_text(b, "#checkpoints", "before-restore").await?;
            let text = find(b, "#conversation")
                .await?
                .text()
                .await
                .map_err(wd("text"))?;
            check(
                !text.contains("Analyse LiCoO2"),
                "the restored branch ends before the second message",
            )?;
            check(
                text.contains("Analyse LiFePO4"),
                "the first message is still there",
            )?;
            // Past twenty checkpoints the older ones are one select, restored the same way
            // (after a new message, so the restore has somewhere to move the head from).
            let (st, _) = s
                .request(
                    Method::POST,
                    &format!("/v1/sessions/{id}/branches/main/messages"),
                    Some(&s.alice),
                    Some(json!({"role": "user", "content": "one more"})),
                )
                .await;
            check(st.is_success(), "message appended")?;
            for i in 0..20 {
                let (st, _) = s
                    .request(
                        Method::POST,
                        &format!("/v1/sessions/{id}/checkpoints"),
                        Some(&s.alice),
                        Some(json!({"name": format!("cp-{i:02}")})),
                    )
                    .await;
                check(st.is_success(), "checkpoint created")?;
            }
            b.refresh().await.map_err(wd("reload"))?;
            let select = find(b, "#restore-older-form select").await?;
            select
                .select_by_value("before-cobalt")
                .await
                .map_err(wd("pick an older checkpoint"))?;
            click(b, "#restore-older-form button[type=submit]").await?;
            b.accept_alert().await.map_err(wd("confirm"))?;
            // Restoring it adds a second before-restore checkpoint.
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let (_, cps) = s
                    .request(
                        Method::GET,
                        &format!("/v1/sessions/{id}/checkpoints"),
                        Some(&s.alice),
                        None,
                    )
                    .await;
                let n = cps["items"].as_array().map_or(0, |a| {
                    a.iter()
                        .filter(|c| {
                            c["name"]
                                .as_str()
                                .is_some_and(|n| n.starts_with("before-restore"))
                        })
                        .count()
                });
                if n >= 2 {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(format!("the older checkpoint was not restored ({n})"));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(())
        })
    })
    .await;
}

#[tokio::test]
async fn a_share_link_opens_read_only_without_sign_in_and_stops_when_revoked() {
    run("share", |s, driver, b| {
        Box::pin(async move {
            let id = seeded_session(s, "Shared cathodes").await;
            sign_in(s, b).await?;
            b.goto(&format!("{}/web/sessions/{id}", s.base))
                .await
                .map_err(wd("open the session"))?;
            click(b, "#share-form button[type=submit]").await?;
            let url_box = find(b, "#new-share-url").await?;
            let deadline = tokio::time::Instant::now() + WAIT;
            let url = loop {
                let v = url_box
                    .prop("value")
                    .await
                    .map_err(wd("value"))?
                    .unwrap_or_default();
                if v.contains("/s/ks_") {
                    break v;
                }
                if tokio::time::Instant::now() > deadline {
                    return Err("no share URL shown".into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            // A fresh browser, with no cookie, reads the session and finds no controls.
            let guest = driver.browser().await;
            let seen: Outcome = async {
                guest.goto(&url).await.map_err(wd("open the link"))?;
                wait_text(&guest, "h1", "Shared cathodes").await?;
                wait_text(&guest, "main", "Analyse LiFePO4").await?;
                let controls = guest
                    .find_all(Locator::Css("form, button, textarea, input, select"))
                    .await
                    .map_err(wd("controls"))?;
                check(
                    controls.is_empty(),
                    format!("{} edit controls on the share page", controls.len()),
                )
            }
            .await;
            if let Err(e) = seen {
                save_page(&guest, &artifacts("share-guest")).await;
                let _ = guest.close().await;
                return Err(format!("guest: {e}"));
            }
            // Revoke it; the guest now gets the page a made-up link gets.
            b.refresh().await.map_err(wd("reload"))?;
            click(b, "#shares form button").await?;
            wait_text(b, "#shares", "revoked").await?;
            guest.goto(&url).await.map_err(wd("reopen"))?;
            let revoked = wait_text(&guest, "main", "no longer valid").await;
            let _ = guest.close().await;
            revoked.map(|_| ())
        })
    })
    .await;
}
