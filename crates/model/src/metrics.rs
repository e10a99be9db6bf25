//! Classification metrics, shared by the trainer and the evaluation so both report the same
//! numbers the same way.

use crate::sentiment::Label;
use std::fmt::Write as _;

/// Confusion matrix indexed `[gold][predicted]` in [`Label::index`] order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Confusion {
    pub m: [[u64; 3]; 3],
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

impl Confusion {
    pub fn add(&mut self, gold: Label, pred: Label) {
        self.m[gold.index()][pred.index()] += 1;
    }

    pub fn merge(&mut self, other: &Confusion) {
        for g in 0..3 {
            for p in 0..3 {
                self.m[g][p] += other.m[g][p];
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.m.iter().flatten().sum()
    }

    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..3).map(|i| self.m[i][i]).sum();
        ratio(correct, self.total())
    }

    pub fn class(&self, l: Label) -> ClassScores {
        let i = l.index();
        let tp = self.m[i][i];
        let predicted: u64 = (0..3).map(|g| self.m[g][i]).sum();
        let support: u64 = self.m[i].iter().sum();
        let precision = ratio(tp, predicted);
        let recall = ratio(tp, support);
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        ClassScores {
            precision,
            recall,
            f1,
            support,
        }
    }

    pub fn macro_f1(&self) -> f64 {
        Label::ALL.iter().map(|&l| self.class(l).f1).sum::<f64>() / 3.0
    }

    /// Human-readable report: accuracy, per-class P/R/F1, macro-F1, confusion matrix.
    pub fn report(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "n={} accuracy={:.4} macro_f1={:.4}",
            self.total(),
            self.accuracy(),
            self.macro_f1()
        );
        let _ = writeln!(
            s,
            "{:<8} {:>9} {:>9} {:>9} {:>8}",
            "class", "precision", "recall", "f1", "support"
        );
        for l in Label::ALL {
            let c = self.class(l);
            let _ = writeln!(
                s,
                "{:<8} {:>9.4} {:>9.4} {:>9.4} {:>8}",
                l.as_str(),
                c.precision,
                c.recall,
                c.f1,
                c.support
            );
        }
        let _ = writeln!(s, "confusion [gold][pred] (bull, bear, neut): {:?}", self.m);
        s
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_f1_of_perfect_and_empty() {
        let mut c = Confusion::default();
        for l in Label::ALL {
            c.add(l, l);
        }
        assert!((c.macro_f1() - 1.0).abs() < 1e-12);
        assert_eq!(Confusion::default().macro_f1(), 0.0);
    }
}
