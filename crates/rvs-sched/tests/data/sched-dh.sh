# Scheduling oracle (run with: oracle/run-ipvsadm.sh --script THIS_FILE).
# Topology from oracle/guest/netsetup.sh: client netns 198.18.0.2, real servers
# rs1..rs3 = 198.19.{1,2,3}.2 (NAT / -m), each answers with its name.
# 198.18.1.0/24 is local on the director; packets to it get fwmark 1, so one
# fwmark service sees many destination addresses.
# dh: 256 buckets, bucket i = i-th server of the list (rs3 rs2 rs1) cyclically,
# weights ignored; the packet's destination address picks the bucket; weight 0 /
# OVERLOAD -> no destination; weight edits do not rebuild the table.
. "$ORACLE_LIB/netsetup.sh"
net_up 3
servers_up close
iptables -t mangle -A PREROUTING -i dir-cl -d 198.18.1.0/24 -j MARK --set-mark 1
DSTS=$(seq -s, -f '198.18.1.%g' 1 40)
show ipvsadm -A -f 1 -s dh
for i in 1 2 3; do show ipvsadm -a -f 1 -r 198.19.$i.2:80 -m -w $i; done
echo "# run -f 1"
run_client --dst $DSTS --count 40
echo "# rs2 weight 0: same table, its destinations are refused"
show ipvsadm -e -f 1 -r 198.19.2.2:80 -m -w 0
echo "# run -f 1"
run_client --dst $DSTS --count 40
echo "# rs2 deleted: table rebuilt over rs3 rs1"
show ipvsadm -d -f 1 -r 198.19.2.2:80
echo "# run -f 1"
run_client --dst $DSTS --count 40
echo "# rs2 back from the trash with weight 5, to the list front: rs2 rs3 rs1"
show ipvsadm -a -f 1 -r 198.19.2.2:80 -m -w 5
echo "# run -f 1"
run_client --dst $DSTS --count 40
show ipvsadm -L -n
net_down
