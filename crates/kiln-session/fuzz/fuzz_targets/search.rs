//! Fuzz target: any query text, with any of the filters a request can add, goes through the
//! search a request makes (`SessionManager::search_sessions`: bounds, parsing, excluded
//! phrases, grouping, snippets) over a real SQLite store and tantivy index, and is either
//! answered with hits from sessions the caller may read or refused with a typed error;
//! nothing panics.
#![no_main]

use std::sync::LazyLock;

use kiln_session::{Caller, Config, CreateSession, MessageInput, SearchParams, SessionManager};
use kiln_types::Role;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    rt: tokio::runtime::Runtime,
    mgr: SessionManager,
    alice: Caller,
    /// bob's private session, which alice must never see.
    private: String,
    _dir: tempfile::TempDir,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mgr, alice, private) = rt.block_on(async {
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        let mgr = SessionManager::open(&config).await.unwrap();
        let (a, _) = mgr.add_user("alice", true).await.unwrap();
        let (b, _) = mgr.add_user("bob", false).await.unwrap();
        let (alice, bob): (Caller, Caller) = (a.into(), b.into());
        let mut private = String::new();
        for (who, name) in [(&alice, "olivine"), (&alice, "perovskite"), (&bob, "secret")] {
            let s = mgr
                .create_session(
                    who,
                    CreateSession {
                        name: name.into(),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            for text in [
                "olivine LiFePO4 cathode annealed at 700 C",
                "band gap of perovskite CsPbI3 is 1.7 eV",
                "a b c \"quoted\" (paren) -minus +plus field:value",
            ] {
                let m = MessageInput {
                    role: Role::User,
                    content: text.into(),
                    expected_head: None,
                };
                mgr.append_message(who, &s.id, "main", m).await.unwrap();
            }
            if name == "secret" {
                private = s.id;
            }
        }
        (mgr, alice, private)
    });
    Fixture {
        rt,
        mgr,
        alice,
        private,
        _dir: dir,
    }
});

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, rest)) = data.split_first() else {
        return;
    };
    let Ok(q) = std::str::from_utf8(rest) else {
        return;
    };
    let f = &*FIXTURE;
    let p = SearchParams {
        q: q.to_owned(),
        kind: (knobs & 1 != 0).then(|| "user".to_owned()),
        per_session: (knobs & 2 != 0).then_some(1),
        limit: (knobs & 4 != 0).then_some(1),
        project: (knobs & 8 != 0).then(|| "p".to_owned()),
        ..Default::default()
    };
    match f.rt.block_on(f.mgr.search_sessions(&f.alice, p)) {
        Ok(page) => assert!(
            page.items.iter().all(|s| s.session_id != f.private),
            "bob's private session reached alice for {q:?}"
        ),
        Err(e) => assert!(
            matches!(e.code, "invalid_query" | "search_timeout"),
            "{q:?}: {} {}",
            e.code,
            e.message
        ),
    }
});
