#!/usr/bin/env bash
# The GPU check, prepared for the `device` tool's machine: a CUDA image whose python3 already holds
# jax (with its CUDA plugin), flax, optax, numpy, tensorstore, pyarrow, numba, tqdm and pytest, and
# which reaches no package index. jgraph's other dependencies travel as wheels in .whl/ (ignored by
# git), built here once:
#
#   pip wheel --no-deps -w .whl hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3
#
# then, from the device tool:  run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=600)
#
# It installs the wheels, prints the devices, then, most important first: the GPU figure
# (BIG_ROWS, the d=100 and d=400 dot softmax rows, with batches of BIG_BATCHES edges, chunks of 50
# as everywhere: PBG's CPU batch of 1000 is a few dozen small kernels, too little work for a GPU),
# a profile of that step (its kernels' time per batch, benchmarks/profile_step.py), the training
# step's reference tests on the GPU (tests/test_optim.py, tests/test_scorers.py: every operator,
# comparator and loss against float64 references, both row-update paths), then the suite's rows
# at batch 1000 without PBG (ROWS, EDGES to change them). What it prints and the suite's CSV rows
# land in $OUT (devices.txt, big.txt, profile.txt, tests.txt, suite.txt, suite.csv) as they come,
# so a run cut short still returns what it did. Locally, on any backend:
# OUT=/tmp/gpu_check bash benchmarks/gpu_check.sh
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
PY=${PY:-python3}
ROWS=${ROWS:-d100-dot-softmax d100-dot-ranking d100-complex-softmax d100-dot-softmax-p4 d400-dot-softmax d400-complex-softmax}
EDGES=${EDGES:-20000000}
BIG_ROWS=${BIG_ROWS:-d100-dot-softmax d400-dot-softmax}
BIG_BATCHES=${BIG_BATCHES:-100000 10000}
BIG_EDGES=${BIG_EDGES:-100000000}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1

if ! $PY -c "import hydra, omegaconf" 2>/dev/null; then
    $PY -m pip install -q --no-index --no-deps .whl/*.whl || { echo "no wheels in .whl/ (see the header)"; exit 1; }
fi
$PY -c "import jax; print('jax', jax.__version__, jax.default_backend(), jax.devices())" 2>&1 | tee "$OUT/devices.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee -a "$OUT/devices.txt"

before=$(wc -l < benchmarks/results/suite.csv)
save_csv() { { head -1 benchmarks/results/suite.csv; tail -n +"$((before + 1))" benchmarks/results/suite.csv; } > "$OUT/suite.csv"; }
for b in $BIG_BATCHES; do
    # shellcheck disable=SC2086
    timeout 200 $PY benchmarks/suite.py --rows $BIG_ROWS --edges "$BIG_EDGES" --batch-size "$b" 2>&1 \
        | tee -a "$OUT/big.txt"
    save_csv
done
timeout 120 $PY benchmarks/profile_step.py --batch-size "${BIG_BATCHES%% *}" --top 25 2>&1 | tee "$OUT/profile.txt"

timeout 180 $PY -m pytest -q -x -p no:cacheprovider tests/test_optim.py tests/test_scorers.py 2>&1 \
    | tail -15 | tee "$OUT/tests.txt"

# shellcheck disable=SC2086
$PY benchmarks/suite.py --rows $ROWS --edges "$EDGES" 2>&1 | tee "$OUT/suite.txt"
save_csv
