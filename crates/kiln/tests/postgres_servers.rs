//! Two `kiln serve` processes on one PostgreSQL database, as an institute runs them: 32
//! writers through each onto one shared branch lose nothing and leave one linear history with
//! a valid audit chain, and search on both servers finds every message; a stale head is 409
//! `head_moved` whichever server holds the newer one; a write on one server is found by search
//! on the other within seconds and reaches a live watcher there, and so does a turn in progress
//! (its streamed tokens, in order, each once, before the stored answer); one server killed
//! (SIGKILL) mid-load leaves the other serving its writers without an error and loses no
//! acknowledged write; a job the killed server held runs on the other within a lease period;
//! an export signed by one server imports verified on the other (and unverified on a server
//! elsewhere). Needs a server:
//! `scripts/pg run cargo test -p kiln --test postgres_servers -- --include-ignored`
//! (scripts/test does it).

mod support;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Client, pg_database, pg_server_url, psql};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn two_servers_on_one_database_share_branches_audit_and_search() {
    let server = pg_server_url("postgres_servers");
    let name = format!("kiln_servers_{}", std::process::id());
    let db = pg_database(&server, &name);

    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // No per-user budget of expensive calls: the test searches for every message.
    let unlimited = [("KILN_LIMITS__EXPENSIVE_PER_MINUTE", "0")];
    let mut a = support::start_env(dirs.0.path(), &["--database-url", &db], &unlimited);
    let b = support::start_env(dirs.1.path(), &["--database-url", &db], &unlimited);
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

    // 32 writers through each server, 5 messages each, onto main; each message holds a word
    // of its own, for search.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..64 {
        let base = if w % 2 == 0 { ua.clone() } else { ub.clone() };
        let (c, id) = (c.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                let text = note(w, i);
                let (st, v) = c
                    .call(
                        "POST",
                        &format!("{base}/v1/sessions/{id}/branches/main/messages"),
                        Some(json!({"role": "user", "content": text})),
                    )
                    .await;
                assert_eq!(st, 201, "{text}: {v}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let written: BTreeSet<String> = (0..64)
        .flat_map(|w| (0..5).map(move |i| note(w, i)))
        .collect();

    // Both servers read the same linear history with every message once, a valid audit
    // chain, and find every message by search.
    for base in [&ua, &ub] {
        let stored = main_notes(&c, base, &id).await;
        assert_eq!(stored, written, "{base}: the notes on main");
        all_searchable(&c, base, &written).await;
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

    // Mid-load, one server is killed (SIGKILL). 16 writers through each keep appending: those
    // on the survivor see no error, those on the dead one stop at their first failure. Every
    // acknowledged message is kept, once; nothing is stored that was not sent; main stays one
    // chain with a valid audit; search on the survivor finds every acknowledged message.
    let before = main_notes(&c, &ub, &id).await;
    let acked = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 100..132 {
        let on_a = w % 2 == 0;
        let base = if on_a { ua.clone() } else { ub.clone() };
        let (c, id, acked) = (c.clone(), id.clone(), Arc::clone(&acked));
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            for i in 0..10 {
                let text = note(w, i);
                let answer = c
                    .try_call(
                        "POST",
                        &format!("{base}/v1/sessions/{id}/branches/main/messages"),
                        Some(json!({"role": "user", "content": text})),
                    )
                    .await;
                match answer {
                    Ok((201, _)) => {
                        done.push((text, Instant::now()));
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    // The killed server's writers stop at their first failure.
                    _ if on_a => break,
                    other => panic!("{text} through the surviving server: {other:?}"),
                }
            }
            done
        }));
    }
    while acked.load(Ordering::SeqCst) < 60 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a.kill();
    let killed = Instant::now();
    let mut acknowledged = BTreeSet::new();
    let mut after_kill = 0;
    for t in tasks {
        for (text, at) in t.await.unwrap() {
            if at > killed {
                after_kill += 1;
            }
            acknowledged.insert(text);
        }
    }
    assert!(
        after_kill > 0,
        "no write was acknowledged after the kill: the load ended before it"
    );
    let sent: BTreeSet<String> = (100..132)
        .flat_map(|w| (0..10).map(move |i| note(w, i)))
        .collect();
    let stored: BTreeSet<String> = main_notes(&c, &ub, &id)
        .await
        .difference(&before)
        .cloned()
        .collect();
    assert!(
        stored.is_superset(&acknowledged),
        "acknowledged writes lost: {:?}",
        acknowledged.difference(&stored).collect::<Vec<_>>()
    );
    assert!(stored.is_subset(&sent), "a note nobody sent is stored");
    all_searchable(&c, &ub, &acknowledged).await;
    eprintln!(
        "kill mid-load: {} writes acknowledged ({after_kill} after the kill), {} stored",
        acknowledged.len(),
        stored.len()
    );
    eprintln!("320 appends through two servers in {elapsed:?}");
    drop(b);
    psql(&server, &format!("DROP DATABASE {name} WITH (FORCE)"));
}

/// Writer `w`'s message `i`, with a word no other message holds: "kilnote" and the digits of
/// `w` and `i` as letters (letters only, so no tokenizer splits it or reads a formula in it).
fn note(w: usize, i: usize) -> String {
    let letters = |n: usize| -> String {
        n.to_string()
            .bytes()
            .map(|d| char::from(b'a' + (d - b'0')))
            .collect()
    };
    format!("writer {w} note {i}: kilnote{}x{}", letters(w), letters(i))
}

/// The word of a [`note`] search finds it by.
fn word(note: &str) -> &str {
    note.rsplit(' ').next().unwrap_or(note)
}

/// Reads main through `base` and returns its writer notes, after checking that none is stored
/// twice, that main is one chain (no two messages share a parent, each but the oldest has its
/// parent among them) and that the session's audit chain verifies.
async fn main_notes(c: &Client, base: &str, id: &str) -> BTreeSet<String> {
    let (st, v) = c
        .call(
            "GET",
            &format!("{base}/v1/sessions/{id}/branches/main/messages?limit=1000"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let items = v["items"].as_array().unwrap();
    assert!(items.len() < 1000, "main outgrew one page");
    let notes: Vec<String> = items
        .iter()
        .filter_map(|n| n["content"].as_str())
        .filter(|t| t.starts_with("writer "))
        .map(str::to_string)
        .collect();
    let set: BTreeSet<String> = notes.iter().cloned().collect();
    assert_eq!(set.len(), notes.len(), "{base}: a note was stored twice");
    let ids: HashSet<&str> = items.iter().filter_map(|n| n["id"].as_str()).collect();
    let parents: Vec<&str> = items
        .iter()
        .filter_map(|n| n["parent_id"].as_str())
        .collect();
    let distinct: HashSet<&str> = parents.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        parents.len(),
        "{base}: two messages share a parent: main forked"
    );
    let inside = parents.iter().filter(|p| ids.contains(*p)).count();
    assert_eq!(
        inside,
        items.len() - 1,
        "{base}: the history on main is not one chain"
    );
    let (st, v) = c
        .call(
            "GET",
            &format!("{base}/v1/sessions/{id}/audit/verify"),
            None,
        )
        .await;
    assert_eq!((st, v["valid"].as_bool()), (200, Some(true)), "{base}: {v}");
    set
}

/// Waits until search on `base` finds each note by its word (10 s for all of them).
async fn all_searchable(c: &Client, base: &str, notes: &BTreeSet<String>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for n in notes {
        let w = word(n);
        loop {
            let (st, v) = c
                .call("GET", &format!("{base}/v1/search?q={w}"), None)
                .await;
            assert_eq!(st, 200, "{v}");
            if v["items"].as_array().is_some_and(|i| !i.is_empty()) {
                break;
            }
            assert!(Instant::now() < deadline, "{n:?} is not found on {base}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
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
    let c = Client::new(a.token.clone().unwrap());
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

/// Words the loopback model streams per answer, and the pause between two.
const WORDS: usize = 40;
const GAP: Duration = Duration::from_millis(15);

/// An OpenAI-compatible model on loopback that streams its answer a word every [`GAP`], as a
/// model does; a call that does not stream (discovery detection) gets an empty list.
async fn slow_model() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Headers, then as many body bytes as Content-Length says.
                let mut request = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let Ok(n) = s.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if support::request_complete(&request) {
                        break;
                    }
                }
                if !String::from_utf8_lossy(&request).contains("\"stream\":true") {
                    let body = r#"{"id":"c","object":"chat.completion","created":1,"model":"slow-model","choices":[{"index":0,"message":{"role":"assistant","content":"{\"discoveries\": []}"},"finish_reason":"stop"}]}"#;
                    let _ = s
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .await;
                    return;
                }
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                            Connection: close\r\n\r\n";
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for i in 0..=WORDS {
                    let (delta, finish) = if i < WORDS {
                        (json!({"content": format!("w{i} ")}), Value::Null)
                    } else {
                        (json!({}), json!("stop"))
                    };
                    let chunk = json!({"id": "c", "object": "chat.completion.chunk",
                        "created": 1, "model": "slow-model",
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
                    if s.write_all(format!("data: {chunk}\n\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                    tokio::time::sleep(GAP).await;
                }
                let _ = s.write_all(b"data: [DONE]\n\n").await;
            });
        }
    });
    format!("http://{addr}/v1")
}

/// One live event as a watcher received it.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    kind: String,
    data: Value,
}

/// Opens a live-event stream on `base` and collects its events in the background.
async fn open_watcher(
    c: &Client,
    base: &str,
    id: &str,
) -> std::sync::Arc<std::sync::Mutex<Vec<Seen>>> {
    let mut res = c
        .http
        .get(format!(
            "{base}/v1/sessions/{id}/events/stream?max_seconds=60"
        ))
        .bearer_auth(&c.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = seen.clone();
    tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::new();
        while let Ok(Some(chunk)) = res.chunk().await {
            let at = Instant::now();
            buf.extend_from_slice(&chunk);
            while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = buf.drain(..end + 2).collect();
                let block = String::from_utf8_lossy(&block);
                let kind = block.lines().find_map(|l| l.strip_prefix("event: "));
                let data = block.lines().find_map(|l| l.strip_prefix("data: "));
                if let (Some(kind), Some(data)) = (kind, data) {
                    out.lock().unwrap().push(Seen {
                        at,
                        kind: kind.to_owned(),
                        data: serde_json::from_str(data).unwrap_or(Value::Null),
                    });
                }
            }
        }
    });
    seen
}

/// Where in `seen` the `nodes` event carrying node `id` is.
fn node_event(seen: &[Seen], id: &str) -> Option<usize> {
    seen.iter().position(|s| {
        s.kind == "nodes"
            && s.data["nodes"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n["id"] == id))
    })
}

/// Runs `sql` with psql, `None` when it fails (pg_stat_statements may be missing).
fn psql_soft(url: &str, sql: &str) -> Option<String> {
    let out = std::process::Command::new("psql")
        .args([url, "-XAtq", "-c", sql])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A turn in progress reaches watchers on the other server: a turn on A whose model streams
/// 40 words over 0.6 s, and a turn of the offline planner (a tool call and its result) on B.
/// Each server's watcher sees the same turn events, in the same order, each once, and the
/// streamed tokens before the stored answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn a_turn_on_one_server_streams_to_watchers_on_the_other() {
    let server = pg_server_url("postgres_servers");
    let name = format!("kiln_turns_{}", std::process::id());
    let db = pg_database(&server, &name);
    let counting = psql_soft(&db, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements").is_some();
    let model = slow_model().await;

    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = support::start_with(
        dirs.0.path(),
        &[
            "--database-url",
            &db,
            "--llm-base-url",
            &model,
            "--llm-model",
            "slow-model",
        ],
    );
    let b = support::start_with(dirs.1.path(), &["--database-url", &db]);
    let c = Client::new(a.token.clone().unwrap());
    let (ua, ub) = (format!("http://{}", a.addr), format!("http://{}", b.addr));
    let (st, s) = c
        .call(
            "POST",
            &format!("{ua}/v1/sessions"),
            Some(json!({"name": "Watched from afar"})),
        )
        .await;
    assert_eq!(st, 201, "{s}");
    let id = s["id"].as_str().unwrap().to_string();

    for (runs, other, message) in [
        (&ua, &ub, "Tell me something"),
        (&ub, &ua, "Analyse LiFePO4"),
    ] {
        let here = open_watcher(&c, runs, &id).await;
        let there = open_watcher(&c, other, &id).await;
        if counting {
            psql_soft(&db, "SELECT pg_stat_statements_reset()");
        }
        let (st, turn) = c
            .call(
                "POST",
                &format!("{runs}/v1/sessions/{id}/query"),
                Some(json!({"message": message})),
            )
            .await;
        assert_eq!(st, 200, "{turn}");
        let answer = turn["answer_node"].as_str().unwrap().to_string();
        // Both watchers: the turn's `done` and the stored answer.
        let t = Instant::now();
        let complete = |seen: &[Seen]| {
            node_event(seen, &answer).is_some()
                && seen
                    .iter()
                    .any(|s| s.kind == "turn" && s.data["event"] == "done")
        };
        while !(complete(&here.lock().unwrap()) && complete(&there.lock().unwrap())) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{message}: no complete turn on both servers within 10 s:\nhere {:?}\nthere {:?}",
                here.lock().unwrap(),
                there.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (here, there) = (here.lock().unwrap().clone(), there.lock().unwrap().clone());
        let turns = |seen: &[Seen]| -> Vec<(usize, Seen)> {
            seen.iter()
                .cloned()
                .enumerate()
                .filter(|(_, s)| s.kind == "turn")
                .collect()
        };
        let (local, remote) = (turns(&here), turns(&there));
        let data = |t: &[(usize, Seen)]| t.iter().map(|(_, s)| s.data.clone()).collect::<Vec<_>>();
        // The same events, in the same order, each once (a duplicate or a gap would differ).
        assert_eq!(data(&remote), data(&local), "{message}");
        let kinds: Vec<&str> = local
            .iter()
            .filter_map(|(_, s)| s.data["event"].as_str())
            .collect();
        assert_eq!(kinds.first(), Some(&"started"), "{kinds:?}");
        assert_eq!(kinds.last(), Some(&"done"), "{kinds:?}");
        assert!(!kinds.contains(&"lagged"), "{kinds:?}");
        let text: String = local
            .iter()
            .filter(|(_, s)| s.data["event"] == "token")
            .filter_map(|(_, s)| s.data["text"].as_str())
            .collect();
        assert_eq!(text.trim(), turn["answer"].as_str().unwrap().trim());
        if message == "Analyse LiFePO4" {
            assert!(kinds.contains(&"tool_call") && kinds.contains(&"tool_result"));
        } else {
            assert_eq!(kinds.iter().filter(|k| **k == "token").count(), WORDS);
        }
        // Every token before the stored answer, on both servers.
        for (seen, turns) in [(&here, &local), (&there, &remote)] {
            let stored = node_event(seen, &answer).unwrap();
            let last_token = turns
                .iter()
                .filter(|(_, s)| s.data["event"] == "token")
                .map(|(i, _)| *i)
                .max()
                .unwrap();
            assert!(last_token < stored, "{message}: a token after the answer");
        }
        // How much later the other server's watcher hears each event.
        let mut delays: Vec<Duration> = local
            .iter()
            .zip(&remote)
            .map(|((_, l), (_, r))| r.at.saturating_duration_since(l.at))
            .collect();
        delays.sort();
        let notifies = counting
            .then(|| {
                psql_soft(
                    &db,
                    "SELECT COALESCE(sum(calls), 0) FROM pg_stat_statements \
                     WHERE query LIKE '%pg_notify%'",
                )
            })
            .flatten()
            .unwrap_or_else(|| "?".into());
        eprintln!(
            "{message}: {} turn events ({} tokens) in {notifies} notifications; the other \
             server's watcher heard each {:?} later at the median, {:?} at most",
            delays.len(),
            kinds.iter().filter(|k| **k == "token").count(),
            delays[delays.len() / 2],
            delays[delays.len() - 1],
        );
    }
    drop((a, b));
    psql(&server, &format!("DROP DATABASE {name} WITH (FORCE)"));
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
    let c = Client::new(a.token.clone().unwrap());
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
    let stranger = Client::new(other.token.clone().unwrap());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn a_users_budget_of_expensive_calls_is_shared_by_the_servers() {
    let server = pg_server_url("postgres_servers");
    let name = format!("kiln_rates_{}", std::process::id());
    let db = pg_database(&server, &name);
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // A burst of 3 searches, then one a minute.
    let env = [
        ("KILN_LIMITS__EXPENSIVE_PER_MINUTE", "1"),
        ("KILN_LIMITS__EXPENSIVE_BURST", "3"),
    ];
    let a = support::start_env(dirs.0.path(), &["--database-url", &db], &env);
    let b = support::start_env(dirs.1.path(), &["--database-url", &db], &env);
    let c = Client::new(a.token.clone().unwrap());
    let (ua, ub) = (format!("http://{}", a.addr), format!("http://{}", b.addr));
    for base in [&ua, &ub, &ua] {
        let (st, v) = c
            .call("GET", &format!("{base}/v1/search?q=perovskite"), None)
            .await;
        assert_eq!(st, 200, "{v}");
    }
    // The fourth, on either server, finds the budget spent by both.
    for base in [&ub, &ua] {
        let (st, v) = c
            .call("GET", &format!("{base}/v1/search?q=perovskite"), None)
            .await;
        assert_eq!(st, 429, "{base}: {v}");
        assert_eq!(v["error"]["code"], "rate_limited", "{v}");
        assert_eq!(v["error"]["recoverable"], true, "{v}");
        let wait = v["error"]["details"]["retry_after_secs"].as_u64().unwrap();
        assert!((1..=61).contains(&wait), "{v}");
    }
    assert_eq!(
        psql(&db, "SELECT count(*) FROM rate_buckets"),
        "1",
        "one bucket for the one user"
    );

    drop((a, b));
    psql(&server, &format!("DROP DATABASE {name} WITH (FORCE)"));
}
