# mobike.sh - the MOBIKE (RFC 4555) move of a road-warrior client, for the
# road-warrior cases of ../gateway-netns.sh. Sourced, never run alone; it makes no
# namespace of its own.
#
# Contract:
#   rw_mobike_move NS IFACE NEW_CIDR [DELAY]
#     In namespace NS (the client's, already up, with its one IPv4 address on IFACE
#     and a route to the gateway through it), after DELAY seconds (default 0):
#     adds NEW_CIDR (e.g. 198.18.0.21/24) to IFACE, then deletes every other IPv4
#     address of IFACE, so the route to the gateway takes NEW_CIDR's address as its
#     source. Needs net.ipv4.conf.all.promote_secondaries = 1 in NS (else deleting
#     the primary address also deletes NEW_CIDR).
#     Prints "OLD -> NEW" on stdout; returns non-zero if NEW_CIDR is not the only
#     address afterwards.
#   What follows the move is the caller's to check: `ipsec connect` notices within a
#   second (crates/ipsec-cli/src/peer/roam.rs: it rebinds and sends
#   UPDATE_SA_ADDRESSES, event "local_address_changed" then "path_updated"); charon
#   logs "requesting address change using MOBIKE"; our gateway's status shows the
#   IKE SA's remote as the new address with the same SA ids.

rw_mobike_move() {
  local ns=$1 dev=$2 new=$3 delay=${4:-0}
  sleep "$delay"
  local old
  old=$(ip -n "$ns" -4 -o addr show dev "$dev" | awk '{print $4}' | paste -sd, -)
  ip -n "$ns" addr add "$new" dev "$dev" || return 1
  local a
  for a in ${old//,/ }; do
    [ "$a" = "$new" ] || ip -n "$ns" addr del "$a" dev "$dev" || return 1
  done
  echo "$old -> $new"
  [ "$(ip -n "$ns" -4 -o addr show dev "$dev" | awk '{print $4}')" = "$new" ]
}
