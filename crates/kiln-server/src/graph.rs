//! The drawn graph of a session's branches: a pure function from the branch tree's structural
//! points (fork bases, heads, merges, checkpoints) to an SVG string. One row (lane) per branch,
//! depth from left to right; only structural points are drawn, never every message, so the
//! cost follows the number of branches, merges and checkpoints, not of nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use kiln_session::BranchGraph;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

/// Height of one lane.
pub const LANE_H: i64 = 28;
/// Width of the branch-name column.
pub const LABEL_W: i64 = 180;
/// Narrowest column (one structural depth).
pub const MIN_COL_W: i64 = 26;
/// Longest checkpoint or branch label drawn (the full name is in its tooltip).
const LABEL_CHARS: usize = 22;
/// Approximate width of one label character at the font size used.
const CHAR_W: i64 = 7;
/// The most automatic checkpoints drawn (newest kept); named ones are always drawn.
pub const MAX_AUTO_CHECKPOINTS: usize = 30;

/// What a point on a lane is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PointKind {
    /// Where another branch forked off this one.
    Fork,
    /// A head of this branch that was merged into another.
    Merged,
    /// A merge node written on this branch.
    Merge,
    /// A checkpoint (labelled).
    Checkpoint,
    /// The branch's head.
    Head,
}

/// One drawn node.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub lane: usize,
    pub node: String,
    pub seq: i64,
    pub x: i64,
    pub y: i64,
    pub kinds: BTreeSet<PointKind>,
    /// Checkpoint names at this node on this lane.
    pub labels: Vec<String>,
}

/// An edge between lanes: a fork (parent point → start of the child lane) or a merge.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: (i64, i64),
    pub to: (i64, i64),
    pub merge: bool,
}

/// Where everything goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub width: i64,
    pub height: i64,
    /// Per lane: y, and x from the fork to the last point.
    pub lanes: Vec<(i64, i64, i64)>,
    pub points: Vec<Point>,
    pub edges: Vec<Edge>,
}

fn clip(s: &str) -> String {
    if s.chars().count() <= LABEL_CHARS {
        s.to_string()
    } else {
        let cut: String = s.chars().take(LABEL_CHARS - 1).collect();
        format!("{cut}…")
    }
}

fn text_w(s: &str) -> i64 {
    i64::try_from(clip(s).chars().count()).unwrap_or(0) * CHAR_W
}

/// What was found at one node of one lane: its depth, roles and checkpoint names.
type Found = (i64, BTreeSet<PointKind>, Vec<String>);

/// Lays the graph out: lanes in creation order, columns at the distinct depths of the
/// structural points, each column wide enough for the checkpoint labels in it.
pub fn layout(g: &BranchGraph) -> Layout {
    let lane_of: BTreeMap<&str, usize> = g
        .branches
        .iter()
        .enumerate()
        .map(|(i, b)| (b.name.as_str(), i))
        .collect();
    // (lane, node) → (seq, kinds, labels)
    let mut at: BTreeMap<(usize, String), Found> = BTreeMap::new();
    let mut put = |lane: usize, node: &str, seq: i64, kind: PointKind, label: Option<&str>| {
        let e = at
            .entry((lane, node.to_string()))
            .or_insert_with(|| (seq, BTreeSet::new(), Vec::new()));
        e.1.insert(kind);
        if let Some(l) = label {
            e.2.push(l.to_string());
        }
    };
    for (i, b) in g.branches.iter().enumerate() {
        put(i, &b.head.node, b.head.seq, PointKind::Head, None);
        if let Some(&p) = b.parent.as_deref().and_then(|p| lane_of.get(p)) {
            put(p, &b.base.node, b.base.seq, PointKind::Fork, None);
        }
    }
    for m in &g.merges {
        if let (Some(&f), Some(&t)) = (lane_of.get(m.from.as_str()), lane_of.get(m.into.as_str())) {
            put(
                f,
                &m.from_head.node,
                m.from_head.seq,
                PointKind::Merged,
                None,
            );
            put(
                t,
                &m.merge_node.node,
                m.merge_node.seq,
                PointKind::Merge,
                None,
            );
        }
    }
    let autos = g.checkpoints.iter().filter(|c| c.auto).count();
    let mut skip_autos = autos.saturating_sub(MAX_AUTO_CHECKPOINTS);
    for c in &g.checkpoints {
        if c.auto && skip_autos > 0 {
            skip_autos -= 1; // ordered by depth: the oldest automatic ones go
            continue;
        }
        if let Some(&l) = c.branch.as_deref().and_then(|b| lane_of.get(b)) {
            put(
                l,
                &c.node.node,
                c.node.seq,
                PointKind::Checkpoint,
                Some(&c.name),
            );
        }
    }
    // Columns: each distinct depth, as wide as its widest label.
    let mut col_w: BTreeMap<i64, i64> = BTreeMap::new();
    for b in &g.branches {
        col_w.entry(b.base.seq).or_insert(MIN_COL_W);
    }
    for (seq, _, labels) in at.values() {
        let need = labels
            .iter()
            .map(|l| text_w(l) + 14)
            .max()
            .unwrap_or(0)
            .max(MIN_COL_W);
        let w = col_w.entry(*seq).or_insert(MIN_COL_W);
        *w = (*w).max(need);
    }
    let mut x_of = BTreeMap::new();
    let mut x = LABEL_W + 16;
    for (seq, w) in &col_w {
        x_of.insert(*seq, x);
        x += w;
    }
    let y_of = |lane: usize| 24 + i64::try_from(lane).unwrap_or(0) * LANE_H;
    let points: Vec<Point> = at
        .into_iter()
        .map(|((lane, node), (seq, kinds, labels))| Point {
            lane,
            x: x_of[&seq],
            y: y_of(lane),
            node,
            seq,
            kinds,
            labels,
        })
        .collect();
    let lanes = g
        .branches
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let start = x_of[&b.base.seq];
            let end = points
                .iter()
                .filter(|p| p.lane == i)
                .map(|p| p.x)
                .max()
                .unwrap_or(start);
            (y_of(i), start, end.max(start))
        })
        .collect();
    let mut edges = Vec::new();
    for (i, b) in g.branches.iter().enumerate() {
        if let Some(&p) = b.parent.as_deref().and_then(|p| lane_of.get(p)) {
            let bx = x_of[&b.base.seq];
            edges.push(Edge {
                from: (bx, y_of(p)),
                to: (bx, y_of(i)),
                merge: false,
            });
        }
    }
    for m in &g.merges {
        if let (Some(&f), Some(&t)) = (lane_of.get(m.from.as_str()), lane_of.get(m.into.as_str())) {
            edges.push(Edge {
                from: (x_of[&m.from_head.seq], y_of(f)),
                to: (x_of[&m.merge_node.seq], y_of(t)),
                merge: true,
            });
        }
    }
    Layout {
        width: x + 24,
        height: y_of(g.branches.len()) + 4,
        lanes,
        points,
        edges,
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn q(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// Draws the graph as an SVG document fragment. `page` is the session page's path (links are
/// `page?branch=NAME`, `page?branch=NAME&around=NODE`); `current` is the branch on screen.
pub fn render(g: &BranchGraph, current: &str, page: &str) -> String {
    let l = layout(g);
    let mut s = String::with_capacity(4096 + 400 * (l.points.len() + g.branches.len()));
    let discarded = g
        .branches
        .iter()
        .filter(|b| b.status == "discarded")
        .count();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="branch-graph" width="{w}" height="{h}" viewBox="0 0 {w} {h}" aria-labelledby="bg-title bg-desc"><title id="bg-title">Branches of this session</title><desc id="bg-desc">{n} branches ({discarded} discarded), {m} merges, {c} checkpoints; the current branch is {cur}. Each branch is a row, depth runs left to right; a link on a branch name opens it, on a point opens the conversation there, on a checkpoint offers to restore it.</desc><style>.bg-lane{{stroke:#6b7280;stroke-width:2}}.bg-discarded{{opacity:.4}}.bg-edge{{fill:none;stroke:#6b7280;stroke-width:1.5}}.bg-merge{{stroke:#a4431b;stroke-dasharray:4 2}}.bg-node{{fill:#fff;stroke:#1b1b1f;stroke-width:1.5}}.bg-head{{fill:#1b1b1f}}.bg-current{{fill:#a4431b;stroke:#a4431b}}text{{font:12px system-ui,sans-serif;fill:currentColor}}.bg-cp{{fill:#a4431b}}</style>"#,
        w = l.width,
        h = l.height,
        n = g.branches.len(),
        m = g.merges.len(),
        c = g.checkpoints.len(),
        cur = esc(current),
    );
    for (i, b) in g.branches.iter().enumerate() {
        let (y, x0, x1) = l.lanes[i];
        let grey = if b.status == "discarded" {
            " bg-discarded"
        } else {
            ""
        };
        let mark = match b.status.as_str() {
            "discarded" => " (discarded)",
            "merged" => " (merged)",
            _ => "",
        };
        let is_current = b.name == current;
        let _ = write!(
            s,
            r#"<g class="bg-branch{grey}" data-branch="{name}"><line class="bg-lane" x1="{x0}" y1="{y}" x2="{x1}" y2="{y}"/><a href="{page}?branch={qn}"{cur}><title>{name}{mark}</title><text x="8" y="{ty}"{bold}>{label}{mark}</text></a></g>"#,
            name = esc(&b.name),
            qn = q(&b.name),
            page = esc(page),
            cur = if is_current {
                r#" aria-current="page""#
            } else {
                ""
            },
            ty = y + 4,
            bold = if is_current {
                r#" font-weight="700""#
            } else {
                ""
            },
            label = esc(&clip(&b.name)),
        );
    }
    for e in &l.edges {
        let (x0, y0) = e.from;
        let (x1, y1) = e.to;
        let mid = (y0 + y1) / 2;
        let _ = write!(
            s,
            r#"<path class="bg-edge{m}" d="M{x0} {y0} C{x0} {mid} {x1} {mid} {x1} {y1}"/>"#,
            m = if e.merge { " bg-merge" } else { "" },
        );
    }
    for p in &l.points {
        let b = &g.branches[p.lane];
        let head = p.kinds.contains(&PointKind::Head);
        let is_current = head && b.name == current;
        let class = if is_current {
            "bg-node bg-current"
        } else if head {
            "bg-node bg-head"
        } else {
            "bg-node"
        };
        let what: Vec<&str> = p
            .kinds
            .iter()
            .map(|k| match k {
                PointKind::Fork => "fork point",
                PointKind::Merged => "merged from here",
                PointKind::Merge => "merge",
                PointKind::Checkpoint => "checkpoint",
                PointKind::Head if is_current => "current head",
                PointKind::Head => "head",
            })
            .collect();
        let grey = if b.status == "discarded" {
            r#" class="bg-discarded""#
        } else {
            ""
        };
        let _ = write!(
            s,
            r#"<a href="{page}?branch={qb}&amp;around={qn}"{grey}><title>{name}: {what} at depth {seq}</title><circle class="{class}" cx="{x}" cy="{y}" r="{r}"/></a>"#,
            page = esc(page),
            qb = q(&b.name),
            qn = q(&p.node),
            name = esc(&b.name),
            what = what.join(", "),
            seq = p.seq,
            x = p.x,
            y = p.y,
            r = if is_current { 7 } else { 5 },
        );
        if is_current {
            let _ = write!(
                s,
                r#"<text x="{x}" y="{y}" text-anchor="middle" font-size="10">current</text>"#,
                x = p.x,
                y = p.y + 18,
            );
        }
        for (k, label) in p.labels.iter().enumerate() {
            let _ = write!(
                s,
                r#"<a href="{page}?branch={qb}&amp;around={qn}" data-restore="{name}" class="bg-checkpoint"><title>Checkpoint {name} (restore…)</title><text class="bg-cp" x="{x}" y="{y}">⚑ {label}</text></a>"#,
                page = esc(page),
                qb = q(&b.name),
                qn = q(&p.node),
                name = esc(label),
                x = p.x + 7,
                y = p.y - 7 - i64::try_from(k).unwrap_or(0) * 12,
                label = esc(&clip(label)),
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_session::{GraphBranch, GraphCheckpoint, GraphMerge, GraphPoint};

    fn pt(node: &str, seq: i64) -> GraphPoint {
        GraphPoint {
            node: node.into(),
            seq,
        }
    }

    fn branch(name: &str, base: i64, head: i64, parent: Option<&str>, status: &str) -> GraphBranch {
        GraphBranch {
            name: name.into(),
            status: status.into(),
            head: pt(&format!("{name}-h"), head),
            base: pt(&format!("base-{base}"), base),
            parent: parent.map(Into::into),
            created_at: String::new(),
        }
    }

    fn sample() -> BranchGraph {
        BranchGraph {
            branches: vec![
                branch("main", 0, 40, None, "open"),
                branch("sodium", 10, 30, Some("main"), "merged"),
                branch("dead <end>", 12, 15, Some("main"), "discarded"),
            ],
            merges: vec![GraphMerge {
                from: "sodium".into(),
                into: "main".into(),
                from_head: pt("sodium-h", 30),
                merge_node: pt("main-h", 40),
            }],
            checkpoints: vec![GraphCheckpoint {
                name: "before-heat".into(),
                node: pt("base-10", 10),
                branch: Some("main".into()),
                auto: false,
            }],
        }
    }

    #[test]
    fn a_discarded_branch_is_greyed_and_checkpoints_are_labelled_restore_links() {
        let svg = render(&sample(), "main", "/web/sessions/s1");
        assert!(
            svg.contains(r#"<g class="bg-branch bg-discarded" data-branch="dead &lt;end&gt;">"#)
        );
        assert!(svg.contains("(discarded)"));
        assert!(svg.contains(r#"data-restore="before-heat""#));
        assert!(svg.contains("⚑ before-heat"));
        assert!(svg.contains(r#"href="/web/sessions/s1?branch=sodium""#));
        assert!(svg.contains(r#"href="/web/sessions/s1?branch=main&amp;around=base%2D10""#));
        assert!(svg.contains("<title id=\"bg-title\">") && svg.contains("<desc id=\"bg-desc\">"));
        // The current head is marked, once.
        assert_eq!(
            svg.matches("bg-current").count(),
            2,
            "the style rule and the one head"
        );
        assert!(svg.contains(">current</text>"));
        assert_eq!(
            svg.matches("bg-merge").count(),
            2,
            "the style rule and one merge edge"
        );
        assert!(!svg.contains("<end>"), "names are escaped");
    }

    #[test]
    fn fifty_branches_lay_out_without_overlap() {
        let mut g = BranchGraph::default();
        g.branches.push(branch("main", 0, 100_000, None, "open"));
        for i in 1..50 {
            let parent = format!("b{}", i - 1);
            let parent = if i == 1 { "main".to_string() } else { parent };
            g.branches.push(branch(
                &format!("b{i}"),
                i * 1000,
                i * 1000 + 500,
                Some(&parent),
                if i % 7 == 0 { "discarded" } else { "open" },
            ));
            g.checkpoints.push(GraphCheckpoint {
                name: format!("checkpoint-number-{i}"),
                node: pt(&format!("b{i}-h"), i * 1000 + 500),
                branch: Some(format!("b{i}")),
                auto: false,
            });
            if i % 5 == 0 {
                g.merges.push(GraphMerge {
                    from: format!("b{i}"),
                    into: "main".into(),
                    from_head: pt(&format!("b{i}-h"), i * 1000 + 500),
                    merge_node: pt(&format!("m{i}"), i * 1000 + 600),
                });
            }
        }
        let l = layout(&g);
        let ys: BTreeSet<i64> = l.lanes.iter().map(|(y, _, _)| *y).collect();
        assert_eq!(ys.len(), 50, "one row per branch");
        let mut seen = BTreeSet::new();
        for p in &l.points {
            assert!(
                seen.insert((p.x, p.y)),
                "two points drawn at {:?}",
                (p.x, p.y)
            );
            assert!(p.x < l.width && p.y < l.height);
        }
        // Labels on a row never run into the next point on that row.
        for p in l.points.iter().filter(|p| !p.labels.is_empty()) {
            let end = p.x + 7 + text_w(&p.labels[0]);
            let next = l
                .points
                .iter()
                .filter(|o| o.y == p.y && o.x > p.x)
                .map(|o| o.x - 5)
                .min();
            assert!(
                next.is_none_or(|n| end <= n),
                "label at {} runs to {end}",
                p.x
            );
        }
        let svg = render(&g, "b3", "/p");
        assert_eq!(svg.matches("data-restore=").count(), 49);
        assert_eq!(svg.matches("<g class=\"bg-branch").count(), 50);
    }
}
