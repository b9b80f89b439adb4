#!/usr/bin/env bash
# Reproduce the bundled model (models/default/) from nothing: every dataset, training stage and
# selection, in the order they were made (docs/model-history.md says why each). About 23 hours
# of training on 2 CPU cores (19.3 for the bundled model's own line of stages, the rest for
# stages tried and not shipped; stage 22 took 11 minutes on one GPU), 80 minutes of pyxtal and
# 119 minutes of fast generation. Datasets and models go to work/ unless XRD_DATASETS_DIR and
# XRD_MODELS_DIR say otherwise; the last steps copy the final stage to models/default/ and
# measure it. Every command here is checked against the CLI by
# tests/scripts/test_reproduce_default_model.py.
#
# usage (from anywhere, after `make .venv/.requirements-installed`):
#   bash scripts/reproduce_default_model.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export XRD_DATASETS_DIR="${XRD_DATASETS_DIR:-work/datasets}" XRD_MODELS_DIR="${XRD_MODELS_DIR:-work/models}"
python() { "${PYTHON:-.venv/bin/python}" "$@"; }

python -m core generate --name train_v1 --total 16000 --minimum 20 --seed 1 --chunk 1000 --limit 1000
python -m core generate --name train_v1 --total 15000 --minimum 20 --seed 2 --chunk 1000 --limit 13000 --append
python -m core generate --name train_v2 --total 14000 --minimum 10 --seed 3 --chunk 1000 --processes 2
python -m core generate --name train_v3 --total 80000 --minimum 60 --seed 4 --engine fast --chunk 10000
python -m core generate --name train_v3 --total 80000 --minimum 60 --seed 5 --engine fast --chunk 10000 --append
python -m core train --name stage1 --dataset train_v1 --model resnet1d \
    --hyperparameters '{"width": 32, "kernel": 5}' --epochs 16 --steps 500 --batch-size 128 \
    --learning-rate 1e-3 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5}' --patience 40 --seed 0
python -m core train --name stage2 --dataset train_v2 --model resnet1d --init-from stage1 \
    --epochs 20 --steps 500 --batch-size 128 \
    --learning-rate 5e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5}' --patience 40 --seed 1
python -m core train --name stage3 --dataset train_v3 --model resnet1d --init-from stage2 \
    --epochs 36 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 5e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5}' --patience 100 --seed 2
python -m core train --name stage4 --dataset train_v3 --model resnet1d --init-from stage3 \
    --epochs 34 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 4e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5}' --patience 100 --seed 3
# larger, COD-like cells
python -m core generate --name train_v4 --total 70000 --minimum 40 --seed 6 --engine fast --sites cod --max-atoms 160 --chunk 10000
python -m core generate --name train_v4 --total 40000 --minimum 20 --seed 7 --engine fast --sites cod --max-atoms 160 --chunk 10000 --append
python -m core train --name stage5 --dataset train_v4 --model resnet1d --init-from stage4 \
    --epochs 34 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 4e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5}' --patience 100 --seed 4
python -m core train --name stage6 --dataset train_v3 train_v4 --model resnet1d --init-from stage5 \
    --epochs 31 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 3e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5}' --patience 100 --seed 5
python -m core train --name stage7 --dataset train_v3 train_v4 --model resnet1d --init-from stage6 \
    --hyperparameters '{"dropout": 0.1}' --epochs 26 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 3e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5}' --patience 100 --seed 7
python -m core train --name stage8 --dataset train_v3 train_v4 --model resnet1d --init-from stage7 \
    --hyperparameters '{"dropout": 0.0}' --epochs 24 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 3e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5}' --patience 100 --seed 8
python -m core train --name stage9 --dataset train_v3 train_v4 --model resnet1d --init-from stage8 \
    --hyperparameters '{"dropout": 0.0}' --epochs 16 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 3e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 9
# COD's site counts for each crystal system
python -m core generate --name train_v5 --total 40000 --minimum 20 --seed 11 --engine fast --sites cod-system --max-atoms 160 --chunk 10000
python -m core train --name stage10 --dataset train_v4 train_v5 --model resnet1d --init-from stage9 \
    --hyperparameters '{"dropout": 0.0}' --epochs 20 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 3e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 10
# ... and the Wyckoff positions COD's structures of each crystal system use
python -m core generate --name train_v6 --total 60000 --minimum 20 --seed 12 --engine fast --sites cod-system --positions cod-system --max-atoms 160 --chunk 15000
python -m core train --name stage11 --dataset train_v5 train_v6 --model resnet1d --init-from stage10 \
    --hyperparameters '{"dropout": 0.0}' --epochs 20 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 3e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 11
python -m core generate --name train_v7 --total 40000 --minimum 20 --seed 13 --engine fast --sites cod-system --positions cod-system --max-atoms 160 --chunk 10000
python -m core train --name stage12 --dataset train_v6 train_v7 --model resnet1d --init-from stage11 \
    --hyperparameters '{"dropout": 0.0}' --epochs 10 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 1.5e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 12
# ... and COD's atoms per cell (stage 13 on these alone; stage 14 adds crystals made like train_v7)
python -m core generate --name train_v8 --total 60000 --minimum 20 --seed 14 --engine fast --sites cod-cells --positions cod-system --max-atoms 160 --chunk 15000
python -m core train --name stage13 --dataset train_v8 --model resnet1d --init-from stage12 \
    --hyperparameters '{"dropout": 0.0}' --epochs 20 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 3e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 13
python -m core generate --name train_v9 --total 36000 --minimum 10 --seed 17 --engine fast --sites cod-system --positions cod-system --max-atoms 160 --chunk 12000
python -m core train --name stage14 --dataset train_v8 train_v9 --model resnet1d --init-from stage13 \
    --hyperparameters '{"dropout": 0.0}' --epochs 8 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 1.5e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 14
# selection sets that no stage trains on: made like train_v7, and by pyxtal with COD's cell sizes
python -m core generate --name fast_v7like --total 2000 --minimum 2 --seed 16 --engine fast --sites cod-system --positions cod-system --max-atoms 160 --processes 1
python -m core generate --name pyx_v8 --total 1500 --minimum 2 --seed 15 --engine pyxtal --sites cod-cells --positions cod-system --max-atoms 160 --processes 1
# near-grid crystals (pseudo-symmetry); stage 15 trained on them was not shipped
python -m core generate --name train_v10 --total 60000 --minimum 20 --seed 18 --engine fast --sites cod-cells --positions cod-system --max-atoms 160 --pseudo-symmetry 1 --chunk 15000
python -m core train --name stage15 --dataset train_v10 train_v8 train_v9 --model resnet1d --init-from stage14 \
    --hyperparameters '{"dropout": 0.0}' --epochs 12 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 1.5e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 15
# stages 16 (a lattice-aware loss) and 17 (two extra blocks) from stage 14, and 18 (both) from 17; none shipped
python -m core train --name stage16 --dataset train_v8 train_v9 --model resnet1d --init-from stage14 \
    --hyperparameters '{"dropout": 0.0}' --epochs 8 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 1.5e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 16 --lattice-loss-weight 0.5
python -m core train --name stage17 --dataset train_v8 train_v9 --model resnet1d --init-from stage14 \
    --hyperparameters '{"dropout": 0.0, "extra_blocks": 2}' --epochs 10 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 3e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 17
python -m core train --name stage18 --dataset train_v10 train_v8 train_v9 --model resnet1d --init-from stage17 \
    --hyperparameters '{"dropout": 0.0}' --epochs 8 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 1.5e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 19 --lattice-loss-weight 0.5
# stage 19 (shipped): stage 14 grown with the d-ratio branch; stages 20 (more of the same) and 21
# (the lattice-aware loss) from stage 19, not shipped
python -m core train --name stage19 --dataset train_v8 train_v9 --model resnet1d --init-from stage14 \
    --hyperparameters '{"dropout": 0.0, "ratio_lags": 768}' --epochs 10 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 3e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 20
python -m core train --name stage20 --dataset train_v8 train_v9 --model resnet1d --init-from stage19 \
    --hyperparameters '{"dropout": 0.0}' --epochs 10 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 2e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 21
python -m core train --name stage21 --dataset train_v8 train_v9 --model resnet1d --init-from stage19 \
    --hyperparameters '{"dropout": 0.0}' --epochs 8 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 1.5e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 22 --lattice-loss-weight 0.5
# stage 22 (shipped): stage 19 on a GPU machine (it ran with KERAS_BACKEND=jax and jax installed;
# TensorFlow's GPU build or the CPU build also run it, and a model saved on one backend loads on the other), 14 processes making batches; the first part stopped at its
# time limit after 5 of 10 epochs, the second finished the decay. That machine received the sets'
# peaks in a compact form (each pattern's strongest 256 peaks, which is all training reads, with
# intensities in 5.6 % steps of a log scale, well inside training's 25 % intensity jitter, and 2θ
# recomputed from hkl and the cell); the split is the same
python -m core generate --name train_v11 --total 60000 --minimum 20 --seed 19 --engine fast --sites cod-cells --positions cod-system --max-atoms 160 --chunk 15000
python -m core train --name stage22 --dataset train_v8 train_v9 train_v11 --model resnet1d --init-from stage19 \
    --hyperparameters '{"dropout": 0.0}' --epochs 10 --steps 1127 --batch-size 256 --validation 0.02 --test 0.02 \
    --learning-rate 3e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 23 --data-workers 14 --data-processes --time-limit 5.45
python -m core train --name stage22b --dataset train_v8 train_v9 train_v11 --model resnet1d --init-from stage22 \
    --hyperparameters '{"dropout": 0.0}' --epochs 4 --steps 1000 --batch-size 256 --validation 0.02 --test 0.02 \
    --learning-rate 2e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 24 --data-workers 14 --data-processes --time-limit 4.3
python -m core train --name stage23 --dataset train_v8 train_v9 train_v11 --model resnet1d --init-from stage22b \
    --hyperparameters '{"dropout": 0.0}' --epochs 10 --steps 500 --batch-size 128 --validation 0.02 --test 0.02 \
    --learning-rate 1e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 25   # stage 23 (not shipped)
python -m core train --name stage24 --dataset train_v8 train_v9 train_v11 --model resnet1d --init-from stage22b \
    --hyperparameters '{"dropout": 0.0}' --epochs 11 --steps 1000 --batch-size 256 --validation 0.02 --test 0.02 \
    --learning-rate 2e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 26 --data-workers 2 --time-limit 105   # stage 24 (shipped)
python benchmarks/selection.py --models stage3 stage4 --datasets train_v3 default --clean   # stage 4
python benchmarks/selection.py --models stage4 stage5 --datasets train_v3 default train_v4   # stage 5
python benchmarks/selection.py --models stage4 stage6 --datasets train_v3 train_v4 default   # stage 6
python benchmarks/selection.py --models stage6 stage7 --datasets train_v3 train_v4 default   # stage 7
python benchmarks/selection.py --models stage7 stage8 --datasets train_v3 train_v4 default   # stage 8
python benchmarks/selection.py --models stage8 stage9 --datasets train_v3 train_v4 default \
    --draws 3 --ranges-of stage8   # stage 9
python benchmarks/selection.py --models stage9 stage10 --datasets train_v5 train_v4 default train_v3 \
    --draws 3 --clean   # stage 10
python benchmarks/selection.py --models stage10 stage11 --datasets train_v6 train_v5 train_v4 default \
    --draws 3 --clean   # stage 11
python benchmarks/selection.py --models stage11 stage12 --datasets train_v7 train_v6 train_v5 default \
    --draws 3 --clean   # stage 12
python benchmarks/selection.py --models stage12 stage13 --datasets train_v8 pyx_v8 fast_v7like default \
    --draws 3 --clean   # stage 13 (not shipped)
python benchmarks/selection.py --models stage12 stage14 --datasets train_v8 pyx_v8 fast_v7like default \
    --draws 3 --clean   # stage 14
python benchmarks/selection.py --models stage14 stage15 --datasets train_v10 train_v8 pyx_v8 fast_v7like default \
    --draws 3 --clean   # stage 15 (not shipped)
python benchmarks/selection.py --models stage14 stage16 --datasets train_v8 train_v9 pyx_v8 \
    --draws 3 --clean   # stage 16 (not shipped)
python benchmarks/selection.py --models stage14 stage17 --datasets train_v8 train_v9 pyx_v8 \
    --draws 3 --clean   # stage 17 (not shipped)
python benchmarks/selection.py --models stage14 stage18 --datasets train_v8 train_v9 pyx_v8 \
    --draws 3 --clean   # stage 18 (not shipped)
python benchmarks/selection.py --models stage14 stage19 --datasets train_v8 train_v9 pyx_v8 \
    --draws 3 --clean   # stage 19
python benchmarks/selection.py --models stage19 stage20 --datasets train_v8 train_v9 pyx_v8 \
    --draws 3 --clean   # stage 20 (not shipped)
python benchmarks/selection.py --models stage19 stage21 --datasets train_v8 train_v9 pyx_v8 \
    --draws 3 --clean   # stage 21 (not shipped)
python benchmarks/selection.py --models stage19 stage22b --datasets train_v8 train_v9 pyx_v8 \
    --draws 3 --clean   # stage 22
python benchmarks/selection.py --models stage22b stage23 --datasets train_v8 train_v9 pyx_v8 \
    --draws 3 --clean   # stage 23 (not shipped)
python benchmarks/selection.py --models stage22b stage24 --datasets train_v8 train_v9 pyx_v8 \
    --draws 3 --clean   # stage 24
# stage 25 (shipped): stage 24 with 30,169 crystals no model had seen and stage 22's higher starting rate
python -m core generate --name train_v12 --total 40000 --minimum 20 --seed 31 --engine fast --sites cod-cells --positions cod-system --max-atoms 160 --chunk 10000
python -m core train --name stage25 --dataset train_v8 train_v9 train_v11 train_v12 --model resnet1d --init-from stage24 \
    --hyperparameters '{"dropout": 0.0}' --epochs 8 --steps 1000 --batch-size 256 --validation 0.02 --test 0.02 \
    --learning-rate 3e-4 --lr-schedule cosine --class-weighting none --augmentation 1.0 \
    --augmentation-ranges '{"lattice_strain": 0.08, "angle_strain_deg": 1.5, "impurity_probability": 0.6, "impurity_fraction": [0.01, 0.15]}' \
    --patience 100 --seed 27 --data-workers 2 --time-limit 95
python benchmarks/selection.py --models stage24 stage25 --datasets train_v8 train_v9 pyx_v8 train_v12 \
    --draws 3 --clean   # stage 25

# the final stage becomes the bundled model, under the name "default"
rm -rf models/default
cp -r "$XRD_MODELS_DIR/stage25" models/default
python - <<'PY'
import json
from pathlib import Path

path = Path("models/default/metadata.json")
metadata = json.loads(path.read_text())
metadata["name"] = "default"
path.write_text(json.dumps(metadata, indent=1) + "\n")
PY
python benchmarks/accuracy.py     # the README's numbers
python benchmarks/robustness.py   # what each measurement effect costs
