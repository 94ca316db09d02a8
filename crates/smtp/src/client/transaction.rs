//! One mail transaction from the sending side (RFC 5321 §3.3, §4.1.1.2–4), pipelined when
//! the server offers PIPELINING (RFC 2920 §3.1), and what it meant for each recipient.

use std::collections::VecDeque;
use std::time::Duration;

use super::body::{BodyEncoder, analyse};
use super::envelope::{Commands, Envelope, MessageBody, SendError, build};
use super::reply::ProtocolError;
use super::session::{
    COMMAND_TIMEOUT, ClientCore, DATA_INITIATION_TIMEOUT, DATA_TERMINATION_TIMEOUT, Event,
    MAIL_TIMEOUT, RCPT_TIMEOUT, SessionEnd, State,
};
use crate::core::Reply;

/// Every reply one transaction got, in the order of the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionResult {
    /// The reply to MAIL; `None` when none came.
    pub mail: Option<Reply>,
    /// The reply to each RCPT, in the envelope's order; `None` where the RCPT was not sent
    /// (MAIL refused without PIPELINING) or the session ended before its reply.
    pub rcpt: Vec<Option<Reply>>,
    /// The reply to DATA: 354, or its refusal. `None` when DATA was not sent (no recipient
    /// accepted, RFC 5321 §3.3) or no reply came.
    pub data: Option<Reply>,
    /// The reply after the end of data (RFC 5321 §4.1.1.4): the server's verdict on the
    /// message for every accepted recipient.
    pub end_of_data: Option<Reply>,
    /// The session ended during the transaction (421, protocol error, EOF, timeout);
    /// `Event::Closed` follows.
    pub interrupted: bool,
}

/// What a transaction meant for one recipient: what the queue does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientOutcome {
    /// RCPT and the end of data got 2xx: delivered (the reply is the final one).
    Accepted(Reply),
    /// A 4xx (MAIL, RCPT, DATA or the final reply, whichever decided): try again later.
    TemporaryFailure(Reply),
    /// A 5xx: do not try again; bounce (RFC 3464).
    PermanentFailure(Reply),
    /// No verdict: the commands for this recipient were not sent, or the session ended
    /// before the reply that decides. Try again (possibly at another MX); when the data
    /// was already sent, the server may have taken it (RFC 1047: a duplicate is the price
    /// of never losing a message).
    NotAttempted,
}

impl RecipientOutcome {
    /// The outcome of a refusal: 5xx permanent, anything else temporary.
    fn refused(reply: &Reply) -> Self {
        if reply.code / 100 == 5 {
            RecipientOutcome::PermanentFailure(reply.clone())
        } else {
            RecipientOutcome::TemporaryFailure(reply.clone())
        }
    }
}

impl TransactionResult {
    fn new(recipients: usize) -> Self {
        TransactionResult {
            mail: None,
            rcpt: vec![None; recipients],
            data: None,
            end_of_data: None,
            interrupted: false,
        }
    }

    /// Whether some RCPT got 2xx (after a 2xx MAIL).
    pub fn any_recipient_accepted(&self) -> bool {
        self.mail.as_ref().is_some_and(Reply::is_positive)
            && self.rcpt.iter().flatten().any(Reply::is_positive)
    }

    /// The outcome for recipient `index` (of the envelope): the first refusal on its way
    /// decides (MAIL, its RCPT, DATA, the end of data); `NotAttempted` past the end.
    pub fn outcome(&self, index: usize) -> RecipientOutcome {
        let Some(mail) = &self.mail else {
            return RecipientOutcome::NotAttempted;
        };
        if !mail.is_positive() {
            return RecipientOutcome::refused(mail);
        }
        let Some(Some(rcpt)) = self.rcpt.get(index) else {
            return RecipientOutcome::NotAttempted;
        };
        if !rcpt.is_positive() {
            return RecipientOutcome::refused(rcpt);
        }
        let Some(data) = &self.data else {
            return RecipientOutcome::NotAttempted;
        };
        if data.code != 354 {
            return RecipientOutcome::refused(data);
        }
        match &self.end_of_data {
            None => RecipientOutcome::NotAttempted,
            Some(reply) if reply.is_positive() => RecipientOutcome::Accepted(reply.clone()),
            Some(reply) => RecipientOutcome::refused(reply),
        }
    }

    /// [`TransactionResult::outcome`] for every recipient, in the envelope's order.
    pub fn outcomes(&self) -> Vec<RecipientOutcome> {
        (0..self.rcpt.len())
            .map(|index| self.outcome(index))
            .collect()
    }

    fn record(&mut self, expect: Expect, reply: Reply) {
        match expect {
            Expect::Rset => {}
            Expect::Mail => self.mail = Some(reply),
            Expect::Rcpt(index) => {
                if let Some(slot) = self.rcpt.get_mut(index) {
                    *slot = Some(reply);
                }
            }
            Expect::Data => self.data = Some(reply),
            Expect::EndOfData => self.end_of_data = Some(reply),
        }
    }
}

/// A reply the transaction waits for, in the order the commands were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    Rset,
    Mail,
    Rcpt(usize),
    Data,
    EndOfData,
}

/// A transaction in progress.
#[derive(Debug)]
pub(super) struct Transaction {
    /// RFC 2920: MAIL, every RCPT and DATA went in one group.
    pipelining: bool,
    commands: Commands,
    /// Until the 354 arrives.
    body: Option<MessageBody>,
    expect: VecDeque<Expect>,
    pub(super) result: TransactionResult,
}

impl Transaction {
    /// RFC 5321 §4.5.3.2: the timeout for the reply awaited next.
    pub(super) fn timeout(&self) -> Option<Duration> {
        Some(match self.expect.front()? {
            Expect::Rset => COMMAND_TIMEOUT,
            Expect::Mail => MAIL_TIMEOUT,
            Expect::Rcpt(_) => RCPT_TIMEOUT,
            Expect::Data => DATA_INITIATION_TIMEOUT,
            Expect::EndOfData => DATA_TERMINATION_TIMEOUT,
        })
    }
}

impl ClientCore {
    /// Starts a transaction: checks the envelope against what the server offers (an error
    /// sends nothing), then writes MAIL — with PIPELINING also every RCPT and DATA.
    /// [`Event::Transaction`] reports the result. The body is shared, not copied.
    pub fn send(
        &mut self,
        envelope: &Envelope,
        body: impl Into<MessageBody>,
    ) -> Result<(), SendError> {
        if !self.is_idle() {
            return Err(SendError::NotReady);
        }
        let body = body.into();
        let info = analyse(body.as_bytes());
        let commands = build(envelope, &info, &self.extensions, self.tls_active)?;
        let mut txn = Box::new(Transaction {
            pipelining: self.extensions.pipelining,
            result: TransactionResult::new(commands.rcpt.len()),
            commands,
            body: Some(body),
            expect: VecDeque::new(),
        });
        let rset = std::mem::take(&mut self.needs_rset);
        if rset {
            // RFC 5321 §4.1.1.5: RSET clears the transaction the last one left open.
            self.write(&mut txn, "RSET\r\n", Expect::Rset);
        }
        if txn.pipelining {
            // RFC 2920 §3.1: MAIL, RCPT and DATA in one group, DATA last; the replies come
            // in the same order.
            let mail = txn.commands.mail.clone();
            self.write(&mut txn, &mail, Expect::Mail);
            for index in 0..txn.commands.rcpt.len() {
                self.write_rcpt(&mut txn, index);
            }
            self.write(&mut txn, "DATA\r\n", Expect::Data);
        } else if !rset {
            let mail = txn.commands.mail.clone();
            self.write(&mut txn, &mail, Expect::Mail);
        }
        self.state = State::Transaction(txn);
        Ok(())
    }

    fn write(&mut self, txn: &mut Transaction, line: &str, expect: Expect) {
        self.output.extend_from_slice(line.as_bytes());
        txn.expect.push_back(expect);
    }

    fn write_rcpt(&mut self, txn: &mut Transaction, index: usize) {
        if let Some(line) = txn.commands.rcpt.get(index) {
            self.output.extend_from_slice(line.as_bytes());
            txn.expect.push_back(Expect::Rcpt(index));
        }
    }

    /// A reply while a transaction is in progress.
    pub(super) fn transaction_reply(&mut self, mut txn: Box<Transaction>, reply: Reply) {
        let Some(expect) = txn.expect.pop_front() else {
            return self.close(
                Some(txn),
                SessionEnd::Protocol(ProtocolError::UnexpectedReply),
            );
        };
        if reply.code == 421 {
            // RFC 5321 §3.8: the server is closing the channel; the replies still due
            // will not come.
            txn.result.record(expect, reply.clone());
            return self.close(Some(txn), SessionEnd::ServiceClosing(reply));
        }
        // RFC 5321 §4.2: act on the code only. MAIL, RCPT and the end of data give 2yz,
        // 4yz or 5yz; DATA gives 354, 4yz or 5yz (§4.3.2). Anything else is not SMTP.
        let class = reply.code / 100;
        let expected = match expect {
            Expect::Rset => true,
            Expect::Data => reply.code == 354 || class == 4 || class == 5,
            _ => matches!(class, 2 | 4 | 5),
        };
        if !expected {
            // Not recorded: a reply that is not SMTP is nobody's verdict.
            return self.close(
                Some(txn),
                SessionEnd::Protocol(ProtocolError::UnexpectedReply),
            );
        }
        let positive = reply.is_positive() || reply.code == 354;
        txn.result.record(expect, reply);
        match expect {
            Expect::Rset => {
                // RFC 5321 §4.1.1.5: RSET's reply changes nothing; a server that still
                // holds a transaction will refuse MAIL, which the result shows.
                if !txn.pipelining {
                    let mail = txn.commands.mail.clone();
                    self.write(&mut txn, &mail, Expect::Mail);
                }
            }
            Expect::Mail if txn.pipelining => {}
            Expect::Mail if positive => self.write_rcpt(&mut txn, 0),
            // Without PIPELINING a refused MAIL ends the transaction; none is open.
            Expect::Mail => return self.finish(txn, false),
            Expect::Rcpt(_) if txn.pipelining => {}
            Expect::Rcpt(index) if index + 1 < txn.commands.rcpt.len() => {
                self.write_rcpt(&mut txn, index + 1);
            }
            Expect::Rcpt(_) if txn.result.any_recipient_accepted() => {
                self.write(&mut txn, "DATA\r\n", Expect::Data);
            }
            // RFC 5321 §3.3: no DATA without an accepted recipient; MAIL left a
            // transaction open, which RSET clears before the next one.
            Expect::Rcpt(_) => return self.finish(txn, true),
            Expect::Data if positive => self.start_data(&mut txn),
            // DATA refused: whatever MAIL opened is reset before the next transaction
            // (RFC 2920 §3.1: "the client SMTP can just issue RSET").
            Expect::Data => {
                let open = txn.result.mail.as_ref().is_some_and(Reply::is_positive);
                return self.finish(txn, open);
            }
            // RFC 5321 §4.1.1.4: the end of data ends the transaction either way. (Replies
            // are read only once the whole message is written: `ClientCore::next_event`.)
            Expect::EndOfData => return self.finish(txn, false),
        }
        self.state = State::Transaction(txn);
    }

    /// 354 arrived: the message follows, or only the terminator when no recipient was
    /// accepted (RFC 2920 §3.1: "if the DATA command was accepted the client SMTP should
    /// send a single dot").
    fn start_data(&mut self, txn: &mut Transaction) {
        let body = txn.body.take();
        match body {
            Some(body) if txn.result.any_recipient_accepted() => {
                self.body = Some(BodyEncoder::new(body));
            }
            _ => self.output.extend_from_slice(b".\r\n"),
        }
        txn.expect.push_back(Expect::EndOfData);
    }

    /// The transaction is over: report it and wait for the caller.
    fn finish(&mut self, txn: Box<Transaction>, leaves_open: bool) {
        self.needs_rset = leaves_open;
        self.state = State::Idle;
        self.emit(Event::Transaction(txn.result));
    }
}
