# Scheduling oracle (run with: oracle/run-ipvsadm.sh --script THIS_FILE).
# Topology from oracle/guest/netsetup.sh: client netns 198.18.0.2 plus
# 198.18.0.10..59, VIP 198.18.0.100, real servers rs1..rs3 = 198.19.{1,2,3}.2
# (NAT / -m), each answers with its name.
# sh: 256 buckets, server i takes max(weight,1) consecutive buckets per round in
# list order (rs3 rs2 rs1); the client address picks the bucket.
# Lines "i SRC:SPORT DST NAME" come from a client that binds a fixed source port.
. "$ORACLE_LIB/netsetup.sh"
net_up 3
add_client_ips 10 59
servers_up close
SRCS=$(seq -s, -f '198.18.0.%g' 10 59)
cat > portclient.py <<'PY'
import socket, sys
# usage: portclient.py DST PORT SRC:SPORT ...  (one connection each, closed)
dst, port = sys.argv[1], int(sys.argv[2])
for i, sp in enumerate(sys.argv[3:], 1):
    src, sport = sp.split(":")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.bind((src, int(sport)))
        s.connect((dst, port))
        buf = b""
        while not buf.endswith(b"\n"):
            c = s.recv(64)
            if not c:
                break
            buf += c
        reply = buf.decode().strip() or "<no reply>"
    except OSError as e:
        reply = "<%s>" % type(e).__name__
    s.close()
    print(i, sp, dst, reply, flush=True)
PY
echo "# ---- sh, weights rs1:1 rs2:2 rs3:3 ----"
show ipvsadm -A -t $VIP:80 -s sh
for i in 1 2 3; do show ipvsadm -a -t $VIP:80 -r 198.19.$i.2:80 -m -w $i; done
echo "# run -t $VIP:80"
run_client --dst $VIP --count 50 --src $SRCS
echo "# same clients again: same servers (the kernel-chosen source port is ignored)"
echo "# run -t $VIP:80"
run_client --dst $VIP --count 10 --src $SRCS
echo "# rs2 weight 0: table rebuilt, rs2 keeps one bucket per round -> refused there"
show ipvsadm -e -t $VIP:80 -r 198.19.2.2:80 -m -w 0
echo "# run -t $VIP:80"
run_client --dst $VIP --count 50 --src $SRCS
echo "# sh-fallback: probes (2*hash + k) mod 256 for a usable server"
show ipvsadm -E -t $VIP:80 -s sh -b sh-fallback
show ipvsadm -L -n -t $VIP:80
echo "# run -t $VIP:80"
run_client --dst $VIP --count 50 --src $SRCS
echo "# rs3 over its upper threshold (OVERLOAD): fallback also avoids it"
show ipvsadm -e -t $VIP:80 -r 198.19.3.2:80 -m -w 3 -x 1
echo "# run -t $VIP:80"
run_client --dst $VIP --count 50 --src $SRCS
show ipvsadm -L -n -t $VIP:80
echo "# ---- sh-port on port 81: the source port is added to the hashed address ----"
show ipvsadm -A -t $VIP:81 -s sh -b sh-port
for i in 1 2 3; do show ipvsadm -a -t $VIP:81 -r 198.19.$i.2:80 -m -w $i; done
echo "# run -t $VIP:81"
ip netns exec cl python3 portclient.py $VIP 81 $(for p in $(seq 61001 61040); do printf '198.18.0.10:%s ' $p; done)
echo "# run -t $VIP:81"
ip netns exec cl python3 portclient.py $VIP 81 $(for k in $(seq 10 29); do printf '198.18.0.%s:%s ' $k $((62000 + k)); done)
echo "# ---- sh-port + sh-fallback on port 82, rs1 weight 0 ----"
show ipvsadm -A -t $VIP:82 -s sh -b sh-port,sh-fallback
for i in 1 2 3; do show ipvsadm -a -t $VIP:82 -r 198.19.$i.2:80 -m -w $i; done
show ipvsadm -e -t $VIP:82 -r 198.19.1.2:80 -m -w 0
echo "# run -t $VIP:82"
ip netns exec cl python3 portclient.py $VIP 82 $(for p in $(seq 63001 63040); do printf '198.18.0.11:%s ' $p; done)
show ipvsadm -L -n
net_down
