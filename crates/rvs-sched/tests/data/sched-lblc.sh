# Scheduling oracle (run with: oracle/run-ipvsadm.sh --script THIS_FILE).
# Topology from oracle/guest/netsetup.sh: client netns 198.18.0.2, real servers
# rs1..rs3 = 198.19.{1,2,3}.2 (NAT / -m), each answers with its name.
# 198.18.1.0/24 is local on the director; packets to it get fwmark 1, so one
# fwmark service sees many destination addresses.
# lblc: each destination address sticks to one server (first chosen by wlc) until
# that server is lblc-"overloaded" (ActiveConn > weight while some server has
# ActiveConn*2 < weight), has weight 0 or leaves; then wlc picks again.
. "$ORACLE_LIB/netsetup.sh"
net_up 3
servers_up hold
iptables -t mangle -A PREROUTING -i dir-cl -d 198.18.1.0/24 -j MARK --set-mark 1
show ipvsadm -A -f 1 -s lblc
for i in 1 2 3; do show ipvsadm -a -f 1 -r 198.19.$i.2:80 -m -w $i; done
echo "# held: 10 connections to 198.18.1.1 (list rs3:3 rs2:2 rs1:1)"
echo "# run -f 1"
held_client --dst 198.18.1.1 --count 10
sleep 1
echo "# closed: destinations 198.18.1.1..12, twice round"
echo "# run -f 1"
run_client --dst $(seq -s, -f '198.18.1.%g' 1 12) --count 24
show ipvsadm -L -n
echo "# held: alternating 198.18.1.2 and 198.18.1.3"
echo "# run -f 1"
held_client --dst 198.18.1.2,198.18.1.3 --count 12
sleep 1
echo "# rs3 weight 0: its destinations go back to wlc"
show ipvsadm -e -f 1 -r 198.19.3.2:80 -m -w 0
echo "# run -f 1"
run_client --dst $(seq -s, -f '198.18.1.%g' 1 12) --count 12
echo "# rs3 weight 3 again, rs2 deleted: entries naming rs2 are replaced"
show ipvsadm -e -f 1 -r 198.19.3.2:80 -m -w 3
show ipvsadm -d -f 1 -r 198.19.2.2:80
echo "# run -f 1"
run_client --dst $(seq -s, -f '198.18.1.%g' 1 12) --count 12
echo "# rs1 OVERLOAD (upper threshold 1): a cached rs1 is still used (lblc does"
echo "# not look at the flag for a hit), new destinations avoid it"
show ipvsadm -e -f 1 -r 198.19.1.2:80 -m -w 1 -x 1
echo "# run -f 1"
run_client --dst $(seq -s, -f '198.18.1.%g' 1 16) --count 16
show ipvsadm -L -n
net_down
