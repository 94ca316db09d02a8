//! MAIL and RCPT: who may send, and who receives.

use std::collections::BTreeSet;

use sealpost_store::StoreError;
use sealpost_types::{AccountId, Address, Domain};

use super::PortRole;
use super::authentication::PendingSpf;
use super::session::Session;
use crate::core::{Answer, MailParams, RcptParams, Reply};

/// The envelope being collected between MAIL and the end of data.
#[derive(Debug, Default)]
pub(super) struct Transaction {
    /// Reverse-path; `None` for `<>`.
    pub from: Option<String>,
    pub params: MailParams,
    /// Local recipients as given, with the accounts they resolve to.
    pub local: Vec<LocalRecipient>,
    /// Remote recipients (submission only), for the outbound queue.
    pub remote: Vec<(String, RcptParams)>,
    /// The SPF check under way (port 25 with sender authentication on).
    pub spf: Option<PendingSpf>,
}

/// A recipient in one of our domains.
#[derive(Debug, Clone)]
pub(super) struct LocalRecipient {
    /// The address as given (canonical form when it parses).
    pub address: String,
    /// The accounts it resolves to (aliases give several).
    pub accounts: Vec<AccountId>,
    /// RFC 3461 NOTIFY/ORCPT: a local delivery may call for a report too.
    pub params: RcptParams,
}

impl Transaction {
    /// Every local account that receives the message, once each.
    pub fn local_accounts(&self) -> BTreeSet<AccountId> {
        self.local
            .iter()
            .flat_map(|recipient| recipient.accounts.iter().copied())
            .collect()
    }
}

pub(super) enum RecipientDecision {
    Accept(Reply),
    Reject(Reply),
}

/// RFC 3463 §3.4: 4.3.0, a local problem the client should retry later.
pub(super) fn temporary_problem() -> Reply {
    Reply::new(451, "4.3.0", "Temporary local problem, try again later")
}

fn temporary_failure(error: &StoreError) -> Reply {
    tracing::error!(%error, "store error while checking an address");
    temporary_problem()
}

impl Session<'_> {
    pub(super) async fn mail(&mut self, from: Option<String>, params: MailParams) -> Answer {
        self.transaction = None;
        if self.role == PortRole::Submission {
            let Some(account) = &self.account else {
                // The core refuses MAIL before AUTH on submission; this is a second lock.
                return Answer::Reject(Reply::new(530, "5.7.0", "Authentication required"));
            };
            // RFC 6409 §6.1: the submission server may check that the sender is the user's.
            let allowed = match from.as_deref().map(Address::parse) {
                Some(Ok(address)) => {
                    match self.service.store.may_send_as(account.id, &address).await {
                        Ok(allowed) => allowed,
                        Err(error) => return Answer::Reject(temporary_failure(&error)),
                    }
                }
                // A null or unparseable reverse-path is nobody's address.
                _ => false,
            };
            if !allowed {
                return Answer::Reject(Reply::new(
                    553,
                    "5.7.1",
                    "Sender address not owned by the authenticated user",
                ));
            }
        }
        if self.role == PortRole::Inbound
            && let Some(reply) = self.refuse_null_mx_sender(from.as_deref()).await
        {
            return Answer::Reject(reply);
        }
        let spf = match self.role {
            PortRole::Inbound => self.start_spf(from.as_deref()),
            PortRole::Submission => None,
        };
        self.transaction = Some(Transaction {
            from,
            params,
            spf,
            ..Transaction::default()
        });
        Answer::Accept(Reply::new(250, "2.1.0", "Sender OK"))
    }

    /// The address `<Postmaster>` (RFC 5321 §4.5.1) stands for: postmaster at our host name
    /// if we serve it, else at the first domain we serve.
    async fn postmaster(&mut self) -> Result<Option<Address>, StoreError> {
        let at_hostname = format!("postmaster@{}", self.service.hostname);
        if let Ok(address) = Address::parse(&at_hostname)
            && self.service.store.domain(address.domain()).await?.is_some()
        {
            return Ok(Some(address));
        }
        let domains = self.service.store.list_domains().await?;
        Ok(domains
            .first()
            .and_then(|domain| Address::parse(&format!("postmaster@{domain}")).ok()))
    }

    async fn is_local_domain(&mut self, domain: &Domain) -> Result<bool, StoreError> {
        Ok(self.service.store.domain(domain).await?.is_some())
    }

    pub(super) async fn rcpt(&mut self, to: &str, params: RcptParams) -> RecipientDecision {
        use RecipientDecision::{Accept, Reject};
        if self.transaction.is_none() {
            return Reject(Reply::new(503, "5.5.1", "MAIL first"));
        }
        let address = if to.eq_ignore_ascii_case("postmaster") {
            match self.postmaster().await {
                Ok(Some(address)) => Ok(address),
                Ok(None) => return Reject(Reply::new(550, "5.1.1", "No postmaster here")),
                Err(error) => return Reject(temporary_failure(&error)),
            }
        } else {
            Address::parse(to)
        };
        let domain_part = to.rsplit_once('@').map(|(_, domain)| domain).unwrap_or("");
        let local_domain = match &address {
            Ok(address) => self.is_local_domain(address.domain()).await,
            Err(_) => match Domain::parse(domain_part) {
                Ok(domain) => self.is_local_domain(&domain).await,
                Err(_) => Ok(false),
            },
        };
        let local_domain = match local_domain {
            Ok(local) => local,
            Err(error) => return Reject(temporary_failure(&error)),
        };
        if local_domain {
            let accounts = match &address {
                Ok(address) => match self.service.store.resolve_recipient(address).await {
                    Ok(accounts) => accounts,
                    Err(error) => return Reject(temporary_failure(&error)),
                },
                // A quoted or otherwise exotic local part names nobody here.
                Err(_) => Vec::new(),
            };
            if accounts.is_empty() {
                // RFC 5321 §3.3 / RFC 3463 §3.2: unknown mailbox, refused at RCPT (no backscatter).
                return Reject(Reply::new(
                    550,
                    "5.1.1",
                    "Recipient address rejected: no such user here",
                ));
            }
            if let Some(transaction) = self.transaction.as_mut() {
                let canonical = address
                    .map(|a| a.to_string())
                    .unwrap_or_else(|_| to.to_string());
                transaction.local.push(LocalRecipient {
                    address: canonical,
                    accounts,
                    params,
                });
            }
            return Accept(Reply::new(250, "2.1.5", "Recipient OK"));
        }
        match self.role {
            // RFC 5321 §3.6.2 / §7.1: no open relay; loopback is not trusted either.
            PortRole::Inbound => Reject(Reply::new(554, "5.7.1", "Relay access denied")),
            PortRole::Submission => {
                if let Some(transaction) = self.transaction.as_mut() {
                    transaction.remote.push((to.to_string(), params));
                }
                Accept(Reply::new(250, "2.1.5", "Recipient OK, will relay"))
            }
        }
    }
}
