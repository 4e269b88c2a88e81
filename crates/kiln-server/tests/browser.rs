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
use kiln_llm::{ChatFuture, ChatModel, ChatRequest, ChatResponse, ChatStream, StreamEvent};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
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
    run_on(name, None, scenario).await
}

/// [`run`] with the agent answering through `model` (default: the offline planner).
async fn run_on(
    name: &str,
    model: Option<Arc<dyn ChatModel>>,
    scenario: impl for<'a> FnOnce(&'a Server, &'a Driver, &'a Client) -> Step<'a>,
) {
    let _one = ONE_AT_A_TIME.lock().await;
    let server = match model {
        Some(m) => support::start_with_model(1 << 20, m).await,
        None => support::start(1 << 20).await,
    };
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

/// Runs axe-core (from the npm registry; `scripts/test` fetches it and sets `KILN_AXE_JS`) on
/// the browser's page: fails on any serious or critical violation, naming the rule and nodes.
async fn accessible(b: &Client, page: &str) -> Outcome {
    let path = std::env::var("KILN_AXE_JS").map_err(|_| {
        "KILN_AXE_JS is not set: run scripts/test, which fetches axe-core from npm".to_string()
    })?;
    let axe = std::fs::read_to_string(&path).map_err(|e| format!("read {path}: {e}"))?;
    let script = format!(
        "{axe}\n;const done = arguments[arguments.length - 1];\
         axe.run(document, {{resultTypes: ['violations']}}).then(r => done(\
           r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')\
            .map(v => v.id + ': ' + v.help + ' @ ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))))\
         .catch(e => done(['axe failed: ' + e]));"
    );
    let found = b
        .execute_async(&script, vec![])
        .await
        .map_err(wd("run axe"))?;
    let list: Vec<String> =
        serde_json::from_value(found.clone()).map_err(|_| format!("{page}: axe gave {found}"))?;
    check(
        list.is_empty(),
        format!("{page}: accessibility violations: {}", list.join("; ")),
    )
}

/// Opens `url` and waits until its document has loaded (a page's script may still be swapping
/// regions in when WebDriver returns, so the body is waited for rather than assumed).
async fn goto(b: &Client, url: &str) -> Outcome {
    b.goto(url).await.map_err(wd("open a page"))?;
    until(
        b,
        "return document.readyState === 'complete' && document.body !== null",
        "the page loads",
    )
    .await
}

async fn js(b: &Client, script: &str) -> Result<Value, String> {
    b.execute(script, vec![]).await.map_err(wd("script"))
}

async fn current_url(b: &Client) -> Result<String, String> {
    b.current_url()
        .await
        .map(|u| u.to_string())
        .map_err(wd("url"))
}

/// Waits until `script` returns true; a script error (the page is between two documents)
/// counts as "not yet", and the last one is reported if time runs out.
async fn until(b: &Client, script: &str, what: &str) -> Outcome {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let last = match js(b, script).await {
            Ok(Value::Bool(true)) => return Ok(()),
            Ok(v) => format!("last returned {v}"),
            Err(e) => e,
        };
        if tokio::time::Instant::now() > deadline {
            return Err(format!("{what}: not within {WAIT:?} ({last})"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sign_in_create_a_session_and_see_the_answer_stream_in() {
    run("stream", |s, _, b| {
        Box::pin(async move {
            // The sign-in form.
            goto(b, &format!("{}/", s.base)).await?;
            fill(b, "input[name=token]", &s.alice).await?;
            click(b, "form button[type=submit]").await?;
            wait_text(b, "h1", "Sessions").await?;
            // A new session with no name: it is named after the first request.
            click(b, "details summary").await?;
            click(b, "form[action='/web/sessions'] button[type=submit]").await?;
            wait_text(b, "h1", "New session").await?;
            // The composer has the focus; Enter sends, Shift+Enter adds a line.
            check(
                js(b, "return document.activeElement && document.activeElement.id").await?
                    == json!("message"),
                "the composer has the focus",
            )?;
            wait_text(b, "#composer-hint", "Shift+Enter").await?;
            let message = find(b, "#message").await?;
            message
                .send_keys(&format!(
                    "Analyse{}{}{}LiFePO4",
                    fantoccini::key::Key::Shift,
                    fantoccini::key::Key::Enter,
                    fantoccini::key::Key::Null
                ))
                .await
                .map_err(wd("type"))?;
            let typed = message.prop("value").await.map_err(wd("value"))?;
            check(
                typed.as_deref() == Some("Analyse\nLiFePO4"),
                format!("Shift+Enter adds a line: {typed:?}"),
            )?;
            message
                .send_keys(&fantoccini::key::Key::Enter.to_string())
                .await
                .map_err(wd("enter"))?;
            wait_text(b, "#composer-status", "Answered").await?;
            let answer = wait_text(b, "#conversation article.assistant", "157.755").await?;
            let class = answer.attr("class").await.map_err(wd("class"))?;
            check(
                !class.unwrap_or_default().contains("streaming"),
                "the answer is marked finished",
            )?;
            // The tool call is one compact card: tool, action, readable result; raw JSON folded.
            // The answer repeats the result here, so the card is folded to its one line.
            let card = wait_text(b, "#conversation .tool-card.echoed summary", "materials_analyzer").await?;
            wait_text(b, "#conversation .tool-card.echoed summary", "analyze").await?;
            card.click().await.map_err(wd("open the card"))?;
            wait_text(b, "#conversation .tool-card .tool-text", "157.755").await?;
            let raw = find(b, "#conversation .tool-card details.raw").await?;
            check(
                raw.attr("open").await.map_err(wd("open"))?.is_none(),
                "raw JSON starts folded",
            )?;
            // Named after the first request, in the heading and the sidebar.
            wait_text(b, "#session-name", "Analyse LiFePO4").await?;
            wait_text(b, "#side-sessions a[aria-current]", "Analyse LiFePO4").await?;
            // The panel caught up without a reload.
            wait_text(b, "#materials", "LiFePO4").await?;
            // Markdown renders; raw HTML in a message stays text.
            let url = current_url(b).await?;
            let id = url
                .split("/web/sessions/")
                .nth(1)
                .and_then(|r| r.split(['/', '?']).next())
                .unwrap_or_default()
                .to_string();
            let (st, _) = s
                .request(
                    Method::POST,
                    &format!("/v1/sessions/{id}/branches/main/messages"),
                    Some(&s.alice),
                    Some(json!({"role": "note", "content":
                        "## Plan\n\n- **Mn** first\n\n| dopant | V |\n|---|---|\n| Mn | 4.1 |\n\n<img src=x onerror=\"window.pwned=1\"><script>window.pwned=1</script>"})),
                )
                .await;
            check(st.is_success(), "note stored")?;
            b.refresh().await.map_err(wd("reload"))?;
            wait_text(b, "#conversation article.note h2", "Plan").await?;
            wait_text(b, "#conversation article.note .scroll table td", "4.1").await?;
            wait_text(b, "#conversation article.note strong", "Mn").await?;
            wait_text(b, "#conversation article.note", "<script>").await?;
            check(
                js(b, "return window.pwned === undefined && !document.querySelector('#conversation img')").await?
                    == json!(true),
                "no HTML from a message reaches the page",
            )?;
            // Copy on every message copies its Markdown source.
            js(b, "navigator.clipboard.writeText = (t) => { window.copied = t; return Promise.resolve(); }; return true").await?;
            let n_msgs = js(b, "return document.querySelectorAll('#conversation article.msg').length").await?;
            let n_copy = js(b, "return document.querySelectorAll('#conversation article.msg [data-act=copy]').length").await?;
            check(n_msgs == n_copy, format!("a Copy on every message ({n_msgs} vs {n_copy})"))?;
            click(b, "#conversation article.note [data-act=copy]").await?;
            until(b, "return (window.copied || '').startsWith('## Plan')", "copied the source").await?;
            // Edit the details (PATCH with If-Match): the heading follows.
            click(b, "#edit-session summary").await?;
            fill(b, "#edit-form input[name=name]", "Cathode screen II").await?;
            fill(b, "#edit-form input[name=tags]", "olivine, lfp").await?;
            click(b, "#edit-form button[type=submit]").await?;
            wait_text(b, "h1", "Cathode screen II").await?;
            wait_text(b, "#session-tags", "olivine, lfp").await?;
            // A hypothesis from its form, without a reload of the page.
            js(b, "window.stayed = true; return true").await?;
            fill(b, "#hypothesis-form input[name=statement]", "Olivine survives 1000 cycles").await?;
            click(b, "#hypothesis-form button[type=submit]").await?;
            wait_text(b, "#hypotheses", "Olivine survives 1000 cycles").await?;
            check(js(b, "return window.stayed === true").await? == json!(true), "the panel updated in place")?;
            let ctx = find(b, "#context-tokens").await?.text().await.map_err(wd("tokens"))?;
            check(
                ctx.parse::<u32>().is_ok_and(|n| n > 0),
                format!("the context view counts tokens ({ctx})"),
            )?;
            Ok(())
        })
    })
    .await;
}

#[tokio::test]
async fn the_workspace_has_three_regions_tabs_with_urls_a_phone_layout_and_dark_mode() {
    run("workspace", |s, _, b| {
        Box::pin(async move {
            let id = seeded_session(s, "Layout").await;
            for i in 0..60 {
                let (st, _) = s
                    .request(
                        Method::POST,
                        &format!("/v1/sessions/{id}/branches/main/messages"),
                        Some(&s.alice),
                        Some(json!({"role": "note", "content": format!("note {i:03}")})),
                    )
                    .await;
                check(st.is_success(), "note")?;
            }
            sign_in(s, b).await?;
            b.set_window_size(1400, 900).await.map_err(wd("resize"))?;
            goto(b, &format!("{}/web/sessions/{id}", s.base)).await?;
            wait_text(b, "#conversation", "note 059").await?;
            // Three regions side by side.
            let side_by_side = js(b, "const r = (s) => document.querySelector(s).getBoundingClientRect(); \
                return r('#sidebar').right <= r('#chat').left + 1 && r('#chat').right <= r('#panel').left + 1 \
                  && r('#sidebar').width > 150 && r('#panel').width > 300").await?;
            check(side_by_side == json!(true), "sidebar, conversation and panel side by side")?;
            // It opens at the newest message, and older history loads upward.
            until(b, "const c = document.querySelector('#conversation'); return c.scrollHeight - c.scrollTop - c.clientHeight < 5", "opens at the newest").await?;
            let before = js(b, "return document.querySelectorAll('#conversation article.msg').length").await?;
            js(b, "document.querySelector('#conversation').scrollTop = 0; return true").await?;
            until(b, &format!("return document.querySelectorAll('#conversation article.msg').length > {before}"), "older messages load").await?;
            wait_text(b, "#conversation", "Analyse LiFePO4").await?;
            // Someone else's message appears live, without a reload: scrolled up to read, the page
            // offers it; at the bottom, it shows at once.
            js(b, "window.stayed = true; return true").await?;
            let (st, _) = s
                .request(
                    Method::POST,
                    &format!("/v1/sessions/{id}/branches/main/messages"),
                    Some(&s.alice),
                    Some(json!({"role": "note", "content": "written from another window"})),
                )
                .await;
            check(st.is_success(), "note")?;
            until(b, "return !document.querySelector('#live-new').hidden", "new activity offered").await?;
            click(b, "#live-new").await?;
            wait_text(b, "#conversation", "written from another window").await?;
            let (st, _) = s
                .request(
                    Method::POST,
                    &format!("/v1/sessions/{id}/branches/main/messages"),
                    Some(&s.alice),
                    Some(json!({"role": "note", "content": "and a second one"})),
                )
                .await;
            check(st.is_success(), "note")?;
            wait_text(b, "#conversation", "and a second one").await?;
            check(js(b, "return window.stayed === true").await? == json!(true), "no reload for live activity")?;
            // Each tab has its own URL; switching is in place and a link opens it directly.
            click(b, ".tabs a[data-tab=audit]").await?;
            wait_text(b, "#audit-state", "Chain verified").await?;
            check(current_url(b).await?.contains(&format!("/web/sessions/{id}/audit")), "the URL names the tab")?;
            check(js(b, "return window.stayed === true").await? == json!(true), "no reload")?;
            // The audit filter keeps to one entry type.
            let select = find(b, "#audit-filter select").await?;
            select.select_by_value("session").await.map_err(wd("filter"))?;
            click(b, "#audit-filter button[type=submit]").await?;
            wait_text(b, "#audit-timeline", "session.create").await?;
            check(!page_text(b).await?.contains("node.append"), "only session entries")?;
            b.back().await.map_err(wd("back"))?;
            for (tab, text) in [("branches", "Checkpoints"), ("optimizer", "No optimizer"), ("notebook", "notebook"), ("sharing", "Share links"), ("state", "Materials in play")] {
                goto(b, &format!("{}/web/sessions/{id}/{tab}", s.base)).await?;
                wait_text(b, "#panel-body", text).await?;
                let current = find(b, ".tabs a[aria-current]").await?.attr("data-tab").await.map_err(wd("tab"))?;
                check(current.as_deref() == Some(tab), format!("{tab} marked current"))?;
                accessible(b, &format!("the {tab} tab")).await?;
            }
            // The sidebar folds away and stays folded.
            click(b, "#sidebar-toggle").await?;
            until(b, "return getComputedStyle(document.querySelector('#sidebar')).display === 'none'", "the sidebar folds").await?;
            b.refresh().await.map_err(wd("reload"))?;
            until(b, "return getComputedStyle(document.querySelector('#sidebar')).display === 'none'", "the sidebar stays folded").await?;
            click(b, "#sidebar-toggle").await?;
            // Dark mode: the toggle switches and sticks across pages.
            let bg = "return getComputedStyle(document.body).backgroundColor";
            let light = js(b, bg).await?;
            click(b, "#theme-toggle").await?;
            until(b, "return document.documentElement.dataset.theme === 'dark'", "dark mode on").await?;
            let dark = js(b, bg).await?;
            check(light != dark, format!("the background changes ({light} → {dark})"))?;
            goto(b, &format!("{}/web/sessions/{id}/branches", s.base)).await?;
            check(js(b, bg).await? == dark, "dark mode sticks on the next page")?;
            accessible(b, "the branches tab, dark").await?;
            goto(b, &format!("{}/", s.base)).await?;
            check(js(b, bg).await? == dark, "and on the sessions page")?;
            accessible(b, "the sessions page, dark").await?;
            goto(b, &format!("{}/web/sessions/{id}", s.base)).await?;
            click(b, "#theme-toggle").await?;
            until(b, "return document.documentElement.dataset.theme === 'light'", "back to light").await?;
            // A phone: the conversation and the message box come first, on the first screen;
            // the panels follow behind their tab bar; nothing scrolls sideways.
            b.set_window_size(390, 844).await.map_err(wd("resize"))?;
            goto(b, &format!("{}/web/sessions/{id}/state", s.base)).await?;
            wait_text(b, "#conversation", "note 059").await?;
            let phone = js(b, "const r = (s) => document.querySelector(s).getBoundingClientRect(); \
                return r('#composer').bottom <= window.innerHeight + 1 && r('#panel').top >= r('#composer').bottom - 1 \
                  && getComputedStyle(document.querySelector('#sidebar')).display === 'none'").await?;
            check(phone == json!(true), "the composer sits on the first screen, panels below")?;
            no_sideways_scroll(b, "the session page").await?;
            accessible(b, "the session page on a phone").await?;
            goto(b, &format!("{}/", s.base)).await?;
            no_sideways_scroll(b, "the sessions page").await?;
            accessible(b, "the sessions page").await?;
            Ok(())
        })
    })
    .await;
}

#[tokio::test]
async fn edit_forks_a_branch_and_regenerate_asks_again_on_another() {
    run("edit-regenerate", |s, _, b| {
        Box::pin(async move {
            let id = seeded_session(s, "Forks").await;
            sign_in(s, b).await?;
            goto(b, &format!("{}/web/sessions/{id}", s.base)).await?;
            wait_text(b, "#conversation article.assistant", "157.755").await?;
            // Edit the question: a branch from just before it answers the edited text.
            click(b, "#conversation article.user [data-act=edit]").await?;
            fill(b, "#conversation article.user .edit-box textarea", "Analyse LiCoO2").await?;
            click(b, "#conversation article.user .edit-box button[type=submit]").await?;
            wait_text(b, "#composer-status", "Answered").await?;
            let url = current_url(b).await?;
            check(url.contains("branch=edit-"), format!("on the edit branch: {url}"))?;
            wait_text(b, "#conversation article.assistant", "LiCoO2").await?;
            let text = find(b, "#conversation").await?.text().await.map_err(wd("text"))?;
            check(!text.contains("Analyse LiFePO4"), "the edited branch starts before the original question")?;
            // Nothing is lost: main still has the original question and answer.
            let (_, msgs) = s
                .request(Method::GET, &format!("/v1/sessions/{id}/branches/main/messages"), Some(&s.alice), None)
                .await;
            check(msgs.to_string().contains("Analyse LiFePO4"), "main keeps the original")?;
            // Regenerate the answer: the same question again, on a new branch.
            click(b, "#conversation article.assistant [data-act=regenerate]").await?;
            // This page already says "Answered" (the edit's turn): wait for the new branch's
            // page before waiting for its answer.
            until(b, "return location.search.includes('branch=regenerate-')", "the regenerate branch opens").await?;
            wait_text(b, "#composer-status", "Answered").await?;
            let url2 = current_url(b).await?;
            check(url2.contains("branch=regenerate-") && url2 != url, format!("on a regenerate branch: {url2}"))?;
            let users = js(b, "return Array.from(document.querySelectorAll('#conversation article.user')).map(a => a.querySelector('template.src').content.textContent)").await?;
            check(users == json!(["Analyse LiCoO2"]), format!("asked once again: {users}"))?;
            wait_text(b, "#conversation article.assistant", "LiCoO2").await?;
            let (_, tree) = s
                .request(Method::GET, &format!("/v1/sessions/{id}/branches"), Some(&s.alice), None)
                .await;
            check(tree["items"].as_array().is_some_and(|a| a.len() == 3), format!("three branches: {tree}"))?;
            Ok(())
        })
    })
    .await;
}

/// A model that answers one word every 200 ms, for the Stop button to interrupt.
struct Slow;

impl ChatModel for Slow {
    fn name(&self) -> &str {
        "slow"
    }

    fn complete(&self, _: ChatRequest) -> ChatFuture<'_> {
        Box::pin(async move {
            Ok(ChatResponse {
                content: Some("done".into()),
                model: "slow".into(),
                ..Default::default()
            })
        })
    }

    fn complete_stream(&self, _: ChatRequest) -> ChatStream<'_> {
        use futures::StreamExt;
        futures::stream::iter(0..300)
            .then(|i| async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(StreamEvent::TextDelta(format!("word{i} ")))
            })
            .chain(futures::stream::once(async {
                Ok(StreamEvent::Done(ChatResponse {
                    content: Some("all words".into()),
                    model: "slow".into(),
                    ..Default::default()
                }))
            }))
            .boxed()
    }
}

#[tokio::test]
async fn stop_interrupts_a_turn_and_keeps_what_was_said() {
    run_on("stop", Some(Arc::new(Slow)), |s, _, b| {
        Box::pin(async move {
            let (_, sess) = s
                .request(
                    Method::POST,
                    "/v1/sessions",
                    Some(&s.alice),
                    Some(json!({"name": "Slow"})),
                )
                .await;
            let id = sess["id"].as_str().unwrap().to_string();
            sign_in(s, b).await?;
            goto(b, &format!("{}/web/sessions/{id}", s.base)).await?;
            fill(b, "#message", "Tell me everything").await?;
            click(b, "#composer button[type=submit]").await?;
            wait_text(b, "#conversation article.assistant", "word3").await?;
            let stop = find(b, "#stop").await?;
            check(
                stop.is_displayed().await.map_err(wd("shown"))?,
                "Stop shows while a turn runs",
            )?;
            stop.click().await.map_err(wd("stop"))?;
            wait_text(b, "#composer-status", "Stopped").await?;
            wait_text(b, "#conversation article.assistant .badge", "interrupted").await?;
            // The stored answer is partial: the turn did not run on to the end.
            let (_, msgs) = s
                .request(
                    Method::GET,
                    &format!("/v1/sessions/{id}/branches/main/messages"),
                    Some(&s.alice),
                    None,
                )
                .await;
            let all = msgs.to_string();
            check(
                all.contains("word1") && !all.contains("word299"),
                "a partial answer is kept",
            )?;
            check(
                !find(b, "#stop")
                    .await?
                    .is_displayed()
                    .await
                    .map_err(wd("hidden"))?,
                "Stop hides again",
            )?;
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
            let (st, v) = s
                .request(
                    Method::POST,
                    &format!("/v1/sessions/{id}/branches/main/events"),
                    Some(&s.alice),
                    Some(json!({"kind": "hypothesis", "id": "h-na", "statement": "Na on the Li site keeps the olivine", "status": "open"})),
                )
                .await;
            check(st.is_success(), format!("hypothesis: {v}"))?;
            sign_in(s, b).await?;
            goto(b, &format!("{}/web/sessions/{id}/branches", s.base)).await?;
            // Create a branch from the head of main: the page switches to it.
            fill(b, "#new-branch-form input[name=name]", "cobalt").await?;
            click(b, "#new-branch-form button[type=submit]").await?;
            wait_text(b, "#branch-switcher option[selected]", "cobalt").await?;
            send(b, "Analyse LiCoO2").await?;
            wait_text(b, "#conversation article.assistant", "LiCoO2").await?;
            // Both branches change two things differently: a pin and the hypothesis's status.
            for (branch, pin, status) in [("main", "ours", "supported"), ("cobalt", "theirs", "refuted")] {
                for event in [
                    json!({"kind": "context_pin", "key": "goal", "value": pin}),
                    json!({"kind": "hypothesis", "id": "h-na", "statement": "Na on the Li site keeps the olivine", "status": status}),
                ] {
                    let (st, v) = s
                        .request(
                            Method::POST,
                            &format!("/v1/sessions/{id}/branches/{branch}/events"),
                            Some(&s.alice),
                            Some(event),
                        )
                        .await;
                    check(st.is_success(), format!("{branch}: {v}"))?;
                }
            }
            // The graph draws both branches; a click on a branch switches to it.
            goto(b, &format!("{}/web/sessions/{id}/branches?branch=main", s.base)).await?;
            wait_text(b, "#current-branch", "main").await?;
            check(!page_text(b).await?.contains("Analyse LiCoO2"), "main does not show cobalt's message")?;
            let link = find(b, "#branch-graph a[href*='branch=cobalt']").await?;
            link.click().await.map_err(wd("click cobalt in the graph"))?;
            wait_text(b, "#branch-switcher option[selected]", "cobalt").await?;
            wait_text(b, "#conversation", "Analyse LiCoO2").await?;
            // The switcher goes back and forth and keeps the tab.
            let select = find(b, "#branch-switcher select").await?;
            select.select_by_value("main").await.map_err(wd("switch"))?;
            wait_text(b, "#branch-switcher option[selected]", "main").await?;
            check(current_url(b).await?.contains("/branches"), "switching keeps the tab")?;
            let select = find(b, "#branch-switcher select").await?;
            select.select_by_value("cobalt").await.map_err(wd("switch"))?;
            wait_text(b, "#branch-switcher option[selected]", "cobalt").await?;
            // Merge cobalt into main: each conflict in words, settled one by one.
            click(b, "#merge-form button[type=submit]").await?;
            wait_text(b, "#conflict-dialog", "Na on the Li site keeps the olivine").await?;
            wait_text(b, "#conflict-dialog", "supported on main").await?;
            let dialog_text = find(b, "#conflict-dialog").await?.text().await.map_err(wd("dialog"))?;
            check(!dialog_text.contains("{\"") && !dialog_text.contains("h-na"), format!("no JSON or ids: {dialog_text}"))?;
            let focused = js(b, "const a = document.activeElement; return !!(a && a.closest('#conflict-dialog'))").await?;
            check(focused == json!(true), "the dialog takes the keyboard focus")?;
            accessible(b, "the merge dialog").await?;
            // Theirs for the hypothesis, ours for the pin.
            js(b, "for (const fs of document.querySelectorAll('#conflict-rows fieldset')) { \
                     const v = fs.dataset.key.startsWith('hypotheses') ? 'theirs' : 'ours'; \
                     fs.querySelector('input[value=' + v + ']').checked = true; } return true").await?;
            click(b, "#conflict-dialog button[data-strategy=apply]").await?;
            wait_text(b, "#current-branch", "main").await?;
            wait_text(b, "#conversation article.merge", "cobalt").await?;
            wait_text(b, ".tree", "merged cobalt").await?;
            goto(b, &format!("{}/web/sessions/{id}/state", s.base)).await?;
            wait_text(b, "#pins", "ours").await?;
            wait_text(b, "#hypotheses", "refuted").await?;
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
            goto(b, &format!("{}/web/sessions/{id}/branches", s.base)).await?;
            fill(b, "#new-checkpoint-form input[name=name]", "before-cobalt").await?;
            click(b, "#new-checkpoint-form button[type=submit]").await?;
            wait_text(b, "#checkpoints", "before-cobalt").await?;
            send(b, "Analyse LiCoO2").await?;
            b.refresh().await.map_err(wd("reload"))?;
            wait_text(b, "#conversation", "Analyse LiCoO2").await?;
            // Restore from the graph's checkpoint label: it asks first (saying nothing is lost),
            // then moves the head back.
            js(b, "document.querySelector(\"#branch-graph [data-restore='before-cobalt']\").scrollIntoView({block: 'center'}); return true").await?;
            click(b, "#branch-graph [data-restore='before-cobalt']").await?;
            let asked = b.get_alert_text().await.map_err(wd("the confirmation"))?;
            check(
                asked.contains("nothing is lost"),
                format!("the confirmation says nothing is lost: {asked}"),
            )?;
            b.accept_alert().await.map_err(wd("confirm the restore"))?;
            wait_text(b, "#checkpoints", "before-restore").await?;
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let text = find(b, "#conversation")
                    .await?
                    .text()
                    .await
                    .map_err(wd("text"))?;
                if !text.contains("Analyse LiCoO2") && text.contains("Analyse LiFePO4") {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    return Err("the restored branch should end before the second message".into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Past twenty checkpoints the older ones are one select, restored the same way.
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
            goto(b, &format!("{}/web/sessions/{id}/sharing", s.base)).await?;
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
                )?;
                accessible(&guest, "the share page").await
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
#[tokio::test]
async fn the_optimizer_panel_defines_a_space_records_results_and_reads_a_csv_with_a_bad_row() {
    run("optimizer", |s, _, b| {
        Box::pin(async move {
            let (_, sess) = s
                .request(Method::POST, "/v1/sessions", Some(&s.alice), Some(json!({"name": "Sintering"})))
                .await;
            let id = sess["id"].as_str().unwrap().to_string();
            sign_in(s, b).await?;
            goto(b, &format!("{}/web/sessions/{id}/optimizer", s.base)).await?;
            wait_text(b, "#optimizer-summary", "No optimizer").await?;
            accessible(b, "the empty optimizer tab").await?;
            // Define two variables and the objective in the form.
            fill(b, "#space-table tr.var-row input[name=name]", "temperature").await?;
            fill(b, "#space-table tr.var-row input[name=lower]", "600").await?;
            fill(b, "#space-table tr.var-row input[name=upper]", "900").await?;
            fill(b, "#space-table tr.var-row input[name=unit]", "°C").await?;
            click(b, "#add-var-row").await?;
            fill(b, "#space-table tr.var-row:nth-child(2) input[name=name]", "time").await?;
            fill(b, "#space-table tr.var-row:nth-child(2) input[name=lower]", "1").await?;
            fill(b, "#space-table tr.var-row:nth-child(2) input[name=upper]", "10").await?;
            fill(b, "#opt-space input[name=objective]", "capacity").await?;
            click(b, "#opt-space button[type=submit]").await?;
            wait_text(b, "#optimizer-summary", "capacity").await?;
            // An initial design to start from, as a table of points to accept.
            fill(b, "#opt-design input[name=n]", "4").await?;
            click(b, "#opt-design button[type=submit]").await?;
            let n = {
                find(b, "#suggestions [data-accept]").await?;
                js(b, "return document.querySelectorAll('#suggestions [data-accept]').length").await?
            };
            check(n == json!(4), format!("four design points to accept: {n}"))?;
            // Two results typed into the table.
            fill(b, "#results-table tr.result-row input[name=temperature]", "700").await?;
            fill(b, "#results-table tr.result-row input[name=time]", "4").await?;
            fill(b, "#results-table tr.result-row input[name=__output]", "141.5").await?;
            click(b, "#add-result-row").await?;
            fill(b, "#results-table tr.result-row:nth-child(2) input[name=temperature]", "820").await?;
            fill(b, "#results-table tr.result-row:nth-child(2) input[name=time]", "6").await?;
            fill(b, "#results-table tr.result-row:nth-child(2) input[name=__output]", "150.25").await?;
            click(b, "#opt-results button[type=submit]").await?;
            wait_text(b, "#optimizer-summary", "2 experiment").await?;
            // A pasted table with one bad row: the preview names it, the good rows go in.
            click(b, "#opt-import summary").await?;
            // (A paste, as the clipboard delivers it: typed tabs would move the focus.)
            js(b, "document.querySelector('#opt-paste').value = 'temperature\\ttime\\tcapacity\\n650\\t2\\t130\\n1200\\t3\\t120\\n880\\t9\\t145'; return true").await?;
            click(b, "#opt-paste-preview").await?;
            wait_text(b, "#csv-errors", "line 3").await?;
            wait_text(b, "#opt-preview", "2 row(s) read").await?;
            accessible(b, "the CSV preview").await?;
            click(b, "#csv-commit").await?;
            wait_text(b, "#optimizer-summary", "4 experiment").await?;
            // Plots of the model, drawn by the server.
            until(b, "const i = document.querySelector('#dep-plot'); return !!i && i.complete && i.naturalWidth > 0", "the dependence plot loads").await?;
            until(b, "const i = document.querySelector('#map-plot'); return !!i && i.complete && i.naturalWidth > 0", "the map loads").await?;
            // A suggestion, accepted into the results table.
            click(b, "#opt-suggest button[type=submit]").await?;
            wait_text(b, "#optimizer table caption", "EI)").await?;
            let accept = find(b, "#suggestions [data-accept]").await?;
            // (Clear of the sticky tab bar.)
            js(b, "document.querySelector('#suggestions [data-accept]').scrollIntoView({block: 'center'}); return true").await?;
            accept.click().await.map_err(wd("accept"))?;
            until(b, "const r = Array.from(document.querySelectorAll('#results-table tr.result-row')).pop(); \
                return r.querySelector('input[name=temperature]').value !== '' && document.activeElement.name === '__output'", "the suggestion fills a row").await?;
            // A decision locked with notes lands in the audit log.
            fill(b, "#lock-notes", "Data checked against the furnace log").await?;
            click(b, "#opt-lock button[type=submit]").await?;
            // What the lock recorded shows in the panel.
            wait_text(b, "#optimizer table", "Data checked against the furnace log").await?;
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let (_, audit) = s
                    .request(Method::GET, &format!("/v1/sessions/{id}/audit"), Some(&s.alice), None)
                    .await;
                if audit.to_string().contains("Data checked against the furnace log") {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(format!("the lock's notes are not in the audit log: {audit}"));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            accessible(b, "the optimizer tab").await?;
            Ok(())
        })
    })
    .await;
}

#[tokio::test]
async fn the_other_pages_are_accessible_in_light_and_dark() {
    run("other-pages", |s, _, b| {
        Box::pin(async move {
            let id = seeded_session(s, "Pages").await;
            let (st, _) = s
                .request(
                    Method::POST,
                    &format!("/v1/sessions/{id}/branches"),
                    Some(&s.alice),
                    Some(json!({"name": "alt"})),
                )
                .await;
            check(st.is_success(), "branch")?;
            let (st, _) = s
                .request(
                    Method::POST,
                    "/v1/me/memory",
                    Some(&s.alice),
                    Some(json!({"content": "I work at 1 atm", "kind": "preference"})),
                )
                .await;
            check(st.is_success(), "memory")?;
            let (st, batch) = s
                .request(
                    Method::POST,
                    &format!("/v1/sessions/{id}/batches"),
                    Some(&s.alice),
                    Some(json!({"request": "Analyse {formula}",
                                "items": [{"formula": "LiFePO4"}, {"formula": "Xx9"}]})),
                )
                .await;
            check(st.is_success(), "batch")?;
            let batch = batch["id"].as_str().unwrap_or_default().to_owned();
            goto(b, &format!("{}/login", s.base)).await?;
            accessible(b, "the sign-in page").await?;
            sign_in(s, b).await?;
            for theme in ["light", "dark"] {
                js(
                    b,
                    &format!("document.cookie = 'kiln_theme={theme}; path=/'; return true"),
                )
                .await?;
                for (page, path, text) in [
                    (
                        "diff",
                        format!("/web/sessions/{id}/diff?from=main&to=alt"),
                        "alt",
                    ),
                    ("settings", "/web/settings".to_string(), "Test connection"),
                    ("memory", "/web/memory".to_string(), "I work at 1 atm"),
                    (
                        "batch",
                        format!("/web/sessions/{id}/batches/{batch}"),
                        "Done: 2 of 2",
                    ),
                    ("search", "/?q=LiFePO4".to_string(), "LiFePO4"),
                    ("not found", "/web/sessions/nope".to_string(), ""),
                ] {
                    goto(b, &format!("{}{path}", s.base)).await?;
                    wait_text(b, "body", text).await?;
                    let applied =
                        js(b, "return document.documentElement.dataset.theme || ''").await?;
                    check(
                        applied == json!(theme),
                        format!("{page}: theme {applied} not {theme}"),
                    )?;
                    accessible(b, &format!("the {page} page, {theme}")).await?;
                }
            }
            Ok(())
        })
    })
    .await;
}

#[tokio::test]
async fn the_composer_takes_the_chat_commands() {
    run("chat-commands", |s, _, b| {
        Box::pin(async move {
            let id = seeded_session(s, "Commands").await;
            sign_in(s, b).await?;
            goto(b, &format!("{}/web/sessions/{id}", s.base)).await?;
            wait_text(b, "#conversation article.assistant", "157.755").await?;
            fill(b, "#message", "/help").await?;
            click(b, "#composer button[type=submit]").await?;
            wait_text(b, "#composer-status", "/undo").await?;
            // /undo takes the question back, keeping it.
            fill(b, "#message", "/undo").await?;
            click(b, "#composer button[type=submit]").await?;
            wait_text(b, "#composer-status", "Took back").await?;
            until(
                b,
                "return !document.querySelector('#conversation').textContent.includes('157.755')",
                "the answer leaves the branch",
            )
            .await?;
            let (_, cps) = s
                .request(
                    Method::GET,
                    &format!("/v1/sessions/{id}/checkpoints"),
                    Some(&s.alice),
                    None,
                )
                .await;
            check(
                cps.to_string().contains("before-restore-"),
                "the undone turn is kept",
            )?;
            // /clear: a fresh branch from the start.
            fill(b, "#message", "/clear").await?;
            click(b, "#composer button[type=submit]").await?;
            until(
                b,
                "return location.search.includes('branch=fresh-2')",
                "on the fresh branch",
            )
            .await?;
            // An unknown command is said, and the text stays to fix.
            fill(b, "#message", "/frobnicate").await?;
            click(b, "#composer button[type=submit]").await?;
            wait_text(b, "#composer-status", "Unknown command /frobnicate").await?;
            accessible(b, "the session page after commands").await?;
            Ok(())
        })
    })
    .await;
}

#[tokio::test]
async fn the_page_says_who_else_is_here() {
    run("presence", |s, _, b| {
        Box::pin(async move {
            let id = seeded_session(s, "Together").await;
            let (st, _) = s
                .request(
                    Method::POST,
                    &format!("/v1/sessions/{id}/collaborators"),
                    Some(&s.alice),
                    Some(json!({"user": "bob", "permissions": ["read", "write"]})),
                )
                .await;
            check(st.is_success(), "share")?;
            sign_in(s, b).await?;
            goto(b, &format!("{}/web/sessions/{id}", s.base)).await?;
            // Bob opens the session elsewhere (his live stream is his presence).
            let bob = s
                .http
                .get(format!(
                    "{}/v1/sessions/{id}/events/stream?max_seconds=60",
                    s.base
                ))
                .bearer_auth(&s.bob)
                .send()
                .await
                .map_err(|e| format!("bob's stream: {e}"))?;
            check(bob.status().is_success(), "bob watches")?;
            wait_text(b, "#presence", "Here now: alice, bob").await?;
            accessible(b, "the session page with someone else here").await?;
            drop(bob);
            Ok(())
        })
    })
    .await;
}
