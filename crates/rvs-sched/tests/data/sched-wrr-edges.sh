# Scheduling oracle (run with: oracle/run-ipvsadm.sh --script THIS_FILE).
# Topology from oracle/guest/netsetup.sh: client netns 198.18.0.2, VIP 198.18.0.100,
# real servers rs1..rs3 = 198.19.{1,2,3}.2 (NAT / -m), each answers with its name.
# wrr edge cases: gcd > 1 (di/mw), edits, adds and deletes mid-cycle (each resets
# the cursor to the list head and re-derives cw), an upper threshold (OVERLOAD).
. "$ORACLE_LIB/netsetup.sh"
net_up 3
servers_up close
show ipvsadm -A -t $VIP:80 -s wrr
show ipvsadm -a -t $VIP:80 -r 198.19.1.2:80 -m -w 2
show ipvsadm -a -t $VIP:80 -r 198.19.2.2:80 -m -w 4
show ipvsadm -a -t $VIP:80 -r 198.19.3.2:80 -m -w 6
echo "# list rs3:6 rs2:4 rs1:2, gcd 2 -> di 2, mw 5; cw was set to 1 when rs1 was added"
echo "# (cw 0 -> mw 1) and each later add keeps it at (1/2)*2+1 = 1: so the first"
echo "# pass takes all three, then cw 5 (rs3), 3 (rs3 rs2), 1 (rs3 rs2 rs1) ..."
run_client --dst $VIP --count 8
echo "# mid-cycle edit rs2 -> 3: di 1, mw 6, cursor back to the head"
show ipvsadm -e -t $VIP:80 -r 198.19.2.2:80 -m -w 3
run_client --dst $VIP --count 9
echo "# delete rs3 mid-cycle: weights rs2:3 rs1:2"
show ipvsadm -d -t $VIP:80 -r 198.19.3.2:80
run_client --dst $VIP --count 7
echo "# rs3 back from the trash with weight 4 (to the list front)"
show ipvsadm -a -t $VIP:80 -r 198.19.3.2:80 -m -w 4
run_client --dst $VIP --count 10
echo "# weights 8 4 4 (gcd 4: di 4, mw 5)"
show ipvsadm -e -t $VIP:80 -r 198.19.3.2:80 -m -w 8
show ipvsadm -e -t $VIP:80 -r 198.19.2.2:80 -m -w 4
show ipvsadm -e -t $VIP:80 -r 198.19.1.2:80 -m -w 4
run_client --dst $VIP --count 9
show ipvsadm -L -n
echo "# upper threshold on rs3: active+inactive >= x sets OVERLOAD, and closed"
echo "# connections stay inactive (TIME_WAIT) for the rest of this run"
show ipvsadm -e -t $VIP:80 -r 198.19.3.2:80 -m -w 8 -x 8
run_client --dst $VIP --count 8
show ipvsadm -L -n
net_down
