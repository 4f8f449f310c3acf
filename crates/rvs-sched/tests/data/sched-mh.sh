# Scheduling oracle (run with: oracle/run-ipvsadm.sh --script THIS_FILE).
# Topology from oracle/guest/netsetup.sh: client netns 198.18.0.2 plus
# 198.18.0.10..59, VIP 198.18.0.100, real servers rs1..rs3 = 198.19.{1,2,3}.2
# (NAT / -m), each answers with its name.
# mh: Maglev table of 4093 slots built from hsiphash (SipHash-1-3, fixed keys) of
# each server's address+port, shares from last_weight; the client address (plus
# the port with mh-port) hashed with the same function picks the slot.
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
echo "# ---- mh, weights rs1:1 rs2:2 rs3:3 ----"
show ipvsadm -A -t $VIP:80 -s mh
for i in 1 2 3; do show ipvsadm -a -t $VIP:80 -r 198.19.$i.2:80 -m -w $i; done
echo "# run -t $VIP:80"
run_client --dst $VIP --count 50 --src $SRCS
echo "# remove rs2: only its clients move"
show ipvsadm -d -t $VIP:80 -r 198.19.2.2:80
echo "# run -t $VIP:80"
run_client --dst $VIP --count 50 --src $SRCS
echo "# rs2 back (from the trash, weight 2): the original table again"
show ipvsadm -a -t $VIP:80 -r 198.19.2.2:80 -m -w 2
echo "# run -t $VIP:80"
run_client --dst $VIP --count 50 --src $SRCS
echo "# rs3 weight 0: it keeps its slots (last_weight 3) -> its clients are refused"
show ipvsadm -e -t $VIP:80 -r 198.19.3.2:80 -m -w 0
echo "# run -t $VIP:80"
run_client --dst $VIP --count 50 --src $SRCS
echo "# mh-fallback: rehash with the offset inside the hashed value"
show ipvsadm -E -t $VIP:80 -s mh -b mh-fallback
echo "# run -t $VIP:80"
run_client --dst $VIP --count 50 --src $SRCS
echo "# rs1 weight 5: last weights 5 2 3 -> new table"
show ipvsadm -e -t $VIP:80 -r 198.19.1.2:80 -m -w 5
echo "# run -t $VIP:80"
run_client --dst $VIP --count 50 --src $SRCS
show ipvsadm -L -n -t $VIP:80
echo "# ---- mh-port on port 81, equal weights ----"
show ipvsadm -A -t $VIP:81 -s mh -b mh-port
for i in 1 2 3; do show ipvsadm -a -t $VIP:81 -r 198.19.$i.2:80 -m; done
echo "# run -t $VIP:81"
ip netns exec cl python3 portclient.py $VIP 81 $(for p in $(seq 61001 61040); do printf '198.18.0.10:%s ' $p; done)
echo "# run -t $VIP:81"
ip netns exec cl python3 portclient.py $VIP 81 $(for k in $(seq 10 29); do printf '198.18.0.%s:%s ' $k $((62000 + k)); done)
show ipvsadm -L -n
net_down
