//! Collisions (RFC 7296 §2.8.1, §2.8.2, §2.25) as pure functions: which of two SAs
//! created at once by simultaneous rekeys survives (decided by the nonces), and which
//! requests are refused because the SA they name is being rekeyed or closed
//! (TEMPORARY_FAILURE, CHILD_SA_NOT_FOUND).
//!
//! The exchanges ([`child`](super::child), [`ike_rekey`](super::ike_rekey)) apply the
//! decisions; nothing here touches state.

use ipsec_ike_wire::NotifyType;

use crate::sa::child_sa::ChildState;

/// Whether `a` is lower than `b` octet by octet, a prefix being lower (RFC 7296 §2.8.1).
pub(crate) fn nonce_lower(a: &[u8], b: &[u8]) -> bool {
    a < b
}

/// The lower of two nonces.
pub(crate) fn min_nonce<'a>(a: &'a [u8], b: &'a [u8]) -> &'a [u8] {
    if nonce_lower(a, b) {
        a
    } else {
        b
    }
}

/// Which of two SAs created by simultaneous rekeys of one SA is redundant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Redundant {
    /// The one our request created: we delete it, the peer deletes the old SA.
    Ours,
    /// The one the peer's request created: the peer deletes it, we delete the old SA.
    Peers,
}

/// Simultaneous rekeys (RFC 7296 §2.8.1 for Child SAs, §2.8.2 for IKE SAs): the SA
/// created with the lowest of the four nonces is redundant. `our_ni` and `our_nr` are
/// the nonces of our exchange (our request, the peer's answer), `their_min` the lower
/// nonce of the peer's exchange.
pub(crate) fn redundant(our_ni: &[u8], our_nr: &[u8], their_min: &[u8]) -> Redundant {
    if nonce_lower(min_nonce(our_ni, our_nr), their_min) {
        Redundant::Ours
    } else {
        Redundant::Peers
    }
}

/// Any CREATE_CHILD_SA request while we are deleting the IKE SA: TEMPORARY_FAILURE
/// (RFC 7296 §2.25).
pub(crate) fn refuse_while_deleting(deleting: bool) -> Option<NotifyType> {
    deleting.then_some(NotifyType::TEMPORARY_FAILURE)
}

/// A request to rekey the Child SA in `state` (`None`: no Child SA has the SPI of its
/// REKEY_SA): CHILD_SA_NOT_FOUND for an unknown one, TEMPORARY_FAILURE for one being
/// deleted or already replaced (RFC 7296 §2.25.1); `None` lets it go ahead (for one
/// we are rekeying ourselves too, the outcome is decided by [`redundant`] when our
/// own exchange completes).
pub(crate) fn refuse_child_rekey(state: Option<ChildState>) -> Option<NotifyType> {
    match state {
        None => Some(NotifyType::CHILD_SA_NOT_FOUND),
        Some(ChildState::Deleting | ChildState::Rekeyed) => Some(NotifyType::TEMPORARY_FAILURE),
        Some(ChildState::Installed | ChildState::Rekeying) => None,
    }
}

/// A request to rekey the IKE SA: TEMPORARY_FAILURE when it comes on an IKE SA that is
/// no longer the current one, or when a simultaneous rekey is already recorded
/// (RFC 7296 §2.25.2).
pub(crate) fn refuse_ike_rekey(on_current: bool, collision_recorded: bool) -> Option<NotifyType> {
    (!on_current || collision_recorded).then_some(NotifyType::TEMPORARY_FAILURE)
}

/// Whether an error answer `n` to a Child SA request of ours is reported as
/// `Event::ChildSaFailed`: not for a rekey refused with TEMPORARY_FAILURE (the peer is
/// busy with that SA, §2.25), which is simply tried again later.
pub(crate) fn report_child_failure(rekey: bool, n: NotifyType) -> bool {
    !rekey || n != NotifyType::TEMPORARY_FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_order_is_octet_by_octet() {
        assert!(nonce_lower(&[1, 2, 3], &[1, 2, 4]));
        assert!(nonce_lower(&[1, 2], &[1, 2, 0]));
        assert!(!nonce_lower(&[2], &[1, 255, 255]));
        assert!(!nonce_lower(&[1, 2], &[1, 2]));
        assert_eq!(min_nonce(&[9, 0], &[8, 255]), &[8, 255]);
        assert_eq!(min_nonce(&[1], &[1, 0]), &[1]);
    }

    #[test]
    fn the_sa_with_the_lowest_nonce_is_redundant() {
        // Our request's nonce is the lowest of all four.
        assert_eq!(redundant(&[1], &[7], &[5]), Redundant::Ours);
        // The peer's answer to us holds the lowest.
        assert_eq!(redundant(&[7], &[1], &[5]), Redundant::Ours);
        // The peer's exchange holds the lowest.
        assert_eq!(redundant(&[7], &[6], &[5]), Redundant::Peers);
        // Octet by octet, not by length.
        assert_eq!(redundant(&[2, 0, 0], &[9], &[10]), Redundant::Ours);
        assert_eq!(redundant(&[2, 0], &[9], &[2]), Redundant::Peers);
        // Both sides reach opposite verdicts from their own point of view.
        let (a_ni, a_nr, b_ni, b_nr) = ([3u8], [8u8], [4u8], [6u8]);
        let a = redundant(&a_ni, &a_nr, min_nonce(&b_ni, &b_nr));
        let b = redundant(&b_ni, &b_nr, min_nonce(&a_ni, &a_nr));
        assert_eq!((a, b), (Redundant::Ours, Redundant::Peers));
    }

    #[test]
    fn child_rekeys_of_sas_being_closed_are_refused() {
        assert_eq!(
            refuse_child_rekey(None),
            Some(NotifyType::CHILD_SA_NOT_FOUND)
        );
        for s in [ChildState::Deleting, ChildState::Rekeyed] {
            assert_eq!(
                refuse_child_rekey(Some(s)),
                Some(NotifyType::TEMPORARY_FAILURE)
            );
        }
        for s in [ChildState::Installed, ChildState::Rekeying] {
            assert_eq!(refuse_child_rekey(Some(s)), None);
        }
        assert_eq!(
            refuse_while_deleting(true),
            Some(NotifyType::TEMPORARY_FAILURE)
        );
        assert_eq!(refuse_while_deleting(false), None);
    }

    #[test]
    fn ike_rekeys_only_on_the_current_sa_without_a_recorded_collision() {
        assert_eq!(refuse_ike_rekey(true, false), None);
        assert_eq!(
            refuse_ike_rekey(false, false),
            Some(NotifyType::TEMPORARY_FAILURE)
        );
        assert_eq!(
            refuse_ike_rekey(true, true),
            Some(NotifyType::TEMPORARY_FAILURE)
        );
    }

    #[test]
    fn temporary_failure_of_a_rekey_is_not_a_failure() {
        assert!(!report_child_failure(true, NotifyType::TEMPORARY_FAILURE));
        assert!(report_child_failure(false, NotifyType::TEMPORARY_FAILURE));
        assert!(report_child_failure(true, NotifyType::NO_PROPOSAL_CHOSEN));
    }
}
