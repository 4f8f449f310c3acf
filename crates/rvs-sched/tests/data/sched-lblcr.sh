# Scheduling oracle (run with: oracle/run-ipvsadm.sh --script THIS_FILE).
# Topology from oracle/guest/netsetup.sh: client netns 198.18.0.2, real servers
# rs1..rs3 = 198.19.{1,2,3}.2 (NAT / -m), each answers with its name.
# 198.18.1.0/24 is local on the director; packets to it get fwmark 1, so one
# fwmark service sees many destination addresses.
# lblcr: each destination address has a server set; the set's weighted least
# connection member is used unless lblc-"overloaded", in which case wlc picks a
# server that joins the set. A set with more than one member that has not
# changed for lblcr_expiration (set to 10 s here) drops its most loaded member.
# "$ sleep N" lines are real pauses (the replay advances its clock by N s).
. "$ORACLE_LIB/netsetup.sh"
net_up 3
servers_up hold
iptables -t mangle -A PREROUTING -i dir-cl -d 198.18.1.0/24 -j MARK --set-mark 1
show ipvsadm -A -f 1 -s lblcr
for i in 1 2 3; do show ipvsadm -a -f 1 -r 198.19.$i.2:80 -m -w $i; done
show sysctl -w net.ipv4.vs.lblcr_expiration=10
echo "# held: 10 connections to 198.18.1.1 (list rs3:3 rs2:2 rs1:1): the set grows"
echo "# run -f 1"
held_client --dst 198.18.1.1 --count 10
echo "# closed: 198.18.1.1 and 1.2 (set minimum by weighted least connection)"
echo "# run -f 1"
run_client --dst 198.18.1.1,198.18.1.2 --count 6
show sleep 12
echo "# the sets of 1.1 are older than 10 s: first hit drops the most loaded member"
echo "# run -f 1"
run_client --dst 198.18.1.1 --count 3
show ipvsadm -L -n
echo "# held: alternating 198.18.1.1 and 198.18.1.2"
echo "# run -f 1"
held_client --dst 198.18.1.1,198.18.1.2 --count 12
sleep 1
echo "# rs3 weight 0: never a set minimum, wlc never picks it"
show ipvsadm -e -f 1 -r 198.19.3.2:80 -m -w 0
echo "# run -f 1"
run_client --dst $(seq -s, -f '198.18.1.%g' 1 6) --count 12
show sleep 12
echo "# after another 12 s every multi-member set sheds one member on its first hit"
echo "# run -f 1"
run_client --dst $(seq -s, -f '198.18.1.%g' 1 6) --count 12
show ipvsadm -L -n
net_down
