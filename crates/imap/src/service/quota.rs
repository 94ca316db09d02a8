//! QUOTA (RFC 9208): one quota root `""` per account with the STORAGE resource, from the
//! account's `quota_bytes`, and the OVERQUOTA refusal of APPEND and COPY (RFC 9208 §4.2.1,
//! RFC 5530 §3).
//!
//! Usage comes from the store's per-account counter, so checking it costs the same for any
//! mailbox size.

use sealpost_store::StoreResult;
use sealpost_types::MailboxName;

use super::session::{Session, store_failure};
use crate::core::{Code, Completion, Response};

/// RFC 9208 §5.1: STORAGE is counted in units of 1024 octets.
const STORAGE_UNIT: u64 = 1024;

impl Session<'_> {
    /// The account's quota in octets, read afresh (the CLI may change it meanwhile).
    async fn quota_limit(&mut self) -> StoreResult<Option<u64>> {
        let Some(id) = self.account.as_ref().map(|a| a.id) else {
            return Ok(None);
        };
        let account = self.service.store.account_by_id(id).await?;
        Ok(account.and_then(|a| a.quota_bytes))
    }

    /// Octets stored for the account, every mailbox together.
    async fn storage_used(&mut self) -> StoreResult<u64> {
        let Some(id) = self.account.as_ref().map(|a| a.id) else {
            return Ok(0);
        };
        Ok(self.service.store.usage(id).await?.bytes)
    }

    /// `Some(refusal)` when adding `octets` would exceed the account's quota
    /// (RFC 9208 §4.2.1: the command fails with NO [OVERQUOTA]).
    pub(super) async fn over_quota(&mut self, octets: u64) -> Option<Completion> {
        let limit = match self.quota_limit().await {
            Ok(Some(limit)) => limit,
            Ok(None) => return None,
            Err(error) => return Some(store_failure(&error)),
        };
        match self.storage_used().await {
            Ok(used) if used.saturating_add(octets) > limit => {
                Some(Completion::no("Quota exceeded").with_code(Code::OverQuota))
            }
            Ok(_) => None,
            Err(error) => Some(store_failure(&error)),
        }
    }

    /// Tells the core what an APPEND may still upload (quota less usage), so one over it
    /// gets `NO [OVERQUOTA]` before the `+` (SECURITY-TESTS IM-02).
    pub(super) async fn refresh_append_allowance(&mut self) {
        let Some(quota) = self.quota else {
            self.core.set_append_allowance(None);
            return;
        };
        match self.storage_used().await {
            Ok(used) => self
                .core
                .set_append_allowance(Some(quota.saturating_sub(used))),
            // Unknown: leave it to the check after the upload.
            Err(_) => self.core.set_append_allowance(None),
        }
    }

    fn send_quota(&mut self, used: u64, limit: u64) {
        self.core.send(&Response::Quota {
            root: String::new(),
            resources: vec![(
                "STORAGE".to_string(),
                used.div_ceil(STORAGE_UNIT),
                limit / STORAGE_UNIT,
            )],
        });
    }

    /// RFC 9208 §4.3: GETQUOTAROOT names the mailbox's roots, then each root's QUOTA.
    pub(super) async fn get_quota_root(&mut self, name: &MailboxName) -> Completion {
        let Some(account) = self.account.as_ref().map(|a| a.id) else {
            return Completion::bad("Not logged in");
        };
        match self.service.store.mailbox(account, name).await {
            Ok(Some(_)) => {}
            Ok(None) => return Completion::no("No such mailbox").with_code(Code::NonExistent),
            Err(error) => return store_failure(&error),
        }
        let limit = match self.quota_limit().await {
            Ok(limit) => limit,
            Err(error) => return store_failure(&error),
        };
        self.core.send(&Response::QuotaRoot {
            mailbox: name.as_str().to_string(),
            roots: limit.map(|_| String::new()).into_iter().collect(),
        });
        if let Some(limit) = limit {
            match self.storage_used().await {
                Ok(used) => self.send_quota(used, limit),
                Err(error) => return store_failure(&error),
            }
        }
        Completion::ok("GETQUOTAROOT completed")
    }

    /// RFC 9208 §4.2: GETQUOTA of the account's root `""`.
    pub(super) async fn get_quota(&mut self, root: &str) -> Completion {
        let limit = match self.quota_limit().await {
            Ok(limit) => limit,
            Err(error) => return store_failure(&error),
        };
        let Some(limit) = limit.filter(|_| root.is_empty()) else {
            return Completion::no("No such quota root").with_code(Code::NonExistent);
        };
        match self.storage_used().await {
            Ok(used) => self.send_quota(used, limit),
            Err(error) => return store_failure(&error),
        }
        Completion::ok("GETQUOTA completed")
    }
}
