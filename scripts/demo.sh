#!/usr/bin/env bash
# The main job: two fswan gateways, each with a client behind it, in network namespaces.
# A tunnel comes up with `ipsec auto --up`, a ping and a short TCP transfer (iperf3) go
# client to client through it (ESP on the wire, nothing in clear), the status is printed,
# and everything is torn down.  Needs root.  FSWAN_DEMO_SKIP_INSTALL=1 skips the installer.
#
#   fswan-demo-wc          fswan-demo-west             fswan-demo-east           fswan-demo-ec
#   eth0 198.51.100.10 -- lan0 198.51.100.1
#                          wan0 192.0.2.1 ----------- wan0 192.0.2.2
#                                                     lan0 203.0.113.1 -- eth0 203.0.113.10
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${FSWAN_DEMO_SKIP_INSTALL:-0}" = 1 ] || bash scripts/install-deps.sh

P=fswan-demo
NSS=("$P-wc" "$P-west" "$P-east" "$P-ec")
WORK=$(mktemp -d /tmp/fswan-demo.XXXXXX)
in_ns() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
DAEMONS=()

cleanup() {
  for side in west east; do
    [ -S "$WORK/$side/pluto.ctl" ] && in_ns "$side" whack --ctlbase "$WORK/$side/pluto" --shutdown >/dev/null 2>&1 || true
  done
  for pid in "${DAEMONS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  for ns in "${NSS[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

step "four namespaces: clients 198.51.100.10 and 203.0.113.10 behind gateways 192.0.2.1 and 192.0.2.2"
for ns in "${NSS[@]}"; do
  ip netns del "$ns" 2>/dev/null || true
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
ip link add "$P-w0" netns "$P-west" type veth peer name "$P-e0" netns "$P-east"
ip link add "$P-w1" netns "$P-west" type veth peer name "$P-c0" netns "$P-wc"
ip link add "$P-e1" netns "$P-east" type veth peer name "$P-c1" netns "$P-ec"
in_ns west ip link set "$P-w0" name wan0; in_ns west ip link set "$P-w1" name lan0
in_ns east ip link set "$P-e0" name wan0; in_ns east ip link set "$P-e1" name lan0
in_ns wc ip link set "$P-c0" name eth0;   in_ns ec ip link set "$P-c1" name eth0
in_ns west ip addr add 192.0.2.1/24 dev wan0;    in_ns west ip addr add 198.51.100.1/25 dev lan0
in_ns east ip addr add 192.0.2.2/24 dev wan0;    in_ns east ip addr add 203.0.113.1/25 dev lan0
in_ns wc ip addr add 198.51.100.10/25 dev eth0;  in_ns ec ip addr add 203.0.113.10/25 dev eth0
for ns in west east; do
  in_ns $ns ip link set wan0 up; in_ns $ns ip link set lan0 up
  in_ns $ns sysctl -qw net.ipv4.ip_forward=1
done
in_ns wc ip link set eth0 up; in_ns wc ip route add default via 198.51.100.1
in_ns ec ip link set eth0 up; in_ns ec ip route add default via 203.0.113.1

for side in west east; do
  mkdir -p "$WORK/$side"
  cat >"$WORK/$side/ipsec.conf" <<'EOF'
version 2
config setup
	interfaces="ipsec0=wan0"

conn net
	left=192.0.2.1
	leftsubnet=198.51.100.0/25
	right=192.0.2.2
	rightsubnet=203.0.113.0/25
	authby=secret
	ike=aes128-sha2_256-modp2048
	esp=aes_gcm128
	auto=add
EOF
  printf '192.0.2.1 192.0.2.2 : PSK "fswan-demo-not-a-secret"\n' >"$WORK/$side/ipsec.secrets"
  chmod 600 "$WORK/$side/ipsec.secrets"
done

step "without a tunnel the clients cannot reach each other"
if in_ns wc ping -c 1 -W 1 203.0.113.10 >/dev/null 2>&1; then echo "leak: traffic passes without IPsec"; exit 1; fi
echo "ping 203.0.113.10: no route (as it should be)"

step "twistd -n fswan in both gateways (each makes its ipsec0 TUN)"
for side in west east; do
  in_ns "$side" twistd -n --pidfile= --logfile="$WORK/$side/pluto.log" fswan \
      -c "$WORK/$side/ipsec.conf" --ctlbase "$WORK/$side/pluto" &
  DAEMONS+=($!)
done
for side in west east; do
  for _ in $(seq 100); do [ -S "$WORK/$side/pluto.ctl" ] && break; sleep 0.1; done
  [ -S "$WORK/$side/pluto.ctl" ] || { echo "$side daemon did not start:"; cat "$WORK/$side/pluto.log"; exit 1; }
done
ipsec_west() { local sub=$1; shift; in_ns west ipsec "$sub" --ctlbase "$WORK/west/pluto" "$@"; }
ipsec_east() { local sub=$1; shift; in_ns east ipsec "$sub" --ctlbase "$WORK/east/pluto" "$@"; }
in_ns west ip -br link show ipsec0

step "ipsec auto --up net   (west initiates Main Mode + Quick Mode)"
ipsec_west auto --up net

step "ping client to client through the tunnel"
in_ns wc ping -c 3 -i 0.3 203.0.113.10

step "a short TCP transfer (iperf3, 2 s) while tcpdump watches west's wire"
in_ns ec iperf3 -s -1 -B 203.0.113.10 >/dev/null 2>&1 &
SERVER=$!
in_ns west timeout 6 tcpdump -n -i wan0 -c 6 'esp or udp port 4500' 2>/dev/null >"$WORK/wire.txt" &
sleep 0.5
in_ns wc iperf3 -c 203.0.113.10 -t 2 -f m | grep -E 'sender|receiver'
wait "$SERVER" 2>/dev/null || true
echo "-- on the wire (west wan0):"; sed -e 's/^/   /' "$WORK/wire.txt" | head -6

step "ipsec auto --status (west)"
ipsec_west auto --status
step "ipsec eroute (west)"
ipsec_west eroute

step "ipsec auto --down net; the route and eroute go with the SA"
ipsec_west auto --down net
sleep 0.5
ipsec_west eroute
if in_ns wc ping -c 1 -W 1 203.0.113.10 >/dev/null 2>&1; then echo "leak after --down"; exit 1; fi
echo "ping 203.0.113.10 after --down: no route (as it should be)"

step "whack --shutdown (both)"
for side in west east; do in_ns "$side" whack --ctlbase "$WORK/$side/pluto" --shutdown; done
for pid in "${DAEMONS[@]}"; do wait "$pid"; done
DAEMONS=()
echo; echo "demo finished: tunnel up, ping and TCP through it, status shown, everything torn down"
