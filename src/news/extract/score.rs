//! Readability-style scoring on the arena: subtree statistics, candidate scores propagated to
//! ancestors and weighted by hints and link density, conditional cleaning of the chosen content,
//! and rendering it to text.

use super::BodyImage;
use super::arena::{ANode, Arena, MAX_DEPTH, NONE, Tag};
use super::hints::{DEBUG, PROMO};
use super::text::Out;

/// Subtree statistics, computed per pass because removed nodes must not count
/// (a sidebar's links would otherwise inflate its container's link density).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Stats {
    pub(super) text_len: u32,
    pub(super) link_len: u32,
    pub(super) commas: u32,
    /// Text directly in this element or in inline descendants (not under a
    /// nested block).
    pub(super) inline_len: u32,
    pub(super) inline_commas: u32,
    pub(super) p_count: u32,
    pub(super) img_count: u32,
    pub(super) li_count: u32,
    pub(super) heading_len: u32,
    pub(super) time_count: u32,
    pub(super) has_block_child: bool,
}

impl Stats {
    pub(super) fn link_density(&self) -> f32 {
        if self.text_len == 0 {
            0.0
        } else {
            self.link_len as f32 / self.text_len as f32
        }
    }
}

impl Arena {
    pub(super) fn compute_stats(&self, removed: Option<&[bool]>) -> Vec<Stats> {
        let mut drop = removed.map_or_else(|| vec![false; self.nodes.len()], <[bool]>::to_vec);
        self.stats_bottom_up(&mut drop, |_, _, _| false)
    }

    /// Bottom-up statistics over the nodes not in `drop`. `decide` may drop a
    /// node after its (already cleaned) subtree statistics are known, so inner
    /// link lists disappear before their container's link density is judged.
    pub(super) fn stats_bottom_up(
        &self,
        drop: &mut [bool],
        mut decide: impl FnMut(usize, &ANode, &Stats) -> bool,
    ) -> Vec<Stats> {
        let mut st = vec![Stats::default(); self.nodes.len()];
        for i in (0..self.nodes.len()).rev() {
            let nd = &self.nodes[i];
            let (tag, parent) = (nd.tag, nd.parent);
            if tag == Tag::Text {
                let t = nd.text.trim();
                let len = t.len() as u32;
                let commas = t.matches(',').count() as u32;
                let n = &mut st[i];
                n.text_len = len;
                n.inline_len = len;
                n.commas = commas;
                n.inline_commas = commas;
            } else {
                let n = &mut st[i];
                match tag {
                    Tag::A => n.link_len = n.text_len,
                    Tag::P => n.p_count += 1,
                    // Text-only divs are paragraphs on many CMSs.
                    Tag::Div | Tag::Block | Tag::Section
                        if !n.has_block_child && n.text_len >= 25 =>
                    {
                        n.p_count += 1
                    }
                    Tag::Img => n.img_count += 1,
                    Tag::Li => n.li_count += 1,
                    Tag::Time => n.time_count += 1,
                    _ => {}
                }
                if tag.is_heading() {
                    n.heading_len = n.text_len;
                }
            }
            if nd.hidden {
                drop[i] = true;
            }
            if !drop[i] && decide(i, nd, &st[i]) {
                drop[i] = true;
            }
            if parent == NONE || drop[i] {
                continue;
            }
            let c = st[i];
            let p = &mut st[parent];
            p.text_len += c.text_len;
            p.link_len += c.link_len;
            p.commas += c.commas;
            p.p_count += c.p_count;
            p.img_count += c.img_count;
            p.li_count += c.li_count;
            p.heading_len += c.heading_len;
            p.time_count += c.time_count;
            if tag.is_inline() {
                p.inline_len += c.inline_len;
                p.inline_commas += c.inline_commas;
            } else {
                p.has_block_child = true;
            }
        }
        st
    }

    /// Drop mask for rendering: the pass's removals plus conditional cleaning.
    pub(super) fn clean_mask(
        &self,
        removed: &[bool],
        scores: Option<(&[f32], &[bool])>,
    ) -> Vec<bool> {
        let mut drop = removed.to_vec();
        let debug = *DEBUG;
        self.stats_bottom_up(&mut drop, |i, nd, sn| {
            let k = keep_node(i, nd, sn, scores)
                && !self.is_bare_link_block(i, nd, sn)
                && !self.is_promo_block(i, nd, sn);
            if debug && !k && sn.text_len > 100 {
                eprintln!(
                    "clean {i} {:?} [{}] len {} ld {:.2}",
                    nd.tag,
                    nd.label,
                    sn.text_len,
                    sn.link_density()
                );
            }
            !k
        });
        drop
    }

    /// A paragraph that is only a URL, e-mail address or handle path
    /// ("https://site/article.php", "name@paper.com", "twitter.com/name"):
    /// share/contact furniture, never prose.
    pub(super) fn is_bare_link_block(&self, i: usize, nd: &ANode, sn: &Stats) -> bool {
        if nd.tag.is_inline() || sn.has_block_child || sn.text_len == 0 || sn.text_len > 300 {
            return false;
        }
        let t = self.text_of(i);
        let t = t.trim();
        !t.contains(char::is_whitespace)
            && t.contains('.')
            && (t.starts_with("http")
                || t.starts_with("www.")
                || t.contains('@')
                || t.contains('/'))
    }

    /// A short paragraph that opens with a call to action ("Sign up for our
    /// newsletter", "Follow us on ...", "Read more: ..."): publisher promos
    /// inserted into the article flow without a telling class name.
    pub(super) fn is_promo_block(&self, i: usize, nd: &ANode, sn: &Stats) -> bool {
        if nd.tag.is_inline() || sn.has_block_child || sn.text_len == 0 || sn.text_len > 220 {
            return false;
        }
        PROMO.is_match(self.text_of(i).trim_start())
    }

    pub(super) fn text_of(&self, idx: usize) -> String {
        let mut out = Out::default();
        let mut imgs = Vec::new();
        self.render(idx, None, &mut out, &mut imgs);
        out.finish()
    }

    pub(super) fn parent_of(&self, i: usize) -> usize {
        self.nodes.get(i).map_or(NONE, |n| n.parent)
    }

    /// Readability-style candidate selection and rendering.
    pub(super) fn extract(&self, strict: bool) -> (String, Vec<BodyImage>) {
        let n = self.nodes.len();
        let removed = self.removed_mask(strict);
        let st = self.compute_stats(Some(&removed));
        let mut score = vec![0f32; n];
        let mut init = vec![false; n];
        for i in 0..n {
            if removed[i] {
                continue;
            }
            let nd = &self.nodes[i];
            let sn = &st[i];
            let (len, commas, anchor) = match nd.tag {
                Tag::P | Tag::Pre | Tag::Td | Tag::H2 | Tag::Hn | Tag::Blockquote => {
                    (sn.text_len, sn.commas, nd.parent)
                }
                Tag::Div | Tag::Section | Tag::Article | Tag::Main | Tag::Block
                    if !sn.has_block_child =>
                {
                    (sn.text_len, sn.commas, nd.parent)
                }
                Tag::Div | Tag::Section | Tag::Article | Tag::Main | Tag::Block | Tag::Body => {
                    (sn.inline_len, sn.inline_commas, i)
                }
                _ => continue,
            };
            if len < 25 || nd.hidden {
                continue;
            }
            let s = 1.0 + commas as f32 + (len as f32 / 100.0).floor().min(3.0);
            let mut anc = anchor;
            let mut level = 0usize;
            while anc != NONE && level < 5 {
                if !init[anc] {
                    init[anc] = true;
                    score[anc] = self.init_score(anc);
                }
                let div = match level {
                    0 => 1.0,
                    1 => 2.0,
                    l => l as f32 * 3.0,
                };
                score[anc] += s / div;
                anc = self.nodes[anc].parent;
                level += 1;
            }
        }
        for i in 0..n {
            if init[i] {
                score[i] *= 1.0 - st[i].link_density();
            }
        }
        let mut cands: Vec<usize> = (0..n).filter(|&i| init[i] && !removed[i]).collect();
        cands.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
        let Some(&first) = cands.first() else {
            return (String::new(), Vec::new());
        };
        let mut top = first;
        // Several strong candidates sharing an ancestor: the article is split
        // (e.g. by ad slots) and the ancestor is the real container.
        let top_score = score[top];
        let alts: Vec<usize> = cands
            .iter()
            .skip(1)
            .take(4)
            .copied()
            .filter(|&c| score[c] / top_score >= 0.75)
            .collect();
        if alts.len() >= 3 {
            let mut p = self.parent_of(top);
            while p != NONE && self.nodes[p].tag != Tag::Body {
                let cnt = alts.iter().filter(|&&c| self.is_ancestor(p, c)).count();
                if cnt >= 3 {
                    top = p;
                    break;
                }
                p = self.parent_of(p);
            }
        }
        // Walk up while the parent scores higher (content split into blocks).
        let mut last = score[top];
        let threshold = last / 3.0;
        let mut p = self.parent_of(top);
        while p != NONE && self.nodes[p].tag != Tag::Body {
            if !init[p] {
                p = self.parent_of(p);
                continue;
            }
            if score[p] < threshold {
                break;
            }
            if score[p] > last {
                top = p;
                break;
            }
            last = score[p];
            p = self.parent_of(p);
        }
        // A lone child says nothing; its parent is the container.
        loop {
            let p = self.parent_of(top);
            if p == NONE || self.nodes[p].tag == Tag::Body {
                break;
            }
            let elems = self.nodes[p]
                .children
                .iter()
                .filter(|&&c| self.nodes[c].tag != Tag::Text)
                .count();
            if elems != 1 {
                break;
            }
            top = p;
        }
        let top_score = if init[top] { score[top] } else { top_score };
        // Sibling join.
        let mut picked = Vec::new();
        let parent = self.parent_of(top);
        if parent == NONE {
            picked.push(top);
        } else {
            let thr = (top_score * 0.2).max(10.0);
            let top_class = self.nodes[top].class_hash;
            for &s in &self.nodes[parent].children {
                if s == top {
                    picked.push(s);
                    continue;
                }
                if removed[s] || self.nodes[s].tag == Tag::Text {
                    continue;
                }
                let sn = &self.nodes[s];
                let ss = &st[s];
                let bonus = if top_class != 0 && sn.class_hash == top_class {
                    top_score * 0.2
                } else {
                    0.0
                };
                if init[s] && score[s] + bonus >= thr {
                    picked.push(s);
                } else if sn.tag == Tag::P
                    || (matches!(sn.tag, Tag::Div | Tag::Section | Tag::Block)
                        && !ss.has_block_child)
                {
                    // Readability turns text-only divs into paragraphs; they
                    // join like paragraphs (ledes, summaries).

                    let ld = ss.link_density();
                    let len = ss.text_len;
                    if (len > 80 && ld < 0.25)
                        || (len > 0 && len <= 80 && ld == 0.0 && self.ends_sentence(s))
                    {
                        picked.push(s);
                    }
                }
            }
        }
        if *DEBUG {
            for &c in cands.iter().take(8) {
                eprintln!(
                    "cand {c} {:?} [{}] score {:.1} len {} ld {:.2}",
                    self.nodes[c].tag,
                    self.nodes[c].label,
                    score[c],
                    st[c].text_len,
                    st[c].link_density()
                );
            }
            for &p in &picked {
                eprintln!(
                    "picked {p} {:?} [{}]",
                    self.nodes[p].tag, self.nodes[p].label
                );
            }
        }
        let clean = self.clean_mask(&removed, Some((&score, &init)));
        let mut out = Out::default();
        let mut images = Vec::new();
        for &p in &picked {
            self.render(p, Some(&clean), &mut out, &mut images);
            out.brk(2);
        }
        (out.finish(), images)
    }

    pub(super) fn ends_sentence(&self, i: usize) -> bool {
        let t = self.text_of(i);
        let t = t.trim_end();
        t.ends_with('.') || t.contains(". ")
    }

    pub(super) fn is_ancestor(&self, anc: usize, mut node: usize) -> bool {
        let mut steps = 0;
        while node != NONE && steps < MAX_DEPTH + 2 {
            if node == anc {
                return true;
            }
            node = self.nodes[node].parent;
            steps += 1;
        }
        false
    }

    pub(super) fn init_score(&self, i: usize) -> f32 {
        let nd = &self.nodes[i];
        let base = match nd.tag {
            Tag::Div | Tag::Article | Tag::Section | Tag::Main => 5.0,
            Tag::Pre | Tag::Td | Tag::Blockquote => 3.0,
            Tag::Address
            | Tag::Ol
            | Tag::Ul
            | Tag::Dl
            | Tag::Dd
            | Tag::Dt
            | Tag::Li
            | Tag::Form => -3.0,
            Tag::H1 | Tag::H2 | Tag::Hn | Tag::Th => -5.0,
            _ => 0.0,
        };
        base + nd.weight as f32
    }

    /// Nodes dropped before scoring: hidden ones and, in strict mode, those
    /// whose class/id marks them as boilerplate. Inherited by descendants.
    pub(super) fn removed_mask(&self, strict: bool) -> Vec<bool> {
        let mut m = vec![false; self.nodes.len()];
        for i in 0..self.nodes.len() {
            let nd = &self.nodes[i];
            let inherited = nd.parent != NONE && m[nd.parent];
            // The root (the document, or a selector's match) is never removed.
            m[i] = i != 0
                && (inherited
                    || nd.hidden
                    || (strict && nd.unlikely)
                    || (strict && matches!(nd.tag, Tag::Nav | Tag::Footer | Tag::Aside)));
        }
        m
    }

    /// Renders text of the subtree at `root` into `out`, skipping nodes the
    /// cleaner rejects. Iterative; emits paragraph breaks around blocks.
    pub(super) fn render(
        &self,
        root: usize,
        drop: Option<&[bool]>,
        out: &mut Out,
        images: &mut Vec<BodyImage>,
    ) {
        enum Ev {
            Enter(usize),
            Exit(usize),
        }
        let mut stack = vec![Ev::Enter(root)];
        while let Some(ev) = stack.pop() {
            match ev {
                Ev::Enter(i) => {
                    let nd = &self.nodes[i];
                    if nd.tag == Tag::Text {
                        out.text(&nd.text);
                        continue;
                    }
                    if i != root && (nd.hidden || drop.is_some_and(|d| d[i])) {
                        continue;
                    }
                    match nd.tag {
                        Tag::Br => {
                            out.brk(1);
                            continue;
                        }
                        Tag::Img => {
                            if let Some(img) = &nd.img
                                && images.len() < 200
                            {
                                images.push(img.clone());
                            }
                            continue;
                        }
                        t if !t.is_inline() => out.brk(2),
                        _ => {}
                    }
                    stack.push(Ev::Exit(i));
                    for &c in nd.children.iter().rev() {
                        stack.push(Ev::Enter(c));
                    }
                }
                Ev::Exit(i) => {
                    if !self.nodes[i].tag.is_inline() {
                        out.brk(2);
                    }
                }
            }
        }
    }
}

/// Page furniture longer than this is kept (it is probably mislabelled content).
const FURNITURE_MAX: u32 = 250;
const LINK_ONLY_P: bool = true;

/// Whether a node inside the chosen content survives cleaning, judged on its
/// already-cleaned subtree statistics (Readability's `_cleanConditionally`).
fn keep_node(i: usize, nd: &ANode, sn: &Stats, scores: Option<(&[f32], &[bool])>) -> bool {
    if nd.furniture && sn.text_len < FURNITURE_MAX {
        return false;
    }
    // Datelines: a short block around a <time>.
    if sn.time_count > 0 && sn.text_len < 100 && !nd.tag.is_inline() {
        return false;
    }
    match nd.tag {
        Tag::H1 | Tag::Nav | Tag::Figcaption => false,
        Tag::P if LINK_ONLY_P && sn.text_len > 0 && sn.link_density() > 0.8 => false,
        Tag::H2 | Tag::Hn => !(nd.weight < 0 || sn.link_density() > 0.5),
        Tag::Div
        | Tag::Section
        | Tag::Ul
        | Tag::Ol
        | Tag::Table
        | Tag::Form
        | Tag::Aside
        | Tag::Header
        | Tag::Footer
        | Tag::Figure
        | Tag::Block
        | Tag::Dl => keep_conditional(i, nd, sn, scores),
        _ => true,
    }
}

fn keep_conditional(i: usize, nd: &ANode, sn: &Stats, scores: Option<(&[f32], &[bool])>) -> bool {
    let weight = nd.weight as f32;
    let score = match scores {
        Some((s, init)) if init[i] => s[i],
        _ => 0.0,
    };
    if weight + score < 0.0 {
        return false;
    }
    if sn.commas >= 10 {
        return true;
    }
    let is_list = matches!(nd.tag, Tag::Ul | Tag::Ol | Tag::Dl);
    let p = sn.p_count as f32;
    let img = sn.img_count as f32;
    let ld = sn.link_density();
    let len = sn.text_len;
    let heading_density = if len == 0 {
        0.0
    } else {
        sn.heading_len as f32 / len as f32
    };
    let remove = (img > 1.0 && p / img < 0.5 && len < 250 && nd.tag != Tag::Figure)
        || (!is_list
            && heading_density < 0.9
            && len < 25
            && (sn.img_count == 0 || sn.img_count > 2)
            && nd.tag != Tag::Figure)
        || (!is_list && weight < 25.0 && ld > 0.2)
        || (weight >= 25.0 && ld > 0.5)
        || (is_list && ld > 0.5);
    !remove
}
