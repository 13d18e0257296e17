#!/usr/bin/env bash
# Image acquisition benchmark, against the reference tools side by side:
#   - cold pull + extract of a >= 256 MiB image from a local registry:
#     `auroraboot unpack` vs `skopeo copy` + `umoci unpack`;
#   - a warm second build with the same image: acquisition time (until the
#     build starts, from auroraboot's own log) vs the cold one.
# Everything runs on loopback; files go under target/bench-pull/.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/release/auroraboot
work="$PWD/target/bench-pull"
layer_mb=${LAYER_MB:-256}
rm -rf "$work"
mkdir -p "$work/src/usr/lib" "$work/src/etc" "$work/plugins"
cp target/wasm32-wasip2/release/rootfs_tarball.wasm "$work/plugins/"

# An image like a Kairos one: a big mostly-incompressible layer and a text layer.
head -c $((layer_mb << 20)) /dev/urandom > "$work/src/usr/lib/blob.bin"
for i in $(seq 1 400); do seq "$i" $((i + 3000)) > "$work/src/etc/file$i.txt"; done
(set +o pipefail; yes "kairos text layer" | head -c $((layer_mb << 20)) > "$work/src/usr/lib/text.txt")
tar -C "$work/src" -cf - usr | gzip -1 > "$work/layer1.tar.gz"
tar -C "$work/src" -cf - etc | gzip -1 > "$work/layer2.tar.gz"

layout="$work/layout"
mkdir -p "$layout/blobs/sha256"
blob() { # file -> "digest size"
    local d; d=$(sha256sum "$1" | cut -d' ' -f1)
    cp "$1" "$layout/blobs/sha256/$d"
    echo "sha256:$d $(stat -c %s "$1")"
}
read -r l1 s1 <<<"$(blob "$work/layer1.tar.gz")"
read -r l2 s2 <<<"$(blob "$work/layer2.tar.gz")"
d1=$(gunzip -c "$work/layer1.tar.gz" | sha256sum | cut -d' ' -f1)
d2=$(gunzip -c "$work/layer2.tar.gz" | sha256sum | cut -d' ' -f1)
echo "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$d1\",\"sha256:$d2\"]}}" > "$work/config.json"
read -r c cs <<<"$(blob "$work/config.json")"
cat > "$work/manifest.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
 "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$c","size":$cs},
 "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"$l1","size":$s1},
           {"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"$l2","size":$s2}]}
EOF
read -r m ms <<<"$(blob "$work/manifest.json")"
echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
echo "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$m\",\"size\":$ms,\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}" > "$layout/index.json"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
ref="127.0.0.1:$port/kairos/bench:v1"
skopeo --insecure-policy copy --dest-tls-verify=false "oci:$layout:v1" "docker://$ref" >/dev/null

now() { date +%s%N; }
ms_since() { echo $(( ($(now) - $1) / 1000000 )); }

t0=$(now)
"$bin" unpack "$ref" "$work/ours" --set state_dir="$work/state-unpack" >/dev/null 2>&1
ours_cold=$(ms_since "$t0")

t0=$(now)
skopeo --insecure-policy copy --src-tls-verify=false "docker://$ref" "oci:$work/skopeo-layout:v1" >/dev/null
umoci unpack --image "$work/skopeo-layout:v1" "$work/umoci-bundle" >/dev/null
ref_cold=$(ms_since "$t0")

# Acquisition inside a build: from the first log line to "building".
acquisition_ms() {
    "$bin" --plugin-dir "$work/plugins" --output rootfs-tarball \
        --set container_image="$ref" --set state_dir="$work/state-build" \
        --set disable_netboot=true --set disable_http_server=true 2>&1 >/dev/null |
        awk '/ building /{ print } NR==1 { print }' |
        sed -E 's/^([0-9T:.-]+)Z.*/\1/' |
        { read -r a; read -r b; echo $(( ($(date -d "$b" +%s%N) - $(date -d "$a" +%s%N)) / 1000000 )); }
}
build_cold=$(acquisition_ms)
build_warm=$(acquisition_ms)

size_mb=$(( $(du -sb "$work/ours" | cut -f1) >> 20 ))
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "| measure (${size_mb} MiB rootfs, 2 gzip layers, local registry) | auroraboot | reference | ratio |"
echo "|---|---|---|---|"
echo "| cold pull + extract: \`unpack\` vs \`skopeo copy\` + \`umoci unpack\` (goal <= 1.0) | ${ours_cold} ms | ${ref_cold} ms | $(ratio "$ours_cold" "$ref_cold") |"
echo "| acquisition in a build, cold | ${build_cold} ms | - | - |"
echo "| acquisition in a build, warm (goal < 5% of cold) | ${build_warm} ms | ${build_cold} ms | $(ratio "$build_warm" "$build_cold") |"
