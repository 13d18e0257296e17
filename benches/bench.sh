#!/usr/bin/env bash
# Plugin runtime benchmarks, printed as a table with ratios against the
# reference tools run side by side on the same data:
#   - `plugins list`, cold (empty compile cache) and warm;
#   - per-call plugin overhead (a build over a one-file rootfs);
#   - rootfs-tarball vs `tar -czf` of the same tree.
# Uses the release binary (`make bench` builds it). Writes only under
# target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/release/auroraboot
work=target/bench
runs=${RUNS:-10}
tree_mb=${TREE_MB:-512}
rm -rf "$work"
mkdir -p "$work/plugins" "$work/tiny/etc"
cp target/wasm32-wasip2/release/rootfs_tarball.wasm "$work/plugins/"
echo kairos > "$work/tiny/etc/hostname"

now() { date +%s%N; }
# median wall time in ms of "$@" over $runs runs
median_ms() {
    local times=()
    for _ in $(seq "$runs"); do
        local t0; t0=$(now)
        "$@" >/dev/null 2>&1
        times+=($(( ($(now) - t0) / 1000000 )))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

export XDG_DATA_HOME="$work/xdg"
export AURORABOOT_CACHE_DIR="$work/cache"

cold_list() { rm -rf "$AURORABOOT_CACHE_DIR"; "$bin" --plugin-dir "$work/plugins" plugins list; }
warm_list() { "$bin" --plugin-dir "$work/plugins" plugins list; }
no_plugin() { "$bin" version; }
tiny_build() {
    "$bin" --plugin-dir "$work/plugins" --output rootfs-tarball \
        --set container_image="dir://$PWD/$work/tiny" --set state_dir="$PWD/$work/state-tiny" \
        --set disable_netboot=true --set disable_http_server=true
}

cold=$(median_ms cold_list)
warm_list >/dev/null
warm=$(median_ms warm_list)
base=$(median_ms no_plugin)
tiny=$(median_ms tiny_build)

# A tree like a rootfs: many small text-ish files plus large binaries.
tree="$work/tree"
mkdir -p "$tree"
for d in $(seq 1 40); do
    mkdir -p "$tree/usr/share/doc/pkg$d"
    for f in $(seq 1 50); do
        seq "$((d * f))" "$((d * f + 400))" > "$tree/usr/share/doc/pkg$d/file$f.txt"
    done
done
mkdir -p "$tree/usr/lib"
# Half compressible (like binaries), half random (like compressed data).
for i in $(seq 1 $((tree_mb / 32))); do
    head -c 16777216 /dev/urandom > "$tree/usr/lib/random$i.bin"
    # (yes ends on SIGPIPE, which pipefail would count as a failure)
    (set +o pipefail; yes "$(head -c 48 /dev/urandom | base64)" | head -c 16777216 > "$tree/usr/lib/text$i.so")
done
tree_bytes=$(du -sb "$tree" | cut -f1)

t0=$(now)
tar -czf "$work/reference.tar.gz" -C "$tree" .
tar_ms=$(( ($(now) - t0) / 1000000 ))

t0=$(now)
"$bin" --plugin-dir "$work/plugins" --output rootfs-tarball \
    --set container_image="dir://$PWD/$tree" --set state_dir="$PWD/$work/state" \
    --set disable_netboot=true --set disable_http_server=true >/dev/null 2>&1
ours_ms=$(( ($(now) - t0) / 1000000 ))

ours_size=$(stat -c %s "$work/state/rootfs-tarball/rootfs.tar.gz")
tar_size=$(stat -c %s "$work/reference.tar.gz")

# The built-in squashfs output vs mksquashfs as upstream runs it (-b 1024k,
# gzip), all cores for both.
t0=$(now)
"$bin" --output squashfs \
    --set container_image="dir://$PWD/$tree" --set state_dir="$PWD/$work/state-sq" \
    --set disable_netboot=true --set disable_http_server=true >/dev/null 2>&1
sq_ms=$(( ($(now) - t0) / 1000000 ))
t0=$(now)
mksquashfs "$tree" "$work/reference.squashfs" -b 1024k -comp gzip -quiet -no-progress >/dev/null
mksq_ms=$(( ($(now) - t0) / 1000000 ))
sq_size=$(stat -c %s "$work/state-sq/netboot/kairos.squashfs")
mksq_size=$(stat -c %s "$work/reference.squashfs")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo
echo "| measure | auroraboot | reference | ratio |"
echo "|---|---|---|---|"
echo "| plugins list, cold (compile, empty cache) | ${cold} ms | - | - |"
echo "| plugins list, warm (goal < 100 ms) | ${warm} ms | - | - |"
echo "| process start, no plugin (\`version\`) | ${base} ms | - | - |"
echo "| build over a 1-file rootfs (per-call overhead incl. start) | ${tiny} ms | - | - |"
echo "| rootfs-tarball vs \`tar -czf\`, $((tree_bytes / 1048576)) MiB tree, wall | ${ours_ms} ms | ${tar_ms} ms | $(ratio "$ours_ms" "$tar_ms") |"
echo "| archive size | $((ours_size / 1048576)) MiB | $((tar_size / 1048576)) MiB | $(ratio "$ours_size" "$tar_size") |"
echo "| squashfs output vs \`mksquashfs -b 1024k -comp gzip\`, wall (goal <= 1.2) | ${sq_ms} ms | ${mksq_ms} ms | $(ratio "$sq_ms" "$mksq_ms") |"
echo "| squashfs size | $((sq_size / 1048576)) MiB | $((mksq_size / 1048576)) MiB | $(ratio "$sq_size" "$mksq_size") |"
echo
echo "($(nproc) cores; median of $runs runs for the first four rows; one run for the tree)"
