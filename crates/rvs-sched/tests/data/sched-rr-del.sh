# Scheduling oracle (run with: oracle/run-ipvsadm.sh --script THIS_FILE).
# Topology from oracle/guest/netsetup.sh: client netns 198.18.0.2, VIP 198.18.0.100,
# real servers rs1..rs3 = 198.19.{1,2,3}.2 (NAT / -m), each answers with its name.
# rr cursor rules: deleting the server under the cursor moves the cursor to the
# previous list element; adds and other deletes leave it alone.
. "$ORACLE_LIB/netsetup.sh"
net_up 3
servers_up close
show ipvsadm -A -t $VIP:80 -s rr
for i in 1 2 3; do show ipvsadm -a -t $VIP:80 -r 198.19.$i.2:80 -m; done
echo "# list order rs3 rs2 rs1; two picks leave the cursor on rs2"
run_client --dst $VIP --count 2
echo "# delete rs2 (under the cursor): cursor moves back to rs3, so rs1 comes next"
show ipvsadm -d -t $VIP:80 -r 198.19.2.2:80
run_client --dst $VIP --count 3
echo "# cursor is on rs1 (last). Re-add rs2 (back from the trash, to the list front),"
echo "# then delete rs3 (not under the cursor): next is the wrap to the front, rs2"
show ipvsadm -a -t $VIP:80 -r 198.19.2.2:80 -m
show ipvsadm -d -t $VIP:80 -r 198.19.3.2:80
show ipvsadm -L -n --nosort
run_client --dst $VIP --count 3
echo "# cursor on rs2 (first element); delete it: cursor goes back to the head -> rs1"
show ipvsadm -d -t $VIP:80 -r 198.19.2.2:80
run_client --dst $VIP --count 2
echo "# add rs3 and rs2 back, quiesce rs1 (weight 0): rs1 is skipped"
show ipvsadm -a -t $VIP:80 -r 198.19.3.2:80 -m
show ipvsadm -a -t $VIP:80 -r 198.19.2.2:80 -m
show ipvsadm -e -t $VIP:80 -r 198.19.1.2:80 -m -w 0
run_client --dst $VIP --count 4
echo "# all weights 0: no destination (connection refused)"
show ipvsadm -e -t $VIP:80 -r 198.19.2.2:80 -m -w 0
show ipvsadm -e -t $VIP:80 -r 198.19.3.2:80 -m -w 0
run_client --dst $VIP --count 2
echo "# rs1 back to weight 1: only rs1"
show ipvsadm -e -t $VIP:80 -r 198.19.1.2:80 -m -w 1
run_client --dst $VIP --count 2
show ipvsadm -L -n
net_down
