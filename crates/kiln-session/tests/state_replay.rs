//! The research state at any node equals a replay of the events on its path, over random
//! histories of messages, events, forks, checkpoints and restores with a small snapshot interval.

mod common;

use kiln_session::{BranchFrom, SessionManager};
use kiln_types::{NodeKind, ResearchState, Role, StateEvent};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// Folds the state events on the path ending at `node` from scratch.
async fn replay(m: &SessionManager, session: &str, node: &str) -> ResearchState {
    let mut path = Vec::new();
    let mut before = None;
    loop {
        let page = m.db().path(session, node, 7, before).await.unwrap();
        path.extend(page.items);
        match page.next_cursor {
            Some(c) => before = Some(c.parse().unwrap()),
            None => break,
        }
    }
    let mut state = ResearchState::default();
    for n in path.iter().rev() {
        assert_ne!(n.kind, NodeKind::Merge, "this history has no merges");
        if n.kind.is_state() {
            let e: StateEvent = serde_json::from_value(n.data.clone().unwrap()).unwrap();
            state.apply(&n.id, &e);
        }
    }
    assert_eq!(
        path.last().unwrap().kind,
        NodeKind::Root,
        "the path reaches the root"
    );
    let seqs: Vec<i64> = path.iter().rev().map(|n| n.seq).collect();
    assert_eq!(seqs, (0..path.len() as i64).collect::<Vec<_>>());
    state
}

fn random_event(rng: &mut StdRng) -> Value {
    let pick = |rng: &mut StdRng, xs: &[&str]| xs[rng.random_range(0..xs.len())].to_string();
    match rng.random_range(0..8) {
        0 => json!({"kind": "material", "formula": pick(rng, &["LiFePO4", "NaFePO4", "LiCoO2"])}),
        1 => json!({"kind": "hypothesis", "id": pick(rng, &["h1", "h2"]), "statement": "s",
                    "status": pick(rng, &["open", "supported", "refuted"])}),
        2 => json!({"kind": "task", "description": "do it",
                    "status": pick(rng, &["pending", "done"])}),
        3 => json!({"kind": "context_pin", "key": pick(rng, &["a", "b"]),
                    "value": rng.random_range(0..4)}),
        4 => json!({"kind": "context_clear", "key": pick(rng, &["a", "b"])}),
        5 => json!({"kind": "focus", "topic": pick(rng, &["cond", "stab"])}),
        6 => json!({"kind": "tool_state", "tool": pick(rng, &["opt", "nb"]),
                    "state": {"n": rng.random_range(0..4)}}),
        _ => json!({"kind": "discovery", "type": "t", "description": pick(rng, &["x", "y"]),
                    "confidence": 0.5}),
    }
}

#[tokio::test]
async fn state_at_any_node_equals_a_replay_of_its_path() {
    for seed in 0..4u64 {
        let e = common::env_with(3).await;
        let (m, a) = (&e.mgr, &e.alice);
        let id = e.session("random").await;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut branches = vec!["main".to_string()];
        let mut nodes: Vec<String> = Vec::new();
        let mut checkpoints: Vec<String> = Vec::new();
        for step in 0..160 {
            let b = branches[rng.random_range(0..branches.len())].clone();
            match rng.random_range(0..20) {
                0..=5 => nodes.push(e.say(&id, &b, Role::User, &format!("m{step}")).await),
                6..=14 => nodes.push(e.record(&id, &b, random_event(&mut rng)).await),
                15 | 16 if !nodes.is_empty() => {
                    let name = format!("b{step}");
                    let from = BranchFrom::Node(nodes[rng.random_range(0..nodes.len())].clone());
                    m.create_branch(a, &id, &name, Some(from)).await.unwrap();
                    branches.push(name);
                }
                17 => {
                    let name = format!("c{step}");
                    m.create_checkpoint(a, &id, &name, Some(&b), None)
                        .await
                        .unwrap();
                    checkpoints.push(name);
                }
                18 if !checkpoints.is_empty() => {
                    let cp = &checkpoints[rng.random_range(0..checkpoints.len())];
                    m.restore(a, &id, cp, Some(&b)).await.unwrap();
                }
                _ => {
                    let head = e.head(&id, &b).await;
                    assert_eq!(
                        m.state(a, &id, &b, None).await.unwrap(),
                        replay(m, &id, &head).await,
                        "seed {seed} step {step}: head state of {b}"
                    );
                }
            }
        }
        for b in &branches {
            let head = e.head(&id, b).await;
            assert_eq!(
                m.state(a, &id, b, None).await.unwrap(),
                replay(m, &id, &head).await,
                "seed {seed}: head state of {b}"
            );
        }
        for n in &nodes {
            assert_eq!(
                m.state(a, &id, "main", Some(n)).await.unwrap(),
                replay(m, &id, n).await,
                "seed {seed}: state at node {n}"
            );
        }
        for c in &checkpoints {
            let node = m.db().checkpoint(&id, c).await.unwrap().node;
            assert_eq!(
                m.state(a, &id, "main", Some(c)).await.unwrap(),
                replay(m, &id, &node).await
            );
        }
    }
}
