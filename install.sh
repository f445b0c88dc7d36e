#!/usr/bin/env bash
# LOBA one-command set-up, on a fresh Debian/Ubuntu machine or a Colab runtime. Idempotent: a second
# run checks each step, changes nothing and ends in seconds.
#
#   ./install.sh             everything: Go 1.26 (if missing), module cache, the `loba` CLI, Jupyter
#                            (Debian packages, where absent), GoNB + goimports + gopls, the gonb kernel
#                            (with LOBA's folder and GOEXPERIMENT=simd recorded in it), ECharts for offline
#                            charts (npm) and, where an NVIDIA GPU is present, the CUDA PJRT plugin (jax's
#                            from Python's site-packages when there is one, else downloaded)
#   ./install.sh --cpu-only  the same without the CUDA plugin
#   ./install.sh --check     change nothing; say what is missing and the command that fixes it
#                            (`loba doctor`)
set -euo pipefail
case "$0" in */*) cd "${0%/*}" ;; esac
ROOT="$(pwd)"
ORIG_PATH="$PATH"

GO_VERSION_WANT="1.26.5"  # gomlx v0.28.8's go.mod says go 1.26.5
GONB_VERSION="v0.11.5"
GOIMPORTS_VERSION="v0.52.0"
GOPLS_VERSION="v0.23.0" # the last gopls that builds with Go 1.26 (v0.24.0's go.mod says go 1.27.0)
ECHARTS_VERSION="5.6.0"
# Keep these in step with kernelsetup/env.go (TestInstallPins checks).

CPU_ONLY=0
CHECK=0
for arg in "$@"; do
  case "$arg" in
    --cpu-only) CPU_ONLY=1 ;;
    --check) CHECK=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $arg (use --cpu-only, --check)" >&2; exit 2 ;;
  esac
done

say() { printf '[install] %s\n' "$*"; }
# GOEXPERIMENT=simd turns on the Go backend's AVX2/AVX-512 kernels: every build below, and the gonb
# kernel's cell builds, use it where the toolchain has it (Go 1.26 or newer on amd64; an older Go
# refuses the name, so the probes run without it).
ORIG_GOEXPERIMENT="${GOEXPERIMENT:-}"
unset GOEXPERIMENT
simd_ok() { [ "$(go env GOARCH 2>/dev/null)" = amd64 ] && GOEXPERIMENT=simd go version >/dev/null 2>&1; }
with_simd() { # $1 with simd on, its other experiments kept
  local v=",$1,"
  v="${v//,nosimd,/,}"
  case "$v" in *,simd,*) ;; *) v="${v}simd,";; esac
  v="${v#,}"; v="${v#,}"; printf '%s' "${v%,}"
}
CHANGED=0
did() { CHANGED=$((CHANGED + 1)); say "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 1; fi; }

# Go: on PATH, else the standard places.
for d in /usr/local/go/bin "$HOME/.local/go/bin"; do
  if ! command -v go >/dev/null 2>&1 && [ -x "$d/go" ]; then export PATH="$d:$PATH"; fi
done

if [ "$CHECK" = 1 ]; then
  if ! command -v go >/dev/null 2>&1; then
    echo "MISSING  go: the Go toolchain is not on PATH"
    echo "         fix: ./install.sh   (installs Go ${GO_VERSION_WANT} into ~/.local/go)"
    exit 1
  fi
  export PATH="$PATH:$(go env GOPATH)/bin"
  # The doctor is built with GOEXPERIMENT=simd where the toolchain has it, and runs with the caller's
  # own GOEXPERIMENT, which it checks.
  build_exp=""; if simd_ok; then build_exp="$(with_simd "$ORIG_GOEXPERIMENT")"; fi
  if [ -n "$ORIG_GOEXPERIMENT" ]; then run_env="env GOEXPERIMENT=$ORIG_GOEXPERIMENT"; else run_env="env -u GOEXPERIMENT"; fi
  # Built into a temporary folder and run from there, not with `go run` (which adds its own
  # "exit status 1" line after the doctor's summary): the doctor's report is the whole output, and
  # its exit status (1 when something required is missing) is this script's.
  doctor_dir="$(mktemp -d)"
  trap 'rm -rf "$doctor_dir"' EXIT
  if ! GOEXPERIMENT="$build_exp" go build -buildvcs=false -o "$doctor_dir/loba" ./lobanb/cmd/loba; then
    echo "MISSING  loba doctor: go build ./lobanb/cmd/loba failed in $ROOT (the error is above), so nothing was checked"
    echo "         fix: the build error above (a fresh clone builds as it is)"
    exit 1
  fi
  status=0
  $run_env "$doctor_dir/loba" doctor --root "$ROOT" || status=$?
  exit "$status"
fi

# 1. Go toolchain: go1.26.5 or newer (Colab's is old or absent).
go_ok() { command -v go >/dev/null 2>&1 && v=$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null) \
  && printf '%s\n%s\n' "go${GO_VERSION_WANT}" "${v%%[-+ ]*}" | sort -V -C; }
if ! go_ok && [ -x "$HOME/.local/go/bin/go" ]; then export PATH="$HOME/.local/go/bin:$PATH"; fi
if ! go_ok; then
  arch=$(uname -m); case "$arch" in x86_64) arch=amd64;; aarch64|arm64) arch=arm64;; esac
  ver=$(curl -fsSL 'https://go.dev/VERSION?m=text' | head -1)
  case "$ver" in "go${GO_VERSION_WANT%.*}".*) ;; *) ver="go${GO_VERSION_WANT}";; esac
  did "Go ${GO_VERSION_WANT} not found ($(command -v go >/dev/null 2>&1 && GOTOOLCHAIN=local go env GOVERSION || echo none)): installing ${ver} into \$HOME/.local/go"
  mkdir -p "$HOME/.local"
  rm -rf "$HOME/.local/go"
  curl -fsSL "https://go.dev/dl/${ver}.linux-${arch}.tar.gz" | tar -C "$HOME/.local" -xz
  export PATH="$HOME/.local/go/bin:$PATH"
fi
say "go: $(go env GOVERSION) at $(command -v go)"
if simd_ok; then
  GOEXPERIMENT="$(with_simd "$ORIG_GOEXPERIMENT")"
  export GOEXPERIMENT
  say "GOEXPERIMENT=$GOEXPERIMENT: the builds below and the gonb kernel's cells use the Go backend's AVX2/AVX-512 kernels"
else
  if [ -n "$ORIG_GOEXPERIMENT" ]; then export GOEXPERIMENT="$ORIG_GOEXPERIMENT"; fi
  say "GOEXPERIMENT=simd: not available with $(go env GOVERSION) on $(go env GOOS)/$(go env GOARCH) (needs Go 1.26 or newer on amd64): building without it"
fi
GOBIN_DIR="$(go env GOPATH)/bin"
export PATH="$PATH:$GOBIN_DIR"
DATA_DIR="${XDG_DATA_HOME:-$HOME/.local/share}/loba"
mkdir -p "$DATA_DIR" "$GOBIN_DIR"

# 2. Modules and build cache (the GoMLX module cache takes minutes on a fresh machine). A stamp of
#    go.mod, go.sum, the Go version and GOEXPERIMENT skips the warm-up on later runs.
stamp="$(cat go.mod go.sum; go env GOVERSION GOEXPERIMENT)"
stamp="$(printf '%s' "$stamp" | sha256sum | cut -c1-16)"
if [ "$(cat "$DATA_DIR/warm.stamp" 2>/dev/null)" != "$stamp" ]; then
  did "downloading Go modules and warming the build cache (library and tests)"
  go mod download
  go build ./...
  GOMLX_BACKEND=go GOMLX_NO_AUTO_INSTALL=1 go test -count=1 -run '^$' ./... >/dev/null
  echo "$stamp" > "$DATA_DIR/warm.stamp"
else
  say "module and build cache: warm"
fi

# 3. The CLI (go install is a no-op when it is up to date; it rebuilds one built without GOEXPERIMENT=simd).
before="$(sha256sum "$GOBIN_DIR/loba" 2>/dev/null || echo none)"
go install ./lobanb/cmd/loba
if [ "$before" != "$(sha256sum "$GOBIN_DIR/loba")" ]; then did "installed $GOBIN_DIR/loba"; else say "loba: up to date"; fi

# 4. Jupyter (Debian packages; Colab has its own).
if command -v jupyter >/dev/null 2>&1 && jupyter nbconvert --version >/dev/null 2>&1; then
  say "jupyter: $(command -v jupyter)"
elif command -v apt-get >/dev/null 2>&1; then
  did "installing Jupyter (Debian packages)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    jupyter-notebook jupyter-nbconvert python3-ipykernel jupyter-client python3-nbconvert python3-nbformat >/dev/null \
    || { as_root apt-get update >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      jupyter-notebook jupyter-nbconvert python3-ipykernel jupyter-client python3-nbconvert python3-nbformat >/dev/null; }
else
  say "WARNING: no Jupyter and no apt-get: install it yourself (pip install notebook nbconvert)"
fi

# 4b. Headless Chromium, which the notebook tests render the executed quickstart in (not on Colab).
if [ -z "${COLAB_RELEASE_TAG:-}" ]; then
  if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; then
    say "chromium: $(command -v chromium || command -v chromium-browser || command -v google-chrome)"
  elif command -v apt-get >/dev/null 2>&1; then
    did "installing Chromium (Debian package; the notebook tests screenshot the quickstart with it)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null \
      || { as_root apt-get update >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null; } \
      || say "WARNING: could not install chromium: the notebook screenshot test will fail"
  else
    say "WARNING: no chromium and no apt-get: the notebook screenshot test needs a headless Chromium"
  fi
fi

# 5. GoNB (pinned: the proxy refuses gonb's version list, so get + build in a scratch module), goimports, gopls.
gomod_version() { go version -m "$1" 2>/dev/null | awk -v m="$2" '$1 == "mod" && $2 == m {print $3}'; }
if [ "$(gomod_version "$GOBIN_DIR/gonb" github.com/janpfeifer/gonb)" = "$GONB_VERSION" ]; then
  say "gonb: $GONB_VERSION"
else
  did "building gonb $GONB_VERSION"
  tmp=$(mktemp -d)
  (cd "$tmp" && printf 'module gonbinst\n\ngo %s\n' "$GO_VERSION_WANT" > go.mod \
    && go get "github.com/janpfeifer/gonb@$GONB_VERSION" >/dev/null 2>&1 \
    && go build -o "$GOBIN_DIR/gonb" github.com/janpfeifer/gonb)
  rm -rf "$tmp"
fi
if [ "$(gomod_version "$GOBIN_DIR/goimports" golang.org/x/tools)" = "$GOIMPORTS_VERSION" ]; then
  say "goimports: $GOIMPORTS_VERSION"
else
  did "installing goimports $GOIMPORTS_VERSION"
  go install "golang.org/x/tools/cmd/goimports@$GOIMPORTS_VERSION"
fi
if [ "$(gomod_version "$GOBIN_DIR/gopls" golang.org/x/tools/gopls)" = "$GOPLS_VERSION" ]; then
  say "gopls: $GOPLS_VERSION"
else
  did "installing gopls $GOPLS_VERSION (about a minute)"
  go install "golang.org/x/tools/gopls@$GOPLS_VERSION"
fi

# 6. ECharts for offline charts (the npm tarball, checked against its pinned sha256; not committed).
ECHARTS_SHA256="e1b82487dd7f8d9f0438eec1f1433051148e0095ac7a15d4db890afda45cf610"
if [ -s "$DATA_DIR/echarts.min.js" ] && grep -q "$ECHARTS_VERSION" "$DATA_DIR/echarts.version" 2>/dev/null; then
  say "echarts: $ECHARTS_VERSION at $DATA_DIR/echarts.min.js"
else
  did "fetching echarts@$ECHARTS_VERSION from npm for offline charts"
  tmp=$(mktemp -d)
  tgz="$tmp/echarts-$ECHARTS_VERSION.tgz"
  if command -v npm >/dev/null 2>&1; then
    (cd "$tmp" && npm pack "echarts@$ECHARTS_VERSION" --silent >/dev/null 2>&1) || true
  fi
  if [ ! -s "$tgz" ]; then
    curl -fsSL -o "$tgz" "https://registry.npmjs.org/echarts/-/echarts-$ECHARTS_VERSION.tgz" || true
  fi
  if [ -s "$tgz" ] && [ "$(sha256sum "$tgz" | cut -d' ' -f1)" = "$ECHARTS_SHA256" ] \
    && tar -C "$tmp" -xzf "$tgz" package/dist/echarts.min.js; then
    cp "$tmp/package/dist/echarts.min.js" "$DATA_DIR/echarts.min.js.tmp" && mv "$DATA_DIR/echarts.min.js.tmp" "$DATA_DIR/echarts.min.js"
    echo "$ECHARTS_VERSION" > "$DATA_DIR/echarts.version"
  else
    say "WARNING: could not fetch echarts@$ECHARTS_VERSION (or its checksum differs): charts will load ECharts from the CDN"
  fi
  rm -rf "$tmp"
fi

# 7. The CUDA PJRT plugin where a GPU is present. jax's (jax-cuda12-pjrt / jax-cuda13-pjrt in Python's
#    site-packages, as on Colab) serves when there is one: nothing to download. loba finds it itself in
#    the usual Python folders; the one Python's own folder list shows is also recorded in
#    $DATA_DIR/cuda-plugin for the rest. Else `loba setup cuda` downloads the pinned plugin (it also
#    takes one PJRT_PLUGIN_LIBRARY_PATH names).
GOXLA_CUDA_PLUGIN="$HOME/.local/lib/go-xla/nvidia/pjrt_c_api_cuda_plugin.so"
jax_cuda_plugin() { # jax's CUDA plugin in a folder of python3's sys.path / site-packages (CUDA 12 first), or nothing
  command -v python3 >/dev/null 2>&1 || return 0
  local d v
  python3 -c 'import site,sys; print("\n".join([*getattr(site,"getsitepackages",list)(), site.getusersitepackages(), *sys.path]))' 2>/dev/null \
    | while IFS= read -r d; do
        for v in 12 13; do
          if [ -n "$d" ] && [ -f "$d/jax_plugins/xla_cuda$v/xla_cuda_plugin.so" ]; then
            printf '%s\n' "$d/jax_plugins/xla_cuda$v/xla_cuda_plugin.so"
          fi
        done
      done | head -1
}
if [ "$CPU_ONLY" = 0 ] && { [ -e /dev/nvidia0 ] || nvidia-smi -L >/dev/null 2>&1; }; then
  jax_plugin="$(jax_cuda_plugin || true)"
  if [ -e "$GOXLA_CUDA_PLUGIN" ]; then
    say "CUDA plugin: $GOXLA_CUDA_PLUGIN"
  elif [ -n "$jax_plugin" ]; then
    if [ "$(cat "$DATA_DIR/cuda-plugin" 2>/dev/null)" != "$jax_plugin" ]; then
      printf '%s\n' "$jax_plugin" > "$DATA_DIR/cuda-plugin"
      did "CUDA plugin: jax's $jax_plugin (Python's site-packages; nothing to download), recorded in $DATA_DIR/cuda-plugin"
    else
      say "CUDA plugin: jax's $jax_plugin"
    fi
  else
    did "installing the CUDA PJRT plugin (no jax-cuda12-pjrt in Python's site-packages; a few minutes)"
    "$GOBIN_DIR/loba" setup cuda
  fi
else
  say "CUDA plugin: skipped ($( [ "$CPU_ONLY" = 1 ] && echo "--cpu-only" || echo "no NVIDIA GPU" ))"
fi

# 8. The gonb kernel, with LOBA's folder, the Go toolchain's PATH and GOEXPERIMENT=simd in its environment.
kernel_json() { find "${JUPYTER_DATA_DIR:-$HOME/.local/share/jupyter}/kernels/gonb" -name kernel.json 2>/dev/null | head -1; }
if [ -z "$(kernel_json)" ]; then
  did "registering the gonb kernel"
  "$GOBIN_DIR/gonb" --install >/dev/null 2>&1
fi
before="$(cat "$(kernel_json)" 2>/dev/null || true)"
"$GOBIN_DIR/loba" setup kernel --root "$ROOT" >/dev/null
if [ "$before" != "$(cat "$(kernel_json)")" ]; then did "gonb kernel: LOBA_ROOT=$ROOT${GOEXPERIMENT:+ and GOEXPERIMENT=$GOEXPERIMENT} recorded in $(kernel_json)"; else say "gonb kernel: $(kernel_json)"; fi

if [ "$CHANGED" = 0 ]; then say "nothing to change: all in place"; else say "$CHANGED step(s) changed"; fi
case ":$ORIG_PATH:" in *":$GOBIN_DIR:"*) ;; *) say "add $GOBIN_DIR to your PATH: export PATH=\"\$PATH:$GOBIN_DIR\"";; esac
if simd_ok && [ "$(with_simd "$ORIG_GOEXPERIMENT")" != "$ORIG_GOEXPERIMENT" ]; then
  say "for go build/test/run in your shell too: export GOEXPERIMENT=$(with_simd "$ORIG_GOEXPERIMENT")"
fi
say "next: jupyter notebook notebooks/01-quickstart.ipynb   (kernel \"Go (gonb)\"), or: loba train notebooks/presets/toy-size.yaml --out /tmp/size"
