#!/usr/bin/env bash
# Regenerates crates/model/weights/sentiment_weights.json from the PhraseBank train split (deterministic:
# fixed seed, single thread, weights rounded to 4 decimals: a rerun is byte-identical, which
# `git diff --exit-code crates/model/weights/` checks). Hyper-parameters were chosen by `--grid` 5-fold CV on
# train only. After retraining on other data or parameters, bump SentimentModel::VERSION and
# pass the same string as VERSION (a unit test ties the two together).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA="${DATA:-../shared/data/news/sentiment/financial_phrasebank.train.tsv}"
VERSION="${VERSION:-nlpsent-lr-2026.1}"
PARAMS=(--epochs 8 --lr 0.02 --l2 0.001 --cw 0.75 --average 1 --seed 42 --folds 5)
nice -n 5 cargo run --release --quiet -p tradepipe-model --example train_sentiment -- \
  --train "$DATA" --out crates/model/weights/sentiment_weights.json --version "$VERSION" "${PARAMS[@]}"
