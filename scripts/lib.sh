# Shared by scripts/run and scripts/test: install what is missing, then build.
# Every step checks first, so a second run on the same machine skips it.
# Nothing here downloads a binary from anywhere but the package registries
# (crates.io, npm, Debian).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# The server serves the built site from here (Leptos.toml says target/site,
# which is only right when the target dir is the default one).
export LEPTOS_SITE_ROOT="$CARGO_TARGET_DIR/site"
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"

step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  step "installing $* from Debian"
  as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "$@"
}

ensure_wasm_target() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    step "adding the wasm32-unknown-unknown Rust target"
    rustup target add wasm32-unknown-unknown
  fi
}

# The CLI must match the wasm-bindgen crate in Cargo.lock exactly.
ensure_wasm_bindgen() {
  local want
  want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)"
  if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $want" ]; then
    step "installing wasm-bindgen-cli $want (about 3 minutes, once)"
    # Not --locked: its lockfile pins a webpki-roots the registry no longer has.
    cargo install wasm-bindgen-cli@"$want"
  fi
}

# Tailwind's CLI, wasm-opt (binaryen) and Playwright, pinned by package-lock.json.
ensure_node_tools() {
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    step "installing the npm build and test tools"
    npm ci --no-audit --no-fund
  fi
}

ensure_postgres() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    apt_install postgresql
  fi
}

ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium
  fi
}

# build_site debug|release: the hydrate wasm, its JS glue, the CSS and the
# static assets, laid out as cargo-leptos would under $LEPTOS_SITE_ROOT.
build_site() {
  local profile="$1" cargo_profile wasm_dir pkg="$LEPTOS_SITE_ROOT/pkg"
  if [ "$profile" = release ]; then cargo_profile=(--profile wasm-release); wasm_dir=wasm-release
  else cargo_profile=(); wasm_dir=debug; fi

  step "building the browser bundle ($profile)"
  cargo build --lib --target wasm32-unknown-unknown --no-default-features --features hydrate "${cargo_profile[@]}"
  mkdir -p "$pkg"
  wasm-bindgen "$CARGO_TARGET_DIR/wasm32-unknown-unknown/$wasm_dir/tldw.wasm" \
    --target web --no-typescript --out-dir "$pkg" --out-name tldw
  mv "$pkg/tldw_bg.wasm" "$pkg/tldw.wasm"
  if [ "$profile" = release ]; then
    step "shrinking the wasm with wasm-opt"
    wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int "$pkg/tldw.wasm" -o "$pkg/tldw.wasm"
  fi

  step "building the stylesheet with Tailwind"
  local minify=()
  [ "$profile" = release ] && minify=(--minify)
  tailwindcss -i style/tailwind.css -o "$pkg/tldw.css" "${minify[@]}" 2>&1 | grep -v '^$' || true
  [ -s "$pkg/tldw.css" ] || { echo "tailwindcss produced no CSS" >&2; exit 1; }

  cp -R public/. "$LEPTOS_SITE_ROOT/"
}

build_server() {
  local profile="$1" flags=()
  [ "$profile" = release ] && flags=(--release)
  step "building the server ($profile)"
  cargo build --bin tldw --features ssr "${flags[@]}"
}
