//! Connecting a model from the command line, as a user does: `kiln serve --llm-base-url URL
//! --llm-model NAME --llm-api-key-file PATH` answers with that model and sends the key, which
//! no output shows; with no model configured, `serve` says when an Ollama server answers on the
//! probe address (here a loopback fake) and does not switch to it.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: &str = "sk-from-a-file-7319";

/// A one-thread fake HTTP server: answers each request with `reply(request text)` and keeps the
/// requests it saw.
fn fake_server(reply: fn(&str) -> String) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then as many body bytes as Content-Length says.
            loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                if support::request_complete(&request) {
                    break;
                }
            }
            let text = String::from_utf8_lossy(&request).to_string();
            let response = reply(&text);
            log.lock().unwrap().push(text);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (addr, seen)
}

fn http(content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// An OpenAI-compatible model that answers every turn with one sentence.
fn chat_reply(request: &str) -> String {
    if request.contains("\"stream\":true") {
        let chunk = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"flag-model","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello from the flag model."},"finish_reason":"stop"}]}"#;
        http(
            "text/event-stream",
            &format!("data: {chunk}\n\ndata: [DONE]\n\n"),
        )
    } else {
        let body = r#"{"id":"c","object":"chat.completion","created":1,"model":"flag-model","choices":[{"index":0,"message":{"role":"assistant","content":"{\"discoveries\": []}"},"finish_reason":"stop"}]}"#;
        http("application/json", body)
    }
}

/// `kiln serve` with extra arguments and environment; returns the child and its stdout lines up
/// to "Kiln listening", reading on in the background.
async fn serve(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, Arc<Mutex<Vec<String>>>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(args)
        .env("KILN_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    for (pipe, lines) in [
        (
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            lines.clone(),
        ),
        (Box::new(child.stderr.take().unwrap()), lines.clone()),
    ] {
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { return };
                lines.lock().unwrap().push(line);
            }
        });
    }
    for _ in 0..200 {
        let found = lines.lock().unwrap().iter().find_map(|l| {
            l.strip_prefix("Kiln listening on http://")
                .map(str::to_owned)
        });
        if let Some(addr) = found {
            return (child, lines, addr);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not start: {:?}", lines.lock().unwrap());
}

fn token_of(lines: &[String]) -> String {
    lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("kiln_").map(|t| format!("kiln_{t}")))
        .expect("the owner token")
}

#[tokio::test]
async fn serve_answers_with_the_model_its_flags_name_and_never_shows_the_key() {
    let (model_addr, seen) = fake_server(chat_reply);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.txt");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let base_url = format!("http://{model_addr}/v1");
    let (mut child, lines, addr) = serve(
        &dir.path().join("data"),
        &[
            "--llm-base-url",
            &base_url,
            "--llm-model",
            "flag-model",
            "--llm-api-key-file",
            key_file.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let token = token_of(&lines.lock().unwrap());
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l == &format!("Model: flag-model at {base_url}")),
        "{:?}",
        lines.lock().unwrap()
    );
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let session: serde_json::Value = http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "flags"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = session["id"].as_str().unwrap();
    let answer: serde_json::Value = http
        .post(format!("{base}/v1/sessions/{id}/query"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"message": "hello"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["answer"], "Hello from the flag model.", "{answer}");
    assert_eq!(answer["model"], "flag-model");
    let requests = seen.lock().unwrap().clone();
    assert!(
        requests[0].to_ascii_lowercase().contains(&format!(
            "authorization: bearer {}",
            KEY.to_ascii_lowercase()
        )),
        "the key from the file was sent"
    );
    // The key is in no output of the process (stdout, and stderr at DEBUG).
    let _ = child.kill();
    let _ = child.wait();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let output = lines.lock().unwrap().join("\n");
    assert!(!output.contains(KEY), "{output}");
}

#[tokio::test]
async fn serve_says_when_an_ollama_server_answers_and_does_not_switch() {
    fn tags(_: &str) -> String {
        http(
            "application/json",
            r#"{"models":[{"name":"qwen2.5:7b","model":"qwen2.5:7b"}]}"#,
        )
    }
    let (ollama, _) = fake_server(tags);
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines, _) =
        serve(dir.path(), &[], &[("KILN_LLM__OLLAMA_PROBE", &ollama)]).await;
    let mut said = None;
    for _ in 0..100 {
        said = lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.starts_with("An Ollama server answers"))
            .cloned();
        if said.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let output = lines.lock().unwrap().join("\n");
    let _ = child.kill();
    let _ = child.wait();
    let said = said.unwrap_or_else(|| panic!("no Ollama note: {output}"));
    assert!(
        said.contains(&ollama) && said.contains("qwen2.5:7b"),
        "{said}"
    );
    assert!(
        output.contains(&format!(
            "kiln serve --llm-base-url http://{ollama}/v1 --llm-model qwen2.5:7b"
        )),
        "{output}"
    );
    assert!(
        output.contains("Model: offline-planner"),
        "it did not switch: {output}"
    );

    // Nothing there (a closed port): nothing said, and start-up is not held up.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines, _) =
        serve(dir.path(), &[], &[("KILN_LLM__OLLAMA_PROBE", &closed_addr)]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = child.kill();
    let _ = child.wait();
    let output = lines.lock().unwrap().join("\n");
    assert!(!output.contains("Ollama"), "{output}");
}
