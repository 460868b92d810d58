# lib.sh - shell helpers for ../gateway-netns.sh (sourced): namespaces, charon
# instances (kernel-libipsec, as ../../../shared/interop/up.sh starts them), our
# gateway, process bookkeeping, checks.
#
# Everything started here is recorded in $OUT/pids/<name>.pid together with the
# executable it must be, so cleanup kills exactly those processes and nothing else.

NS_PREFIX=gw-
CHARON=/usr/lib/ipsec/charon
# built-in crypto plugins first, then openssl (as the rig's up.sh)
SW_PLUGINS="random nonce aes sha1 sha2 hmac gcm ccm ctr chapoly curve25519 mgf1 kdf pem pkcs1 pkcs8 x509 pubkey revocation constraints openssl kernel-libipsec kernel-netlink socket-default vici"

log() { printf '[netns %s] %s\n' "$(date +%T.%3N)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- namespaces -----------------------------------------------------------------
mk_ns() { # name
  ip netns add "$1"
  ip -n "$1" link set lo up
  # IPv4 only: no IPv6 link-local chatter on the veths and TUN devices (no sysctl binary needed)
  ip netns exec "$1" sh -c 'for k in all default; do f=/proc/sys/net/ipv6/conf/$k/disable_ipv6; [ -w $f ] && echo 1 >$f; done; true'
}
# link NS1 IF1 ADDR1/LEN NS2 IF2 ADDR2/LEN: a veth pair between two namespaces
link_ns() {
  ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
  ip -n "$1" addr add "$3" dev "$2"
  ip -n "$4" addr add "$6" dev "$5"
  ip -n "$1" link set "$2" up
  ip -n "$4" link set "$5" up
}
inner_addr() { ip -n "$1" addr add "$2/32" dev lo; }   # ns addr: a tunnel-inner host address
del_all_ns() {
  local ns
  [ -d /run/netns ] || return 0
  for ns in $(ip netns list | awk '{print $1}'); do
    case "$ns" in "$NS_PREFIX"*) ip netns del "$ns" 2>/dev/null || true;; esac
  done
}

# --- processes ------------------------------------------------------------------
PIDS_DIR() { printf '%s/pids' "$OUT"; }
record_pid() { # name pid exe
  mkdir -p "$(PIDS_DIR)"
  printf '%s %s\n' "$2" "$3" >"$(PIDS_DIR)/$1.pid"
}
pid_of() { awk '{print $1}' "$(PIDS_DIR)/$1.pid"; }
alive() { # name: recorded process still running (and still that executable)
  local f pid exe
  f=$(PIDS_DIR)/$1.pid; [ -f "$f" ] || return 1
  read -r pid exe <"$f"
  [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ]
}
running() { readlink "/proc/$1/exe" >/dev/null 2>&1; }   # pid: alive, not a zombie
stop_proc() { # name [signal]: stop one recorded process (TERM, then KILL after 5 s)
  local f pid exe i
  f=$(PIDS_DIR)/$1.pid; [ -f "$f" ] || return 0
  read -r pid exe <"$f"
  if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ]; then
    kill "-${2:-TERM}" "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do running "$pid" || break; sleep 0.05; done
    running "$pid" && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$f"
}
stop_all() { # every recorded process: TERM to all at once, 5 s, then KILL
  local f pid exe pids=() i p
  for f in "$(PIDS_DIR)"/*.pid; do
    [ -f "$f" ] || continue
    read -r pid exe <"$f"
    rm -f "$f"
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] || continue
    kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  for i in $(seq 1 100); do
    for p in "${pids[@]}"; do running "$p" && break; p=; done
    [ -z "${p:-}" ] && break
    sleep 0.05
  done
  for p in "${pids[@]}"; do running "$p" && kill -KILL "$p" 2>/dev/null; done
  return 0
}
cpu_ticks() { # pid: utime+stime in clock ticks (/proc/PID/stat fields 14 and 15)
  # field 2 (comm) may contain spaces: cut after the last ')'
  sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

# --- charon (strongSwan 5.9, kernel-libipsec: ESP in user space over a TUN device) -
# charon_conf DIR: strongswan.conf for one instance; CHARON_LOG_IKE (default 4) sets the
# IKE/CHD log level (the load case turns it down)
charon_conf() {
  local d=$1
  mkdir -p "$d/run" "$d/swanctl"
  for sub in x509 x509ca x509crl private conf.d; do mkdir -p "$d/swanctl/$sub"; done
  cat >"$d/strongswan.conf" <<EOC
charon {
  load_modular = no
  load = $SW_PLUGINS
  port = 500
  port_nat_t = 4500
  install_routes = yes
  install_virtual_ip = no
  retransmit_tries = 3
  retransmit_timeout = 1.0
  retransmit_base = 1.4
  cookie_threshold = 100000
  cookie_threshold_ip = 100000
  block_threshold = 100000
  init_limit_half_open = 100000
  plugins {
    vici { socket = unix://$d/charon.vici }
    socket-default { use_ipv6 = no }
  }
  filelog {
    main {
      path = $d/charon.log
      append = no
      flush_line = yes
      time_format = %H:%M:%S
      time_add_ms = yes
      ike_name = yes
      default = 1
      ike = ${CHARON_LOG_IKE:-2}
      chd = ${CHARON_LOG_IKE:-2}
      cfg = 1
      knl = 1
      net = 1
      esp = 1
      enc = 0
      mgr = 1
    }
  }
}
swanctl {
  load = pem pkcs1 x509 revocation constraints pubkey openssl random
}
EOC
}
sw() { # DIR swanctl-args...
  local d=$1; shift
  SWANCTL_DIR="$d/swanctl" STRONGSWAN_CONF="$d/strongswan.conf" swanctl "$@" --uri "unix://$d/charon.vici"
}
# start_charon NAME NS DIR: DIR holds strongswan.conf and swanctl/swanctl.conf. As the
# rig does: a private /run bound in the namespace's own mount namespace (charon's
# pid file is hard-wired to /var/run/charon.pid); no fork, so $! is charon.
start_charon() {
  local name=$1 ns=$2 d=$3 i pid
  : >"$d/charon.log"
  # started from a subshell, so it is no job of ours (no "Killed" notices after kill -9)
  pid=$(setsid ip netns exec "$ns" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
      STRONGSWAN_CONF="$d/strongswan.conf" \
      sh -c 'mount --bind "$1" /run && exec '"$CHARON" sh "$d/run" \
      >"$d/charon.out" 2>&1 </dev/null & echo $!)
  record_pid "$name" "$pid" "$CHARON"
  for i in $(seq 1 100); do
    if sw "$d" --stats >/dev/null 2>&1; then
      sw "$d" --load-all --noprompt >"$d/load.out" 2>&1 || { cat "$d/load.out" >&2; return 1; }
      log "charon $name up (pid $pid, ns $ns)"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { log "charon $name died"; cat "$d/charon.out" >&2; tail -n 20 "$d/charon.log" >&2; return 1; }
    sleep 0.1
  done
  log "charon $name: vici never answered"; return 1
}

# --- our gateway ---------------------------------------------------------------------
# start_gw NAME NS DIR [extra args]: DIR/gateway.conf; stderr to DIR/gateway.log,
# control socket DIR/ctl.sock, TUN device gwtun0
start_gw() {
  local name=$1 ns=$2 d=$3 i pid; shift 3
  rm -f "$d/ctl.sock"
  echo "$BIN gateway --config $d/gateway.conf --tun gwtun0 --control $d/ctl.sock $*" >"$d/cmdline"
  pid=$(setsid ip netns exec "$ns" env RUST_LOG="${GW_LOG:-info}" RUST_BACKTRACE=1 \
      "$BIN" gateway --config "$d/gateway.conf" --tun gwtun0 --control "$d/ctl.sock" "$@" \
      >"$d/gateway.out" 2>"$d/gateway.log" </dev/null & echo $!)
  record_pid "$name" "$pid" "$(readlink -f "$BIN")"
  for i in $(seq 1 100); do
    if [ -S "$d/ctl.sock" ] && "$BIN" status --control "$d/ctl.sock" --json >/dev/null 2>&1; then
      log "gateway $name up (pid $pid, ns $ns)"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { log "gateway $name died"; tail -n 30 "$d/gateway.log" >&2; return 1; }
    sleep 0.1
  done
  log "gateway $name: control socket never answered"; tail -n 30 "$d/gateway.log" >&2; return 1
}
gw_status() { "$BIN" status --control "$1/ctl.sock" --json; }   # DIR
# gw_check DIR PYTHON-EXPR: evaluate an expression over the status JSON (as `s`), e.g.
# gw_check "$d" 'len(est(s)) == 1'; prints the status when it is false
gw_check() {
  local st
  st=$(gw_status "$1") || { log "ipsec status failed for $1"; return 1; }
  "${PY:-python3}" "$LIB_DIR/check.py" "$2" <<<"$st"
}
# wait_for SECONDS CMD...: retry CMD every 0.25 s until it succeeds
wait_for() {
  local t=$1 i; shift
  for i in $(seq 1 $((t * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  "$@"
}

# --- configuration (one swanctl.conf dialect for both; charon gets a few extra keys) --
# conn_block KIND NAME LADDR RADDR LID RID LTS RTS START [IKE_REKEY CHILD_REKEY DPD]
#   An empty LID or RID leaves the id out. CONN_AUTH (default psk; e.g. pubkey) is the
#   local auth, CONN_REMOTE_AUTH the remote one (default CONN_AUTH), CONN_CERT adds
#   `certs = FILE` to local.
#   KIND ours|charon; rekey times in seconds; START none|trap|start (charon: none; its
#   tests initiate with swanctl). Charon also gets life_time above rekey_time (or its
#   Child SA hard-expires at 110% instead of being rekeyed) and small rand_times; our
#   gateway refuses those keys.
conn_block() {
  local kind=$1 name=$2 laddr=$3 raddr=$4 lid=$5 rid=$6 lts=$7 rts=$8 start=$9
  local ike_rekey=${10:-14400} child_rekey=${11:-3600} dpd=${12:-0}
  local ike_extra="" child_extra=""
  if [ "$kind" = charon ]; then
    ike_extra="
    over_time = 10
    rand_time = 1"
    child_extra="
        life_time = $((child_rekey + 10))
        rand_time = 1
        dpd_action = clear"
    start=none
  fi
  cat <<EOC
  $name {
    version = 2
    local_addrs = $laddr
    remote_addrs = $raddr
    proposals = ${IKE_PROPOSAL:-aes128gcm16-prfsha256-x25519}
    encap = yes
    mobike = no
    rekey_time = $ike_rekey
    dpd_delay = $dpd$ike_extra
    local {
      auth = ${CONN_AUTH:-psk}${lid:+
      id = \"$lid\"}${CONN_CERT:+
      certs = $CONN_CERT}
    }
    remote {
      auth = ${CONN_REMOTE_AUTH:-${CONN_AUTH:-psk}}${rid:+
      id = \"$rid\"}
    }
    children {
      net {
        mode = tunnel
        local_ts = $lts
        remote_ts = $rts
        esp_proposals = ${ESP_PROPOSAL:-aes128gcm16}
        rekey_time = $child_rekey
        start_action = $start$child_extra
      }
    }
  }
EOC
}
# secret_block NAME SECRET [ID]
secret_block() {
  printf '  ike-%s {\n' "$1"
  [ -n "${3:-}" ] && printf '    id = %s\n' "$3"
  printf '    secret = "%s"\n  }\n' "$2"
}
# write_conf FILE CONN-BLOCKS SECRET-BLOCKS
write_conf() {
  mkdir -p "$(dirname "$1")"
  printf 'connections {\n%s\n}\nsecrets {\n%s\n}\n' "$2" "$3" >"$1"
}
