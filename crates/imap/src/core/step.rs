//! Reading input: command lines, literal announcements and their limits, literal octets,
//! AUTHENTICATE response lines and IDLE's DONE.

use sealpost_types::Secret;

use super::capability::login_allowed;
use super::command::{CommandName, HeadError, check_append_prefix, parse_head};
use super::framing::{Announcement, LineScan, scan_line, split_announcement, strip_line_ending};
use super::parser::{Input, ParseError, Part};
use super::response::{Code, Status};
use super::server::{Event, Flow, ImapCore, Phase, Waiting};

/// Literal data is moved out of the input buffer in pieces; reserve at most this much
/// ahead of the octets actually received (a client that announces 50 MiB and sends
/// nothing costs nothing).
const LITERAL_RESERVE: usize = 64 * 1024;

/// Why a literal is refused before its `+`.
struct Refusal {
    status: Status,
    code: Option<Code>,
    text: &'static str,
}

impl Refusal {
    fn bad(text: &'static str) -> Self {
        Refusal {
            status: Status::Bad,
            code: None,
            text,
        }
    }

    fn with(status: Status, code: Code, text: &'static str) -> Self {
        Refusal {
            status,
            code: Some(code),
            text,
        }
    }

    /// The answer the parser's error gets once the command is complete (as in dispatch).
    fn parse(error: ParseError) -> Self {
        match error {
            ParseError::Bad(text) => Refusal::bad(text),
            ParseError::Limit(text) => Refusal::with(Status::No, Code::Limit, text),
            ParseError::Cannot(text) => Refusal::with(Status::No, Code::Cannot, text),
            ParseError::BadCharset => Refusal::bad("Unsupported charset"),
        }
    }
}

impl ImapCore {
    /// Takes the next complete line (without its ending) or says why there is none. A
    /// line over the limit ends the session: after it the stream cannot be trusted to
    /// be in step with the client (it may have announced a non-synchronising literal).
    fn take_line(&mut self) -> Option<Vec<u8>> {
        let max_line = self.config.limits.max_line;
        match scan_line(self.unread(), max_line, self.scanned) {
            LineScan::Complete(len) => {
                let line = self.unread().get(..len).unwrap_or_default();
                let content = strip_line_ending(line).to_vec();
                self.pos += len;
                self.scanned = 0;
                Some(content)
            }
            LineScan::NeedMore => {
                self.scanned = self.unread().len().min(max_line);
                None
            }
            LineScan::TooLong => {
                // SECURITY-TESTS IM-15 (100 000-octet tag), SECURITY-TESTS §1 line cap.
                self.bye(Some(&Code::TooBig), "Command line too long");
                None
            }
        }
    }

    /// One line of a command.
    pub(super) fn step_line(&mut self) -> Flow {
        let Some(line) = self.take_line() else {
            return Flow::NeedInput;
        };
        let (text, announcement) = split_announcement(&line);
        let text = text.to_vec();
        let line_octets = line.len() as u64 + 2;
        self.frame.size = self.frame.size.saturating_add(line_octets);
        if self.frame.head.is_none() {
            let mut input = Input::new(vec![Part::Line(text.clone())]);
            self.frame.head = Some(parse_head(&mut input));
        }
        self.frame.parts.push(Part::Line(text));
        if self.frame.size > self.command_limit() {
            let refusal = self.too_big_refusal();
            return self.refuse(refusal, announcement);
        }
        match announcement {
            None => {
                let frame = std::mem::take(&mut self.frame);
                self.command(frame)
            }
            Some(announcement) => match self.check_literal(announcement) {
                Ok(()) => self.accept_literal(announcement),
                Err(refusal) => self.refuse(refusal, Some(announcement)),
            },
        }
    }

    /// Total size allowed for the command being read.
    fn command_limit(&self) -> u64 {
        let limits = &self.config.limits;
        match &self.frame.head {
            Some(Ok((_, name))) if name.is_append() && self.session.is_authenticated() => {
                limits.max_append_command
            }
            _ => limits.max_command,
        }
    }

    fn is_append(&self) -> bool {
        matches!(&self.frame.head, Some(Ok((_, name))) if name.is_append())
    }

    fn too_big_refusal(&self) -> Refusal {
        if self.is_append() {
            // RFC 7889 §4 / RFC 9051 §7.1: NO [TOOBIG] for an APPEND over the limit.
            Refusal::with(Status::No, Code::TooBig, "Message too big")
        } else {
            Refusal::with(Status::Bad, Code::TooBig, "Command too big")
        }
    }

    /// Everything checked before a `+` is sent (RFC 9051 §2.2.1: "the server responds
    /// with a tagged BAD instead of a continuation request"; SECURITY-TESTS IM-02..IM-04):
    /// a valid tag and command allowed now, a command with arguments, the literal count,
    /// the literal's own limit and the command's total.
    fn check_literal(&self, announcement: Announcement) -> Result<(), Refusal> {
        let limits = &self.config.limits;
        let name = match &self.frame.head {
            Some(Ok((_, name))) => *name,
            Some(Err(HeadError::NoTag)) | None => return Err(Refusal::bad("Invalid tag")),
            Some(Err(HeadError::Unknown(_))) => return Err(Refusal::bad("Unknown command")),
        };
        self.command_allowed(name).map_err(Refusal::bad)?;
        if matches!(name, CommandName::Login | CommandName::Authenticate)
            && !login_allowed(&self.config, &self.session)
        {
            // Refused before the password is even read (SECURITY-TESTS ST-06).
            return Err(Refusal::with(
                Status::No,
                Code::PrivacyRequired,
                "Use STARTTLS first",
            ));
        }
        if !name.takes_arguments() {
            return Err(Refusal::bad("Unexpected literal"));
        }
        if self.frame.literals >= limits.max_literals {
            return Err(Refusal::with(Status::Bad, Code::Limit, "Too many literals"));
        }
        let append = name.is_append() && self.session.is_authenticated();
        if announcement.binary && !(append && self.config.extensions.binary) {
            return Err(Refusal::bad("literal8 is only allowed in APPEND"));
        }
        let limit = if !self.session.is_authenticated() {
            limits.max_preauth_literal
        } else if append {
            limits.max_append
        } else {
            limits.max_literal
        };
        // RFC 7888 §5: LITERAL- allows non-synchronising literals up to 4096 octets; under
        // LITERAL+ sealpost keeps that bound outside APPEND.
        let nonsync_limit = if append && self.config.extensions.literal_plus {
            limit
        } else {
            limit.min(limits.max_nonsync_literal)
        };
        let limit = if announcement.sync {
            limit
        } else {
            nonsync_limit
        };
        let total = self.frame.size.saturating_add(announcement.size);
        if announcement.size > limit || total > self.command_limit() {
            return Err(self.too_big_refusal());
        }
        if append
            && announcement.sync
            && let Some(allowance) = self.append_allowance
        {
            // RFC 9208 §4.3 / RFC 9051 §2.2.1: over the quota, NO [OVERQUOTA] instead of
            // the `+` (the messages of a MULTIAPPEND count together). Non-synchronising
            // octets come anyway: the service refuses them after reading, the connection
            // stays.
            let earlier: u64 = self
                .frame
                .parts
                .iter()
                .map(|part| match part {
                    Part::Literal { data, .. } => data.len() as u64,
                    Part::Line(_) => 0,
                })
                .sum();
            if earlier.saturating_add(announcement.size) > allowance {
                return Err(Refusal::with(Status::No, Code::OverQuota, "Quota exceeded"));
            }
        }
        if append && announcement.sync {
            // RFC 9051 §2.2.1: a tagged response instead of the continuation, so a message
            // the parser would refuse for its mailbox, flags or date is never uploaded
            // (SECURITY-TESTS IM-18). Non-synchronising octets are on their way anyway:
            // they are read and the whole command is refused as usual.
            let lines: Vec<&[u8]> = self
                .frame
                .parts
                .iter()
                .filter_map(|part| match part {
                    Part::Line(line) => Some(line.as_slice()),
                    Part::Literal { .. } => None,
                })
                .collect();
            check_append_prefix(&lines, &self.parse_context()).map_err(Refusal::parse)?;
        }
        Ok(())
    }

    /// Whether `name` may run now; the error text when not.
    pub(super) fn command_allowed(&self, name: CommandName) -> Result<(), &'static str> {
        if !name.allowed_in(self.session.state) {
            // RFC 9051 §6; SECURITY-TESTS IM-15.
            return Err("Command not allowed in this state");
        }
        if name == CommandName::Lsub && self.session.enabled.imap4rev2 {
            // RFC 9051 Appendix E: LSUB is gone from IMAP4rev2.
            return Err("LSUB is not part of IMAP4rev2");
        }
        Ok(())
    }

    /// Refuses the command being read. A synchronising literal is never sent (the client
    /// waits for a `+` that does not come), so the command simply ends here; the octets
    /// of a non-synchronising one are on their way and cannot be told apart from commands,
    /// so the session ends (RFC 7888 §4: BAD/NO [TOOBIG] then close; SECURITY-TESTS
    /// IM-03, the injection of Dovecot 2.2.1's CATENATE report).
    fn refuse(&mut self, refusal: Refusal, announcement: Option<Announcement>) -> Flow {
        let frame = std::mem::take(&mut self.frame);
        let tag = match frame.head {
            Some(Ok((tag, _)) | Err(HeadError::Unknown(tag))) => Some(tag),
            _ => None,
        };
        match refusal.status {
            Status::Bad => self.reply_bad(tag.as_ref(), refusal.code.as_ref(), refusal.text),
            status => self.status(tag.as_ref(), status, refusal.code.as_ref(), refusal.text),
        }
        if announcement.is_some_and(|a| !a.sync) {
            self.bye(
                Some(&Code::TooBig),
                "Literal refused; closing the connection",
            );
        }
        Flow::Continue
    }

    fn accept_literal(&mut self, announcement: Announcement) -> Flow {
        if announcement.sync {
            // RFC 9051 §7.5: the command continuation request.
            self.push_output(b"+ Ready for literal data\r\n");
        }
        self.frame.literals += 1;
        self.frame.size = self.frame.size.saturating_add(announcement.size);
        let reserve = usize::try_from(announcement.size)
            .unwrap_or(usize::MAX)
            .min(LITERAL_RESERVE);
        self.phase = Phase::Literal {
            remaining: announcement.size,
            data: Vec::with_capacity(reserve),
            binary: announcement.binary,
        };
        Flow::Continue
    }

    /// Moves literal octets from the input into the literal; at its end the command
    /// continues with the next line.
    pub(super) fn step_literal(&mut self) -> Flow {
        let available = self.input.get(self.pos..).unwrap_or_default();
        let Phase::Literal {
            remaining, data, ..
        } = &mut self.phase
        else {
            return Flow::Continue;
        };
        if *remaining > 0 {
            let take = usize::try_from(*remaining)
                .unwrap_or(usize::MAX)
                .min(available.len());
            if take == 0 {
                return Flow::NeedInput;
            }
            data.extend_from_slice(available.get(..take).unwrap_or_default());
            *remaining -= take as u64;
            self.pos += take;
            if *remaining > 0 {
                return Flow::NeedInput;
            }
        }
        if let Phase::Literal { data, binary, .. } =
            std::mem::replace(&mut self.phase, Phase::Command)
        {
            self.frame.parts.push(Part::Literal { data, binary });
        }
        Flow::Continue
    }

    /// The client's line after an AUTHENTICATE challenge.
    pub(super) fn step_auth_line(&mut self) -> Flow {
        let Some(line) = self.take_line() else {
            return Flow::NeedInput;
        };
        let Phase::AuthLine { tag } = std::mem::replace(&mut self.phase, Phase::Command) else {
            return Flow::Continue;
        };
        self.phase = Phase::Pending {
            tag,
            waiting: Waiting::Authenticate,
        };
        Flow::Event(Event::AuthResponse(Secret::new(line)))
    }

    /// A line during IDLE: `DONE` ends it (RFC 2177 §3); anything else ends it too, for
    /// the service to answer BAD (SECURITY-TESTS IM-17).
    pub(super) fn step_idle_line(&mut self) -> Flow {
        let Some(line) = self.take_line() else {
            return Flow::NeedInput;
        };
        let Phase::Idle { tag } = std::mem::replace(&mut self.phase, Phase::Command) else {
            return Flow::Continue;
        };
        self.phase = Phase::Pending {
            tag,
            waiting: Waiting::Command,
        };
        Flow::Event(Event::IdleDone {
            done: line.eq_ignore_ascii_case(b"DONE"),
        })
    }

    /// Refuses a command that was read whole, by its head.
    pub(super) fn refuse_head(&mut self, error: HeadError) -> Flow {
        match error {
            HeadError::NoTag => self.reply_bad(None, None, "Invalid tag"),
            HeadError::Unknown(tag) => self.reply_bad(Some(&tag), None, "Unknown command"),
        }
        Flow::Continue
    }
}
