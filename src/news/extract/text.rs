//! Text helpers shared by the extractor's stages: whitespace collapsing, the block-aware text
//! accumulator the renderer writes into, and the word overlap used to compare candidate texts.

/// Collapses all whitespace runs to one space and trims.
pub fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Share of `a`'s lower-cased words that also occur in `b`.
pub(super) fn word_overlap(a: &str, b: &str) -> f32 {
    let split = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let (wa, wb) = (split(a), split(b));
    if wa.is_empty() {
        return 0.0;
    }
    let set: std::collections::HashSet<&str> = wb.iter().map(String::as_str).collect();
    wa.iter().filter(|w| set.contains(w.as_str())).count() as f32 / wa.len() as f32
}

/// Text accumulator: collapses whitespace and separates blocks.
#[derive(Default)]
pub(super) struct Out {
    s: String,
    space: bool,
    brk: u8,
}

impl Out {
    pub(super) fn text(&mut self, t: &str) {
        for c in t.chars() {
            if c.is_whitespace() {
                self.space = true;
                continue;
            }
            if !self.s.is_empty() {
                if self.brk >= 2 {
                    self.s.push_str("\n\n");
                } else if self.brk == 1 {
                    self.s.push('\n');
                } else if self.space {
                    self.s.push(' ');
                }
            }
            self.brk = 0;
            self.space = false;
            self.s.push(c);
        }
    }

    pub(super) fn brk(&mut self, n: u8) {
        self.brk = self.brk.max(n);
    }

    pub(super) fn finish(self) -> String {
        self.s
    }
}
