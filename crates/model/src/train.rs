//! Training of the sentiment weights (multinomial logistic regression, AdaGrad SGD, L2), as a
//! library so the `train_sentiment` example stays a thin argument parser and tests can train on
//! tiny constructed data. It uses the scorer's own [`featurize`], so training and scoring
//! features can never drift apart. Fully deterministic: fixed seed, one thread, fixed iteration
//! order, weights rounded to 4 decimals, so retraining reproduces the committed file byte for
//! byte (`crates/model/train.sh`).

use crate::metrics::Confusion;
use crate::sentiment::{DENSE_NAMES, HASH_BITS, Label, N_CLASSES, N_DENSE, WeightsFile, featurize};

const N_HASHED: usize = 1 << HASH_BITS;
const DIM: usize = N_HASHED + N_DENSE + 1;
const BIAS: usize = N_HASHED + N_DENSE;

/// Hyper-parameters. The field names and order appear (via `Debug`) in the weight file's
/// `notes`, so changing them changes the committed bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub epochs: usize,
    pub lr: f64,
    pub l2: f64,
    /// Class weight = (n / (3 * n_class))^power: 0 = unweighted, 1 = fully balanced.
    pub cw_power: f64,
    pub seed: u64,
    /// Return the mean of the weights at each epoch end (smoother than the last iterate).
    pub average: bool,
}

impl Default for Params {
    /// The committed model's hyper-parameters (chosen by [`grid_search`] on train only).
    fn default() -> Self {
        Self {
            epochs: 8,
            lr: 0.02,
            l2: 0.001,
            cw_power: 0.75,
            seed: 42,
            average: true,
        }
    }
}

/// One training row: sparse (feature index, value) pairs and the class index.
pub type Example = (Vec<(u32, f32)>, usize);

/// Dense model matrix, one row of class weights per feature (hashed, dense, bias).
pub type Matrix = Vec<[f64; N_CLASSES]>;

/// Featurizes one labelled text exactly as the scorer will.
pub fn to_example(text: &str, label: Label) -> Example {
    let f = featurize(text);
    let mut x: Vec<(u32, f32)> = f.hashed.iter().map(|h| (h.bucket, h.value)).collect();
    for (d, v) in f.dense.iter().enumerate() {
        if *v != 0.0 {
            // invariant: N_HASHED + N_DENSE < 2^32.
            x.push(((N_HASHED + d) as u32, *v));
        }
    }
    // invariant: BIAS < 2^32.
    x.push((BIAS as u32, 1.0));
    (x, label.index())
}

/// xorshift64*: tiny, deterministic, good enough to shuffle.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            // invariant: the remainder is <= i, a valid usize index.
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

fn logits(w: &[[f64; N_CLASSES]], x: &[(u32, f32)]) -> [f64; N_CLASSES] {
    let mut z = [0.0; N_CLASSES];
    for &(j, v) in x {
        let row = &w[j as usize];
        for c in 0..N_CLASSES {
            z[c] += row[c] * f64::from(v);
        }
    }
    z
}

fn softmax(z: [f64; N_CLASSES]) -> [f64; N_CLASSES] {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e = z.map(|v| (v - m).exp());
    let s: f64 = e.iter().sum();
    e.map(|v| v / s)
}

/// Trains on `data` and returns the full weight matrix.
pub fn train(data: &[&Example], p: Params) -> Matrix {
    let mut w = vec![[0.0f64; N_CLASSES]; DIM];
    let mut g2 = vec![[0.0f64; N_CLASSES]; DIM];
    let mut counts = [0usize; N_CLASSES];
    for (_, y) in data {
        counts[*y] += 1;
    }
    let n = data.len() as f64;
    let cw: Vec<f64> = counts
        .iter()
        .map(|&c| (n / (3.0 * (c.max(1) as f64))).powf(p.cw_power))
        .collect();
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut rng = Rng(p.seed | 1);
    let mut sum = vec![[0.0f64; N_CLASSES]; if p.average { DIM } else { 0 }];
    for _ in 0..p.epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            let (x, y) = data[i];
            let prob = softmax(logits(&w, x));
            let mut g = [0.0; N_CLASSES];
            for c in 0..N_CLASSES {
                g[c] = cw[*y] * (prob[c] - if c == *y { 1.0 } else { 0.0 });
            }
            for &(j, v) in x {
                let j = j as usize;
                let reg = if j == BIAS { 0.0 } else { p.l2 };
                for c in 0..N_CLASSES {
                    let grad = g[c] * f64::from(v) + reg * w[j][c];
                    g2[j][c] += grad * grad;
                    w[j][c] -= p.lr * grad / (g2[j][c].sqrt() + 1e-8);
                }
            }
        }
        for (s, r) in sum.iter_mut().zip(&w) {
            for c in 0..N_CLASSES {
                s[c] += r[c];
            }
        }
    }
    if p.average {
        let e = p.epochs.max(1) as f64;
        for r in &mut sum {
            for v in r.iter_mut() {
                *v /= e;
            }
        }
        return sum;
    }
    w
}

/// Arg-max over logits; ties resolve towards neutral, then bearish, like the scorer.
pub fn predict(w: &[[f64; N_CLASSES]], x: &[(u32, f32)]) -> Label {
    let z = logits(w, x);
    let mut best = 2;
    for c in [1, 0] {
        if z[c] > z[best] {
            best = c;
        }
    }
    Label::ALL[best]
}

/// k-fold cross-validation with a fixed fold assignment: pooled confusion and per-fold macro-F1.
pub fn cross_validate(data: &[Example], k: usize, p: Params) -> (Confusion, Vec<f64>) {
    cross_validate_errors(data, k, p, &mut |_, _| {})
}

/// Same as [`cross_validate`], calling `on_error(row, predicted)` for each held-out mistake.
pub fn cross_validate_errors(
    data: &[Example],
    k: usize,
    p: Params,
    on_error: &mut dyn FnMut(usize, Label),
) -> (Confusion, Vec<f64>) {
    let k = k.max(2);
    let mut idx: Vec<usize> = (0..data.len()).collect();
    Rng(0x5eed_cafe).shuffle(&mut idx);
    let mut total = Confusion::default();
    let mut per_fold = Vec::new();
    for fold in 0..k {
        let tr: Vec<&Example> = idx
            .iter()
            .enumerate()
            .filter(|(pos, _)| pos % k != fold)
            .map(|(_, &i)| &data[i])
            .collect();
        let w = train(&tr, p);
        let mut c = Confusion::default();
        for (pos, &i) in idx.iter().enumerate() {
            if pos % k == fold {
                let (x, y) = &data[i];
                let pred = predict(&w, x);
                if pred.index() != *y {
                    on_error(i, pred);
                }
                c.add(Label::ALL[*y], pred);
            }
        }
        per_fold.push(c.macro_f1());
        total.merge(&c);
    }
    (total, per_fold)
}

/// One line of a grid search.
#[derive(Debug, Clone, PartialEq)]
pub struct GridResult {
    pub params: Params,
    pub accuracy: f64,
    pub macro_f1: f64,
}

/// k-fold CV over the small grid the committed hyper-parameters were chosen from; returns every
/// point in a fixed order (best = highest `macro_f1`, first wins).
pub fn grid_search(data: &[Example], k: usize, base: Params) -> Vec<GridResult> {
    let mut out = Vec::new();
    for &(l2, average) in &[(1e-4, false), (1e-4, true), (1e-3, true), (3e-3, true)] {
        for &epochs in &[3usize, 5, 8, 12] {
            for &cw_power in &[0.25, 0.5, 0.75] {
                for &lr in &[0.02, 0.05, 0.1] {
                    let params = Params {
                        epochs,
                        lr,
                        l2,
                        cw_power,
                        average,
                        ..base
                    };
                    let (c, _) = cross_validate(data, k, params);
                    out.push(GridResult {
                        params,
                        accuracy: c.accuracy(),
                        macro_f1: c.macro_f1(),
                    });
                }
            }
        }
    }
    out
}

fn round4(v: f64) -> f32 {
    crate::hash::round4(v) as f32
}

/// Converts a trained matrix to the weight file, keeping only hashed rows seen in training with
/// a non-negligible weight (that is what keeps the file near 1 MB instead of 2^18 rows).
pub fn export(w: &[[f64; N_CLASSES]], seen: &[bool], version: &str, notes: String) -> WeightsFile {
    let mut hashed = Vec::new();
    for (b, row) in w.iter().take(N_HASHED).enumerate() {
        if seen.get(b).copied().unwrap_or(false) && row.iter().any(|v| v.abs() >= 5e-4) {
            // invariant: b < 2^18.
            hashed.push((b as u32, round4(row[0]), round4(row[1]), round4(row[2])));
        }
    }
    let row = |i: usize| w.get(i).copied().unwrap_or([0.0; N_CLASSES]);
    let bias = row(BIAS);
    WeightsFile {
        version: version.to_string(),
        hash_bits: HASH_BITS,
        dense_names: DENSE_NAMES.iter().map(|s| s.to_string()).collect(),
        bias: [round4(bias[0]), round4(bias[1]), round4(bias[2])],
        dense: (0..N_DENSE)
            .map(|d| {
                let r = row(N_HASHED + d);
                [round4(r[0]), round4(r[1]), round4(r[2])]
            })
            .collect(),
        hashed,
        notes,
    }
}

/// A trained model ready to write, with its cross-validation score.
#[derive(Debug, Clone)]
pub struct Trained {
    pub file: WeightsFile,
    pub cv: Confusion,
}

impl Trained {
    /// The exact bytes `weights/sentiment_weights.json` holds (compact JSON plus a newline).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        Ok(serde_json::to_string(&self.file)? + "\n")
    }
}

/// Trains the shipped model: k-fold CV for the record, then a fit on all rows. `source` names
/// the training file in the notes (file name only, so the bytes do not depend on where the data
/// lives).
pub fn train_model(
    rows: &[(Label, String)],
    p: Params,
    folds: usize,
    version: &str,
    source: &str,
) -> Trained {
    let data: Vec<Example> = rows.iter().map(|(l, t)| to_example(t, *l)).collect();
    let (cv, _) = cross_validate(&data, folds, p);
    let all: Vec<&Example> = data.iter().collect();
    let w = train(&all, p);
    let mut seen = vec![false; N_HASHED];
    for (x, _) in &data {
        for &(j, _) in x {
            if let Some(s) = seen.get_mut(j as usize) {
                *s = true;
            }
        }
    }
    let notes = format!(
        "trained on {} rows of {} with {:?}; {}-fold CV accuracy {:.4} macro_f1 {:.4}",
        data.len(),
        source.rsplit('/').next().unwrap_or(source),
        p,
        folds.max(2),
        cv.accuracy(),
        cv.macro_f1()
    );
    Trained {
        file: export(&w, &seen, version, notes),
        cv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<(Label, String)> {
        let mut r = Vec::new();
        for i in 0..6 {
            r.push((
                Label::Bullish,
                format!("Profit rose strongly in quarter {i}"),
            ));
            r.push((
                Label::Bearish,
                format!("Losses widened badly in quarter {i}"),
            ));
            r.push((Label::Neutral, format!("The meeting is held in room {i}")));
        }
        r
    }

    #[test]
    fn training_is_deterministic_and_learns() {
        let a = train_model(&rows(), Params::default(), 3, "t", "/x/y.tsv");
        let b = train_model(&rows(), Params::default(), 3, "t", "y.tsv");
        assert_eq!(a.to_json().unwrap(), b.to_json().unwrap());
        assert!(a.cv.accuracy() > 0.9, "{}", a.cv.report());
        assert!(a.file.notes.contains("of y.tsv"));
        assert!(WeightsFile::parse(&a.to_json().unwrap()).is_ok());
    }
}
