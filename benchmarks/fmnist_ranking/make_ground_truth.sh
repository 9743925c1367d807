#!/usr/bin/env bash
# Generates (or resumes) the Fashion-MNIST ranking ground truth: 40 archs with seed 0, the
# first 15 (archs_seed1.txt) again with seed 1. Resumable per arch: rerun after an interruption.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
$PY bin/train --stage=standalone --config=configs/fmnist_ranking.py \
  --workdir=benchmarks/fmnist_ranking --codes=benchmarks/fmnist_ranking/archs.txt
$PY bin/train --stage=standalone --config=configs/fmnist_ranking.py \
  --config.standalone.seed=1 \
  --workdir=benchmarks/fmnist_ranking --codes=benchmarks/fmnist_ranking/archs_seed1.txt
