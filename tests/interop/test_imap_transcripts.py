"""C:/S: transcripts over a raw TLS socket: the sample session of RFC 9051 §8 and the command
examples of RFC 9051 §6 (with those of RFC 3501, RFC 4315, RFC 4959, RFC 5258 and RFC 6851
they build on) that apply to sealpost, adapted to its accounts: the user name and password,
the special-use folders every account has, the mailbox contents each test sets up first, and
the values only the server knows (UIDVALIDITY, human-readable texts) as placeholders.

Transcript language (one line each, leading blanks ignored):
  C: <text>      sent as is, CRLF appended ("C:" alone sends an empty line)
  S: <pattern>   an expected response line; S?: the same, optional
  !<action>      a Python step between lines (another session, a delivery, STARTTLS...)
Consecutive S: lines are one block, read once the C: lines before it are sent: up to the
tagged line in the block, or else until every required response of the block has come.
A response line ending in `{...}` is followed by its literal's lines, up to a line starting
with ")". Untagged responses of a block may come in any order. In patterns `$name` is a
value known so far, `<n>` a number, `<n:name>` a number remembered as $name, `<*>` any text
on the line, `<re:...>` a regular expression; FLAGS lists are compared as sets.
"""

from __future__ import annotations

import base64
import re
import textwrap
from dataclasses import dataclass, field
from typing import Callable

from imap_support import ImapConn, ImapServer, Literal, imap, quote, simple_message  # noqa: F401
from tlsclient import client_context

PLACEHOLDER = re.compile(r"<n>|<n:(\w+)>|<\*>|<re:([^>]*)>")


def sort_flags(text: str) -> str:
    """Every `FLAGS (...)` list (PERMANENTFLAGS too) with its flags sorted."""
    return re.sub(r"FLAGS \(([^()]*)\)",
                  lambda m: "FLAGS (" + " ".join(sorted(m[1].split(), key=str.lower)) + ")", text)


def to_regex(pattern: str, known: dict[str, str]) -> re.Pattern:
    for name, value in sorted(known.items(), key=lambda kv: -len(kv[0])):
        pattern = pattern.replace("$" + name, value)
    pattern = sort_flags(pattern)
    out, pos = [], 0
    for m in PLACEHOLDER.finditer(pattern):
        out.append(re.escape(pattern[pos:m.start()]))
        token = m[0]
        if token == "<n>":
            out.append(r"\d+")
        elif m[1]:
            out.append(rf"(?P<{m[1]}>\d+)")
        elif token == "<*>":
            out.append(r"[^\r\n]*")
        else:
            out.append(f"(?:{m[2]})")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("".join(out), re.S)


@dataclass
class Expected:
    text: str
    optional: bool

    def kind(self) -> str:
        first = self.text.split(" ", 1)[0]
        return "untagged" if first == "*" else "continuation" if first.startswith("+") else "tagged"


@dataclass
class Transcript:
    """Runs a transcript on one raw IMAP connection."""

    conn: ImapConn
    known: dict[str, str] = field(default_factory=dict)
    actions: dict[str, Callable[[Transcript], None]] = field(default_factory=dict)
    captured: list[tuple[str, str]] = field(default_factory=list)

    def run(self, script: str) -> None:
        pending: list[str] = []
        block: list[tuple[str, bool]] = []
        for raw in textwrap.dedent(script).splitlines():
            line = raw.lstrip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("!"):
                self._block(block, pending)
                block, pending = [], []
                self.actions[line[1:].split()[0]](self)
            elif line.startswith("C:"):
                if block:
                    self._block(block, pending)
                    block, pending = [], []
                pending.append(line[3:] if line.startswith("C: ") else "")
            elif line.startswith(("S:", "S?:")):
                optional = line.startswith("S?:")
                text = line[4:] if optional else line[3:]
                block.append((text if line[2 + optional:3 + optional] == " " else "", optional))
            else:
                raise ValueError(f"bad transcript line {raw!r}")
        self._block(block, pending)

    def send(self, lines: list[str]) -> None:
        data = "".join(self._subst(text) + "\r\n" for text in lines).encode()
        self.conn.send(data)

    def _subst(self, text: str) -> str:
        for name, value in sorted(self.known.items(), key=lambda kv: -len(kv[0])):
            text = text.replace("$" + name, value)
        return text

    def _block(self, block: list[tuple[str, bool]], pending: list[str]) -> None:
        if pending:
            self.send(pending)
        if not block:
            return
        expected = self._group(block)
        tagged = [e for e in expected if e.kind() == "tagged"]
        used = [False] * len(expected)
        actual: list[str] = []
        while True:
            if tagged:
                done = bool(actual) and actual[-1].startswith(tagged[-1].text.split(" ", 1)[0] + " ")
            else:  # the `+` and the untagged responses, in any order
                done = all(used[i] for i, e in enumerate(expected) if not e.optional)
            if done:
                break
            actual.append(self._read())
            self._match_one(expected, used, actual)
        missing = [e.text for i, e in enumerate(expected) if not used[i] and not e.optional]
        if missing:
            raise AssertionError(self._report(f"missing responses {missing!r}", expected, actual))

    def _read(self) -> str:
        return self.conn.full_line().decode("utf-8", "replace")

    @staticmethod
    def _group(block: list[tuple[str, bool]]) -> list[Expected]:
        out: list[Expected] = []
        in_literal = False
        for text, optional in block:
            if in_literal:
                out[-1].text += "\r\n" + text
                if text.startswith(")"):
                    in_literal = bool(re.search(r"\{[^{}]*\}$", text))
                continue
            out.append(Expected(text, optional))
            in_literal = bool(re.search(r"\{[^{}]*\}$", text))
        return out

    def _match_one(self, expected: list[Expected], used: list[bool], actual: list[str]) -> None:
        """The last response read against the unused expected ones (required first)."""
        normal = sort_flags(actual[-1])
        for want_optional in (False, True):
            for i, e in enumerate(expected):
                if used[i] or e.optional != want_optional:
                    continue
                m = to_regex(e.text, self.known).fullmatch(normal)
                if m:
                    used[i] = True
                    for name, value in m.groupdict().items():
                        self.known[name] = value
                        self.captured.append((name, value))
                    return
        raise AssertionError(self._report(f"unexpected response {actual[-1]!r}", expected, actual))

    def _report(self, problem: str, expected: list[Expected], actual: list[str]) -> str:
        exp = "\n".join(f"  S{'?' if e.optional else ''}: {e.text!r}" for e in expected)
        got = "\n".join(f"  {a!r}" for a in actual)
        return f"{problem}\nexpected:\n{exp}\nreceived:\n{got}\n{self.conn.log()}"


def run(imap: ImapServer, script: str, tls: bool = True, known: dict | None = None,
        actions: dict | None = None) -> Transcript:
    """A new connection (greeting not read: the script expects it) running `script`."""
    conn = ImapConn(imap.ports["imaps" if tls else "imap"], tls=tls, read_greeting=False, timeout=10)
    t = Transcript(conn, dict(known or {}), dict(actions or {}))
    t.actions.setdefault("closed", assert_closed)
    try:
        t.run(script)
    finally:
        conn.close()
    return t


def assert_closed(t: Transcript) -> None:
    """The server closed the connection (after LOGOUT's tagged OK, RFC 9051 §6.1.3)."""
    assert t.conn.closed_within(2.0) and not t.conn.buf, f"connection still open\n{t.conn.log()}"


def fill(imap: ImapServer, user: str, password: str, mailbox: str,
         messages: list[tuple[str, str | None, bytes]]) -> None:
    """APPENDs (flags, internal date, message) to `mailbox` (created unless INBOX)."""
    with imap.login(user, password, select=None) as conn:
        if mailbox.upper() != "INBOX":
            conn.cmd("c", "CREATE ", quote(mailbox))
        for flags, date, data in messages:
            opts = (f" ({flags})" if flags is not None else "") + (f' "{date}"' if date else "")
            conn.ok("a", "APPEND ", quote(mailbox), opts, " ", Literal(data))


def plain(n: int, subject: str | None = None) -> tuple[str, None, bytes]:
    return ("", None, simple_message(subject or f"message {n}"))


def expunge_check(start: list[int], names: list[str], left: list[int]):
    """An action: the captured EXPUNGE numbers `names`, applied in order to the UIDs `start`,
    leave `left` (RFC 9051 §7.5.1: any order of EXPUNGE responses is valid if consistent)."""
    def check(t: Transcript) -> None:
        uids = list(start)
        for name in names:
            n = int(t.known.pop(name))
            assert 1 <= n <= len(uids), f"EXPUNGE {n} of {len(uids)} messages\n{t.conn.log()}"
            del uids[n - 1]
        assert uids == left, f"left {uids}, expected {left}\n{t.conn.log()}"
    return check


GREETING = "S: * OK [CAPABILITY <re:IMAP4rev1 IMAP4rev2 [^]]*>] <*>"
SPECIAL_USE = """
    S: * LIST (<*>) "/" Archive
    S: * LIST (<*>) "/" Drafts
    S: * LIST (<*>) "/" Junk
    S: * LIST (<*>) "/" Sent
    S: * LIST (<*>) "/" Trash
"""

# --- RFC 9051 §8: the sample session ----------------------------------------------------------

TERRY_HEADER = (b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
                b"From: Terry Gray <gray@cac.washington.edu>\r\n"
                b"Subject: IMAP4rev2 WG mtg summary and minutes\r\n"
                b"To: imap@cac.washington.edu\r\n"
                b"cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
                b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
                b"MIME-Version: 1.0\r\n"
                b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n")
# 92 lines, 3028 octets: the body the RFC's BODY structure describes.
TERRY_BODY = b"".join(b"Minutes of the WG meeting, #%02d.\r\n" % n for n in range(91)) + b"x" * 23 + b"\r\n"
assert len(TERRY_HEADER) == 342 and len(TERRY_BODY) == 3028 and TERRY_BODY.count(b"\r\n") == 92


def test_rfc9051_section_8_sample_session(imap):
    """RFC 9051 §8: LOGIN, SELECT (18 EXISTS, FLAGS, UIDVALIDITY, LIST), FETCH 12 FULL,
    FETCH 12 BODY[HEADER] (342-octet literal), STORE +FLAGS \\Deleted, LOGOUT (BYE, OK, close).
    Adapted: the session enables IMAP4rev2 first (RFC 9051 Appendix E: the server offers
    both revisions); INTERNALDATE as appended, possibly rendered in another zone."""
    user, password = imap.new_user()
    messages = [plain(n) for n in range(1, 12)] + [("\\Seen", "17-Jul-1996 02:44:25 -0700", TERRY_HEADER + TERRY_BODY)]
    messages += [plain(n) for n in range(13, 19)]
    fill(imap, user, password, "INBOX", messages)
    run(imap, GREETING + f"""
        C: a001 login $user $password
        S: a001 OK <*>
        C: a001a enable IMAP4rev2
        S: * ENABLED IMAP4rev2
        S: a001a OK <*>
        C: a002 select inbox
        S: * 18 EXISTS
        S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
        S: * OK [UIDVALIDITY <n>] <*>
        S: * LIST (<*>) "/" INBOX
        S?: * OK [UIDNEXT 19] <*>
        S?: * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] <*>
        S: a002 OK [READ-WRITE] <*>
        C: a003 fetch 12 full
        S: * 12 FETCH (FLAGS (\\Seen) INTERNALDATE "<re:17-Jul-1996 02:44:25 -0700|17-Jul-1996 09:44:25 \\+0000>" RFC822.SIZE {342 + 3028} ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev2 WG mtg summary and minutes" (("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) ((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL "<B27397-0100000@cac.washington.edu>") BODY ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92))
        S: a003 OK <*>
        C: a004 fetch 12 body[header]
        S: * 12 FETCH (BODY[HEADER] {{342}}
        S: Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)
        S: From: Terry Gray <gray@cac.washington.edu>
        S: Subject: IMAP4rev2 WG mtg summary and minutes
        S: To: imap@cac.washington.edu
        S: cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>
        S: Message-Id: <B27397-0100000@cac.washington.edu>
        S: MIME-Version: 1.0
        S: Content-Type: TEXT/PLAIN; CHARSET=US-ASCII
        S:
        S: )
        S: a004 OK <*>
        C: a005 store 12 +flags \\deleted
        S: * 12 FETCH (FLAGS (\\Seen \\Deleted))
        S: a005 OK <*>
        C: a006 logout
        S: * BYE <*>
        S: a006 OK <*>
        !closed
    """, known={"user": user, "password": password})


# --- RFC 9051 §6.1: any state -----------------------------------------------------------------


def test_rfc9051_6_1_capability_starttls_noop_logout(imap):
    """RFC 9051 §6.1.1 CAPABILITY and §6.2.1 STARTTLS (on 143: STARTTLS and LOGINDISABLED
    before, AUTH=PLAIN and neither of them after), §6.2.3 LOGIN, §6.1.2 NOOP with the
    updates another session caused (EXPUNGE, EXISTS, FETCH of flags), §6.1.3 LOGOUT."""
    user, password = imap.new_user()
    fill(imap, user, password, "INBOX", [plain(n) for n in range(1, 23)])

    def starttls(t: Transcript) -> None:
        t.conn.sock = client_context().wrap_socket(t.conn.sock, server_hostname="mail.test.example")

    def others(t: Transcript) -> None:
        with imap.login(user, password, select="INBOX") as other:
            other.ok("s1", "STORE 22 +FLAGS.SILENT (\\Deleted)")
            other.ok("x", "EXPUNGE")
            other.ok("s2", "STORE 14 +FLAGS.SILENT (\\Seen \\Deleted)")
        imap.deliver(user, simple_message("new 1"))
        imap.deliver(user, simple_message("new 2"))

    run(imap, GREETING + r"""
        C: abcd CAPABILITY
        S: * CAPABILITY <re:IMAP4rev1 IMAP4rev2 (?=.*\bSTARTTLS\b)(?=.*\bLOGINDISABLED\b)(?!.*AUTH=)[^\r\n]*>
        S: abcd OK <*>
        C: efgh STARTTLS
        S: efgh OK <*>
        !starttls
        C: ijkl CAPABILITY
        S: * CAPABILITY <re:IMAP4rev1 IMAP4rev2 (?!.*STARTTLS)(?!.*LOGINDISABLED)(?=.*\bAUTH=PLAIN\b)[^\r\n]*>
        S: ijkl OK <*>
        C: a001 LOGIN $user $password
        S: a001 OK <*>
        C: a001a SELECT INBOX
        S: * 22 EXISTS
        S?: * <n> RECENT
        S?: * OK [UNSEEN 1] <*>
        S: * FLAGS (<*>)
        S: * OK [PERMANENTFLAGS (<*>)] <*>
        S: * OK [UIDVALIDITY <n>] <*>
        S: * OK [UIDNEXT 23] <*>
        S: a001a OK [READ-WRITE] <*>
        C: a002 NOOP
        S: a002 OK <*>
        !others
        C: a047 NOOP
        S?: * 22 FETCH (<*>)
        S: * 22 EXPUNGE
        S: * 23 EXISTS
        S?: * <n> RECENT
        S: * 14 FETCH (<re:(UID 14 )?(MODSEQ \(\d+\) )?>FLAGS (\Seen \Deleted)<re:( UID 14)?( MODSEQ \(\d+\))?>)
        S: a047 OK <*>
        C: A023 LOGOUT
        S: * BYE <*>
        S: A023 OK <*>
        !closed
    """, tls=False, known={"user": user, "password": password}, actions={"starttls": starttls, "others": others})


# --- RFC 9051 §6.2: not authenticated state ---------------------------------------------------


def test_rfc9051_6_2_authenticate_plain_and_sasl_ir(imap):
    """RFC 9051 §6.2.2 AUTHENTICATE (the exchange adapted to PLAIN: an empty `+ ` challenge,
    a failed attempt, a `*` cancel, a success), RFC 4959 §3 SASL-IR (`AUTHENTICATE PLAIN
    <initial response>`; LOGIN afterwards is a wrong-state BAD), §6.2.3 LOGIN with a quoted
    password."""
    user, password = imap.new_user()
    creds = {
        "user": user,
        "password": password,
        "good": base64.b64encode(f"\0{user}\0{password}".encode()).decode(),
        "wrong": base64.b64encode(f"\0{user}\0wrong".encode()).decode(),
        "authzid": base64.b64encode(f"{user}\0{user}\0{password}".encode()).decode(),
    }
    run(imap, GREETING + r"""
        C: A001 AUTHENTICATE PLAIN
        S: + <re:>
        C: $wrong
        S: A001 NO [AUTHENTICATIONFAILED] <*>
        C: A002 AUTHENTICATE PLAIN
        S: + <re:>
        C: *
        S: A002 BAD <*>
        C: A003 AUTHENTICATE PLAIN
        S: + <re:>
        C: $good
        S: A003 OK <*>
        C: A004 LOGOUT
        S: * BYE <*>
        S: A004 OK <*>
    """, known=creds)
    run(imap, GREETING + r"""
        C: A01 AUTHENTICATE PLAIN $authzid
        S: A01 OK <*>
        C: A02 LOGIN $user $password
        S: A02 BAD <*>
    """, known=creds)
    run(imap, GREETING + r"""
        C: a001 LOGIN $user "$password"
        S: a001 OK <*>
    """, known=creds)


# --- RFC 9051 §6.3: authenticated state -------------------------------------------------------


def test_rfc9051_6_3_1_enable(imap):
    """RFC 9051 §6.3.1 (RFC 5161 §4): ENABLE lists only the extensions it enabled; unknown
    ones (X-GOOD-IDEA) are ignored; enabling again reports nothing new."""
    user, password = imap.new_user()
    run(imap, GREETING + r"""
        C: t0 LOGIN $user $password
        S: t0 OK <*>
        C: t1 CAPABILITY
        S: * CAPABILITY <re:IMAP4rev1 IMAP4rev2 (?=.*\bENABLE\b)(?=.*\bCONDSTORE\b)[^\r\n]*>
        S: t1 OK <*>
        C: t2 ENABLE CONDSTORE X-GOOD-IDEA
        S: * ENABLED CONDSTORE
        S: t2 OK <*>
        C: t3 ENABLE CONDSTORE
        S?: * ENABLED
        S: t3 OK <*>
    """, known={"user": user, "password": password})


def test_rfc9051_6_3_2_select_and_6_3_3_examine(imap):
    """RFC 9051 §6.3.2 SELECT and §6.3.3 EXAMINE in an IMAP4rev2 session: EXISTS,
    UIDVALIDITY, UIDNEXT, FLAGS, PERMANENTFLAGS (\\* on SELECT, none on EXAMINE), LIST of the
    mailbox, [CLOSED] when another mailbox was selected (§7.1), [READ-WRITE] / [READ-ONLY]."""
    user, password = imap.new_user()
    fill(imap, user, password, "INBOX", [plain(n) for n in range(1, 4)])
    fill(imap, user, password, "blurdybloop", [plain(n) for n in range(1, 18)])
    run(imap, GREETING + r"""
        C: A141 LOGIN $user $password
        S: A141 OK <*>
        C: A141a ENABLE IMAP4rev2
        S: * ENABLED IMAP4rev2
        S: A141a OK <*>
        C: A142 SELECT INBOX
        S: * 3 EXISTS
        S: * OK [UIDVALIDITY <n:inbox_uv>] <*>
        S: * OK [UIDNEXT 4] <*>
        S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
        S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] <*>
        S: * LIST (<*>) "/" INBOX
        S: A142 OK [READ-WRITE] <*>
        C: A932 EXAMINE blurdybloop
        S: * OK [CLOSED] <*>
        S: * 17 EXISTS
        S: * OK [UIDVALIDITY <n>] <*>
        S: * OK [UIDNEXT 18] <*>
        S: * LIST (<*>) "/" blurdybloop
        S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft)
        S: * OK [PERMANENTFLAGS ()] <*>
        S: A932 OK [READ-ONLY] <*>
        C: A933 STORE 1 +FLAGS (\Seen)
        S: A933 NO <*>
    """, known={"user": user, "password": password})


def test_rfc9051_6_3_4_create_6_3_5_delete_6_3_6_rename(imap):
    """RFC 9051 §6.3.4 CREATE (a trailing separator declares a parent), §6.3.5 DELETE (a
    mailbox with inferiors: sealpost refuses with [HASCHILDREN], the alternative the RFC
    allows for names without \\Noselect), §6.3.6 RENAME with inferiors and the INBOX rule
    (messages move, INBOX stays, INBOX/bar stays)."""
    user, password = imap.new_user()
    fill(imap, user, password, "INBOX", [plain(n) for n in range(1, 3)])
    run(imap, GREETING + r"""
        C: A001 LOGIN $user $password
        S: A001 OK <*>
        C: A003 CREATE owatagusiam/
        S: A003 OK <*>
        C: A004 CREATE owatagusiam/blurdybloop
        S: A004 OK <*>
        C: A005 LIST "" owatagusiam*
        S: * LIST (\HasChildren) "/" owatagusiam
        S: * LIST (\HasNoChildren) "/" owatagusiam/blurdybloop
        S: A005 OK <*>
        C: A006 CREATE blurdybloop
        S: A006 OK <*>
        C: A007 CREATE foo/bar
        S: A007 OK <*>
        C: A682 LIST "" *
        S: * LIST (\HasNoChildren) "/" INBOX
        S: * LIST (\HasNoChildren) "/" blurdybloop
        S: * LIST (\HasChildren) "/" foo
        S: * LIST (\HasNoChildren) "/" foo/bar
        S: * LIST (\HasChildren) "/" owatagusiam
        S: * LIST (\HasNoChildren) "/" owatagusiam/blurdybloop
    """ + SPECIAL_USE + r"""
        S: A682 OK <*>
        C: A683 DELETE blurdybloop
        S: A683 OK <*>
        C: A684 DELETE foo
        S: A684 NO [HASCHILDREN] <*>
        C: A685 DELETE foo/bar
        S: A685 OK <*>
        C: A686 LIST "" foo*
        S: * LIST (\HasNoChildren) "/" foo
        S: A686 OK <*>
        C: A687 DELETE foo
        S: A687 OK <*>
        C: A688 CREATE blurdybloop
        S: A688 OK <*>
        C: A689 CREATE foo/bar
        S: A689 OK <*>
        C: A683 RENAME blurdybloop sarasoop
        S: A683 OK <*>
        C: A684 RENAME foo zowie
        S: A684 OK <*>
        C: A685 LIST "" *
        S: * LIST (\HasNoChildren) "/" INBOX
        S: * LIST (\HasChildren) "/" owatagusiam
        S: * LIST (\HasNoChildren) "/" owatagusiam/blurdybloop
        S: * LIST (\HasNoChildren) "/" sarasoop
        S: * LIST (\HasChildren) "/" zowie
        S: * LIST (\HasNoChildren) "/" zowie/bar
    """ + SPECIAL_USE + r"""
        S: A685 OK <*>
        C: Z431 CREATE INBOX/bar
        S: Z431 OK <*>
        C: Z433 RENAME INBOX old-mail
        S: Z433 OK <*>
        C: Z434 LIST "" *
        S: * LIST (\HasChildren) "/" INBOX
        S: * LIST (\HasNoChildren) "/" INBOX/bar
        S: * LIST (\HasNoChildren) "/" old-mail
        S: * LIST (\HasChildren) "/" owatagusiam
        S: * LIST (\HasNoChildren) "/" owatagusiam/blurdybloop
        S: * LIST (\HasNoChildren) "/" sarasoop
        S: * LIST (\HasChildren) "/" zowie
        S: * LIST (\HasNoChildren) "/" zowie/bar
    """ + SPECIAL_USE + r"""
        S: Z434 OK <*>
        C: Z435 STATUS old-mail (MESSAGES)
        S: * STATUS old-mail (MESSAGES 2)
        S: Z435 OK <*>
        C: Z436 STATUS INBOX (MESSAGES)
        S: * STATUS INBOX (MESSAGES 0)
        S: Z436 OK <*>
    """, known={"user": user, "password": password})


def test_rfc9051_6_3_7_subscribe_6_3_8_unsubscribe_and_lsub(imap):
    """RFC 9051 §6.3.7 SUBSCRIBE, §6.3.8 UNSUBSCRIBE, RFC 3501 §6.3.9 LSUB (rev1): the
    subscribed names; with `%`, a subscribed child of an unsubscribed parent makes LSUB
    return the parent flagged \\Noselect."""
    user, password = imap.new_user()
    fill(imap, user, password, "news/comp/mail/mime", [])
    fill(imap, user, password, "news/comp/mail/misc", [])
    run(imap, GREETING + r"""
        C: A001 LOGIN $user $password
        S: A001 OK <*>
        C: A002 SUBSCRIBE news/comp/mail/mime
        S: A002 OK <*>
        C: A002a SUBSCRIBE news/comp/mail/misc
        S: A002a OK <*>
        C: A003 LSUB "news/" "comp/mail/*"
        S: * LSUB () "/" news/comp/mail/mime
        S: * LSUB () "/" news/comp/mail/misc
        S: A003 OK <*>
        C: A004 UNSUBSCRIBE news/comp/mail/mime
        S: A004 OK <*>
        C: A005 LSUB "news/" "comp/mail/*"
        S: * LSUB () "/" news/comp/mail/misc
        S: A005 OK <*>
        C: A006 LSUB "" "news/%"
        S: * LSUB (\Noselect) "/" news/comp
        S: A006 OK <*>
    """, known={"user": user, "password": password})


def test_rfc9051_6_3_9_list(imap):
    """RFC 9051 §6.3.9 LIST: the `""` name gives the hierarchy delimiter; RFC 5258 / RFC 9051
    §6.3.9.7 LIST-EXTENDED examples on the RFC's own tree (Fruit, Tofu, Vegetable...):
    RETURN (CHILDREN), (SUBSCRIBED RECURSIVEMATCH) with CHILDINFO, several patterns, and
    (SUBSCRIBED) listing a subscribed name that no longer exists as \\NonExistent."""
    user, password = imap.new_user()
    with imap.login(user, password, select=None) as conn:
        for name in ("Fruit/Apple", "Fruit/Banana", "Fruit/Peach", "Tofu", "Vegetable/Broccoli", "Vegetable/Corn"):
            conn.ok("c", "CREATE ", name)
        for name in ("Fruit/Banana", "Fruit/Peach", "Vegetable", "Vegetable/Broccoli"):
            conn.ok("s", "SUBSCRIBE ", name)
        conn.ok("d", "DELETE Fruit/Peach")
    run(imap, GREETING + r"""
        C: A001 LOGIN $user $password
        S: A001 OK <*>
        C: A101 LIST "" ""
        S: * LIST (\Noselect) "/" ""
        S: A101 OK <*>
        C: A03 LIST () "" "%" RETURN (CHILDREN)
        S: * LIST (\HasNoChildren) "/" INBOX
        S: * LIST (\HasChildren) "/" Fruit
        S: * LIST (\HasNoChildren) "/" Tofu
        S: * LIST (\HasChildren) "/" Vegetable
    """ + SPECIAL_USE + r"""
        S: A03 OK <*>
        C: A04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"
        S: * LIST (<re:\\HasNoChildren \\Subscribed|\\Subscribed \\HasNoChildren|\\Subscribed>) "/" INBOX
        S: * LIST (<re:\\HasChildren|>) "/" Fruit ("CHILDINFO" ("SUBSCRIBED"))
        S: * LIST (<re:\\HasChildren \\Subscribed|\\Subscribed \\HasChildren|\\Subscribed>) "/" Vegetable ("CHILDINFO" ("SUBSCRIBED"))
        S: * LIST (<*>\Subscribed<*>) "/" Archive
        S: * LIST (<*>\Subscribed<*>) "/" Drafts
        S: * LIST (<*>\Subscribed<*>) "/" Junk
        S: * LIST (<*>\Subscribed<*>) "/" Sent
        S: * LIST (<*>\Subscribed<*>) "/" Trash
        S: A04 OK <*>
        C: A05 LIST "" ("INBOX" "Drafts" "Fruit/%")
        S: * LIST (<*>) "/" INBOX
        S: * LIST (<*>\Drafts<*>) "/" Drafts
        S: * LIST (<*>) "/" Fruit/Apple
        S: * LIST (<*>) "/" Fruit/Banana
        S: A05 OK <*>
        C: A02 LIST (SUBSCRIBED) "" "*"
        S: * LIST (<*>\Subscribed<*>) "/" INBOX
        S: * LIST (<*>\Subscribed<*>) "/" Fruit/Banana
        S: * LIST (<re:\\Subscribed \\NonExistent|\\NonExistent \\Subscribed>) "/" Fruit/Peach
        S: * LIST (<*>\Subscribed<*>) "/" Vegetable
        S: * LIST (<*>\Subscribed<*>) "/" Vegetable/Broccoli
        S: * LIST (<*>\Subscribed<*>) "/" Archive
        S: * LIST (<*>\Subscribed<*>) "/" Drafts
        S: * LIST (<*>\Subscribed<*>) "/" Junk
        S: * LIST (<*>\Subscribed<*>) "/" Sent
        S: * LIST (<*>\Subscribed<*>) "/" Trash
        S: A02 OK <*>
    """, known={"user": user, "password": password})


def test_rfc9051_6_3_10_namespace_6_3_11_status(imap):
    """RFC 9051 §6.3.10 NAMESPACE (one personal namespace, no others), §6.3.11 STATUS (the
    items asked for, in any order)."""
    user, password = imap.new_user()
    fill(imap, user, password, "blurdybloop", [plain(n) for n in range(1, 4)])
    run(imap, GREETING + r"""
        C: A001 LOGIN $user $password
        S: A001 OK <*>
        C: A001a NAMESPACE
        S: * NAMESPACE (("" "/")) NIL NIL
        S: A001a OK <*>
        C: A042 STATUS blurdybloop (UIDNEXT MESSAGES)
        S: * STATUS blurdybloop <re:\((MESSAGES 3 UIDNEXT 4|UIDNEXT 4 MESSAGES 3)\)>
        S: A042 OK <*>
    """, known={"user": user, "password": password})


APPEND_MESSAGE = [
    "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)",
    "From: Fred Foobar <foobar@Blurdybloop.example>",
    "Subject: afternoon meeting",
    "To: mooch@owatagu.siam.edu.example",
    "Message-Id: <B27397-0100000@Blurdybloop.example>",
    "MIME-Version: 1.0",
    "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII",
    "",
    "Hello Joe, do you think we can meet at 3:30 tomorrow?",
]


def test_rfc9051_6_3_12_append(imap):
    """RFC 9051 §6.3.12 APPEND with a synchronising literal ({326}, `+` before the octets)
    and with a non-synchronising one ({326+}, RFC 7888), APPENDUID (RFC 4315 §3),
    TRYCREATE for a missing mailbox; the message reads back byte for byte."""
    user, password = imap.new_user()
    fill(imap, user, password, "saved-messages", [])
    body = "".join("\n        C: " + line for line in APPEND_MESSAGE)
    run(imap, GREETING + r"""
        C: A001 LOGIN $user $password
        S: A001 OK <*>
        C: A003 APPEND saved-messages (\Seen) {326}
        S: + <*>""" + body + r"""
        C:
        S: A003 OK [APPENDUID <n:uv> 1] <*>
        C: A004 APPEND saved-messages (\Seen) {326+}""" + body + r"""
        C:
        S: A004 OK [APPENDUID $uv 2] <*>
        C: A005 APPEND no-such-mailbox {326+}""" + body + r"""
        C:
        S: A005 NO [TRYCREATE] <*>
        C: A006 EXAMINE saved-messages
        S: * 2 EXISTS
        S?: * 0 RECENT
        S: * FLAGS (<*>)
        S: * OK [PERMANENTFLAGS ()] <*>
        S: * OK [UIDVALIDITY $uv] <*>
        S: * OK [UIDNEXT 3] <*>
        S: A006 OK [READ-ONLY] <*>
        C: A007 FETCH 2 (FLAGS BODY[])
        S: * 2 FETCH (FLAGS (\Seen) BODY[] {326}""" + body.replace("C:", "S:") + r"""
        S: )
        S: A007 OK <*>
    """, known={"user": user, "password": password})


def test_rfc9051_6_3_13_idle(imap):
    """RFC 9051 §6.3.13 (RFC 2177) IDLE example: new mail during IDLE is `* 4 EXISTS` at once;
    DONE ends it; an expunge by another client between two IDLEs is reported when the next
    IDLE starts (before or after its `+`), later ones and new mail while it runs. The other
    client's \\Deleted may be announced first (FETCH FLAGS), before the EXPUNGE."""
    user, password = imap.new_user()
    fill(imap, user, password, "INBOX", [plain(n) for n in range(1, 4)])

    def deliver(t: Transcript) -> None:
        imap.deliver(user, simple_message("new mail"))

    def expunge(number: int):
        def act(t: Transcript) -> None:
            with imap.login(user, password, select="INBOX") as other:
                other.ok("s", f"STORE {number} +FLAGS.SILENT (\\Deleted)")
                other.ok("x", "EXPUNGE")
        return act

    run(imap, GREETING + r"""
        C: A000 LOGIN $user $password
        S: A000 OK <*>
        C: A001 SELECT INBOX
        S: * FLAGS (<*>)
        S: * 3 EXISTS
        S?: * <n> RECENT
        S?: * OK [UNSEEN 1] <*>
        S: * OK [PERMANENTFLAGS (<*>)] <*>
        S: * OK [UIDVALIDITY <n>] <*>
        S?: * OK [UIDNEXT 4] <*>
        S: A001 OK [READ-WRITE] <*>
        C: A002 IDLE
        S: + <*>
        !deliver
        S: * 4 EXISTS
        S?: * <n> RECENT
        C: DONE
        S?: * <n> RECENT
        S: A002 OK <*>
        !expunge2
        C: A003 FETCH 4 ALL
        S?: * 2 FETCH (FLAGS (\Deleted))
        S: * 4 FETCH (FLAGS (<*>) INTERNALDATE "<*>" RFC822.SIZE <n> ENVELOPE (<*>))
        S: A003 OK <*>
        C: A004 IDLE
        S?: * 2 FETCH (FLAGS (\Deleted))
        S: * 2 EXPUNGE
        S?: * 3 EXISTS
        S: + <*>
        !expunge3
        S?: * 3 FETCH (FLAGS (\Deleted))
        S: * 3 EXPUNGE
        S?: * 2 EXISTS
        !deliver
        S: * 3 EXISTS
        S?: * <n> RECENT
        C: DONE
        S: A004 OK <*>
    """, known={"user": user, "password": password},
        actions={"deliver": deliver, "expunge2": expunge(2), "expunge3": expunge(3)})


# --- RFC 9051 §6.4: selected state ------------------------------------------------------------


def test_rfc9051_6_4_1_close_6_4_2_unselect_6_4_3_expunge(imap):
    """RFC 9051 §6.4.3 EXPUNGE example (messages 3, 4, 7 and 11 deleted: four EXPUNGE
    responses whose numbers, applied in order, remove exactly those), §6.4.2 UNSELECT (no
    expunge), §6.4.1 CLOSE (expunges without EXPUNGE responses); RFC 4315 §2.1 UID EXPUNGE
    example (three consecutive UIDs)."""
    user, password = imap.new_user()
    fill(imap, user, password, "INBOX", [("\\Deleted" if n in (3, 4, 7, 11) else "", None, simple_message(f"m{n}"))
                                         for n in range(1, 12)])
    expunged = expunge_check(list(range(1, 12)), ["e1", "e2", "e3", "e4"], [1, 2, 5, 6, 8, 9, 10])
    run(imap, GREETING + r"""
        C: A001 LOGIN $user $password
        S: A001 OK <*>
        C: A002 SELECT INBOX
        S: * 11 EXISTS
        S?: * <n> RECENT
        S?: * OK [UNSEEN 1] <*>
        S: * FLAGS (<*>)
        S: * OK [PERMANENTFLAGS (<*>)] <*>
        S: * OK [UIDVALIDITY <n>] <*>
        S: * OK [UIDNEXT 12] <*>
        S: A002 OK [READ-WRITE] <*>
        C: A342 UNSELECT
        S: A342 OK <*>
        C: A343 STATUS INBOX (MESSAGES DELETED)
        S: * STATUS INBOX (MESSAGES 11 DELETED 4)
        S: A343 OK <*>
        C: A344 SELECT INBOX
        S: * 11 EXISTS
        S?: * <n> RECENT
        S?: * OK [UNSEEN 1] <*>
        S: * FLAGS (<*>)
        S: * OK [PERMANENTFLAGS (<*>)] <*>
        S: * OK [UIDVALIDITY <n>] <*>
        S: * OK [UIDNEXT 12] <*>
        S: A344 OK [READ-WRITE] <*>
        C: A202 EXPUNGE
        S: * <n:e1> EXPUNGE
        S: * <n:e2> EXPUNGE
        S: * <n:e3> EXPUNGE
        S: * <n:e4> EXPUNGE
        S: A202 OK <*>
        !expunged
        C: A003 UID STORE 8:10 +FLAGS.SILENT (\Deleted)
        S: A003 OK <*>
        C: A004 UID EXPUNGE 8:10
        S: * <n:u1> EXPUNGE
        S: * <n:u2> EXPUNGE
        S: * <n:u3> EXPUNGE
        S: A004 OK <*>
        !uid_expunge_check
        C: A005 STORE 1 +FLAGS.SILENT (\Deleted)
        S: A005 OK <*>
        C: A341 CLOSE
        S: A341 OK <*>
        C: A345 STATUS INBOX (MESSAGES)
        S: * STATUS INBOX (MESSAGES 3)
        S: A345 OK <*>
    """, known={"user": user, "password": password},
        actions={"expunged": expunged,
                 "uid_expunge_check": expunge_check([1, 2, 5, 6, 8, 9, 10], ["u1", "u2", "u3"], [1, 2, 5, 6])})


def search_mailbox() -> list[tuple[str, str | None, bytes]]:
    """43 messages for the §6.4.4 examples: flagged since 1-Feb-1994 and not from Smith are
    2, 10 and 11; 1 is flagged but from Smith, 5 flagged but older; 43 says "отпуск"."""
    out = []
    for n in range(1, 44):
        sender = "Smith <smith@ext.test>" if n == 1 else f"user{n} <user{n}@ext.test>"
        date = "15-Jan-1994 10:00:00 +0000" if n == 5 else "15-Mar-1994 10:00:00 +0000"
        flags = "\\Flagged" if n in (1, 2, 5, 10, 11) else ""
        body = "Поехали в отпуск!\r\n" if n == 43 else f"Message number {n}.\r\n"
        data = (f"From: {sender}\r\nTo: someone@test.example\r\nSubject: search {n}\r\n"
                f"Date: Tue, 15 Mar 1994 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}").encode()
        out.append((flags, date, data))
    return out


def test_rfc9051_6_4_4_search(imap):
    """RFC 9051 §6.4.4 SEARCH examples in an IMAP4rev2 session (ESEARCH results, RFC 4731):
    RETURN (MIN COUNT), RETURN () meaning ALL, no match (an ESEARCH with only the TAG),
    CHARSET UTF-8 with a synchronising literal; SEARCHRES (RFC 5182 §2.4 example): RETURN
    (SAVE) answers nothing, `$` then names the result in UID SEARCH and FETCH."""
    user, password = imap.new_user()
    fill(imap, user, password, "INBOX", search_mailbox())
    run(imap, GREETING + r"""
        C: A001 LOGIN $user $password
        S: A001 OK <*>
        C: A002 ENABLE IMAP4rev2
        S: * ENABLED IMAP4rev2
        S: A002 OK <*>
        C: A003 SELECT INBOX
        S: * 43 EXISTS
        S: * FLAGS (<*>)
        S: * OK [PERMANENTFLAGS (<*>)] <*>
        S: * OK [UIDVALIDITY <n>] <*>
        S: * OK [UIDNEXT 44] <*>
        S?: * LIST (<*>) "/" INBOX
        S: A003 OK [READ-WRITE] <*>
        C: A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"
        S: * ESEARCH (TAG "A282") MIN 2 COUNT 3
        S: A282 OK <*>
        C: A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"
        S: * ESEARCH (TAG "A283") ALL <re:2,10:11|2,10,11>
        S: A283 OK <*>
        C: A284 SEARCH TEXT "string not in mailbox"
        S: * ESEARCH (TAG "A284")
        S: A284 OK <*>
        C: A285 SEARCH CHARSET UTF-8 TEXT {12}
        S: + <*>
        C: отпуск
        S: * ESEARCH (TAG "A285") ALL 43
        S: A285 OK <*>
        C: A300 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"
        S: A300 OK <*>
        C: A301 UID SEARCH UID $ SMALLER 4096
        S: * ESEARCH (TAG "A301") UID ALL <re:2,10:11|2,10,11>
        S: A301 OK <*>
        C: A302 FETCH $ (UID FLAGS)
        S: * 2 FETCH (UID 2 FLAGS (\Flagged))
        S: * 10 FETCH (UID 10 FLAGS (\Flagged))
        S: * 11 FETCH (UID 11 FLAGS (\Flagged))
        S: A302 OK <*>
    """, known={"user": user, "password": password})


def test_rfc9051_6_4_5_fetch_6_4_6_store(imap):
    """RFC 9051 §6.4.5 FETCH example `2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])` (one
    literal per message, the header subset with its empty line) and §6.4.6 STORE example
    `2:4 +FLAGS (\\Deleted)` (each message's FETCH FLAGS afterwards)."""
    user, password = imap.new_user()
    msgs = []
    for n, flags in enumerate(("\\Seen", "\\Seen", "", "\\Flagged \\Seen"), 1):
        data = (f"Date: Wed, 0{n} Feb 1994 10:00:00 +0000\r\nFrom: Sender {n} <s{n}@ext.test>\r\n"
                f"Subject: fetch {n}\r\n\r\nbody {n}\r\n").encode()
        msgs.append((flags, None, data))
    fill(imap, user, password, "INBOX", msgs)
    run(imap, GREETING + r"""
        C: A001 LOGIN $user $password
        S: A001 OK <*>
        C: A002 SELECT INBOX
        S: * 4 EXISTS
        S?: * <n> RECENT
        S?: * OK [UNSEEN 3] <*>
        S: * FLAGS (<*>)
        S: * OK [PERMANENTFLAGS (<*>)] <*>
        S: * OK [UIDVALIDITY <n>] <*>
        S: * OK [UIDNEXT 5] <*>
        S: A002 OK [READ-WRITE] <*>
        C: A654 FETCH 2:4 (FLAGS BODY.PEEK[HEADER.FIELDS (DATE FROM)])
        S: * 2 FETCH (FLAGS (\Seen) BODY[HEADER.FIELDS (DATE FROM)] {<n>}
        S: Date: Wed, 02 Feb 1994 10:00:00 +0000
        S: From: Sender 2 <s2@ext.test>
        S:
        S: )
        S: * 3 FETCH (FLAGS () BODY[HEADER.FIELDS (DATE FROM)] {<n>}
        S: Date: Wed, 03 Feb 1994 10:00:00 +0000
        S: From: Sender 3 <s3@ext.test>
        S:
        S: )
        S: * 4 FETCH (FLAGS (\Flagged \Seen) BODY[HEADER.FIELDS (DATE FROM)] {<n>}
        S: Date: Wed, 04 Feb 1994 10:00:00 +0000
        S: From: Sender 4 <s4@ext.test>
        S:
        S: )
        S: A654 OK <*>
        C: A003 STORE 2:4 +FLAGS (\Deleted)
        S: * 2 FETCH (FLAGS (\Deleted \Seen))
        S: * 3 FETCH (FLAGS (\Deleted))
        S: * 4 FETCH (FLAGS (\Deleted \Flagged \Seen))
        S: A003 OK <*>
    """, known={"user": user, "password": password})


def test_rfc9051_6_4_7_copy_6_4_8_move_6_4_9_uid(imap):
    """RFC 9051 §6.4.7 COPY example with COPYUID (RFC 4315 §3), §6.4.8 MOVE example (RFC 6851
    §4.6: untagged OK [COPYUID] before the EXPUNGEs), §6.4.9 UID FETCH example on UIDs with
    gaps (the FETCH carries UID), and TRYCREATE for a missing target."""
    user, password = imap.new_user()
    fill(imap, user, password, "INBOX", [("\\Seen", None, simple_message(f"c{n}")) for n in range(1, 7)])
    fill(imap, user, password, "MEETING", [])
    fill(imap, user, password, "foo", [])
    run(imap, GREETING + r"""
        C: A001 LOGIN $user $password
        S: A001 OK <*>
        C: A002 STATUS MEETING (UIDVALIDITY)
        S: * STATUS MEETING (UIDVALIDITY <n:meeting>)
        S: A002 OK <*>
        C: A002a STATUS foo (UIDVALIDITY)
        S: * STATUS foo (UIDVALIDITY <n:foo>)
        S: A002a OK <*>
        C: A002b SELECT INBOX
        S: * 6 EXISTS
        S?: * <n> RECENT
        S: * FLAGS (<*>)
        S: * OK [PERMANENTFLAGS (<*>)] <*>
        S: * OK [UIDVALIDITY <n>] <*>
        S: * OK [UIDNEXT 7] <*>
        S: A002b OK [READ-WRITE] <*>
        C: A003 COPY 2:4 MEETING
        S: A003 OK [COPYUID $meeting <re:2:4|2,3,4> <re:1:3|1,2,3>] <*>
        C: A004 COPY 1 NOWHERE
        S: A004 NO [TRYCREATE] <*>
        C: a UID MOVE 2:3 foo
        S: * OK [COPYUID $foo <re:2:3|2,3> <re:1:2|1,2>]<*>
        S: * <n:m1> EXPUNGE
        S: * <n:m2> EXPUNGE
        S: a OK <*>
        !moved
        C: A999 UID FETCH 4:6 FLAGS
        S: * 2 FETCH (<re:FLAGS \(\\Seen\) UID 4|UID 4 FLAGS \(\\Seen\)>)
        S: * 3 FETCH (<re:FLAGS \(\\Seen\) UID 5|UID 5 FLAGS \(\\Seen\)>)
        S: * 4 FETCH (<re:FLAGS \(\\Seen\) UID 6|UID 6 FLAGS \(\\Seen\)>)
        S: A999 OK <*>
    """, known={"user": user, "password": password},
        actions={"moved": expunge_check([1, 2, 3, 4, 5, 6], ["m1", "m2"], [1, 4, 5, 6])})


def test_rfc9051_6_5_unknown_command(imap):
    """RFC 9051 §6.5.1: an X-command the server does not implement is BAD (as is any unknown
    command), and the session goes on."""
    user, password = imap.new_user()
    run(imap, GREETING + r"""
        C: a441 LOGIN $user $password
        S: a441 OK <*>
        C: A442 XPIG-LATIN
        S: A442 BAD <*>
        C: A443 NOOP
        S: A443 OK <*>
    """, known={"user": user, "password": password})
