# Scheduling oracle (run with: oracle/run-ipvsadm.sh --script THIS_FILE).
# Topology from oracle/guest/netsetup.sh: client netns 198.18.0.2, VIP 198.18.0.100,
# real servers rs1..rs3 = 198.19.{1,2,3}.2 (NAT / -m), each answers with its name.
# fo: highest weight not OVERLOAD wins. ovf: highest weight whose ActiveConn does
# not exceed its weight; "<ConnectionRefusedError>" = no destination available.
. "$ORACLE_LIB/netsetup.sh"
net_up 3
servers_up hold
echo "# ---- fo, weights rs1:2 rs2:3 rs3:3 (list rs3 rs2 rs1; tie -> rs3) ----"
show ipvsadm -A -t $VIP:80 -s fo
show ipvsadm -a -t $VIP:80 -r 198.19.1.2:80 -m -w 2
show ipvsadm -a -t $VIP:80 -r 198.19.2.2:80 -m -w 3
show ipvsadm -a -t $VIP:80 -r 198.19.3.2:80 -m -w 3
echo "# run -t $VIP:80"
run_client --dst $VIP --count 3
echo "# rs3 quiesced: rs2"
show ipvsadm -e -t $VIP:80 -r 198.19.3.2:80 -m -w 0
echo "# run -t $VIP:80"
run_client --dst $VIP --count 2
echo "# rs2 upper threshold 4 (it already has 2): two more, then OVERLOAD -> rs1"
show ipvsadm -e -t $VIP:80 -r 198.19.2.2:80 -m -w 3 -x 4
echo "# run -t $VIP:80"
run_client --dst $VIP --count 4
show ipvsadm -L -n -t $VIP:80
echo "# ---- ovf on port 81, weights rs1:1 rs2:2 rs3:3, held ----"
show ipvsadm -A -t $VIP:81 -s ovf
for i in 1 2 3; do show ipvsadm -a -t $VIP:81 -r 198.19.$i.2:80 -m -w $i; done
echo "# run -t $VIP:81"
held_client --dst $VIP --port 81 --count 11
sleep 1
echo "# released: ActiveConn back to 0, InActConn does not count for ovf"
echo "# run -t $VIP:81"
run_client --dst $VIP --port 81 --count 3
echo "# rs3 quiesced"
show ipvsadm -e -t $VIP:81 -r 198.19.3.2:80 -m -w 0
echo "# run -t $VIP:81"
held_client --dst $VIP --port 81 --count 6
sleep 1
net_down
