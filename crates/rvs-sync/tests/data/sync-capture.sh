# Sync-daemon oracle: the real Linux 6.1 master sends IPVS sync messages; a
# receiver in netns "bk" prints every datagram in hex, and a real kernel backup
# in the same netns installs them.
. "$ORACLE_LIB/netsetup.sh"
net_up 3
add_client_ips 10 13
servers_up close
ip netns add bk
ip link add dir-bk type veth peer name bk-eth0
ip link set bk-eth0 netns bk
ip addr add 198.18.2.1/24 dev dir-bk
ip link set dir-bk up
ip -n bk addr add 198.18.2.2/24 dev bk-eth0
ip -n bk link set lo up
ip -n bk link set bk-eth0 up
cat > recv.py <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("224.0.0.81", 8848))
mreq = struct.pack("4s4s", socket.inet_aton("224.0.0.81"), socket.inet_aton("198.18.2.2"))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
open("recv.ready", "w").close()
with open("datagrams.txt", "w") as f:
    while True:
        d, a = s.recvfrom(65535)
        f.write("%s %s\n" % (a[0], d.hex()))
        f.flush()
PY
ip netns exec bk python3 recv.py &
RPID=$!
for _ in $(seq 1 100); do [ -f recv.ready ] && break; sleep 0.1; done
ip netns exec bk tcpdump -l -n -i bk-eth0 -xx udp port 8848 > tcpdump.txt 2>/dev/null &
TPID=$!
# the kernel backup in netns bk, with the same services
show ip netns exec bk ipvsadm --start-daemon backup --mcast-interface bk-eth0 --syncid 7
for b in "" "ip netns exec bk"; do
  $b ipvsadm -A -t $VIP:80 -s rr
  for i in 1 2 3; do $b ipvsadm -a -t $VIP:80 -r 198.19.$i.2:80 -m; done
  $b ipvsadm -A -t $VIP:8080 -s rr -p 60
  for i in 1 2; do $b ipvsadm -a -t $VIP:8080 -r 198.19.$i.2:80 -m; done
  $b ipvsadm -A -u $VIP:53 -s rr
  $b ipvsadm -a -u $VIP:53 -r 198.19.3.2:53 -m
  $b ipvsadm -A -f 5 -s rr -p 30
  $b ipvsadm -a -f 5 -r 198.19.2.2:80 -m
done
iptables -t mangle -A PREROUTING -d $VIP -p tcp --dport 8081 -j MARK --set-mark 5
show ipvsadm --start-daemon master --mcast-interface dir-bk --syncid 7
show ipvsadm -L --daemon
sleep 1
echo "# phase 1: v1, 2 plain TCP connections"
run_client --dst $VIP --count 2 --src 198.18.0.10,198.18.0.11
sleep 3
echo "# phase 2: v1, persistent (template) and fwmark persistent"
run_client --dst $VIP --port 8080 --count 1 --src 198.18.0.12
run_client --dst $VIP --port 8081 --count 1 --src 198.18.0.13
sleep 3
echo "# phase 3: v1, UDP 4 datagrams"
ip netns exec cl python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.0.10", 40000))
for i in range(4): s.sendto(b"x", ("198.18.0.100", 53))
'
sleep 3
show ipvsadm -L -n -c
show ip netns exec bk ipvsadm -L -n -c
show ip netns exec bk ipvsadm -L -n
show ip netns exec bk cat /proc/net/ip_vs_conn_sync
echo "# phase 4: v0, 1 plain TCP connection and 1 persistent"
sysctl -w net.ipv4.vs.sync_version=0
run_client --dst $VIP --count 1 --src 198.18.0.11
run_client --dst $VIP --port 8080 --count 1 --src 198.18.0.12
sleep 3
show ip netns exec bk ipvsadm -L -n -c
kill $RPID $TPID
echo "# datagrams"
cat datagrams.txt
echo "# tcpdump"
cat tcpdump.txt
net_down
