# Recipes for users; `just --list` shows them. Arguments after the recipe name pass through.

set positional-arguments
set shell := ["bash", "-euo", "pipefail", "-c"]

python := env_var_or_default("PYTHON", "python")

# List the recipes
default:
    @just --list

# Synthetic videos through every stage that exists so far, on CPU; everything under demo-out/
demo:
    {{python}} -m pipeline.synthetic --out demo-out/kinetics --seed 0
    {{python}} -m jobs.shard kinetics --root demo-out/kinetics --out demo-out/shards --shard-size 256KB --overwrite
    {{python}} -m pipeline.preview demo-out/shards/train --plan speednet --batches 1 --out demo-out/preview
    {{python}} -m pipeline.preview demo-out/shards/train --plan rspnet --batches 1 --out demo-out/preview
    {{python}} -m jobs.pretrain tiny_speednet --set data.shards=demo-out/shards/train --set optim.max_steps=60 --run-dir demo-out/runs/tiny_speednet
    {{python}} -m jobs.pretrain tiny_rspnet --set data.shards=demo-out/shards/train --set optim.max_steps=60 --set model.init=demo-out/runs/tiny_speednet/checkpoints/step-00000060.pt --set optim.lr=0.005 --run-dir demo-out/runs/tiny_rspnet
    {{python}} -m jobs.evaluate demo-out/runs/tiny_speednet/checkpoints/step-00000060.pt speed --shards demo-out/shards/test --size 64
    {{python}} -m jobs.evaluate demo-out/runs/tiny_rspnet/checkpoints/step-00000060.pt retrieval --shards demo-out/shards/test --gallery demo-out/shards/train --size 64
    rm -rf demo-out/runs/finetune demo-out/probe
    {{python}} -m jobs.finetune demo-out/runs/tiny_rspnet/checkpoints/step-00000060.pt --data demo-out/shards --set optim.max_steps=20 --test-clips 2 --run-dir demo-out/runs/finetune
    {{python}} -m jobs.evaluate.linear_probe demo-out/runs/tiny_rspnet/checkpoints/step-00000060.pt --data demo-out/shards --size 64 --out demo-out/probe
    rm -rf demo-out/embeddings demo-out/index
    {{python}} -m index.export demo-out/runs/tiny_rspnet/checkpoints/step-00000060.pt --shards demo-out/shards/train --out demo-out/embeddings/train.zarr --size 64
    {{python}} -m index.build demo-out/embeddings/train.zarr --out demo-out/index
    {{python}} -m index.query "$(ls demo-out/kinetics/test/*.mp4 | head -1)" --k 5 --distinct --grid demo-out/query-grid.png --within "$(ls demo-out/kinetics/test/*.mp4 | sed -n 2p)" --plot demo-out/query-within.png
    {{python}} -m pipeline.synthetic --slow-motion demo-out/slowmo.mp4
    {{python}} -m jobs.speed.speediness demo-out/slowmo.mp4 --checkpoint demo-out/runs/tiny_speednet/checkpoints/step-00000060.pt --size 64 --out demo-out/speediness
    {{python}} -m jobs.speed.speedup demo-out/slowmo.mp4 --checkpoint demo-out/runs/tiny_speednet/checkpoints/step-00000060.pt --size 64 --rate 2 -o demo-out/speedup/slowmo-2x.mp4
    {{python}} -m jobs.speed.cam demo-out/slowmo.mp4 --checkpoint demo-out/runs/tiny_speednet/checkpoints/step-00000060.pt --size 64 --out demo-out/cam --no-png

# Shard a dataset: just shard kinetics ROOT OUT [--splits train,val --workers 16 ...]
shard dataset root out *args:
    {{python}} -m jobs.shard "$1" --root "$2" --out "$3" "${@:4}"

# Contact sheets and frames of what the model will see: just preview SHARDS --plan rspnet --out DIR
preview shards *args:
    {{python}} -m pipeline.preview "$1" "${@:2}"

# Pretrain: just pretrain CONFIG [--set data.shards=DIR --run-dir DIR --resume --report-to tensorboard,wandb]; configs in jobs/pretrain/configs/
pretrain config *args:
    {{python}} -m jobs.pretrain "$1" "${@:2}"

# Evaluate a checkpoint: just evaluate CKPT speed --shards DIR | retrieval --shards DIR --gallery DIR
evaluate checkpoint *args:
    {{python}} -m jobs.evaluate "$1" "${@:2}"

# Fine-tune for action recognition, then test: just finetune CKPT|--init none --data SHARDS [--config rspnet_r3d18_ucf101 --folds 1,2,3 --launcher slurm]
finetune *args:
    {{python}} -m jobs.finetune "$@"

# Linear probe of a checkpoint's frozen features: just linear-probe CKPT --data SHARDS (train/ and test/ splits)
linear-probe checkpoint *args:
    {{python}} -m jobs.evaluate.linear_probe "$1" "${@:2}"

# Embeddings of a checkpoint to zarr: just export CKPT --shards DIR --out NAME.zarr [--stride 8 --rate 1 --pool avg]
export checkpoint *args:
    {{python}} -m index.export "$1" "${@:2}"

# FAISS index of an embedding store: just index STORE.zarr --out DIR [--level videos --factory F --add]
index store *args:
    {{python}} -m index.build "$1" "${@:2}"

# Nearest clips to a video file: just query clip.mp4 --k 10 [--index DIR --within long.mp4 --grid out.png --json]
query clip *args:
    {{python}} -m index.query "$1" "${@:2}"

# Speediness curves and slow motion of a video: just speediness video.mp4 --checkpoint CKPT [--out DIR]
speediness video *args:
    {{python}} -m jobs.speed.speediness "$1" "${@:2}"

# Adaptive speedup: just speedup video.mp4 --checkpoint CKPT --rate 2 -o out.mp4 (also out-uniform.mp4, out-speedup.png)
speedup video *args:
    {{python}} -m jobs.speed.speedup "$1" "${@:2}"

# Activation maps of SpeedNet (or RSPNet, linear heads) over a video: just cam video.mp4 --checkpoint CKPT [--signed --out DIR]
cam video *args:
    {{python}} -m jobs.speed.cam "$1" "${@:2}"

# The papers' retrieval test on UCF101 split 1 sharded by `just shard ucf101`: test queries train, top-1..50
eval-retrieval checkpoint shards *args:
    {{python}} -m jobs.evaluate "$1" retrieval --shards "$2/test" --gallery "$2/train" "${@:3}"

# Run the test suite (what CI runs)
test *args:
    {{python}} -m pytest -q "$@"

# Regenerate constraints.txt, the versions CI installs and tests, from a fresh virtual environment (torch is left out: its build is each machine's)
constraints:
    rm -rf .venv-constraints && {{python}} -m venv .venv-constraints
    .venv-constraints/bin/pip install --quiet --disable-pip-version-check torch==2.13.0 -e '.[cpu,dev]'
    echo '# The versions CI tests: pip install -c constraints.txt ... (regenerate with: just constraints)' > constraints.txt.tmp
    # torch and its CUDA wheels are each machine's own build, so they are left out
    .venv-constraints/bin/pip freeze --exclude-editable | grep -v -i -E '^(torch|triton|nvidia-(cu|nccl|nvjit|nvtx|cusparse|cufft|curand|cusolver)[a-z0-9-]*)==' >> constraints.txt.tmp
    mv constraints.txt.tmp constraints.txt && rm -rf .venv-constraints

# Format and lint the tree (CI checks both): just fmt
fmt:
    ruff format .
    ruff check --fix .

# Shard job throughput against a plain ffmpeg transcode of the same files (the ceiling)
bench-shard *args:
    {{python}} -m bench.shard "$@"

# Which codec and keyframe interval to store: size, encode cost and CPU decode paths, side by side
bench-shard-codecs *args:
    {{python}} -m bench.codecs "$@"

# Both loader paths' clips/s against a naive and a seeking PyAV DataLoader and a sequential-decode ceiling, same shards
bench-loader *args:
    {{python}} -m bench.loader "$@"

# Does pretraining learn? Tiny SpeedNet speed accuracy, the RSP test (from random weights and from SpeedNet) and retrieval on unseen objects, vs random init
bench-learning *args:
    {{python}} -m bench.learning "$@"

# Does pretraining pay? Tiny SpeedNet and RSPNet fine-tuned and linearly probed on unseen objects, against random weights, two seeds
bench-transfer *args:
    {{python}} -m bench.transfer "$@"

# Training clips/s against the loader alone and the model alone: which one is the bottleneck
bench-train *args:
    {{python}} -m bench.train "$@"

# The adaptive-speedup solver against SciPy's SLSQP on the same problem (time, energy, rate error)
bench-speedup *args:
    {{python}} -m bench.speedup "$@"

# FAISS search: Flat and the auto-chosen IVF index against numpy brute force (queries/s, recall@10)
bench-index *args:
    {{python}} -m bench.index "$@"

# A training checkpoint as an encoder folder (config.json + model.safetensors): just export-model CKPT OUT
export-model checkpoint out:
    {{python}} -m models.export_model "$1" "$2"

# The index as an HTTP query service on 127.0.0.1:8000: just serve INDEX [--host 127.0.0.1 --port 8000 --max-upload-mb 64 ...]
serve index *args:
    {{python}} -m index.serve "$1" "${@:2}"

# The service's queries/s and p50/p95 latency at 1, 4 and 16 clients against one CLI process per query
bench-serve *args:
    {{python}} -m bench.serve "$@"

# Wheels for an air-gapped cluster: just wheelhouse OUT --python 3.12 [--extra gpu --platform manylinux_2_28_x86_64 --image-has torch --part-size 60MiB] [-- pip args]
wheelhouse out *args:
    {{python}} -m jobs.wheelhouse build "$1" "${@:2}"

# Install from a wheelhouse, offline: just install-wheelhouse DIR [--check] [-- pip args]
install-wheelhouse dir *args:
    {{python}} -m jobs.wheelhouse install "$1" "${@:2}"

# Does a config's training step fit the GPU at its largest input? just check-config CONFIG [--gpu-memory-gb 80] [--finetune] [--set ...]
check-config config *args:
    {{python}} -m jobs.pretrain.check_config "$1" "${@:2}"

# Everything only a GPU can show, under 8 minutes on an H100/H200: just gpu-check [--out gpu-check.json --budget-s 480 --parts tests,parity,nvdec,steps,faiss]
gpu-check *args:
    {{python}} -m bench.gpu_check "$@"
