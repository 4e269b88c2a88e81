//! The README's five-minute tour, run as written against a fresh `kiln serve`: every command
//! must succeed (curl fails on any HTTP error) and show what the README says it shows.
//! Needs bash, curl and jq (`scripts/test` installs curl and jq when missing).

mod support;

use std::process::{Command, Stdio};

/// The tour's shell commands: every `sh` block between the tour's heading and the next section,
/// minus the line that says where the token comes from (the test sets it), with the README's
/// address and `cargo run` replaced by this server and this binary.
fn tour_script() -> String {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("## A five-minute tour")
        .expect("the README has a tour");
    let end = start
        + readme[start..]
            .find("\n## Command line")
            .expect("a section after the tour");
    let mut script = String::new();
    let mut in_block = false;
    for line in readme[start..end].lines() {
        match (in_block, line.trim_end()) {
            (false, "```sh") => in_block = true,
            (true, "```") => in_block = false,
            (true, l) if l.starts_with("TOKEN=") => {}
            (true, l) => {
                script.push_str(l);
                script.push('\n');
            }
            _ => {}
        }
    }
    script.replace("localhost:8080", "$TOUR_ADDR").replace(
        "cargo run --release --",
        "\"$TOUR_BIN\" --data-dir \"$TOUR_DATA\"",
    )
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn the_readme_tour_runs_as_written() {
    for tool in ["bash", "curl", "jq"] {
        assert!(
            have(tool),
            "the README tour test needs `{tool}` (scripts/test installs curl and jq)"
        );
    }
    let script = tour_script();
    assert!(
        script.lines().filter(|l| l.starts_with("curl")).count() >= 20,
        "the tour was not found whole:\n{script}"
    );
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path());
    let token = server.token.clone().expect("first start prints a token");
    let prelude = "set -euo pipefail\n\
                   curl() { command curl --fail-with-body --max-time 30 \"$@\"; }\n";
    let out = Command::new("bash")
        .args(["-c", &format!("{prelude}{script}")])
        .env("TOKEN", &token)
        .env("TOUR_ADDR", &server.addr)
        .env("TOUR_BIN", env!("CARGO_BIN_EXE_kiln"))
        .env("TOUR_DATA", dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the tour failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- script\n{script}",
        out.status
    );
    // What the README says each step shows.
    for expected in [
        "\"merged\":true",                              // the branch merged back
        "- [open] Na on the Li site keeps the olivine", // the merge summary names the hypothesis
        "\"valid\":true",                               // the audit chain verifies
        "# LFP cathodes",                               // the Markdown export
        "event: tool_call",                             // the streamed turn shows its tool call
        "event: done",
        "similar to LiFePO4",         // the one-tool call
        "\"permissions\":[\"read\"]", // bob's permissions changed
        "\"name\":\"LFP cathodes\"",  // the share link reads without sign-in
    ] {
        assert!(
            stdout.contains(expected),
            "the tour's output lacks `{expected}`:\n{stdout}"
        );
    }
}
