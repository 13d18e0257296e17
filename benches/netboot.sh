#!/usr/bin/env bash
# Netboot and artifact-server benchmarks, side by side with the reference
# servers on the same data (release binary; run as root: network
# namespaces). Prints a table:
#   - artifact server (listen_addr) vs nginx (sendfile), 1 GiB file over
#     loopback, 1 and 16 concurrent clients;
#   - TFTP of a kernel-sized file vs in.tftpd (tftpd-hpa), blksize 1468,
#     between two namespaces;
#   - N simulated BIOS PXE clients at once (DHCP -> TFTP undionly.kpxe -> script -> kernel).
# Writes only under target/bench-netboot; namespaces are removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

for p in nginx-light tftpd-hpa curl busybox-static python3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="${missing:-} $p"
done
if [ -n "${missing:-}" ]; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends --no-remove $missing
fi

bin=$PWD/target/release/auroraboot
work=$PWD/target/bench-netboot
clients=${CLIENTS:-50}
runs=${RUNS:-3}
rm -rf "$work"
mkdir -p "$work/rootfs/boot" "$work/state" "$work/ipxe"
kernel=$(ls /boot/vmlinuz-* | head -n 1)
cp "$kernel" "$work/rootfs/boot/vmlinuz"
head -c 16777216 /dev/urandom > "$work/rootfs/boot/initrd"
head -c 1073741824 /dev/urandom > "$work/state/big.bin"
cp /usr/lib/ipxe/undionly.kpxe "$work/ipxe/"
cp "$kernel" "$work/ipxe/ipxe.efi"   # a kernel-sized file under a name our TFTP serves
kernel_bytes=$(stat -c %s "$kernel")

pids=()
srv=abbench-srv
cli=abbench-cli
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    ip netns del "$srv" 2>/dev/null || true
    ip netns del "$cli" 2>/dev/null || true
}
trap cleanup EXIT
now() { date +%s%N; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
mbps() { awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.0f", b / 1048576 / (ns / 1e9) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# --- HTTP: artifact server vs nginx, loopback.
"$bin" --output squashfs --set disable_netboot=true --set listen_addr=127.0.0.1:18080 \
    --set container_image="dir://$work/rootfs" --set state_dir="$work/state" 2>"$work/http.log" &
pids+=($!)
mkdir -p "$work/nginx"
cat > "$work/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 256; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
    uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
    server { listen 127.0.0.1:18081; root $work/state; }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work/nginx"
wait_port 127.0.0.1 18080
wait_port 127.0.0.1 18081
fetch() { # port concurrency -> ns
    local t0; t0=$(now)
    for _ in $(seq "$2"); do curl -s -o /dev/null "http://127.0.0.1:$1/big.bin" & done
    wait
    echo $(( $(now) - t0 ))
}
best() { # port concurrency: best of $runs
    local b=""; for _ in $(seq "$runs"); do local t; t=$(fetch "$1" "$2"); if [ -z "$b" ] || [ "$t" -lt "$b" ]; then b=$t; fi; done; echo "$b"
}
ours1=$(best 18080 1); ref1=$(best 18081 1)
ours16=$(best 18080 16); ref16=$(best 18081 16)
gib=1073741824

# --- Netboot in a namespace pair.
ip netns add "$srv"; ip netns add "$cli"
ip link add abbench0 type veth peer name abbench1
ip link set abbench0 netns "$srv"; ip link set abbench1 netns "$cli"
ip -n "$srv" addr add 10.78.0.1/24 dev abbench0; ip -n "$srv" link set abbench0 up; ip -n "$srv" link set lo up
ip -n "$cli" addr add 10.78.0.2/24 dev abbench1; ip -n "$cli" link set abbench1 up; ip -n "$cli" link set lo up
ip -n "$cli" route add default dev abbench1
ip netns exec "$srv" "$bin" --output squashfs --set disable_http_server=true \
    --set netboot.address=10.78.0.1 --set netboot.ipxe_dir="$work/ipxe" \
    --set container_image="dir://$work/rootfs" --set state_dir="$work/state-netboot" 2>"$work/netboot.log" &
pids+=($!)
ip netns exec "$srv" in.tftpd -L -s "$work/ipxe" -a 10.78.0.1:6969 -B 1468 &
pids+=($!)
for _ in $(seq 300); do grep -q "netboot: advertising 10.78.0.1 (ProxyDHCP" "$work/netboot.log" && break; sleep 0.2; done
tftp_get() { # port -> ns
    local t0; t0=$(now)
    ip netns exec "$cli" busybox tftp -g -r ipxe.efi -l "$work/tftp.out" -b 1468 10.78.0.1 "$1"
    echo $(( $(now) - t0 ))
}
best_tftp() { local b=""; for _ in $(seq "$runs"); do local t; t=$(tftp_get "$1"); if [ -z "$b" ] || [ "$t" -lt "$b" ]; then b=$t; fi; done; echo "$b"; }
ours_tftp=$(best_tftp 69); cmp "$work/tftp.out" "$kernel"
ref_tftp=$(best_tftp 6969); cmp "$work/tftp.out" "$kernel"
pxe=$(ip netns exec "$cli" python3 benches/pxe_clients.py 10.78.0.1 "$clients")

echo
echo "| measure | auroraboot | reference | ratio (throughput, ours/ref) |"
echo "|---|---|---|---|"
echo "| HTTP 1 GiB, 1 client, MiB/s (vs nginx sendfile; goal >= 0.9) | $(mbps $gib "$ours1") | $(mbps $gib "$ref1") | $(ratio "$ref1" "$ours1") |"
echo "| HTTP 1 GiB x 16 clients, MiB/s total | $(mbps $((gib * 16)) "$ours16") | $(mbps $((gib * 16)) "$ref16") | $(ratio "$ref16" "$ours16") |"
echo "| TFTP $((kernel_bytes / 1048576)) MiB kernel, blksize 1468, MiB/s (vs in.tftpd; goal >= 1.0) | $(mbps "$kernel_bytes" "$ours_tftp") | $(mbps "$kernel_bytes" "$ref_tftp") | $(ratio "$ref_tftp" "$ours_tftp") |"
echo "| $clients PXE clients at once (DHCP, TFTP undionly.kpxe, script, kernel) | $pxe | - | - |"
echo
echo "($(nproc) cores; best of $runs runs per transfer)"
