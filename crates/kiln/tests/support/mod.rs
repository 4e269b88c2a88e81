//! `kiln serve` started as a user starts it, on 127.0.0.1:0, with its first-start owner token.

#![allow(dead_code)] // each test crate uses its own part of the harness

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `kiln serve`, killed when dropped.
pub struct Running {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The owner token, printed on first start only.
    pub token: Option<String>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to end by itself, at most `limit`; kills it and panics after.
    pub async fn wait_for_exit(&mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("the process did not stop within {limit:?}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Running {
    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `kiln serve` on `dir` and waits until it listens.
pub fn start(dir: &Path) -> Running {
    start_with(dir, &[])
}

/// Starts `kiln serve` on `dir` with more arguments (`--database-url …`).
pub fn start_with(dir: &Path, extra: &[&str]) -> Running {
    start_env(dir, extra, &[])
}

/// Starts `kiln serve` on `dir` with more arguments and environment (`KILN_JOBS__TICK=…`).
pub fn start_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut running = Running {
        child,
        addr: String::new(),
        token: None,
    };
    let stdout = running.child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(t) = line.trim().strip_prefix("kiln_") {
            running.token = Some(format!("kiln_{t}"));
        }
        if let Some(addr) = line.strip_prefix("Kiln listening on http://") {
            running.addr = addr.trim().to_string();
            return running;
        }
    }
    panic!("serve exited before listening")
}

/// The throwaway PostgreSQL server `scripts/pg` started (`KILN_TEST_DATABASE_URL`); panics
/// with how to run the test when there is none.
pub fn pg_server_url(test: &str) -> String {
    match std::env::var("KILN_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "KILN_TEST_DATABASE_URL is unset: this test needs a PostgreSQL server; run it with \
             `scripts/pg run cargo test -p kiln --test {test} -- --include-ignored`"
        ),
    }
}

/// Runs one statement with `psql` and returns its unaligned output.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A fresh database `name` on the server at `server` (dropped first if left over); its URL.
pub fn pg_database(server: &str, name: &str) -> String {
    psql(server, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(server, &format!("CREATE DATABASE {name}"));
    format!(
        "{}/{name}",
        server.rsplit_once('/').map_or(server, |(b, _)| b)
    )
}

/// A bearer-token client for a running server's JSON API.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub token: String,
}

impl Client {
    pub fn new(token: String) -> Self {
        Self {
            http: reqwest::Client::new(),
            token,
        }
    }

    /// Sends `method url` with an optional JSON body; returns the status and the JSON answer
    /// (`null` when there is none).
    pub async fn call(
        &self,
        method: &str,
        url: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.try_call(method, url, body).await.unwrap()
    }

    /// [`Client::call`], with a failed connection as an error (a server that was killed).
    pub async fn try_call(
        &self,
        method: &str,
        url: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), reqwest::Error> {
        let mut req = self
            .http
            .request(method.parse().unwrap(), url)
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        Ok((status, res.json().await.unwrap_or(serde_json::Value::Null)))
    }
}

/// Whether `request` holds a whole HTTP request: its headers, then as many body bytes as
/// Content-Length says (for the loopback model servers the tests script).
pub fn request_complete(request: &[u8]) -> bool {
    let text = String::from_utf8_lossy(request);
    let Some(end) = text.find("\r\n\r\n") else {
        return false;
    };
    let length = text[..end]
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    request.len() >= end + 4 + length
}
