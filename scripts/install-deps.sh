#!/usr/bin/env bash
# Installs what fswan, its demo and its tests need on a Debian machine (as root).
# Debian packages are installed only when missing; the Python package in editable
# (compat) mode so `twistd fswan`, `whack` and `ipsec` run this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(strongswan-charon strongswan-swanctl libcharon-extra-plugins libcharon-extauth-plugins libstrongswan-standard-plugins
      iproute2 iputils-ping iperf3 tcpdump nftables util-linux python3-pip)
missing=()
# systemd-analyze (tests/daemon/test_systemd_unit.py verifies the shipped unit with it)
command -v systemd-analyze >/dev/null || DEBS+=(systemd)
for pkg in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ] || [ "${FSWAN_APT_UPDATE:-0}" = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if [ "${#missing[@]}" -gt 0 ]; then
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
if ! $PY -c 'import fswan, twisted, pyroute2, pytest, hypothesis, scapy, mypy, mypy_zope, cryptography; assert int(cryptography.__version__.split(".")[0]) >= 47' 2>/dev/null \
   || ! command -v whack >/dev/null || [ "${FSWAN_PIP_REINSTALL:-0}" = 1 ]; then
  $PY -m pip install -q --disable-pip-version-check --root-user-action=ignore \
      --break-system-packages -e '.[test]' --config-settings editable_mode=compat 2>/dev/null \
  || $PY -m pip install -q --disable-pip-version-check -e '.[test]' --config-settings editable_mode=compat
fi
