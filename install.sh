#!/usr/bin/env bash
# LOBA one-shot set-up. Idempotent: run it again at any time.
#   ./install.sh          Go (if missing), Go module download and build-cache warm-up, the `loba` CLI.
# Later steps (GoNB + Jupyter kernel, PJRT plugin for CUDA) are added by their issues.
set -euo pipefail
cd "$(dirname "$0")"

GO_VERSION_WANT="1.26"
say() { printf '[install] %s\n' "$*"; }

# 1. Go toolchain.
if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
  else
    say "Go not found: installing go${GO_VERSION_WANT} into \$HOME/.local/go"
    arch=$(uname -m); case "$arch" in x86_64) arch=amd64;; aarch64|arm64) arch=arm64;; esac
    ver=$(curl -fsSL 'https://go.dev/VERSION?m=text' | head -1)
    case "$ver" in go${GO_VERSION_WANT}*) ;; *) ver="go${GO_VERSION_WANT}.0";; esac
    mkdir -p "$HOME/.local"
    curl -fsSL "https://go.dev/dl/${ver}.linux-${arch}.tar.gz" | tar -C "$HOME/.local" -xz
    export PATH="$HOME/.local/go/bin:$PATH"
  fi
fi
say "using $(go version)"
GOBIN_DIR="$(go env GOPATH)/bin"
export PATH="$GOBIN_DIR:$PATH"

# 2. Modules and build cache (the GoMLX module cache takes minutes on a fresh machine).
say "downloading Go modules"
go mod download
say "warming the build cache (library and tests)"
go build ./...
GOMLX_BACKEND=go GOMLX_NO_AUTO_INSTALL=1 go test -count=1 -run '^$' ./... >/dev/null

# 3. The CLI.
go install ./lobanb/cmd/loba
say "installed $(command -v loba || echo "$GOBIN_DIR/loba")"

say "done. Next: loba inspect ../shared/fixtures/real/configs/sdxl_base   (or: go test ./...)"
case ":$PATH:" in *":$GOBIN_DIR:"*) ;; *) say "add $GOBIN_DIR to your PATH to run loba directly";; esac
