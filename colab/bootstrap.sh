#!/usr/bin/env bash
# LOBA on Google Colab: the first cell of every notebook runs this (through `!`, which works in the
# Python runtime Colab opens first and in the Go kernel later). It fetches the project into
# /content/loba (or updates it), runs install.sh (Go, GoNB and the gonb kernel, the CUDA PJRT plugin
# on a GPU runtime), keeps runs/ on Google Drive when Drive is mounted, and says what to do next.
#
#   bash colab/bootstrap.sh            (or: curl -fsSL <raw url>/colab/bootstrap.sh | bash)
# Environment: LOBA_REPO (default https://github.com/loba-dev/loba), LOBA_REF (default main),
# LOBA_DIR (default /content/loba), LOBA_DRIVE_DIR (default /content/drive/MyDrive/loba).
set -euo pipefail
REPO="${LOBA_REPO:-https://github.com/loba-dev/loba}"
REF="${LOBA_REF:-main}"
DIR="${LOBA_DIR:-/content/loba}"
DRIVE="${LOBA_DRIVE_DIR:-/content/drive/MyDrive/loba}"
WORK="$(dirname "$DIR")"
say() { printf '[colab] %s\n' "$*"; }

# 1. The project.
if [ -d "$DIR/.git" ]; then
  say "updating $DIR"
  git -C "$DIR" fetch -q --depth 1 origin "$REF" && git -C "$DIR" checkout -q FETCH_HEAD
else
  say "fetching $REPO ($REF) into $DIR"
  git clone -q --depth 1 --branch "$REF" "$REPO" "$DIR"
fi

# 2. The GPU, if any (T4 / L4 / A100 / H100 runtimes).
if gpu=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -1) && [ -n "$gpu" ]; then
  say "GPU: $gpu"
else
  say "no GPU in this runtime: LOBA runs on the CPU (the toy world is fine; SD1.5/SDXL want a GPU runtime)"
fi

# 3. Everything else (Go, GoNB, the kernel with LOBA_ROOT=$DIR, the CUDA plugin on a GPU).
bash "$DIR/install.sh"
for tool in go gonb goimports gopls loba; do # Colab's kernels look in /usr/local/bin
  for d in "$HOME/go/bin" "$HOME/.local/go/bin" /usr/local/go/bin; do
    if [ -x "$d/$tool" ]; then ln -sf "$d/$tool" "/usr/local/bin/$tool"; break; fi
  done
done

# 4. Runs on Google Drive when it is mounted (checkpoints survive the runtime).
if [ -d /content/drive/MyDrive ]; then
  mkdir -p "$DRIVE/runs"
  if [ ! -e "$WORK/runs" ]; then ln -s "$DRIVE/runs" "$WORK/runs"; fi
  say "runs/ is kept on Google Drive: $DRIVE/runs"
else
  say "Google Drive is not mounted: runs/ lives in the runtime and goes away with it"
  say "  (to keep checkpoints: run  from google.colab import drive; drive.mount('/content/drive')  in a Python cell, then this cell again)"
fi

say "done. Next: Runtime → Change runtime type → \"Go (gonb)\", then run the notebook from the top."
