//! The notebook resource over HTTP on a real server: parameters, logs, metric tracks (with
//! fork, merge and restore) and files, each route's success and failures.

mod support;

use std::sync::Arc;

use kiln_llm::OfflinePlanner;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Server, start, start_with_config};

struct S {
    srv: Server,
    base: String,
    id: String,
}

impl S {
    async fn new(srv: Server) -> S {
        let (_, s) = srv
            .request(
                Method::POST,
                "/v1/sessions",
                Some(&srv.alice),
                Some(json!({"name": "nb"})),
            )
            .await;
        let id = s["id"].as_str().unwrap().to_owned();
        S {
            base: format!("/v1/sessions/{id}/branches/main/notebook"),
            srv,
            id,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.srv
            .request(method, path, Some(&self.srv.alice), body)
            .await
    }

    async fn get(&self, path: &str) -> Value {
        let (s, v) = self.call(Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
        v
    }

    async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (s, v) = self.call(method.clone(), path, Some(body)).await;
        assert!(s.is_success(), "{method} {path}: {s} {v}");
        v
    }

    async fn head(&self, branch: &str) -> String {
        let v = self
            .get(&format!("/v1/sessions/{}/branches", self.id))
            .await;
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == branch)
            .unwrap()["head"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn parameters_set_nested_read_flat_and_keep_their_history() {
    let s = S::new(start(1 << 20).await).await;
    let p = format!("{}/params", s.base);
    s.ok(
        Method::PATCH,
        &p,
        json!({"model": {"lr": 0.1, "layers": 4}, "seed": 7}),
    )
    .await;
    s.ok(Method::PATCH, &p, json!({"model.lr": 0.01})).await;
    let nested = s.get(&p).await;
    assert_eq!(
        nested["params"],
        json!({"model": {"lr": 0.01, "layers": 4}, "seed": 7})
    );
    let flat = s.get(&format!("{p}?flatten=true")).await;
    assert_eq!(
        flat["params"],
        json!({"model.layers": 4, "model.lr": 0.01, "seed": 7})
    );
    let history = s.get(&format!("{p}/history")).await;
    let changes = history["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 4);
    let last = &changes[3];
    assert_eq!(
        (&last["key"], &last["old"], &last["new"]),
        (&json!("model.lr"), &json!(0.1), &json!(0.01))
    );
    assert!(last["by"].is_string() && last["at"].is_string());

    // Reads write nothing.
    let before = s.head("main").await;
    s.get(&p).await;
    s.get(&format!("{p}/history")).await;
    s.get(&s.base).await;
    assert_eq!(s.head("main").await, before);

    for body in [json!({}), json!({"a..b": 1}), json!([1])] {
        let (st, v) = s.call(Method::PATCH, &p, Some(body.clone())).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {v}");
    }
    // An unknown session is 404, a stranger too.
    let (st, _) = s
        .call(
            Method::GET,
            "/v1/sessions/nope/branches/main/notebook/params",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s.srv.request(Method::GET, &p, Some(&s.srv.bob), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn logs_take_levels_and_metadata_and_filter_by_level_time_and_metadata() {
    let s = S::new(start(1 << 20).await).await;
    let l = format!("{}/logs", s.base);
    for (level, run) in [
        ("debug", 1),
        ("info", 1),
        ("warn", 2),
        ("error", 2),
        ("fatal", 3),
    ] {
        s.ok(
            Method::POST,
            &l,
            json!({"message": format!("{level} line"), "level": level, "metadata": {"run": run, "host": "h1"}}),
        )
        .await;
    }
    let all = s.get(&l).await;
    assert_eq!(all["total"], 5);
    assert_eq!(all["lines"][4]["metadata"]["run"], 3);
    let warn = s.get(&format!("{l}?level=warn")).await;
    let levels: Vec<&str> = warn["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["warn", "error", "fatal"]);
    let run2 = s.get(&format!("{l}?meta=run=2")).await;
    assert_eq!(run2["total"], 2);
    let host = s.get(&format!("{l}?meta=host=h1&level=error")).await;
    assert_eq!(host["total"], 2);
    let page = s.get(&format!("{l}?limit=2&offset=1")).await;
    assert_eq!(page["lines"][0]["level"], "info");
    assert_eq!(page["next_offset"], 3);
    let t = all["lines"][2]["at"].as_str().unwrap();
    let since = s.get(&format!("{l}?since={}", urlencode(t))).await;
    assert_eq!(since["total"], 3);
    let until = s.get(&format!("{l}?until={}", urlencode(t))).await;
    assert_eq!(until["total"], 2);
    let future = s.get(&format!("{l}?since=2999-01-01T00:00:00Z")).await;
    assert_eq!(future["total"], 0);

    // Failures: a bad level on write and on read, a bad time, metadata not an object.
    for body in [
        json!({"message": "x", "level": "loud"}),
        json!({"message": "x", "metadata": [1]}),
        json!({"level": "info"}),
    ] {
        let (st, v) = s.call(Method::POST, &l, Some(body.clone())).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {v}");
    }
    for q in ["level=loud", "since=yesterday", "meta=novalue"] {
        let (st, v) = s.call(Method::GET, &format!("{l}?{q}"), None).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {v}");
    }
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn tracks_append_batches_read_ranges_and_stats_and_follow_fork_merge_and_restore() {
    let s = S::new(start(4 << 20).await).await;
    let t = format!("{}/tracks/loss", s.base);
    let batch: Vec<Value> = (0..2500)
        .map(|i| json!({"step": i, "epoch": i / 1000, "value": 1.0 / f64::from(i + 1)}))
        .collect();
    let rec = s.ok(Method::POST, &t, json!({"points": batch})).await;
    assert_eq!(rec["result"]["count"], 2500);
    s.ok(
        Method::POST,
        &t,
        json!({"point": {"step": 2500, "value": 0.0001, "lr": 0.1}}),
    )
    .await;

    let page = s.get(&format!("{t}?offset=999&limit=3")).await;
    assert_eq!(page["total"], 2501);
    let steps: Vec<f64> = page["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["step"].as_f64().unwrap())
        .collect();
    assert_eq!(steps, [999.0, 1000.0, 1001.0], "across a chunk boundary");
    assert_eq!(page["points"][0]["index"], 999);
    assert_eq!(page["next_offset"], 1002);
    let by_step = s.get(&format!("{t}?step_min=2498&step_max=3000")).await;
    let pts = by_step["points"].as_array().unwrap();
    assert_eq!(pts.len(), 3);
    assert_eq!(pts[2]["lr"], 0.1);
    assert_eq!(by_step["next_offset"], Value::Null);
    let stats = s.get(&format!("{t}/stats")).await;
    assert_eq!(stats["points"], 2501);
    assert_eq!(stats["fields"]["step"]["count"], 2501);
    assert_eq!(stats["fields"]["step"]["max"], 2500.0);
    assert_eq!(stats["fields"]["step"]["mean"], 1250.0);
    assert_eq!(stats["fields"]["value"]["last"], 0.0001);
    assert_eq!(stats["fields"]["value"]["max"], 1.0);
    assert_eq!(stats["fields"]["lr"]["count"], 1);
    let list = s.get(&format!("{}/tracks", s.base)).await;
    assert_eq!(
        list["items"],
        json!([{"name": "loss", "points": 2501, "batches": 2}])
    );

    // Failures: a non-numeric field, no points, an unknown track, a bad step range.
    for body in [
        json!({"points": [{"step": 1, "value": "high"}]}),
        json!({"points": []}),
        json!({"point": {"step": 1}, "points": [{"step": 2}]}),
    ] {
        let (st, v) = s.call(Method::POST, &t, Some(body.clone())).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {v}");
    }
    let (st, v) = s
        .call(
            Method::POST,
            &t,
            Some(json!({"points": [{"step": 1, "value": "high"}]})),
        )
        .await;
    assert!(v.to_string().contains("value"), "{st} {v}");
    for path in [
        format!("{}/tracks/nope", s.base),
        format!("{}/tracks/nope/stats", s.base),
    ] {
        let (st, v) = s.call(Method::GET, &path, None).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::NOT_FOUND, "no_such_track"),
            "{path}: {v}"
        );
    }
    let (st, _) = s
        .call(Method::GET, &format!("{t}?step_min=5&step_max=1"), None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // A checkpoint at 2,501 points, then a fork: each branch appends its own batch.
    let sess = format!("/v1/sessions/{}", s.id);
    s.ok(
        Method::POST,
        &format!("{sess}/checkpoints"),
        json!({"name": "cp"}),
    )
    .await;
    let (st, v) = s
        .call(
            Method::POST,
            &format!("{sess}/branches"),
            Some(json!({"name": "side"})),
        )
        .await;
    assert!(st.is_success(), "{v}");
    s.ok(
        Method::POST,
        &t,
        json!({"points": [{"step": 3000, "value": 1.0}]}),
    )
    .await;
    let side = format!("{sess}/branches/side/notebook/tracks/loss");
    s.ok(
        Method::POST,
        &side,
        json!({"points": [{"step": 4000, "value": 2.0}, {"step": 4001, "value": 3.0}]}),
    )
    .await;
    assert_eq!(s.get(&side).await["total"], 2503, "side sees its own batch");
    assert_eq!(s.get(&t).await["total"], 2502, "main does not see side's");

    let (st, v) = s
        .call(
            Method::POST,
            &format!("{sess}/branches/side/merge"),
            Some(json!({"into": "main"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let merged = s.get(&format!("{t}/stats")).await;
    assert_eq!(
        merged["points"], 2504,
        "the union: 2,501 + main's 1 + side's 2"
    );
    assert_eq!(merged["fields"]["step"]["max"], 4001.0);

    // Restoring the checkpoint reads the old points.
    let (st, v) = s
        .call(
            Method::POST,
            &format!("{sess}/checkpoints/cp/restore"),
            Some(json!({"branch": "main"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let restored = s.get(&format!("{t}/stats")).await;
    assert_eq!(restored["points"], 2501);
    assert_eq!(restored["fields"]["step"]["max"], 2500.0);
}

#[tokio::test]
async fn files_upload_streamed_list_download_delete_and_refuse_past_the_limit() {
    let mut config = kiln_session::Config::default();
    config.limits.max_file_mb = 1;
    config.limits.expensive_per_minute = 0;
    let srv = start_with_config(config, Arc::new(OfflinePlanner::new())).await;
    let s = S::new(srv).await;
    let f = format!("{}/files", s.base);
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let resp = s
        .srv
        .http
        .post(format!("{}{f}?name=spectrum.bin", s.srv.base))
        .bearer_auth(&s.srv.alice)
        .header("content-type", "application/x-spectrum")
        .body(content.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let rec: Value = resp.json().await.unwrap();
    let file = &rec["result"]["file"];
    let id = file["id"].as_str().unwrap().to_owned();
    assert_eq!(file["bytes"], 300_000);
    assert_eq!(file["content_type"], "application/x-spectrum");
    let sha = file["sha256"].as_str().unwrap().to_owned();
    assert!(
        s.srv
            .data_dir()
            .join("files")
            .join(&sha[..2])
            .join(&sha)
            .is_file(),
        "stored content-addressed"
    );

    let list = s.get(&f).await;
    assert_eq!(list["items"][0]["id"], id.as_str());
    let resp = s
        .srv
        .http
        .get(format!("{}{f}/{id}", s.srv.base))
        .bearer_auth(&s.srv.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/x-spectrum");
    assert_eq!(resp.headers()["content-length"], "300000");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), content.as_slice());

    // Over the limit: 413, nothing recorded.
    let big = vec![7u8; 1024 * 1024 + 1];
    let resp = s
        .srv
        .http
        .post(format!("{}{f}?name=big.bin", s.srv.base))
        .bearer_auth(&s.srv.alice)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Streamed without a length (chunked) past the limit: 413 too.
    let chunks =
        futures::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(vec![1u8; 64 * 1024])));
    let resp = s
        .srv
        .http
        .post(format!("{}{f}?name=chunked.bin", s.srv.base))
        .bearer_auth(&s.srv.alice)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(s.get(&f).await["items"].as_array().unwrap().len(), 1);

    // Delete: gone from the list and the download, the content kept, the node records it.
    let rec = s
        .ok(Method::DELETE, &format!("{f}/{id}"), json!(null))
        .await;
    assert!(rec["result"]["file"]["deleted_at"].is_string());
    assert_eq!(s.get(&f).await["items"], json!([]));
    let (st, v) = s.call(Method::GET, &format!("{f}/{id}"), None).await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "no_such_file"));
    let (st, _) = s.call(Method::DELETE, &format!("{f}/{id}"), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(
        s.srv
            .data_dir()
            .join("files")
            .join(&sha[..2])
            .join(&sha)
            .is_file()
    );
    // A missing name is 400.
    let (st, _) = s.call(Method::POST, &f, None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn readers_read_writers_write_and_a_protected_session_refuses_notebook_writes() {
    let s = S::new(start(1 << 20).await).await;
    let sess = format!("/v1/sessions/{}", s.id);
    s.ok(
        Method::POST,
        &format!("{sess}/collaborators"),
        json!({"user": "reader", "permissions": ["read"]}),
    )
    .await
    .to_string();
    let reader = s.srv.users["reader"].clone();
    s.ok(
        Method::POST,
        &format!("{}/logs", s.base),
        json!({"message": "hello"}),
    )
    .await;
    s.ok(
        Method::POST,
        &format!("{}/tracks/x", s.base),
        json!({"point": {"step": 0, "value": 1}}),
    )
    .await;
    let writes = [
        (
            Method::POST,
            format!("{}/logs", s.base),
            json!({"message": "m"}),
        ),
        (Method::PATCH, format!("{}/params", s.base), json!({"a": 1})),
        (
            Method::POST,
            format!("{}/tracks/x", s.base),
            json!({"point": {"value": 1}}),
        ),
    ];
    for (m, path, body) in &writes {
        let (st, v) = s
            .srv
            .request(m.clone(), path, Some(&reader), Some(body.clone()))
            .await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{path}"
        );
    }
    let resp = s
        .srv
        .http
        .post(format!("{}{}/files?name=a.txt", s.srv.base, s.base))
        .bearer_auth(&reader)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    for path in [
        format!("{}/logs", s.base),
        format!("{}/tracks/x", s.base),
        format!("{}/tracks/x/stats", s.base),
        format!("{}/params", s.base),
    ] {
        let (st, v) = s.srv.request(Method::GET, &path, Some(&reader), None).await;
        assert_eq!(st, StatusCode::OK, "{path}: {v}");
    }

    let (st, _) = s.call(Method::POST, &format!("{sess}/protect"), None).await;
    assert_eq!(st, StatusCode::OK);
    for (m, path, body) in &writes {
        let (st, v) = s.call(m.clone(), path, Some(body.clone())).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::CONFLICT, "session_protected"),
            "{path}: {v}"
        );
    }
    let resp = s
        .srv
        .http
        .post(format!("{}{}/files?name=a.txt", s.srv.base, s.base))
        .bearer_auth(&s.srv.alice)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert_eq!(s.get(&format!("{}/tracks/x", s.base)).await["total"], 1);
}

#[tokio::test]
async fn the_owner_purges_a_deleted_files_content_unless_another_session_holds_it() {
    let srv = start(1 << 20).await;
    let s = S::new(srv).await;
    // The same content in a second session of Alice's.
    let (_, other) = s
        .srv
        .request(
            Method::POST,
            "/v1/sessions",
            Some(&s.srv.alice),
            Some(json!({"name": "other"})),
        )
        .await;
    let other = other["id"].as_str().unwrap().to_owned();
    let upload = async |base: &str, body: &'static [u8]| -> Value {
        let r = s
            .srv
            .http
            .post(format!("{}{base}/files?name=xrd.txt", s.srv.base))
            .bearer_auth(&s.srv.alice)
            .header("content-type", "text/plain")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Value>().await.unwrap()["result"]["file"].clone()
    };
    let shared = upload(&s.base, b"2theta,counts\n10,5\n").await;
    let other_base = format!("/v1/sessions/{other}/branches/main/notebook");
    upload(&other_base, b"2theta,counts\n10,5\n").await;
    let own = upload(&s.base, b"only here\n").await;
    let f = |file: &Value| format!("{}/files/{}", s.base, file["id"].as_str().unwrap());

    // Not before a delete; not by anyone but the owner.
    let (st, v) = s
        .call(Method::POST, &format!("{}/purge", f(&own)), None)
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "file_not_deleted");
    s.ok(Method::DELETE, &f(&own), json!({})).await;
    s.ok(
        Method::POST,
        &format!("/v1/sessions/{}/collaborators", s.id),
        json!({"user": "bob", "permissions": ["read", "write", "manage"]}),
    )
    .await;
    let (st, _) = s
        .srv
        .request(
            Method::POST,
            &format!("{}/purge", f(&own)),
            Some(&s.srv.bob),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Purged: the content is gone, the record stays, a download is 410.
    let blob = |sha: &Value| {
        let sha = sha.as_str().unwrap();
        s.srv.data_dir().join("files").join(&sha[..2]).join(sha)
    };
    assert!(blob(&own["sha256"]).is_file());
    let v = s
        .ok(Method::POST, &format!("{}/purge", f(&own)), json!({}))
        .await;
    assert_eq!(v["removed"], true, "{v}");
    assert!(!blob(&own["sha256"]).exists());
    let r = s
        .srv
        .http
        .get(format!("{}{}", s.srv.base, f(&own)))
        .bearer_auth(&s.srv.alice)
        .send()
        .await
        .unwrap();
    assert!(
        matches!(r.status(), StatusCode::GONE | StatusCode::NOT_FOUND),
        "{}",
        r.status()
    );
    let audit = s.get(&format!("/v1/sessions/{}/audit", s.id)).await;
    assert!(audit.to_string().contains("notebook.file.purge"), "{audit}");

    // Content another session holds stays on disk.
    s.ok(Method::DELETE, &f(&shared), json!({})).await;
    let v = s
        .ok(Method::POST, &format!("{}/purge", f(&shared)), json!({}))
        .await;
    assert_eq!(v["removed"], false, "{v}");
    assert!(blob(&shared["sha256"]).is_file());
}

#[tokio::test]
async fn an_export_carries_the_track_points_and_an_import_reads_them() {
    let srv = start(4 << 20).await;
    let s = S::new(srv).await;
    let points: Vec<Value> = (0..2500)
        .map(|i| json!({"step": i, "loss": 1.0 / f64::from(i + 1)}))
        .collect();
    s.ok(
        Method::POST,
        &format!("{}/tracks/loss", s.base),
        json!({"points": points}),
    )
    .await;
    let before = s.get(&format!("{}/tracks/loss/stats", s.base)).await;
    let export = s.get(&format!("/v1/sessions/{}/export", s.id)).await;
    assert_eq!(export["tracks"][0]["count"], 2500, "{}", export["tracks"]);
    let (st, imported) = s
        .call(Method::POST, "/v1/sessions/import", Some(export))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{imported}");
    let copy = imported["id"].as_str().unwrap();
    let base = format!("/v1/sessions/{copy}/branches/main/notebook");
    let after = s.get(&format!("{base}/tracks/loss/stats")).await;
    assert_eq!(after["fields"], before["fields"]);
    let page = s
        .get(&format!("{base}/tracks/loss?offset=2000&limit=3"))
        .await;
    assert_eq!(page["points"][0]["step"], 2000.0, "{page}");
}
