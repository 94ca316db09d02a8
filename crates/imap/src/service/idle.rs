//! IDLE (RFC 2177, RFC 9051 §6.3.13). The waiting itself is in the session loop: change
//! events of the account are announced at once, `* OK Still here` every
//! [`IDLE_KEEPALIVE_INTERVAL`](crate::core::IDLE_KEEPALIVE_INTERVAL).

use super::session::Session;
use crate::core::Completion;

impl Session<'_> {
    /// `None` once `+ idling` is sent: the completion comes with DONE.
    pub(super) async fn idle(&mut self) -> Option<Completion> {
        if !self.core.idle_accept() {
            return Some(Completion::bad("IDLE not possible now"));
        }
        self.idling = true;
        // RFC 2177 §3: updates pending when IDLE starts go out at once.
        if self.selected.is_some() {
            self.announce(true).await;
        }
        None
    }
}
