//! `kiln chat` as a researcher uses it on a fresh machine (no LLM configured): the brief's
//! conversation, a branch, a different question and a merge back, driven through stdin.

use std::io::Write as _;
use std::process::{Command, Stdio};

fn chat(data: &std::path::Path, input: &str, extra: &[&str]) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--data-dir")
        .arg(data)
        .arg("chat")
        .args(extra)
        .env_remove("OPENAI_API_KEY")
        .env_remove("KILN_LLM__BASE_URL")
        .env_remove("KILN_LLM__API_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), text)
}

#[test]
fn the_brief_conversation_with_a_branch_and_a_merge() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = "Analyse LiFePO4\n\
                 What about its oxidation states?\n\
                 Show me similar cathode materials\n\
                 Record that the olivine structure seems crucial for Li+ mobility\n\
                 /branch cobalt\n\
                 Analyse LiCoO2\n\
                 /switch main\n\
                 /merge cobalt\n\
                 /discoveries\n\
                 /context\n\
                 /summary\n\
                 /compress 2\n\
                 /compress\n\
                 /compress many\n\
                 /switch nowhere\n\
                 /quit\n";
    let (ok, out) = chat(&data, input, &[]);
    assert!(ok, "{out}");
    assert!(out.contains("model: offline-planner"), "{out}");
    // Computed answers, with "its" resolved to LiFePO4.
    assert!(out.contains("molar mass 157.755 g/mol"), "{out}");
    assert!(
        out.contains(r#"→ materials_analyzer {"action":"validate","formula":"LiFePO4"}"#),
        "{out}"
    );
    assert!(out.contains("LiMnPO4") && out.contains("NaFePO4"), "{out}");
    assert!(
        out.contains("Recorded structure_property discovery"),
        "{out}"
    );
    assert!(out.contains("created branch cobalt"), "{out}");
    assert!(out.contains("LiCoO2: molar mass 97.871 g/mol"), "{out}");
    assert!(out.contains("merged cobalt into main"), "{out}");
    assert!(
        out.contains(
            "- [structure_property] The olivine structure seems crucial for Li+ mobility (LiFePO4)"
        ),
        "{out}"
    );
    assert!(out.contains("context: ") && out.contains("tokens"), "{out}");
    assert!(out.contains("## Key findings (1)"), "{out}");
    assert!(out.contains("## Materials of interest"), "{out}");
    assert!(
        out.contains("summarised ") && out.contains(" messages into "),
        "{out}"
    );
    // Right after compressing, there is nothing left to compress.
    assert!(out.contains("nothing to compress"), "{out}");
    assert!(out.contains("/compress takes a number"), "{out}");
    assert!(out.contains("error: no branch nowhere"), "{out}");

    // The session persisted: reopening it by id prefix continues where it stopped.
    let id = out
        .split("session ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_owned();
    let (ok, out) = chat(&data, "/discoveries\n/branches\n", &[&id[..8]]);
    assert!(ok, "{out}");
    assert!(out.contains("olivine structure"), "{out}");
    assert!(out.contains("* main") && out.contains("  cobalt"), "{out}");

    // `kiln message list` shows a tool result by what it says, not the model's JSON.
    let list = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--data-dir")
        .arg(&data)
        .args([
            "message",
            "list",
            &id[..8],
            "--branch",
            "cobalt",
            "--limit",
            "5",
        ])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    let result = list
        .lines()
        .find(|l| l.contains("tool_result"))
        .unwrap_or_else(|| panic!("a tool result row: {list}"));
    assert!(
        result.contains("LiCoO2: molar mass 97.871") && !result.contains("{\"data\""),
        "{result}"
    );
}

/// Answers are Markdown; the terminal gets them rendered: a suggestion table as aligned
/// columns under a rule, with no pipes, alignment rows or emphasis markers left.
#[test]
fn answers_render_their_markdown_tables_in_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = "temperature 300-900 °C, time 1-10 h, maximise capacity\n\
                 suggest 4 experiments\n\
                 compare LiFePO4, LiCoO2 and LiMn2O4\n\
                 /quit\n";
    let (ok, out) = chat(&data, input, &[]);
    assert!(ok, "{out}");
    assert!(!out.contains("|---") && !out.contains("---|"), "{out}");
    assert!(!out.contains(" | "), "no table pipes: {out}");
    assert!(!out.contains("**"), "no emphasis markers: {out}");
    let lines: Vec<&str> = out.lines().collect();
    let rule = lines
        .iter()
        .position(|l| l.starts_with("───"))
        .unwrap_or_else(|| panic!("a rule under a table header: {out}"));
    let header = lines[rule - 1];
    assert!(header.contains("temperature"), "{header}");
    // Four suggested points follow, each as wide as the rule or narrower.
    let rows = &lines[rule + 1..rule + 5];
    let width = lines[rule].chars().count();
    for r in rows {
        assert!(
            r.chars().count() <= width,
            "{r:?} wider than the rule in:\n{out}"
        );
        assert!(r.chars().any(|c| c.is_ascii_digit()), "{r:?}");
    }
}

#[test]
fn history_undo_clear_sessions_checkpoints_memory_and_a_recap_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = "Analyse LiFePO4\n\
                 Analyse LiCoO2\n\
                 /history 5\n\
                 /undo\n\
                 /history\n\
                 /checkpoints\n\
                 Remember that I report capacities in mAh/g\n\
                 /memory\n\
                 /memory add my furnace runs 15 K hot\n\
                 /clear\n\
                 /history\n\
                 /sessions\n\
                 /history 0\n\
                 /memory rm\n\
                 /quit\n";
    let (ok, out) = chat(&data, input, &[]);
    assert!(ok, "{out}");
    // Every answer once: the tool's result is not printed again before the answer.
    let (turns, _) = out.split_once("you:  Analyse LiFePO4").unwrap();
    assert_eq!(
        turns.matches("molar mass 157.755 g/mol").count(),
        1,
        "{out}"
    );
    assert!(turns.contains("✓ materials_analyzer"), "{out}");
    // /history lists both turns; /undo takes the last back, keeping it.
    let (before, after_undo) = out.split_once("undid \"Analyse LiCoO2\" on main").unwrap();
    assert!(before.contains("you:  Analyse LiCoO2"), "{out}");
    assert!(
        after_undo.contains("the undone turn is kept as before-restore-"),
        "{out}"
    );
    let (history, _) = after_undo.split_once("undo-").unwrap();
    assert!(
        history.contains("you:  Analyse LiFePO4") && !history.contains("Analyse LiCoO2"),
        "{out}"
    );
    assert!(out.contains("(auto)") && out.contains("undo-"), "{out}");
    // Memory: saved by the agent, listed, added to by hand.
    assert!(
        out.contains("(preference) I report capacities in mAh/g"),
        "{out}"
    );
    assert!(
        out.contains("saved ") && out.contains(": my furnace runs 15 K hot"),
        "{out}"
    );
    // /clear: a fresh branch from the start, the old one kept.
    assert!(
        out.contains("on a fresh branch fresh-2 from the beginning; main is kept"),
        "{out}"
    );
    assert!(out.contains("no turns on fresh-2 yet"), "{out}");
    assert!(out.contains("* 1. "), "{out}");
    // Bad arguments are said, not fatal.
    assert!(
        out.contains("/history takes a number from 1 to 100"),
        "{out}"
    );
    assert!(out.contains("/memory rm needs an entry id"), "{out}");

    // Resuming the session prints a recap: name, branch, focus and the last two turns.
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("Kiln chat — session "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let (ok, resumed) = chat(&data, "/quit\n", &[&id]);
    assert!(ok, "{resumed}");
    assert!(
        resumed.contains("— branch main, focus LiFePO4"),
        "{resumed}"
    );
    assert!(resumed.contains("you:  Analyse LiFePO4"), "{resumed}");
    assert!(
        resumed.contains("kiln: LiFePO4: molar mass 157.755"),
        "{resumed}"
    );
}
