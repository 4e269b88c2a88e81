//! The replay check of an import: every state event is validated against the state it applies
//! to and folded along the tree, and every snapshot and branch state must equal the fold. A
//! merge node's snapshot is not a replay of one path; every entry in it must come from one of
//! its two parents' states (a merge combines entries, it never creates one).
//!
//! Runs without a database (the fuzz target calls it), in time linear in the nodes plus one
//! state copy per fork and per merge parent.

use std::collections::{HashMap, HashSet};

use kiln_types::{NodeKind, ResearchState, StateEvent};

use super::{SessionExport, bad};
use crate::Result;
use crate::integrity::{NodeFields, node_hash};

/// Checks the document's states against a replay of its events, and the node hashes it
/// carries against their recomputation.
pub(super) fn check(doc: &SessionExport) -> Result<()> {
    let snapshots: HashMap<&str, &ResearchState> = doc
        .snapshots
        .iter()
        .map(|s| (s.node.as_str(), &s.state))
        .collect();
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut root = None;
    for (i, n) in doc.nodes.iter().enumerate() {
        match &n.parent_id {
            Some(p) => children.entry(p.as_str()).or_default().push(i),
            None => root = Some(i),
        }
    }
    let merge_parents: HashSet<&str> = doc
        .nodes
        .iter()
        .filter_map(|n| n.merge_parent_id.as_deref())
        .collect();
    let mut heads: HashMap<&str, Vec<(&str, &ResearchState)>> = HashMap::new();
    for b in &doc.branches {
        heads
            .entry(b.branch.head.as_str())
            .or_default()
            .push((b.branch.name.as_str(), &b.state));
    }
    // States kept for the merge check: at each merge parent, and arriving at each merge node.
    let mut at_merge_parent: HashMap<&str, ResearchState> = HashMap::new();
    let mut arriving_at_merge: HashMap<&str, ResearchState> = HashMap::new();
    let Some(root) = root else {
        return Err(bad("no root node"));
    };
    let mut visited = 0usize;
    let mut stack = vec![(root, ResearchState::default())];
    while let Some((i, mut state)) = stack.pop() {
        visited += 1;
        let n = &doc.nodes[i];
        let id = n.id.as_str();
        if n.kind == NodeKind::Merge {
            arriving_at_merge.insert(id, state);
            state = snapshots
                .get(id)
                .map(|s| (*s).clone())
                .ok_or_else(|| bad(format!("merge node {id} has no state snapshot")))?;
        } else if n.kind.is_state() {
            let data = n
                .data
                .clone()
                .ok_or_else(|| bad(format!("state node {id} has no data")))?;
            let event: StateEvent = serde_json::from_value(data)
                .map_err(|e| bad(format!("state node {id} is not a valid event: {e}")))?;
            event
                .validate(&state)
                .map_err(|e| bad(format!("state node {id}: {e}")))?;
            state.apply(id, &event);
            if let Some(snap) = snapshots.get(id)
                && **snap != state
            {
                return Err(bad(format!(
                    "the snapshot at node {id} does not match a replay of its events"
                )));
            }
        } else if snapshots.contains_key(id) {
            return Err(bad(format!(
                "node {id} carries a snapshot but records no state event"
            )));
        }
        for (name, claimed) in heads.get(id).into_iter().flatten() {
            if **claimed != state {
                return Err(bad(format!(
                    "the state of branch `{name}` does not match a replay of its events"
                )));
            }
        }
        if merge_parents.contains(id) {
            at_merge_parent.insert(id, state.clone());
        }
        if let Some((last, rest)) = children.get(id).and_then(|k| k.split_last()) {
            for &k in rest {
                stack.push((k, state.clone()));
            }
            stack.push((*last, state));
        }
    }
    if visited != doc.nodes.len() {
        return Err(bad("some nodes are not reachable from the root"));
    }
    for n in doc.nodes.iter().filter(|n| n.kind == NodeKind::Merge) {
        let merged = snapshots[n.id.as_str()];
        let ours = &arriving_at_merge[n.id.as_str()];
        let theirs = n
            .merge_parent_id
            .as_deref()
            .and_then(|m| at_merge_parent.get(m))
            .ok_or_else(|| bad(format!("merge node {} has no second parent", n.id)))?;
        if let Err(what) = explained(merged, ours, theirs) {
            return Err(bad(format!(
                "the snapshot at merge node {} holds {what} that neither parent has",
                n.id
            )));
        }
    }
    check_hashes(doc)
}

/// An entry id as a merge may have renamed it (`key@branch` keeps theirs beside ours).
fn base_id(id: &str) -> &str {
    id.split_once('@').map_or(id, |(base, _)| base)
}

/// Whether every entry of a merged state comes from `ours` or `theirs`; otherwise names the
/// first one that does not.
fn explained(
    merged: &ResearchState,
    ours: &ResearchState,
    theirs: &ResearchState,
) -> std::result::Result<(), String> {
    let sides = [ours, theirs];
    for d in &merged.discoveries {
        let found = sides.iter().flat_map(|s| &s.discoveries).any(|o| {
            o.id == base_id(&d.id)
                && o.node == d.node
                && o.description == d.description
                && o.discovery_type == d.discovery_type
                && o.materials == d.materials
                && o.evidence == d.evidence
                && o.confidence == d.confidence
        });
        if !found {
            return Err(format!("discovery `{}`", d.id));
        }
    }
    for h in &merged.hypotheses {
        let found = sides.iter().flat_map(|s| &s.hypotheses).any(|o| {
            o.id == base_id(&h.id)
                && o.node == h.node
                && o.statement == h.statement
                && o.status == h.status
        });
        if !found {
            return Err(format!("hypothesis `{}`", h.id));
        }
    }
    for t in &merged.tasks {
        let found = sides.iter().flat_map(|s| &s.tasks).any(|o| {
            o.id == base_id(&t.id)
                && o.node == t.node
                && o.description == t.description
                && o.status == t.status
        });
        if !found {
            return Err(format!("task `{}`", t.id));
        }
    }
    for l in &merged.links {
        let found = sides
            .iter()
            .flat_map(|s| &s.links)
            .any(|o| o.node == l.node && o.relationship == l.relationship);
        if !found {
            return Err(format!("a link from `{}` to `{}`", l.from, l.to));
        }
    }
    for m in &merged.materials {
        let found = sides
            .iter()
            .flat_map(|s| &s.materials)
            .any(|o| o.formula == m.formula);
        if !found {
            return Err(format!("material `{}`", m.formula));
        }
    }
    for k in merged.context.keys() {
        if !sides.iter().any(|s| s.context.contains_key(base_id(k))) {
            return Err(format!("context pin `{k}`"));
        }
    }
    for k in merged.tools.keys() {
        if !sides.iter().any(|s| s.tools.contains_key(k)) {
            return Err(format!("tool state `{k}`"));
        }
    }
    Ok(())
}

/// Node hashes the document carries must be the recomputed ones (an older export carries
/// none). The signature is what makes them evidence; this catches a store that was edited.
fn check_hashes(doc: &SessionExport) -> Result<()> {
    if doc.nodes.iter().all(|n| n.hash.is_none()) {
        return Ok(());
    }
    let (hashes, _) = hashes_in_order(doc, None)?;
    for (n, h) in doc.nodes.iter().zip(&hashes) {
        if n.hash.as_deref() != Some(hex::encode(h).as_str()) {
            return Err(bad(format!(
                "node {} does not match its hash (edited after it was written)",
                n.id
            )));
        }
    }
    Ok(())
}

/// The hash of every node (indexed as in the document) and an order of the nodes with every
/// node after its parents; with `author`, as if every node that names an author named that one.
pub(super) fn hashes_in_order(
    doc: &SessionExport,
    author: Option<&str>,
) -> Result<(Vec<[u8; 32]>, Vec<usize>)> {
    let index: HashMap<&str, usize> = doc
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut out: Vec<Option<[u8; 32]>> = vec![None; doc.nodes.len()];
    let mut on_stack = vec![false; doc.nodes.len()];
    let mut order = Vec::with_capacity(doc.nodes.len());
    let mut data_text = Vec::with_capacity(doc.nodes.len());
    for n in &doc.nodes {
        data_text.push(n.data.as_ref().map(serde_json::to_string).transpose()?);
    }
    for start in 0..doc.nodes.len() {
        let mut stack = vec![start];
        on_stack[start] = true;
        while let Some(&i) = stack.last() {
            if out[i].is_some() {
                on_stack[i] = false;
                stack.pop();
                continue;
            }
            let n = &doc.nodes[i];
            let deps = [n.parent_id.as_deref(), n.merge_parent_id.as_deref()];
            let mut missing = false;
            for d in deps.into_iter().flatten() {
                let j = *index
                    .get(d)
                    .ok_or_else(|| bad(format!("node {} has unknown parent {d}", n.id)))?;
                if out[j].is_none() {
                    if on_stack[j] {
                        return Err(bad("the nodes' parents form a cycle"));
                    }
                    on_stack[j] = true;
                    stack.push(j);
                    missing = true;
                    break;
                }
            }
            if missing {
                continue;
            }
            let parent = n.parent_id.as_deref().and_then(|p| out[index[p]]);
            let merge_parent = n.merge_parent_id.as_deref().and_then(|p| out[index[p]]);
            let fields = NodeFields {
                id: &n.id,
                seq: n.seq,
                parent_id: n.parent_id.as_deref(),
                merge_parent_id: n.merge_parent_id.as_deref(),
                kind: n.kind.as_str(),
                author: n.author.as_deref().map(|a| author.unwrap_or(a)),
                content: &n.content,
                data: data_text[i].as_deref(),
                tokens: n.tokens,
                created_at: &n.created_at,
            };
            out[i] = Some(node_hash(
                parent.as_ref().map(|h| &h[..]),
                merge_parent.as_ref().map(|h| &h[..]),
                &fields,
            ));
            on_stack[i] = false;
            order.push(i);
            stack.pop();
        }
    }
    let hashes = out.into_iter().map(|h| h.unwrap_or_default()).collect();
    Ok((hashes, order))
}
