#!/bin/sh
# Reproduces model/pba-lstm.onnx, model/pba-lstm.json and test/fixtures/lstm-reference.json.
# PyPI is not reachable here, so the training uses Debian's PyTorch 1.13 / ONNX / NumPy.
set -eu
cd "$(dirname "$0")/.."
if ! /usr/bin/python3 -c "import torch, onnx, numpy" 2>/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-torch python3-onnx python3-numpy
fi
/usr/bin/python3 training/train.py
/usr/bin/python3 training/make_fixtures.py
cp model/pba-lstm.json test/fixtures/nan-model.json
# The JSON the scripts write, in the repository's format (biome ci checks these files).
if [ -x ../../node_modules/.bin/biome ]; then
  ../../node_modules/.bin/biome format --write model/pba-lstm.json test/fixtures/lstm-reference.json test/fixtures/nan-model.json
fi
