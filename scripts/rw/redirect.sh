# redirect.sh - road-warrior scenario: IKEv2 redirect (RFC 5685) between two of our
# gateways, with strongSwan's charon as the client. Sourced, not run: it defines
# rw_redirect, which the road-warrior test script calls.
#
# Contract
#   Sourced after scripts/gateway-netns/lib.sh and the helpers of
#   scripts/gateway-netns.sh (it uses: log, check, fail, wait_for, conn_block,
#   secret_block, write_conf, gw_up, ch_up, sw, gw_check, ch_established, ping_ok;
#   and $BIN, the `ipsec` binary, and $PY, python3).
#
#   rw_redirect DIR CLIENT_NS CLIENT_ADDR CLIENT_INNER GW1_NS GW1_ADDR GW2_NS GW2_ADDR \
#               GW_NET GW2_HOST
#     DIR          an empty directory for this case (configurations, logs, sockets)
#     CLIENT_NS    the client's namespace (charon runs there)
#     CLIENT_ADDR  the client's outer address
#     CLIENT_INNER the client's tunnel-inner host address (already on its lo)
#     GW1_NS/ADDR  the first gateway's namespace and outer address: the client's
#                  configured gateway, which redirects it (`redirect_to`)
#     GW2_NS/ADDR  the second gateway's namespace and outer address
#     GW_NET       the gateways' protected network (CIDR), e.g. 198.19.0.0/24
#     GW2_HOST     an address in GW_NET inside GW2_NS that answers ping (on its lo)
#   The namespaces exist, and the client reaches both outer addresses (the caller's
#   topology: a shared segment or routes). Nothing else may listen on ports 500/4500
#   of the three namespaces. Processes are started with start_gw / start_charon, so
#   they are recorded for the caller's cleanup (stop_all).
#
#   What it checks (fails the case through `fail` otherwise):
#     1. charon, configured for gw1 only, initiates; gw1 (redirect_to = GW2_ADDR)
#        authenticates it and answers IKE_AUTH with REDIRECT; charon (follow_redirects
#        is on by default) reconnects to gw2 with REDIRECTED_FROM and ends up with an
#        ESTABLISHED IKE SA and an INSTALLED Child SA whose peer is GW2_ADDR; gw2 has
#        it, gw1 has no IKE SA left and counted one redirected peer; ping from
#        CLIENT_INNER to GW2_HOST passes through gw2.
#     2. `redirect <client> <gw1>` on gw2's control socket redirects the established
#        IKE SA (INFORMATIONAL REDIRECT, §5); gw1 sends the client back in IKE_AUTH,
#        so it is on gw2 again (three redirects in a row, within charon's cap of 5 in
#        300 s), and ping passes again.
#   Both gateways use the identity gw.rw.test and one PSK, so the client's remote.id
#   holds for either (a redirect keeps the client's peer configuration).

rw_ctl() { # DIR LINE: one request line on a gateway's control socket, the answer on stdout
  "$PY" - "$1/ctl.sock" "$2" <<'EOP'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall((sys.argv[2] + "\n").encode())
s.shutdown(socket.SHUT_WR)
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode())
sys.exit(1 if out.startswith(b"error:") else 0)
EOP
}

# rw_on_gw2 DIR GW2_ADDR: charon's rw IKE SA is up, with a Child SA, toward GW2_ADDR
rw_on_gw2() {
  local l; l=$(sw "$1" --list-sas --ike rw 2>/dev/null) || return 1
  grep -q ESTABLISHED <<<"$l" && grep -q INSTALLED <<<"$l" && grep -q "@ $2\[" <<<"$l"
}

rw_redirect() {
  local d=$1 cns=$2 caddr=$3 cinner=$4 g1ns=$5 g1addr=$6 g2ns=$7 g2addr=$8 gnet=$9 g2host=${10}
  local psk=rw-redirect-psk-0123456789 cid=client.rw.test gid=gw.rw.test
  mkdir -p "$d/gw1" "$d/gw2" "$d/client/swanctl"
  log "redirect: client $caddr ($cns) -> gw1 $g1addr ($g1ns) -> gw2 $g2addr ($g2ns)"

  # The gateways: one connection for the client, gw1's with our redirect_to key.
  local i addr
  for i in 1 2; do
    addr=$([ $i = 1 ] && echo "$g1addr" || echo "$g2addr")
    write_conf "$d/gw$i/gateway.conf" \
      "$(conn_block ours rw "$addr" "%any" "$gid" "$cid" "$gnet" "$cinner/32" none)" \
      "$(secret_block client "$psk" "$cid")"
  done
  sed -i "s|^    encap = yes$|    encap = yes\n    redirect_to = $g2addr|" "$d/gw1/gateway.conf"
  grep -q "redirect_to = $g2addr" "$d/gw1/gateway.conf" || fail "redirect: redirect_to not written"
  gw_up rw-gw1 "$g1ns" "$d/gw1"
  gw_up rw-gw2 "$g2ns" "$d/gw2"

  # The client: charon, configured for gw1 only.
  write_conf "$d/client/swanctl.conf.new" \
    "$(conn_block charon rw "$caddr" "$g1addr" "$cid" "$gid" "$cinner/32" "$gnet" none)" \
    "$(secret_block gw "$psk" "$gid")"
  ch_up rw-client "$cns" "$d/client"

  # 1. redirected in IKE_AUTH, ends up on gw2
  sw "$d/client" --initiate --ike rw --child net --timeout 20 >"$d/initiate.out" 2>&1 || true
  check "redirect: the client is established on gw2" wait_for 20 rw_on_gw2 "$d/client" "$g2addr"
  check "redirect: gw2 has the client" wait_for 10 gw_check "$d/gw2" \
    "len(est(s)) == 1 and all(len(i['children']) == 1 for i in est(s))"
  check "redirect: gw1 redirected it and kept nothing" wait_for 10 gw_check "$d/gw1" \
    "len(s['ike_sas']) == 0 and c(s, 'peers_redirected') == 1"
  check "redirect: ping through gw2" ping_ok "$cns" "$cinner" "$g2host"

  # 2. an established IKE SA redirected by command: gw2 -> gw1 -> (IKE_AUTH) -> gw2
  local before; before=$(sw "$d/client" --list-sas --ike rw 2>/dev/null | grep -o 'rw: #[0-9]*' | head -n 1)
  check "redirect: the control command is accepted" rw_ctl "$d/gw2" "redirect $caddr $g1addr"
  check "redirect: gw2 counted the redirect" wait_for 10 gw_check "$d/gw2" "c(s, 'peers_redirected') == 1"
  check "redirect: gw1 sent the client back" wait_for 20 gw_check "$d/gw1" "c(s, 'peers_redirected') == 2"
  check "redirect: the client is on gw2 again, in a new IKE SA" wait_for 20 \
    bash -c "$(declare -f sw rw_on_gw2); rw_on_gw2 '$d/client' '$g2addr' && \
      ! sw '$d/client' --list-sas --ike rw | grep -q '${before:-no such SA}, ESTABLISHED'"
  check "redirect: ping through gw2 again" wait_for 10 ping_ok "$cns" "$cinner" "$g2host"
  log "redirect: ok"
}
