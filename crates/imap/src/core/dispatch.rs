//! A complete command: state checks, parsing, the commands the core answers itself
//! (CAPABILITY, LOGOUT, STARTTLS, ENABLE, NOOP before login) and the event for the rest.

use super::capability::login_allowed;
use super::command::{
    Command, CommandBody, CommandName, ParseContext, StatusItem, Tag, parse_args, parse_head,
};
use super::fetch_items::FetchAttr;
use super::parser::{Input, ParseError};
use super::response::data::Response;
use super::response::{Code, Status};
use super::search::SearchKey;
use super::server::{Event, Flow, Frame, ImapCore, Phase, Waiting};

impl ImapCore {
    pub(super) fn parse_context(&self) -> ParseContext {
        let ext = &self.config.extensions;
        ParseContext {
            utf8_names: self.session.utf8_names(),
            max_depth: self.config.limits.max_depth,
            binary: ext.binary,
            condstore: ext.condstore,
            qresync_enabled: self.session.enabled.qresync,
            multiappend: ext.multiappend,
            quota: ext.quota,
            mechanisms: self.config.auth_mechanisms.clone(),
        }
    }

    /// A command read whole.
    pub(super) fn command(&mut self, frame: Frame) -> Flow {
        let mut input = Input::new(frame.parts);
        let (tag, name) = match parse_head(&mut input) {
            Ok(head) => head,
            Err(error) => return self.refuse_head(error),
        };
        if let Err(text) = self.command_allowed(name) {
            self.reply_bad(Some(&tag), None, text);
            return Flow::Continue;
        }
        if matches!(name, CommandName::Login | CommandName::Authenticate)
            && !login_allowed(&self.config, &self.session)
        {
            // RFC 9051 §6.2.3, §7.1: LOGINDISABLED; the credentials are not even parsed,
            // so nothing is checked and no oracle exists (SECURITY-TESTS ST-06).
            self.status(
                Some(&tag),
                Status::No,
                Some(&Code::PrivacyRequired),
                "Use STARTTLS first",
            );
            return Flow::Continue;
        }
        if name == CommandName::StartTls && (!self.config.offer_starttls || self.session.tls) {
            // RFC 9051 §6.2.1; SECURITY-TESTS ST-08 (STARTTLS twice).
            self.reply_bad(Some(&tag), None, "STARTTLS is not available");
            return Flow::Continue;
        }
        let context = self.parse_context();
        match parse_args(name, &mut input, &context) {
            Ok(body) => self.dispatch(tag, body),
            Err(error) => {
                self.parse_error(&tag, error);
                Flow::Continue
            }
        }
    }

    fn parse_error(&mut self, tag: &Tag, error: ParseError) {
        match error {
            ParseError::Bad(text) => self.reply_bad(Some(tag), None, text),
            ParseError::Limit(text) => self.status(Some(tag), Status::No, Some(&Code::Limit), text),
            ParseError::BadCharset => {
                // RFC 9051 §6.4.4.
                self.status(
                    Some(tag),
                    Status::No,
                    Some(&Code::BadCharset),
                    "Unsupported charset",
                )
            }
            ParseError::Cannot(text) => {
                self.status(Some(tag), Status::No, Some(&Code::Cannot), text)
            }
        }
    }

    fn dispatch(&mut self, tag: Tag, body: CommandBody) -> Flow {
        match body {
            CommandBody::Capability => {
                self.send(&Response::Capability);
                self.reply_ok(&tag, "CAPABILITY completed");
            }
            CommandBody::Logout => {
                // RFC 9051 §6.1.3: BYE, then the tagged OK, then close.
                self.status(None, Status::Bye, None, "Logging out");
                self.reply_ok(&tag, "LOGOUT completed");
                self.close();
            }
            CommandBody::StartTls => {
                self.reply_ok(&tag, "Begin TLS negotiation now");
                // RFC 9051 §6.2.1 / CVE-2011-0411: nothing received before the handshake
                // may be acted on after it.
                self.drop_input();
                self.phase = Phase::AwaitingTls;
                return Flow::Event(Event::StartTls);
            }
            CommandBody::Enable { capabilities } => self.enable(&tag, &capabilities),
            CommandBody::Noop if !self.session.is_authenticated() => {
                self.reply_ok(&tag, "NOOP completed");
            }
            body => {
                if self.config.extensions.condstore && enables_condstore(&body) {
                    // RFC 7162 §3.1: a CONDSTORE-enabling command.
                    self.session.enabled.condstore = true;
                }
                let waiting = match body {
                    CommandBody::Authenticate { .. } => Waiting::Authenticate,
                    CommandBody::Idle => Waiting::Idle,
                    _ => Waiting::Command,
                };
                self.phase = Phase::Pending {
                    tag: tag.clone(),
                    waiting,
                };
                return Flow::Event(Event::Command(Command { tag, body }));
            }
        }
        Flow::Continue
    }

    /// ENABLE (RFC 5161 §3.1): unknown or unoffered names are ignored; `* ENABLED` lists
    /// what this command newly enabled (and is sent even when that is nothing).
    fn enable(&mut self, tag: &Tag, requested: &[String]) {
        let ext = &self.config.extensions;
        let enabled = &mut self.session.enabled;
        let mut newly: Vec<String> = Vec::new();
        for name in requested {
            let (flag, offered, canonical) = match name.as_str() {
                "CONDSTORE" => (&mut enabled.condstore, ext.condstore, "CONDSTORE"),
                "QRESYNC" => (
                    &mut enabled.qresync,
                    ext.condstore && ext.qresync,
                    "QRESYNC",
                ),
                "UTF8=ACCEPT" => (&mut enabled.utf8_accept, ext.utf8_accept, "UTF8=ACCEPT"),
                "IMAP4REV2" => (&mut enabled.imap4rev2, true, "IMAP4rev2"),
                _ => continue,
            };
            if offered && !*flag {
                *flag = true;
                newly.push(canonical.to_string());
            }
        }
        if enabled.qresync {
            // RFC 7162 §3.2.3: enabling QRESYNC enables CONDSTORE too.
            enabled.condstore = true;
        }
        self.send(&Response::Enabled(newly));
        self.reply_ok(tag, "ENABLE completed");
    }
}

/// RFC 7162 §3.1: SELECT/EXAMINE (CONDSTORE), FETCH with MODSEQ or CHANGEDSINCE, SEARCH
/// with MODSEQ, STORE with UNCHANGEDSINCE, STATUS (HIGHESTMODSEQ) enable CONDSTORE.
fn enables_condstore(body: &CommandBody) -> bool {
    match body {
        CommandBody::Select {
            condstore, qresync, ..
        } => *condstore || qresync.is_some(),
        CommandBody::Fetch {
            attrs,
            changed_since,
            ..
        } => changed_since.is_some() || attrs.contains(&FetchAttr::ModSeq),
        CommandBody::Store {
            unchanged_since, ..
        } => unchanged_since.is_some(),
        CommandBody::Status { items, .. } => items.contains(&StatusItem::HighestModSeq),
        CommandBody::List(list) => list
            .returns
            .status
            .as_ref()
            .is_some_and(|items| items.contains(&StatusItem::HighestModSeq)),
        CommandBody::Search { program, .. } => {
            // Iterative walk: the tree's depth is bounded, but no recursion is needed.
            let mut stack: Vec<&SearchKey> = program.keys.iter().collect();
            while let Some(key) = stack.pop() {
                match key {
                    SearchKey::ModSeq { .. } => return true,
                    SearchKey::Not(inner) => stack.push(inner),
                    SearchKey::Or(left, right) => stack.extend([&**left, &**right]),
                    SearchKey::And(keys) => stack.extend(keys.iter()),
                    _ => {}
                }
            }
            false
        }
        _ => false,
    }
}
