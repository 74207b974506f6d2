#!/usr/bin/env bash
# The main job, for now: start the fswan daemon in a network namespace on the bundled
# etc/ipsec.conf, drive it with the real `ipsec`/`whack` commands, show its status, stop it.
# (The IKE and data-plane work turn this into a real tunnel demo.)  Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

NS=fswan-demo-west
WIRE=fswan-demo-wire   # the other end of west's wan0 veth: nothing listens there
WORK=$(mktemp -d /tmp/fswan-demo.XXXXXX)
CTL="$WORK/pluto"
in_ns() { ip netns exec "$NS" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
  in_ns whack --ctlbase "$CTL" --shutdown >/dev/null 2>&1 || true
  [ -n "${DAEMON:-}" ] && { kill "$DAEMON" 2>/dev/null || true; wait "$DAEMON" 2>/dev/null || true; }
  ip netns del "$NS" 2>/dev/null || true
  ip netns del "$WIRE" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step "a gateway namespace: $NS with wan0 192.0.2.1/24, default route via 192.0.2.254"
ip netns del "$NS" 2>/dev/null || true
ip netns del "$WIRE" 2>/dev/null || true
ip netns add "$NS"
ip netns add "$WIRE"
in_ns ip link set lo up
ip link add fswan-demo0 netns "$NS" type veth peer name wire0 netns "$WIRE"
in_ns ip link set fswan-demo0 name wan0
ip -n "$WIRE" link set wire0 up
in_ns ip addr add 192.0.2.1/24 dev wan0
in_ns ip link set wan0 up
in_ns ip route add default via 192.0.2.254

cp -r etc/ipsec.conf etc/ipsec.d etc/ipsec.secrets "$WORK/"
chmod 600 "$WORK/ipsec.secrets"

step "ipsec checkconfig --config $WORK/ipsec.conf"
ipsec checkconfig --config "$WORK/ipsec.conf"

step "twistd -n fswan -c ipsec.conf --ctlbase $CTL   (in $NS)"
in_ns twistd -n --pidfile= --logfile="$WORK/pluto.log" fswan -c "$WORK/ipsec.conf" --ctlbase "$CTL" &
DAEMON=$!
for _ in $(seq 100); do [ -S "$CTL.ctl" ] && break; sleep 0.1; done
[ -S "$CTL.ctl" ] || { echo "daemon did not start:"; cat "$WORK/pluto.log"; exit 1; }
ls -l "$CTL.ctl"

step "ipsec auto --status"
in_ns ipsec auto --ctlbase "$CTL" --status

step "ipsec auto --add roadwarrior; ipsec auto --verbose --replace net"
in_ns ipsec auto --ctlbase "$CTL" --add roadwarrior
in_ns ipsec auto --ctlbase "$CTL" --verbose --replace net

step "whack --status --json (machine-readable)"
in_ns whack --ctlbase "$CTL" --status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({c["name"]: c["topology"] for c in d["connections"]}, indent=2))'

step "ipsec auto --delete roadwarrior; ipsec auto --rereadsecrets"
in_ns ipsec auto --ctlbase "$CTL" --delete roadwarrior
in_ns ipsec auto --ctlbase "$CTL" --verbose --rereadsecrets

step "whack --shutdown"
in_ns whack --ctlbase "$CTL" --shutdown
wait "$DAEMON"; DAEMON=
step "the daemon's log"
sed -e 's/^/  /' "$WORK/pluto.log"
echo; echo "demo finished: daemon started, answered whack, reloaded, and shut down cleanly"
