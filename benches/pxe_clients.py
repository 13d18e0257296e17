#!/usr/bin/env python3
"""N simulated BIOS PXE clients at once against a netboot server:
DHCPDISCOVER (PXEClient, arch 7) -> the ProxyDHCP offer's boot file over
TFTP -> the iPXE script over HTTP -> the kernel it names. Prints one JSON
line: clients, failures, p50/p99/max seconds per client."""
import json, random, socket, struct, sys, threading, time, urllib.request

server, n = sys.argv[1], int(sys.argv[2])
http_base = f"http://{server}:8090"

def discover(xid, mac):
    pkt = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                      b"\0"*4, b"\0"*4, b"\0"*4, b"\0"*4, mac + b"\0"*10, b"\0"*64, b"\0"*128)
    opts = b"\x63\x82\x53\x63" + bytes([53, 1, 1])
    cls = b"PXEClient:Arch:00000:UNDI:002001"
    opts += bytes([60, len(cls)]) + cls + bytes([93, 2, 0, 0]) + bytes([97, 17, 0]) + bytes(16) + b"\xff"
    return pkt + opts

def dhcp(sock, xid, mac):
    sock.sendto(discover(xid, mac), ("255.255.255.255", 67))
    deadline = time.time() + 10
    while time.time() < deadline:
        sock.settimeout(max(0.1, deadline - time.time()))
        data, _ = sock.recvfrom(2048)
        if len(data) > 240 and struct.unpack("!I", data[4:8])[0] == xid:
            return data[108:236].split(b"\0")[0].decode()
    raise TimeoutError("no offer")

def tftp(name):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(b"\0\1" + name.encode() + b"\0octet\0blksize\0" + b"1468\0", (server, 69))
    size, blksize, expect = 0, 512, 1
    while True:
        data, addr = s.recvfrom(65536)
        op = struct.unpack("!H", data[:2])[0]
        if op == 6:  # OACK
            fields = data[2:].split(b"\0")
            opts = dict(zip(fields[::2], fields[1::2]))
            blksize = int(opts.get(b"blksize", b"512"))
            s.sendto(b"\0\4\0\0", addr)
            continue
        if op == 5:
            raise RuntimeError(f"TFTP error {data!r}")
        block = struct.unpack("!H", data[2:4])[0]
        if block == expect:
            size += len(data) - 4
            expect = (expect + 1) & 0xFFFF
        s.sendto(b"\0\4" + data[2:4], addr)
        if block == (expect - 1) & 0xFFFF and len(data) - 4 < blksize:
            return size

results, failures = [], []
lock = threading.Lock()
start = threading.Barrier(n)

def client(i):
    mac = bytes([0x52, 0x54, 0, 0xbe, i >> 8, i & 0xff])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.bind(("0.0.0.0", 68))
    start.wait()
    t0 = time.time()
    try:
        boot_file = dhcp(sock, random.getrandbits(32), mac)
        tftp(boot_file)
        script = urllib.request.urlopen(f"{http_base}/boot.ipxe", timeout=30).read().decode()
        kernel = next(l.split()[-1] for l in script.splitlines() if l.startswith("kernel"))
        urllib.request.urlopen(kernel, timeout=60).read()
        with lock:
            results.append(time.time() - t0)
    except Exception as e:  # noqa: BLE001 - every failure counts
        with lock:
            failures.append(repr(e))

threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
for t in threads: t.start()
for t in threads: t.join()
results.sort()
pct = lambda p: results[min(len(results) - 1, int(p * len(results)))] if results else float("nan")
print(json.dumps({"clients": n, "failures": len(failures), "errors": failures[:3],
                  "p50": round(pct(0.5), 3), "p99": round(pct(0.99), 3), "max": round(results[-1], 3) if results else None}))
