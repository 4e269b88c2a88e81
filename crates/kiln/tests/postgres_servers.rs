//! Two `kiln serve` processes on one PostgreSQL database, as an institute runs them: 32
//! writers through each onto one shared branch lose nothing and leave one linear history with
//! a valid audit chain; a stale head is 409 `head_moved` whichever server holds the newer one;
//! a write on one server is found by search on the other within seconds and reaches a live
//! watcher there; after one server is
//! killed (SIGKILL) the other keeps answering; a job the killed server held runs on the other
//! within a lease period. Needs a server: `scripts/pg run cargo test -p
//! kiln --test postgres_servers -- --include-ignored` (scripts/test does it).

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{pg_database, pg_server_url, psql};

struct Client {
    http: reqwest::Client,
    token: String,
}

impl Client {
    async fn call(&self, method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), url)
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let v = res.json().await.unwrap_or(Value::Null);
        (status, v)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn two_servers_on_one_database_share_branches_audit_and_search() {
    let server = pg_server_url("postgres_servers");
    let name = format!("kiln_servers_{}", std::process::id());
    let db = pg_database(&server, &name);

    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = support::start_with(dirs.0.path(), &["--database-url", &db]);
    let b = support::start_with(dirs.1.path(), &["--database-url", &db]);
    // The owner is created once, by the first server; the second finds it.
    let token = a.token.clone().expect("the first server creates the owner");
    assert!(
        b.token.is_none(),
        "the second server must not create another owner"
    );
    let c = Client {
        http: reqwest::Client::new(),
        token,
    };
    let (ua, ub) = (format!("http://{}", a.addr), format!("http://{}", b.addr));

    let (st, s) = c
        .call(
            "POST",
            &format!("{ua}/v1/sessions"),
            Some(json!({"name": "Shared campaign"})),
        )
        .await;
    assert_eq!(st, 201, "{s}");
    let id = s["id"].as_str().unwrap().to_string();

    // 32 writers through each server, 5 messages each, onto main.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..64 {
        let base = if w % 2 == 0 { ua.clone() } else { ub.clone() };
        let (http, token, id) = (c.http.clone(), c.token.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let c = Client { http, token };
            for i in 0..5 {
                let (st, v) = c
                    .call(
                        "POST",
                        &format!("{base}/v1/sessions/{id}/branches/main/messages"),
                        Some(json!({"role": "user", "content": format!("writer {w} note {i}")})),
                    )
                    .await;
                assert_eq!(st, 201, "writer {w} note {i}: {v}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();

    // Both servers read the same linear history: every message once, each node's parent the
    // node before it.
    for base in [&ua, &ub] {
        let (st, v) = c
            .call(
                "GET",
                &format!("{base}/v1/sessions/{id}/branches/main/messages?limit=1000"),
                None,
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let items = v["items"].as_array().unwrap();
        let mut notes: Vec<&str> = items
            .iter()
            .filter_map(|n| n["content"].as_str())
            .filter(|t| t.starts_with("writer "))
            .collect();
        assert_eq!(notes.len(), 320, "{base}: {} notes", notes.len());
        notes.sort_unstable();
        notes.dedup();
        assert_eq!(notes.len(), 320, "a note was stored twice");
        // Linear: no two messages share a parent, and every one but the oldest has its
        // parent among them.
        let ids: std::collections::HashSet<&str> =
            items.iter().filter_map(|n| n["id"].as_str()).collect();
        let parents: Vec<&str> = items
            .iter()
            .filter_map(|n| n["parent_id"].as_str())
            .collect();
        let distinct: std::collections::HashSet<&str> = parents.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            parents.len(),
            "two messages share a parent: main forked"
        );
        let inside = parents.iter().filter(|p| ids.contains(*p)).count();
        assert_eq!(
            inside,
            items.len() - 1,
            "the history on main is not one chain"
        );
        let (st, v) = c
            .call(
                "GET",
                &format!("{base}/v1/sessions/{id}/audit/verify"),
                None,
            )
            .await;
        assert_eq!((st, v["valid"].as_bool()), (200, Some(true)), "{v}");
    }

    // A head older than the branch's is refused on either server.
    let (_, first) = c
        .call(
            "POST",
            &format!("{ua}/v1/sessions/{id}/branches/main/messages"),
            Some(json!({"role": "user", "content": "head probe"})),
        )
        .await;
    let stale = first["head"].as_str().unwrap().to_string();
    let (st, _) = c
        .call(
            "POST",
            &format!("{ub}/v1/sessions/{id}/branches/main/messages"),
            Some(json!({"role": "user", "content": "moves the head", "expected_head": stale})),
        )
        .await;
    assert_eq!(st, 201);
    let (st, v) = c
        .call(
            "POST",
            &format!("{ua}/v1/sessions/{id}/branches/main/messages"),
            Some(json!({"role": "user", "content": "stale", "expected_head": stale})),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("head_moved")),
        "{v}"
    );

    // A word written through A is found through B (and the other way round).
    for (write, read, word) in [(&ua, &ub, "vanadophosphate"), (&ub, &ua, "niobotitanate")] {
        let (st, _) = c
            .call(
                "POST",
                &format!("{write}/v1/sessions/{id}/branches/main/messages"),
                Some(json!({"role": "user", "content": format!("try {word} next")})),
            )
            .await;
        assert_eq!(st, 201);
        let t = Instant::now();
        loop {
            let (st, v) = c
                .call("GET", &format!("{read}/v1/search?q={word}"), None)
                .await;
            assert_eq!(st, 200, "{v}");
            if v["items"].as_array().is_some_and(|i| !i.is_empty()) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "{word} written on {write} not found on {read}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "{word}: searchable on the other server after {:?}",
            t.elapsed()
        );
    }

    // A watcher on B sees what is written through A (live events poll the shared database).
    let mut stream = c
        .http
        .get(format!("{ub}/v1/sessions/{id}/events/stream"))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let (st, _) = c
        .call(
            "POST",
            &format!("{ua}/v1/sessions/{id}/branches/main/messages"),
            Some(json!({"role": "user", "content": "seen from the other server"})),
        )
        .await;
    assert_eq!(st, 201);
    let t = Instant::now();
    let mut seen = String::new();
    while !seen.contains("seen from the other server") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
            .await
            .expect("no live event from the other server within 5 s")
            .unwrap()
            .expect("the stream ended");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    eprintln!("live event on the other server after {:?}", t.elapsed());
    drop(stream);

    // One server killed: the other keeps serving reads and writes.
    drop(a);
    let (st, v) = c
        .call(
            "POST",
            &format!("{ub}/v1/sessions/{id}/branches/main/messages"),
            Some(json!({"role": "user", "content": "after the crash"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = c
        .call("GET", &format!("{ub}/v1/sessions/{id}/audit/verify"), None)
        .await;
    assert_eq!((st, v["valid"].as_bool()), (200, Some(true)), "{v}");
    eprintln!("320 appends through two servers in {elapsed:?}");
    drop(b);
    psql(&server, &format!("DROP DATABASE {name} WITH (FORCE)"));
}

/// The lease of a dead server: two servers run the lifecycle jobs every second with 2-second
/// leases; the one holding a research session's checkpoint lease is SIGKILLed, and the other
/// takes the job over within a lease period and goes on checkpointing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn a_job_held_by_a_killed_server_runs_on_the_other_within_a_lease() {
    let server = pg_server_url("postgres_servers");
    let name = format!("kiln_leases_{}", std::process::id());
    let db = pg_database(&server, &name);
    let env = [
        ("KILN_JOBS__TICK", "* * * * * *"),
        ("KILN_JOBS__LEASE_SECONDS", "2"),
    ];
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = support::start_env(dirs.0.path(), &["--database-url", &db], &env);
    let b = support::start_env(dirs.1.path(), &["--database-url", &db], &env);
    let c = Client {
        http: reqwest::Client::new(),
        token: a.token.clone().unwrap(),
    };
    let (st, s) = c
        .call(
            "POST",
            &format!("http://{}/v1/sessions", a.addr),
            Some(json!({
                "name": "Nightly furnace run",
                "session_type": "research",
                "duration_days": 30,
                "checkpoint_frequency": "* * * * * *"
            })),
        )
        .await;
    assert_eq!(st, 201, "{s}");
    let holder_pid = |h: &str| -> u32 {
        h.strip_prefix("kiln-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("holder {h:?} names no process"))
    };
    let (first, _) = wait_for_holder(&db, |_| true, "no server took the checkpoint lease").await;
    let (dead, alive) = if holder_pid(&first) == a.pid() {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(holder_pid(&first), dead.pid());
    let survivor = alive.pid();
    let checkpoints = |addr: &str| {
        let (c, addr, id) = (&c, addr.to_string(), s["id"].as_str().unwrap().to_string());
        async move {
            let (st, v) = c
                .call(
                    "GET",
                    &format!("http://{addr}/v1/sessions/{id}/checkpoints"),
                    None,
                )
                .await;
            assert_eq!(st, 200, "{v}");
            v["items"].as_array().map_or(0, Vec::len)
        }
    };
    drop(dead); // SIGKILL
    let before = checkpoints(&alive.addr).await;
    let (_, took) = wait_for_holder(
        &db,
        |h| holder_pid(h) == survivor,
        "the surviving server never took the job over",
    )
    .await;
    eprintln!("the job moved to the surviving server {took:?} after the kill (lease 2 s)");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // And it goes on doing the job.
    let t = Instant::now();
    while checkpoints(&alive.addr).await <= before {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no checkpoint after the takeover"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(alive);
    psql(&server, &format!("DROP DATABASE {name} WITH (FORCE)"));
}

/// Polls the checkpoint job's lease holder until `want` accepts it (10 s at most).
async fn wait_for_holder(db: &str, want: impl Fn(&str) -> bool, what: &str) -> (String, Duration) {
    let t = Instant::now();
    loop {
        let h = psql(db, "SELECT holder FROM job_leases WHERE job = 'checkpoint'");
        if !h.is_empty() && want(&h) {
            return (h, t.elapsed());
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{what}: holder {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn an_export_signed_by_one_server_imports_verified_on_the_other() {
    let server = pg_server_url("postgres_servers");
    let name = format!("kiln_keys_{}", std::process::id());
    let db = pg_database(&server, &name);
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = support::start_with(dirs.0.path(), &["--database-url", &db]);
    let b = support::start_with(dirs.1.path(), &["--database-url", &db]);
    let c = Client {
        http: reqwest::Client::new(),
        token: a.token.clone().unwrap(),
    };
    let (ua, ub) = (format!("http://{}", a.addr), format!("http://{}", b.addr));

    // Each server signs with a key of its own, and each lists the other's.
    let (_, ka) = c.call("GET", &format!("{ua}/v1/instance/key"), None).await;
    let (_, kb) = c.call("GET", &format!("{ub}/v1/instance/key"), None).await;
    assert_ne!(ka["public_key"], kb["public_key"], "{ka} {kb}");
    assert_eq!(ka["server_keys"], json!([kb["public_key"]]), "{ka}");
    assert_eq!(kb["server_keys"], json!([ka["public_key"]]), "{kb}");
    assert_eq!(
        psql(&db, "SELECT count(*) FROM server_keys"),
        "2",
        "public keys only, one row a server"
    );

    let (st, s) = c
        .call(
            "POST",
            &format!("{ua}/v1/sessions"),
            Some(json!({"name": "Signed on A"})),
        )
        .await;
    assert_eq!(st, 201, "{s}");
    let id = s["id"].as_str().unwrap();
    let (st, doc) = c
        .call("GET", &format!("{ua}/v1/sessions/{id}/export"), None)
        .await;
    assert_eq!(st, 200, "{doc}");
    assert_eq!(doc["signature"]["key"], ka["public_key"], "signed by A");

    // B checks A's signature against the keys of the servers sharing its store.
    let (st, imported) = c
        .call(
            "POST",
            &format!("{ub}/v1/sessions/import"),
            Some(doc.clone()),
        )
        .await;
    assert_eq!(st, 201, "{imported}");
    assert_eq!(imported["provenance"], "verified", "{imported}");

    // A server on another store does not know A's key: the same document is unverified there.
    let lone = tempfile::tempdir().unwrap();
    let other = support::start(lone.path());
    let stranger = Client {
        http: reqwest::Client::new(),
        token: other.token.clone().unwrap(),
    };
    let (st, v) = stranger
        .call(
            "POST",
            &format!("http://{}/v1/sessions/import", other.addr),
            Some(doc),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["provenance"], "unverified", "{v}");

    drop((a, b, other));
    psql(&server, &format!("DROP DATABASE {name} WITH (FORCE)"));
}
