//! The mail transaction: MAIL, RCPT, DATA and BDAT (RFC 5321 §3.3, §4.1.1.2–4, §4.1.4;
//! RFC 3030).

use super::data::DataDecoder;
use super::params::{ParamError, ParamPolicy, parse_mail_params, parse_rcpt_params};
use super::path::{PathError, PathKind, parse_path};
use super::reply::{Reply, canned};
use super::server::{
    BdatBody, Chunk, ChunkFate, Event, Flow, Pending, Phase, ServerCore, Transaction,
};

impl ServerCore {
    fn param_policy(&self) -> ParamPolicy {
        ParamPolicy {
            dsn: self.config.offer_dsn,
            // RFC 4954 §5: AUTH= only where the AUTH extension exists.
            auth: !self.config.auth_mechanisms.is_empty(),
            // RFC 8689 §4: REQUIRETLS only on a TLS session.
            require_tls: self.session.tls,
        }
    }

    /// The sequencing refusal for a command that needs a transaction with recipients
    /// (DATA, BDAT), if any.
    fn content_refusal(&self) -> Option<Reply> {
        if self.session.helo.is_none() {
            // RFC 5321 §4.1.4: EHLO/HELO first.
            Some(canned::helo_first())
        } else if !self.txn.mail {
            // RFC 5321 §3.3: DATA/BDAT without MAIL.
            Some(canned::mail_first())
        } else if self.txn.accepted == 0 && self.txn.refused > 0 {
            // RFC 5321 §3.3: "554 No valid recipients" when every RCPT was refused.
            Some(canned::no_valid_recipients())
        } else if self.txn.accepted == 0 {
            Some(canned::rcpt_first())
        } else {
            None
        }
    }

    /// MAIL FROM (RFC 5321 §4.1.1.2).
    pub(super) fn mail(&mut self, args: &str) -> Flow {
        let refusal = if self.session.helo.is_none() {
            // RFC 5321 §4.1.4: MAIL before EHLO/HELO.
            Some(canned::helo_first())
        } else if self.txn.mail {
            // RFC 5321 §4.1.4: no nested transaction.
            Some(canned::nested_mail())
        } else if self.config.require_auth_for_mail && self.session.authenticated.is_none() {
            // RFC 6409 §4.3 / RFC 4954 §6: submission needs AUTH first.
            Some(canned::auth_required())
        } else {
            None
        };
        if let Some(reply) = refusal {
            self.send(&reply);
            return Flow::Continue;
        }
        let (path, rest) = match parse_path(args, PathKind::Reverse) {
            Ok(parsed) => parsed,
            Err(error) => {
                self.send(&path_error(error, true));
                return Flow::Continue;
            }
        };
        let params = match self.params(rest, parse_mail_params) {
            Ok(params) => params,
            Err(reply) => {
                self.send(&reply);
                return Flow::Continue;
            }
        };
        if path.non_ascii && !params.smtputf8 {
            // RFC 6531 §3.4: UTF-8 addresses only in an SMTPUTF8 transaction.
            self.send(&canned::non_ascii_address());
            return Flow::Continue;
        }
        if params
            .size
            .is_some_and(|size| size > self.config.max_message_size)
        {
            // RFC 1870 §6.2: refuse a declared size over the limit, before any content.
            self.send(&canned::size_exceeds_limit());
            return Flow::Continue;
        }
        self.phase = Phase::Pending(Pending::Mail {
            smtputf8: params.smtputf8,
        });
        Flow::Event(Event::Mail {
            from: path.mailbox,
            params,
        })
    }

    /// RCPT TO (RFC 5321 §4.1.1.3).
    pub(super) fn rcpt(&mut self, args: &str) -> Flow {
        let refusal = if self.session.helo.is_none() {
            Some(canned::helo_first())
        } else if !self.txn.mail {
            // RFC 5321 §4.1.4: RCPT needs MAIL first.
            Some(canned::mail_first())
        } else if self.txn.bdat.is_some() {
            // RFC 3030 §2: recipients come before the first BDAT.
            Some(canned::bad_sequence("RCPT not allowed after BDAT"))
        } else {
            None
        };
        if let Some(reply) = refusal {
            self.send(&reply);
            return Flow::Continue;
        }
        let (path, rest) = match parse_path(args, PathKind::Forward) {
            Ok(parsed) => parsed,
            Err(error) => {
                self.send(&path_error(error, false));
                return Flow::Continue;
            }
        };
        let params = match self.params(rest, parse_rcpt_params) {
            Ok(params) => params,
            Err(reply) => {
                self.send(&reply);
                return Flow::Continue;
            }
        };
        if path.non_ascii && !self.txn.smtputf8 {
            // RFC 6531 §3.4: UTF-8 addresses only in an SMTPUTF8 transaction.
            self.send(&canned::non_ascii_address());
            return Flow::Continue;
        }
        if self.txn.accepted >= self.config.max_recipients {
            // RFC 5321 §4.5.3.1.8 / §4.5.3.1.10: 452, so the client retries the rest later.
            self.send(&canned::too_many_recipients());
            return Flow::Continue;
        }
        let Some(to) = path.mailbox else {
            // parse_path never gives the null path for a forward-path.
            self.send(&canned::bad_recipient_syntax());
            return Flow::Continue;
        };
        self.phase = Phase::Pending(Pending::Rcpt);
        Flow::Event(Event::Rcpt { to, params })
    }

    /// The parameters after a path: `rest` is empty or starts with SP.
    fn params<T: Default>(
        &self,
        rest: &str,
        parse: impl Fn(&str, ParamPolicy) -> Result<T, ParamError>,
    ) -> Result<T, Reply> {
        if rest.trim_end().is_empty() {
            return Ok(T::default());
        }
        if !rest.starts_with(' ') {
            return Err(canned::syntax("Syntax error after the address"));
        }
        if !self.session.esmtp {
            // RFC 5321 §4.1.2: parameters are service extensions, which need EHLO.
            return Err(canned::unsupported_parameter());
        }
        parse(rest, self.param_policy()).map_err(|error| match error {
            ParamError::Unsupported => canned::unsupported_parameter(),
            ParamError::InvalidValue => canned::invalid_parameter_value(),
            // RFC 1870 §6.2: a size beyond every number is over the limit.
            ParamError::SizeOverflow => canned::size_exceeds_limit(),
        })
    }

    /// DATA (RFC 5321 §4.1.1.4).
    pub(super) fn data(&mut self) {
        let refusal = if self.txn.bdat.is_some() {
            // RFC 3030 §2: DATA and BDAT cannot be mixed in one transaction.
            Some(canned::bad_sequence("DATA not allowed after BDAT"))
        } else {
            self.content_refusal()
        };
        if let Some(reply) = refusal {
            self.send(&reply);
            return;
        }
        self.send(&canned::start_data());
        self.phase = Phase::Data(DataDecoder::new(self.config.max_message_size));
    }

    /// BDAT (RFC 3030 §2): decides what happens to the chunk's octets; they are read in
    /// every case (RFC 3030 §3.1), since nothing else tells where the next command starts.
    pub(super) fn bdat(&mut self, size: u64, last: bool) {
        if size > self.config.max_message_size.saturating_mul(2) {
            // A chunk this far over the limit cannot be a real message: draining it would
            // let one client hold the session for as long as it likes (u64::MAX octets).
            // RFC 1870 §6 / RFC 3030 §2: refuse with 552, then close rather than read.
            self.close_with(canned::size_exceeds_limit());
            return;
        }
        let fate = match self.content_refusal() {
            Some(reply) => ChunkFate::Refuse {
                reply,
                end_transaction: false,
            },
            None => {
                let max = self.config.max_message_size;
                let bdat = self.txn.bdat.get_or_insert_with(BdatBody::default);
                // Checked against the announced sizes before reading: never allocate from a
                // client-announced size (SECURITY-TESTS SM-15).
                match bdat.announced.checked_add(size) {
                    Some(total) if !bdat.too_big && total <= max => {
                        bdat.announced = total;
                        ChunkFate::Store
                    }
                    _ => {
                        bdat.too_big = true;
                        bdat.body = Vec::new();
                        // RFC 3030 §2 / RFC 1870: 552 5.3.4; the transaction ends at LAST.
                        ChunkFate::Refuse {
                            reply: canned::size_exceeds_limit(),
                            end_transaction: last,
                        }
                    }
                }
            }
        };
        self.phase = Phase::Bdat(Chunk {
            size,
            remaining: size,
            last,
            fate,
        });
    }

    /// A BDAT chunk has been read completely.
    pub(super) fn finish_chunk(&mut self, chunk: Chunk) -> Flow {
        match chunk.fate {
            ChunkFate::Refuse {
                reply,
                end_transaction,
            } => {
                if end_transaction {
                    self.txn = Transaction::default();
                }
                self.send(&reply);
                Flow::Continue
            }
            ChunkFate::Store if !chunk.last => {
                // RFC 3030 §2: each non-LAST chunk is acknowledged on its own.
                self.send(&canned::chunk_received(chunk.size));
                Flow::Continue
            }
            ChunkFate::Store => {
                let bdat = self.txn.bdat.take().unwrap_or_default();
                if bdat.scanner.found_bare() {
                    // The same rule as for DATA (Postfix smtpd_forbid_bare_newline=reject).
                    self.txn = Transaction::default();
                    self.send(&canned::bare_cr_lf_in_message());
                    return Flow::Continue;
                }
                self.phase = Phase::Pending(Pending::Message);
                Flow::Event(Event::Message { body: bdat.body })
            }
        }
    }
}

fn path_error(error: PathError, sender: bool) -> Reply {
    match error {
        // RFC 5321 §4.1.2: the path is enclosed in angle brackets.
        PathError::MissingBrackets => canned::syntax(if sender {
            "Syntax: MAIL FROM:<address>"
        } else {
            "Syntax: RCPT TO:<address>"
        }),
        PathError::Syntax if sender => canned::bad_sender_syntax(),
        PathError::Syntax => canned::bad_recipient_syntax(),
        PathError::TooLong => canned::path_too_long(sender),
    }
}
