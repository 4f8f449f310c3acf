# Scheduling oracle (run with: oracle/run-ipvsadm.sh --script THIS_FILE).
# Topology from oracle/guest/netsetup.sh: client netns 198.18.0.2, VIP 198.18.0.100,
# real servers rs1..rs3 = 198.19.{1,2,3}.2 (NAT / -m), each answers with its name.
# lc, wlc, sed and nq, each on its own port (so every service starts with fresh
# real servers), weights rs1:1 rs2:2 rs3:3 (list order rs3 rs2 rs1).
# A held run keeps its connections ESTABLISHED (ActiveConn) until released, after
# which they close and count as InActConn; a closed run adds InActConn only.
. "$ORACLE_LIB/netsetup.sh"
net_up 3
servers_up hold
port=80
for s in lc wlc sed nq; do
  echo "# ---- $s on port $port ----"
  show ipvsadm -A -t $VIP:$port -s $s
  for i in 1 2 3; do show ipvsadm -a -t $VIP:$port -r 198.19.$i.2:80 -m -w $i; done
  echo "# run -t $VIP:$port"
  held_client --dst $VIP --port $port --count 9
  sleep 1
  echo "# released: the 9 connections are now inactive"
  show ipvsadm -L -n -t $VIP:$port
  echo "# run -t $VIP:$port"
  run_client --dst $VIP --port $port --count 8
  show ipvsadm -L -n -t $VIP:$port
  echo "# run -t $VIP:$port"
  held_client --dst $VIP --port $port --count 7
  sleep 1
  port=$((port + 1))
done
net_down
