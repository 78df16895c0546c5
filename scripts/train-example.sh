#!/usr/bin/env bash
# Trains models/examples/brown-llama.gguf from scratch with llmc alone (`npm run train-example`):
# the Brown corpus as plain text, a 4096-token SentencePiece vocabulary trained on it, then the
# model itself on WebGPU (llvmpipe on a machine without a GPU), then its perplexity on held-out text.
# 10–14 minutes on 2 cores (docs/training.md). STEPS=N shortens or lengthens the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export EGL_PLATFORM="${EGL_PLATFORM:-surfaceless}"
work="${WORK:-build/brown}"
out="${OUT:-models/examples/brown-llama.gguf}"
mkdir -p "$work"

node scripts/brown-text.mjs "$work/brown.txt"
# The last 5% of paragraphs are held out: training never sees them; the first 200 of them ship
# beside the model as the text its perplexity is measured on.
total=$(wc -l < "$work/brown.txt")
held=$((total / 20))
head -n $((total - held)) "$work/brown.txt" > "$work/train.txt"
sed -n "$((total - held + 1)),$((total - held + 200))p" "$work/brown.txt" > "${out%.gguf}.val.txt"

./bin/llmc tokenizer train --kind sentencepiece --vocab-size 4096 "$work/train.txt" -o "$work/tokenizer.json"
./bin/llmc train models/examples/brown-llama.llm --tokenizer "$work/tokenizer.json" --data "$work/train.txt" \
  --steps "${STEPS:-900}" --batch 8 --context 128 --optimizer adamw --lr 5e-3 --schedule cosine --warmup 60 \
  --min-lr 5e-4 --weight-decay 0.1 --clip 1.0 --val-fraction 0.02 --eval-every 100 --eval-batches 2 --seed 0 \
  --backend "${BACKEND:-auto}" -o "$out"
./bin/llmc eval "$out" --data "${out%.gguf}.val.txt"
