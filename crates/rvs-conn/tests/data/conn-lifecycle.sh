# Connection-table oracle (run with: oracle/run-ipvsadm.sh --script THIS_FILE).
# Topology from oracle/guest/netsetup.sh: client netns 198.18.0.2 (+.10-.13),
# VIP 198.18.0.100, real servers rs1..rs3 = 198.19.{1,2,3}.2 (NAT / -m).
# Covers: --set limits, --set effect on ESTABLISHED, UDP entries, one-packet
# scheduling, UDP templates (NONE vs ASSURED), the sip persistence engine,
# template invalidation after a real server is deleted, expire_nodest_conn,
# expire_quiescent_template and conn_reuse_mode.
. "$ORACLE_LIB/netsetup.sh"
net_up 3
add_client_ips 10 13
servers_up close
cat > udp_rs.py <<'PY'
import socket, sys
name, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", port))
while True:
    d, a = s.recvfrom(2048)
    s.sendto((name + "\n").encode(), a)
PY
cat > udp_cl.py <<'PY'
# udp_cl.py DST PORT COUNT SRC SPORT [PAYLOAD with \r\n escapes]
import socket, sys
dst, port, count, src, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
payload = sys.argv[6].encode().decode("unicode_escape").encode() if len(sys.argv) > 6 else b"ping"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, sport))
s.settimeout(2)
for i in range(count):
    s.sendto(payload, (dst, port))
    try:
        r = s.recv(64).decode().strip()
    except OSError as e:
        r = "<%s>" % type(e).__name__
    print(i + 1, src, sport, r, flush=True)
PY
cat > tcp_cl.py <<'PY'
# tcp_cl.py DST PORT SRC SPORT : one connection from a fixed source port
import socket, sys
dst, port, src, sport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((src, sport))
s.settimeout(5)
try:
    s.connect((dst, port))
    buf = b""
    while not buf.endswith(b"\n"):
        c = s.recv(64)
        if not c:
            break
        buf += c
    print(src, sport, buf.decode().strip(), flush=True)
except OSError as e:
    print(src, sport, "<%s>" % type(e).__name__, flush=True)
s.close()
PY
for i in 1 2 3; do
  for p in 53 54 55 56 5060; do
    ip netns exec rs$i python3 udp_rs.py rs$i $p >/dev/null 2>&1 &
  done
done
sleep 1
udp() { ip netns exec cl python3 udp_cl.py "$@"; }
tcp1() { ip netns exec cl python3 tcp_cl.py "$@"; }
conns() { echo "\$ cat /proc/net/ip_vs_conn (sorted)"; { read -r h; echo "$h"; sort; } < /proc/net/ip_vs_conn; }

echo "# 1. timeouts: --set limits (INT_MAX / HZ) and 0 = unchanged"
show ipvsadm -L --timeout
show ipvsadm --set 8589934 0 0
show ipvsadm -L --timeout
show ipvsadm --set 8589935 0 0
show ipvsadm --set 2147483 0 0
show ipvsadm -L --timeout
show ipvsadm --set 0 0 0
show ipvsadm -L --timeout
show ipvsadm --set 100 30 40
show ipvsadm -L --timeout

echo "# 2. --set tcp 100: a held NAT connection is ESTABLISHED with 100 s"
show ipvsadm -A -t $VIP:80 -s rr
show ipvsadm -a -t $VIP:80 -r 198.19.1.2:80 -m
rm -f h.ready h.release
ip netns exec cl python3 "$ORACLE_LIB/client.py" --dst $VIP --count 1 --src 198.18.0.10 --hold h.ready h.release &
cpid=$!
for _ in $(seq 1 100); do [ -f h.ready ] && break; sleep 0.1; done
conns
show ipvsadm -L -n
touch h.release
wait $cpid
sleep 0.5
conns
show ipvsadm -L -n
show ipvsadm --set 900 120 300
show ipvsadm -C

echo "# 3. UDP: one entry per client address:port, state UDP, never active"
show ipvsadm -A -u $VIP:53 -s rr
for i in 1 2 3; do show ipvsadm -a -u $VIP:53 -r 198.19.$i.2:53 -m; done
udp $VIP 53 2 198.18.0.10 5000
conns
show ipvsadm -L -n

echo "# 4. UDP one-packet (-o): every datagram scheduled, no entries remain"
show ipvsadm -A -u $VIP:54 -s rr -o
for i in 1 2 3; do show ipvsadm -a -u $VIP:54 -r 198.19.$i.2:54 -m; done
udp $VIP 54 3 198.18.0.11 5001
conns

echo "# 5. UDP persistent + one-packet: the template stays NONE (replies find no entry)"
show ipvsadm -A -u $VIP:55 -s rr -p 30 -o
for i in 1 2 3; do show ipvsadm -a -u $VIP:55 -r 198.19.$i.2:55 -m; done
udp $VIP 55 3 198.18.0.12 5002
conns

echo "# 6. UDP persistent: a reply makes the template ASSURED"
show ipvsadm -A -u $VIP:56 -s rr -p 30
for i in 1 2 3; do show ipvsadm -a -u $VIP:56 -r 198.19.$i.2:56 -m; done
udp $VIP 56 2 198.18.0.13 5003
conns
show ipvsadm -L -n --stats
show ipvsadm -L -n --persistent-conn

echo "# 7. sip persistence engine: Call-ID picks the template; no Call-ID -> dropped"
show ipvsadm -A -u $VIP:5060 -s rr -p 30 --pe sip
for i in 1 2 3; do show ipvsadm -a -u $VIP:5060 -r 198.19.$i.2:5060 -m; done
udp $VIP 5060 1 198.18.0.10 5070 'INVITE sip:a@b SIP/2.0\r\nCall-ID: abc@host\r\n\r\n'
udp $VIP 5060 1 198.18.0.11 5071 'INVITE sip:a@b SIP/2.0\r\ni:  abc@host\r\n\r\n'
udp $VIP 5060 1 198.18.0.12 5072 'INVITE sip:a@b SIP/2.0\r\nCall-ID: other-1\r\n\r\n'
udp $VIP 5060 1 198.18.0.13 5073 'INVITE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n'
show ipvsadm -L -n -c --persistent-conn
conns
show ipvsadm -C
sleep 1

echo "# 8. template invalidation after the real server is deleted"
show ipvsadm -A -t $VIP:80 -s rr -p 60
show ipvsadm -a -t $VIP:80 -r 198.19.1.2:80 -m
run_client --dst $VIP --count 1 --src 198.18.0.12
show ipvsadm -a -t $VIP:80 -r 198.19.2.2:80 -m
show ipvsadm -d -t $VIP:80 -r 198.19.1.2:80
conns
run_client --dst $VIP --count 1 --src 198.18.0.12
conns
show ipvsadm -L -n --persistent-conn

echo "# 9. expire_nodest_conn=1: deleting a real server flushes its entries"
show sysctl -w net.ipv4.vs.expire_nodest_conn=1
show ipvsadm -a -t $VIP:80 -r 198.19.3.2:80 -m
show ipvsadm -d -t $VIP:80 -r 198.19.2.2:80
sleep 1
conns
show sysctl -w net.ipv4.vs.expire_nodest_conn=0
show ipvsadm -C
sleep 1

echo "# 10. weight 0 keeps persistent clients unless expire_quiescent_template=1"
show ipvsadm -A -t $VIP:81 -s rr -p 60
show ipvsadm -a -t $VIP:81 -r 198.19.1.2:80 -m
show ipvsadm -a -t $VIP:81 -r 198.19.2.2:80 -m
run_client --dst $VIP --port 81 --count 1 --src 198.18.0.13
show ipvsadm -e -t $VIP:81 -r 198.19.2.2:80 -m -w 0
run_client --dst $VIP --port 81 --count 1 --src 198.18.0.13
show sysctl -w net.ipv4.vs.expire_quiescent_template=1
run_client --dst $VIP --port 81 --count 1 --src 198.18.0.13
conns
show ipvsadm -L -n --persistent-conn
show sysctl -w net.ipv4.vs.expire_quiescent_template=0
show ipvsadm -C
sleep 1

echo "# 11. conn_reuse_mode: a SYN hitting a TIME_WAIT entry"
show ipvsadm -A -t $VIP:82 -s rr
for i in 1 2 3; do show ipvsadm -a -t $VIP:82 -r 198.19.$i.2:80 -m; done
show sysctl net.ipv4.vs.conn_reuse_mode
tcp1 $VIP 82 198.18.0.10 40000
tcp1 $VIP 82 198.18.0.10 40000
show sysctl -w net.ipv4.vs.conn_reuse_mode=0
tcp1 $VIP 82 198.18.0.11 40001
tcp1 $VIP 82 198.18.0.11 40001
conns
show ipvsadm -L -n
net_down
