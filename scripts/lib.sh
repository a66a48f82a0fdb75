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

# PgBouncer (transaction mode) for the pooled-database tests (issue 16).
ensure_pgbouncer() {
  if [ ! -x /usr/sbin/pgbouncer ]; then
    apt_install pgbouncer
  fi
}

# The scale-out tests (tests/api/scale_out.rs) put nginx in front of three
# app processes.
ensure_nginx() {
  if [ ! -x /usr/sbin/nginx ] && ! command -v nginx >/dev/null 2>&1; then
    apt_install nginx
  fi
}

ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium
  fi
}

# brotli and gzip precompress the bundle (the server sends .br/.gz as they are).
ensure_compressors() {
  local missing=()
  command -v brotli >/dev/null 2>&1 || missing+=(brotli)
  command -v gzip >/dev/null 2>&1 || missing+=(gzip)
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# build_site debug|release: the hydrate wasm, its JS glue, the CSS and the
# static assets under $LEPTOS_SITE_ROOT, as cargo-leptos lays them out with
# hash-files on: pkg/tldw.<hash>.{js,wasm,css} (the hash is of the content,
# so browsers may cache them forever), each with a .br and a .gz beside it,
# and hash.txt naming the current hashes (the server reads it to write the
# page's <script> and <link>).
build_site() {
  local profile="$1" cargo_profile wasm_dir pkg="$LEPTOS_SITE_ROOT/pkg"
  if [ "$profile" = release ]; then cargo_profile=(--profile wasm-release); wasm_dir=wasm-release
  else cargo_profile=(); wasm_dir=debug; fi
  ensure_compressors

  step "building the browser bundle ($profile)"
  cargo build --lib --target wasm32-unknown-unknown --no-default-features --features hydrate "${cargo_profile[@]}"
  # Built unhashed in a staging folder, then moved into pkg/ under hashed names.
  local stage="$LEPTOS_SITE_ROOT/.staging"
  rm -rf "$stage"
  mkdir -p "$stage" "$pkg"
  wasm-bindgen "$CARGO_TARGET_DIR/wasm32-unknown-unknown/$wasm_dir/tldw.wasm" \
    --target web --no-typescript --out-dir "$stage" --out-name tldw
  mv "$stage/tldw_bg.wasm" "$stage/tldw.wasm"
  if [ "$profile" = release ]; then
    step "shrinking the wasm with wasm-opt"
    wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int "$stage/tldw.wasm" -o "$stage/tldw.wasm"
  fi

  step "building the stylesheet with Tailwind"
  local minify=()
  [ "$profile" = release ] && minify=(--minify)
  tailwindcss -i style/tailwind.css -o "$stage/tldw.css" "${minify[@]}" 2>&1 | grep -v '^$' || true
  [ -s "$stage/tldw.css" ] || { echo "tailwindcss produced no CSS" >&2; exit 1; }

  step "naming the bundle by content hash and precompressing it"
  # wasm-bindgen's inline JS (if any) is imported by relative path: unhashed.
  rm -rf "$pkg/snippets"
  [ -d "$stage/snippets" ] && mv "$stage/snippets" "$pkg/snippets"
  local ext hash name hashes="" keep=()
  for ext in js wasm css; do
    hash="$(sha256sum "$stage/tldw.$ext" | cut -c1-16)"
    name="tldw.$hash.$ext"
    keep+=("$name" "$name.br" "$name.gz")
    hashes+="$ext: $hash"$'\n'
    # The same content under the same name: already compressed unless this
    # is a release build (which recompresses at the highest levels).
    if [ "$profile" = release ] || [ ! -s "$pkg/$name.br" ] || [ ! -s "$pkg/$name.gz" ]; then
      precompress "$profile" "$stage/tldw.$ext"
      mv "$stage/tldw.$ext.br" "$pkg/$name.br"
      mv "$stage/tldw.$ext.gz" "$pkg/$name.gz"
    fi
    mv "$stage/tldw.$ext" "$pkg/$name"
  done
  # hash.txt last, in one rename, so a running server never names a file
  # that is not there yet; then last build's files go.
  printf '%s' "$hashes" >"$stage/hash.txt"
  mv "$stage/hash.txt" "$LEPTOS_SITE_ROOT/hash.txt"
  rm -rf "$stage"
  local file keep_it
  for file in "$pkg"/tldw.* "$pkg"/tldw_bg.wasm; do
    [ -e "$file" ] || continue
    keep_it=""
    for name in "${keep[@]}"; do [ "${file##*/}" = "$name" ] && keep_it=1; done
    [ -n "$keep_it" ] || rm -f "$file"
  done
  printf '  %s\n' "${keep[@]}"

  cp -R public/. "$LEPTOS_SITE_ROOT/"
}

# precompress debug|release FILE: FILE.br and FILE.gz beside it, at the
# highest levels for release and quick ones for debug (a debug wasm is large).
precompress() {
  local profile="$1" file="$2"
  if [ "$profile" = release ]; then
    brotli --force --quality=11 --output="$file.br" "$file"
    gzip --force --keep --best --no-name "$file"
  else
    brotli --force --quality=5 --output="$file.br" "$file"
    gzip --force --keep -6 --no-name "$file"
  fi
}

build_server() {
  local profile="$1" flags=()
  [ "$profile" = release ] && flags=(--release)
  step "building the server ($profile)"
  cargo build --bin tldw --features ssr "${flags[@]}"
}
