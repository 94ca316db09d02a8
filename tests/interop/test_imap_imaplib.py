"""Python imaplib against sealpost through every command of issue 4, over 993 (IMAP4_SSL) and
over 143 (IMAP4 + starttls()): RFC 9051 / RFC 3501 with ENABLE, SASL-IR, LIST-EXTENDED,
LIST-STATUS, SPECIAL-USE, STATUS=SIZE, UIDPLUS, MOVE, ESEARCH, SEARCHRES, BINARY, IDLE,
CONDSTORE/QRESYNC, QUOTA and ID, and how sessions of one account (IMAP, SMTP delivery, POP3)
see each other's changes. Where imaplib has no method, its own `_simple_command` and reader
are used; the raw client of imap_support.py only where the order of untagged responses
around a command is what is checked."""

from __future__ import annotations

import base64
import datetime
import imaplib
import poplib
import re
import socket
import time

import pytest

from imap_support import (  # noqa: F401  (imap: fixture)
    IO_TIMEOUT, ImapServer, append, capabilities, clear, fetch_data, flags_of, ifetch, imap,
    parse_sexp, quote, sexp_text, simple_message, tagged_code, take,
)
from harness import assert_ok
from tlsclient import client_context

TRANSPORTS = ("imaps", "imap+starttls")
# The extensions sealpost offers once logged in (README, issue 4).
LOGGED_IN_CAPS = {
    "IMAP4REV1", "IMAP4REV2", "ENABLE", "IDLE", "LITERAL+", "NAMESPACE", "ID", "UNSELECT", "UIDPLUS",
    "MOVE", "CHILDREN", "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE", "ESEARCH", "SEARCHRES",
    "STATUS=SIZE", "CONDSTORE", "QRESYNC", "QUOTA", "QUOTA=RES-STORAGE", "BINARY", "UTF8=ACCEPT",
}


@pytest.fixture(params=TRANSPORTS)
def transport(request) -> str:
    return request.param


@pytest.fixture
def connect(imap: ImapServer, transport: str):
    """Factory: an imaplib client on the parametrised transport, logged in as (user, password);
    every client still open at teardown is logged out."""
    opened: list[imaplib.IMAP4] = []

    def make(user: str, password: str) -> imaplib.IMAP4:
        client = imap.imaplib_ssl() if transport == "imaps" else imap.imaplib_starttls()
        opened.append(client)
        typ, data = client.login(user, password)
        assert typ == "OK", data
        return client

    yield make
    for client in opened:
        try:
            if client.state != "LOGOUT":
                client.logout()
        except (imaplib.IMAP4.abort, OSError):
            pass


def ok(result: tuple) -> list:
    """The data of an imaplib (typ, data) result that must be OK."""
    typ, data = result
    assert typ == "OK", f"expected OK, got {typ} {data!r}"
    return data


def no(result: tuple) -> list:
    typ, data = result
    assert typ == "NO", f"expected NO, got {typ} {data!r}"
    return data


def simple(client: imaplib.IMAP4, name: str, *args: str) -> tuple[str, list]:
    """An arbitrary command through imaplib (`_simple_command`), e.g. MOVE or SEARCH RETURN."""
    return client._simple_command(name, *args)


def select_with(client: imaplib.IMAP4, *args: str) -> list:
    """SELECT with parameters imaplib's select() cannot send (CONDSTORE, QRESYNC)."""
    data = ok(simple(client, "SELECT", *args))
    client.state = "SELECTED"
    return data


def internal_date(value: bytes) -> datetime.datetime:
    """RFC 9051 date-time (`"dd-Mon-yyyy hh:mm:ss +zzzz"`, day possibly space-padded)."""
    return datetime.datetime.strptime(value.decode().strip(), "%d-%b-%Y %H:%M:%S %z")


def status_items(line: bytes) -> dict[str, int]:
    """`name (K v K v)` of a STATUS response -> {K: v}."""
    inner = line[line.rindex(b"(") + 1: line.rindex(b")")].decode().split()
    return {k.upper(): int(v) for k, v in zip(inner[::2], inner[1::2])}


def list_lines(data: list) -> dict[str, set[str]]:
    """imaplib LIST/LSUB data -> {mailbox name: {attributes}}."""
    out = {}
    for line in data:
        if line is None:
            continue
        if isinstance(line, tuple):  # a name sent as a literal
            line = line[0] + b" " + quote(line[1].decode()).encode()
        attrs, pos = parse_sexp(line)
        delim, pos = parse_sexp(line, pos)
        name, pos = parse_sexp(line, pos)
        out[name.decode() if isinstance(name, bytes) else str(name)] = {str(a) for a in attrs}
    return out


def apply_expunges(uids: list[int], numbers: list[bytes]) -> list[int]:
    """The UIDs left after applying untagged EXPUNGE message numbers one by one."""
    for n in numbers:
        assert 1 <= int(n) <= len(uids), f"EXPUNGE {int(n)} outside 1..{len(uids)}: {numbers!r}"
        del uids[int(n) - 1]
    return uids


def uid_set(text: str) -> list[int]:
    """An RFC 9051 sequence-set of numbers (no `*`) expanded in order."""
    out: list[int] = []
    for part in text.split(","):
        if ":" in part:
            a, b = map(int, part.split(":"))
            out.extend(range(min(a, b), max(a, b) + 1))
        else:
            out.append(int(part))
    return out


def attempt(client: imaplib.IMAP4, name: str, *args: str) -> str:
    """The status ("OK", "NO" or "BAD") of a command that may be refused (imaplib raises on BAD)."""
    try:
        typ, _ = client._simple_command(name, *args)
    except imaplib.IMAP4.error as error:
        assert " BAD " in str(error), error
        return "BAD"
    return typ


def wait_line(client: imaplib.IMAP4, pattern: bytes, wait: float = 3.0) -> tuple[bytes, float]:
    """The first line matching `pattern` read from imaplib's socket, and how long it took
    (only for lines that are sure to come: a timeout leaves imaplib's file unusable)."""
    start = time.monotonic()
    client.sock.settimeout(wait)
    seen = []
    try:
        while True:
            line = client.readline().rstrip(b"\r\n")
            seen.append(line)
            if re.fullmatch(pattern, line):
                return line, time.monotonic() - start
            if time.monotonic() - start > wait:
                break
    except (socket.timeout, TimeoutError):
        pass
    finally:
        client.sock.settimeout(IO_TIMEOUT)
    raise AssertionError(f"no line matching {pattern!r} within {wait}s; got {seen!r}")


# --- connection, authentication, capabilities ---------------------------------------------------


def test_capability_noop_logout_over_imaps(imap):
    """RFC 9051 §6.1.1-6.1.3, §7.2.2: CAPABILITY before and after LOGIN (the list grows with
    the extensions, no LOGINDISABLED on 993), NOOP, LOGOUT answers BYE and closes."""
    user, password = imap.new_user()
    client = imap.imaplib_ssl(ca=imap.instance.certs.pki.ca_cert)  # the chain is verified
    before = set(client.capabilities)
    assert {"IMAP4REV1", "IMAP4REV2", "AUTH=PLAIN", "SASL-IR"} <= before, before
    assert "LOGINDISABLED" not in before and "STARTTLS" not in before, before
    assert ok(client.noop())
    data = ok(client.login(user, password))
    # RFC 9051 §6.2.3: the capabilities after login may come in the tagged OK.
    typ, caps = client.capability()
    assert typ == "OK"
    after = {c.upper() for c in caps[0].decode().split()}
    assert LOGGED_IN_CAPS <= after, LOGGED_IN_CAPS - after
    assert any(c.startswith("APPENDLIMIT=") for c in after), after
    assert not {"LOGINDISABLED", "STARTTLS", "AUTH=PLAIN"} & after, after
    if tagged_code(data):
        assert capabilities(b"[" + tagged_code(data).encode() + b"]") == after
    typ, data = client.logout()
    assert typ == "BYE", (typ, data)


def test_starttls_on_143(imap):
    """RFC 9051 §6.2.1, §6.2.3, RFC 8314: 143 offers STARTTLS with LOGINDISABLED; LOGIN and
    AUTHENTICATE are refused in clear text; after starttls() the capabilities change (no
    STARTTLS, AUTH=PLAIN appears) and LOGIN works; a second STARTTLS is refused."""
    user, password = imap.new_user()
    client = imaplib.IMAP4("127.0.0.1", imap.ports["imap"], timeout=IO_TIMEOUT)
    assert {"STARTTLS", "LOGINDISABLED"} <= set(client.capabilities), client.capabilities
    assert "AUTH=PLAIN" not in client.capabilities
    assert attempt(client, "LOGIN", user, password) in ("NO", "BAD"), "LOGIN in clear text must be refused"
    blob = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    assert attempt(client, "AUTHENTICATE", "PLAIN", blob) in ("NO", "BAD"), "AUTHENTICATE in clear text"
    assert ok(client.starttls(ssl_context=client_context(ca=imap.instance.certs.pki.ca_cert)))
    caps = set(client.capabilities)
    assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps and "AUTH=PLAIN" in caps, caps
    assert attempt(client, "STARTTLS") in ("NO", "BAD"), "STARTTLS inside TLS must be refused"
    ok(client.login(user, password))
    assert ok(client.select("INBOX")) == [b"0"]
    assert client.logout()[0] == "BYE"


def test_authenticate_plain_with_and_without_initial_response(imap, transport):
    """RFC 9051 §6.2.2, RFC 4616, RFC 4959: AUTHENTICATE PLAIN through imaplib's authenticate()
    (empty continuation, then the credentials) and with SASL-IR in one line; a wrong password
    gets NO [AUTHENTICATIONFAILED] (RFC 5530); `*` cancels with BAD."""
    user, password = imap.new_user()

    def open_client() -> imaplib.IMAP4:
        return imap.imaplib_ssl() if transport == "imaps" else imap.imaplib_starttls()

    challenges: list[bytes] = []

    def plain(challenge: bytes) -> bytes:
        challenges.append(challenge)
        return f"\0{user}\0{password}".encode()

    client = open_client()
    ok(client.authenticate("PLAIN", plain))
    assert challenges == [b""], f"PLAIN starts with an empty challenge: {challenges!r}"
    assert ok(client.select("INBOX")) == [b"0"]
    client.logout()

    client = open_client()
    blob = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    ok(simple(client, "AUTHENTICATE", "PLAIN", blob))
    client.state = "AUTH"
    assert ok(client.select("INBOX")) == [b"0"]
    client.logout()

    client = open_client()
    wrong = base64.b64encode(f"\0{user}\0not-the-password".encode()).decode()
    data = no(simple(client, "AUTHENTICATE", "PLAIN", wrong))
    assert tagged_code(data) == "AUTHENTICATIONFAILED", data
    # Cancelling: the continuation answered with "*".
    client.literal = None
    tag = client._new_tag()
    client.send(tag + b" AUTHENTICATE PLAIN\r\n")
    assert client.readline().startswith(b"+"), "continuation expected"
    client.send(b"*\r\n")
    line = client.readline()
    assert line.startswith(tag + b" BAD"), line
    ok(client.login(user, password))  # a success clears the failure count again
    client.logout()


def test_login_and_failed_login(imap, transport):
    """RFC 9051 §6.2.3: LOGIN with quoted arguments; a wrong password is NO
    [AUTHENTICATIONFAILED] and the session stays usable."""
    user, password = imap.new_user()
    client = imap.imaplib_ssl() if transport == "imaps" else imap.imaplib_starttls()
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        client.login(user, password + "x")
    ok(client.login(user, password))
    assert client.state == "AUTH"
    client.logout()


def test_enable_and_id(imap, connect):
    """RFC 5161 ENABLE, RFC 9051 Appendix E (IMAP4rev2 on request), RFC 6855 UTF8=ACCEPT,
    RFC 7162 CONDSTORE/QRESYNC, RFC 2971 ID: ENABLED lists what was enabled; after
    IMAP4rev2 SELECT no longer sends RECENT (a rev1-only response) but a LIST of the mailbox;
    ID answers with the server's own parameters."""
    user, password = imap.new_user()
    imap.deliver(user, simple_message("enable"))
    rev1 = connect(user, password)
    clear(rev1)
    ok(rev1.select("INBOX"))
    assert take(rev1, "RECENT"), "RFC 3501 §6.3.1: a rev1 SELECT sends RECENT"
    assert not take(rev1, "LIST")
    # ENABLE is an authenticated-state command (RFC 5161 §3.1): refused once selected
    # (imaplib would not even send it in its SELECTED state).
    rev1.state = "AUTH"
    assert attempt(rev1, "ENABLE", "IMAP4rev2") in ("BAD", "NO")
    rev1.state = "SELECTED"

    client = connect(user, password)
    clear(client)
    ok(client.enable("IMAP4rev2"))
    assert b"IMAP4rev2" in b" ".join(take(client, "ENABLED")).split()
    ok(client.enable("CONDSTORE"))
    assert take(client, "ENABLED") == [b"CONDSTORE"]
    ok(client.enable("QRESYNC UTF8=ACCEPT X-UNKNOWN-EXTENSION"))
    enabled = set(b" ".join(take(client, "ENABLED")).decode().upper().split())
    assert {"QRESYNC", "UTF8=ACCEPT"} <= enabled and "X-UNKNOWN-EXTENSION" not in enabled, enabled
    clear(client)
    ok(client.select("INBOX"))
    assert "RECENT" not in client.untagged_responses, "IMAP4rev2 has no RECENT (RFC 9051 §7.3.2 removed)"
    listed = take(client, "LIST")
    assert take(client, "HIGHESTMODSEQ"), "CONDSTORE enabled: SELECT reports HIGHESTMODSEQ (RFC 7162 §3.1.2.1)"

    typ, data = simple(client, "ID", '("name" "imaplib-interop" "version" "1.0")')
    assert typ == "OK", data
    ident = take(client, "ID")
    assert len(ident) == 1, ident
    params, _ = parse_sexp(ident[0])
    assert params is None or (isinstance(params, list) and len(params) % 2 == 0), ident
    assert isinstance(params, list) and b"name" in [p.lower() for p in params[::2]], ident
    typ, data = simple(client, "ID", "NIL")
    assert typ == "OK" and take(client, "ID"), data
    assert listed and b"INBOX" in listed[0], f"RFC 9051 §6.3.2: a rev2 SELECT MUST return a LIST of the mailbox: {listed}"


def test_utf8_mailbox_names_rev1_and_rev2(imap, connect):
    """RFC 3501 §5.1.3 (modified UTF-7 in rev1), RFC 9051 §5.1 / RFC 6855 §3 (UTF-8 once
    IMAP4rev2 or UTF8=ACCEPT is enabled): one mailbox, two spellings."""
    user, password = imap.new_user()
    rev1 = connect(user, password)
    ok(rev1.create('"Entw&APw-rfe"'))
    assert "Entw&APw-rfe" in list_lines(ok(rev1.list('""', '"Entw*"')))
    assert rev1.create('"bad&Jjo"')[0] == "NO", "invalid modified UTF-7 is refused"
    rev2 = connect(user, password)
    ok(rev2.enable("UTF8=ACCEPT"))
    names = list_lines(ok(rev2.list('""', '"Entw*"')))
    assert "Entwürfe" in names, names
    ok(rev2.create('"Öl/Süß"'))
    assert "&ANY-l/S&APwA3w-" in list_lines(ok(rev1.list('""', '"*"'))), "rev1 sees the UTF-7 spelling"


# --- mailboxes ----------------------------------------------------------------------------------


def test_create_delete_rename_and_names(imap, connect):
    """RFC 9051 §6.3.4-6.3.6, §5.1: CREATE with hierarchy (superiors created), ALREADYEXISTS,
    DELETE (NONEXISTENT, INBOX refused), RENAME moving the inferiors, INBOX case-insensitive,
    invalid names refused with NO (issue 4 §4)."""
    user, password = imap.new_user()
    client = connect(user, password)
    ok(client.create("Projects/2024/Q1"))
    names = list_lines(ok(client.list('""', '"Projects*"')))
    assert set(names) == {"Projects", "Projects/2024", "Projects/2024/Q1"}, names
    assert "\\HasChildren" in names["Projects"] and "\\HasNoChildren" in names["Projects/2024/Q1"], names
    data = no(client.create("Projects"))
    assert tagged_code(data) == "ALREADYEXISTS", data
    assert client.create("inbox")[0] == "NO", "INBOX exists in any case"
    ok(client.rename("Projects", "Archive2"))
    names = list_lines(ok(client.list('""', '"*"')))
    assert {"Archive2", "Archive2/2024", "Archive2/2024/Q1"} <= set(names), names
    assert not any(n.startswith("Projects") for n in names), names
    ok(client.delete("Archive2/2024/Q1"))
    assert "Archive2/2024/Q1" not in list_lines(ok(client.list('""', '"*"')))
    data = no(client.delete("Nope"))
    assert tagged_code(data) == "NONEXISTENT", data
    assert client.delete("INBOX")[0] == "NO", "RFC 9051 §6.3.5: DELETE INBOX is an error"
    assert client.rename("Nope", "Other")[0] == "NO"
    assert client.rename("Archive2", "Drafts")[0] == "NO", "the new name exists"
    for bad in ('"/lead"', '"a/../b"', '"a//b"', '"' + "x" * 300 + '"', '"tab\there"'):
        assert client.create(bad)[0] == "NO", f"CREATE {bad[:40]} must be refused"
    assert ok(client.select("iNbOx")) == [b"0"], "INBOX is case-insensitive"


def test_rename_inbox_moves_messages(imap, connect):
    """RFC 9051 §6.3.6: renaming INBOX moves all its messages to the new mailbox and leaves
    INBOX empty (and existing); the inferiors of INBOX are not renamed."""
    user, password = imap.new_user()
    for n in range(3):
        imap.deliver(user, simple_message(f"old {n}"))
    client = connect(user, password)
    ok(client.create("INBOX/Keep"))
    ok(client.rename("INBOX", "Old-Mail"))
    status = ok(client.status("Old-Mail", "(MESSAGES)"))
    assert status_items(status[0]) == {"MESSAGES": 3}, status
    assert status_items(ok(client.status("INBOX", "(MESSAGES)"))[0]) == {"MESSAGES": 0}
    names = list_lines(ok(client.list('""', '"*"')))
    assert {"INBOX", "INBOX/Keep", "Old-Mail"} <= set(names), names
    ok(client.select("Old-Mail"))
    subjects = [v["BODY[HEADER.FIELDS (SUBJECT)]"] for v in ifetch(client, "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])").values()]
    assert subjects == [f"Subject: old {n}\r\n\r\n".encode() for n in range(3)], subjects
    imap.deliver(user, simple_message("new"))
    assert status_items(ok(client.status("INBOX", "(MESSAGES)"))[0]) == {"MESSAGES": 1}, "delivery still goes to INBOX"


def test_subscribe_lsub_and_list_extended(imap, connect):
    """RFC 9051 §6.3.7-6.3.9, RFC 3501 §6.3.9 LSUB, RFC 5258 LIST-EXTENDED (SUBSCRIBED,
    RECURSIVEMATCH, RETURN (CHILDREN SUBSCRIBED)), RFC 6154 SPECIAL-USE, RFC 5819
    LIST-STATUS: special-use folders with their attributes, subscriptions, \\NonExistent
    for a deleted subscribed mailbox, STATUS data after each LIST."""
    user, password = imap.new_user()
    imap.deliver(user, simple_message("one"))
    imap.deliver(user, simple_message("two"))
    client = connect(user, password)
    all_names = list_lines(ok(client.list()))
    for name, attr in (("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"),
                       ("Junk", "\\Junk"), ("Archive", "\\Archive")):
        assert attr in all_names.get(name, set()), f"{name} should carry {attr}: {all_names}"
    clear(client)
    ok(simple(client, "LIST", "(SPECIAL-USE)", '""', '"*"'))
    special = list_lines(take(client, "LIST"))
    for name in ("Fruit", "Fruit/Apple", "Fruit/Banana", "Tofu"):
        ok(client.create(name))
    ok(client.subscribe("Fruit/Banana"))
    ok(client.subscribe("Tofu"))
    subscribed = list_lines(ok(client.lsub('""', '"*"')))
    assert {"Fruit/Banana", "Tofu"} <= set(subscribed) and "Fruit" not in subscribed, subscribed
    ok(client.unsubscribe("Tofu"))
    assert "Tofu" not in list_lines(ok(client.lsub('""', '"*"')))
    ok(client.subscribe("Tofu"))
    ok(client.delete("Tofu"))
    clear(client)
    ok(simple(client, "LIST", "(SUBSCRIBED)", '""', '"*"'))
    subs = list_lines(take(client, "LIST"))
    assert "\\Subscribed" in subs["Fruit/Banana"], subs
    ok(simple(client, "LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', '"%"'))
    lines = take(client, "LIST")
    fruit = [line for line in lines if line.endswith(b'("CHILDINFO" ("SUBSCRIBED"))')]
    assert fruit and b" Fruit " in fruit[0], f"RFC 5258 §4: CHILDINFO for Fruit: {lines!r}"
    ok(simple(client, "LIST", '""', '"*"', "RETURN", "(CHILDREN SUBSCRIBED)"))
    ret = list_lines(take(client, "LIST"))
    assert "\\HasChildren" in ret["Fruit"] and "\\HasNoChildren" in ret["Fruit/Apple"], ret
    assert "\\Subscribed" in ret["Fruit/Banana"] and "\\Subscribed" not in ret["Fruit/Apple"], ret
    ok(simple(client, "LIST", '""', '"S*"', "RETURN", "(SPECIAL-USE)"))
    returned = list_lines(take(client, "LIST"))
    assert set(returned) == {"Sent"} and "\\Sent" in returned["Sent"], f"RFC 6154 §2: RETURN (SPECIAL-USE): {returned}"
    ok(simple(client, "LIST", '""', '"*"', "RETURN", "(STATUS (MESSAGES UNSEEN SIZE))"))
    status = {}
    for line in take(client, "STATUS"):
        name, _ = parse_sexp(line)
        status[name.decode() if isinstance(name, bytes) else str(name)] = status_items(line)
    sizes = sum(m.size for m in imap.db.messages(user))
    assert status["INBOX"] == {"MESSAGES": 2, "UNSEEN": 2, "SIZE": sizes}, status
    assert status["Fruit"] == {"MESSAGES": 0, "UNSEEN": 0, "SIZE": 0}, status
    assert {"\\Subscribed", "\\NonExistent"} <= subs.get("Tofu", set()), \
        f"RFC 3501 §6.3.6: a subscription outlives its mailbox (RFC 5258 §3.1: \\NonExistent): {subs}"
    assert set(special) == {"Sent", "Drafts", "Trash", "Junk", "Archive"}, \
        f"RFC 6154 §3: LIST (SPECIAL-USE) returns only mailboxes with a special use: {special}"


def test_namespace_and_status(imap, connect):
    """RFC 9051 §6.3.10 NAMESPACE (one personal namespace, "/"), §6.3.11 STATUS with every
    item incl. SIZE (RFC 8438) and HIGHESTMODSEQ (RFC 7162 §3.1.6), consistent with SELECT."""
    user, password = imap.new_user()
    stored = [imap.deliver(user, simple_message(f"s{n}")) for n in range(3)]
    client = connect(user, password)
    assert ok(client.namespace()) == [b'(("" "/")) NIL NIL']
    ok(client.select("INBOX"))
    ok(client.store("1", "+FLAGS", "(\\Seen \\Deleted)"))
    ok(client.unselect())
    clear(client)
    ok(client.select("INBOX", readonly=True))
    uidvalidity = int(take(client, "UIDVALIDITY")[0])
    uidnext = int(take(client, "UIDNEXT")[0])
    modseqs = [int(v["MODSEQ"][0]) for v in ifetch(client, "1:*", "(MODSEQ)").values()]
    ok(client.close())  # read-only: nothing expunged
    line = ok(client.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ)"))[0]
    items = status_items(line)
    assert items["MESSAGES"] == 3 and items["UNSEEN"] == 2 and items["DELETED"] == 1, items
    assert items["UIDVALIDITY"] == uidvalidity and items["UIDNEXT"] == uidnext == 4, items
    assert items["SIZE"] == sum(s.size for s in stored), items
    assert items["HIGHESTMODSEQ"] == max(modseqs), (items, modseqs)
    assert no(client.status("Nope", "(MESSAGES)"))


# --- messages in and out ------------------------------------------------------------------------


def test_append_with_flags_and_date(imap, connect):
    """RFC 9051 §6.3.12 APPEND with flags and internal date, RFC 4315 APPENDUID, TRYCREATE for
    a missing mailbox, EXISTS announced to the session that has the mailbox selected."""
    user, password = imap.new_user()
    client = connect(user, password)
    ok(client.select("Drafts"))
    clear(client)
    data = simple_message("draft", b"Line one\r\nLine two\r\n")
    typ, resp = client.append("Drafts", "(\\Draft $Pending)", '"14-Jul-2023 08:30:00 -0500"', data)
    assert typ == "OK", resp
    m = re.fullmatch(r"APPENDUID (\d+) (\d+)", tagged_code(resp) or "")
    assert m, f"RFC 4315 §3: APPENDUID expected in {resp!r}"
    uidvalidity, uid = int(m[1]), int(m[2])
    ok(client.noop())
    assert b"1" in take(client, "EXISTS"), "the session with Drafts selected learns of the new message"
    got = ifetch(client, "1", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")[1]
    assert int(got["UID"]) == uid
    assert flags_of(got["FLAGS"]) == {"\\Draft", "$Pending"}, got["FLAGS"]
    assert internal_date(got["INTERNALDATE"]) == datetime.datetime(
        2023, 7, 14, 8, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=-5)))
    assert got["BODY[]"] == data and int(got["RFC822.SIZE"]) == len(data)
    status = status_items(ok(client.status("Drafts", "(UIDVALIDITY)"))[0])
    assert status["UIDVALIDITY"] == uidvalidity
    typ, resp = client.append("Nowhere", None, None, data)
    assert typ == "NO" and tagged_code(resp) == "TRYCREATE", resp
    # Without date: the internal date is now (RFC 9051 §6.3.12).
    ok(client.append("Drafts", None, None, data))
    ok(client.noop())
    got = ifetch(client, "2", "(INTERNALDATE)")
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((internal_date(got[2]["INTERNALDATE"]) - now).total_seconds()) < 120


def test_select_examine_readonly(imap, connect):
    """RFC 9051 §6.3.2 SELECT (FLAGS, EXISTS, UIDVALIDITY, UIDNEXT, PERMANENTFLAGS,
    READ-WRITE), §6.3.3 EXAMINE (READ-ONLY, STORE refused, BODY[] does not set \\Seen)."""
    user, password = imap.new_user()
    imap.deliver(user, simple_message("ro"))
    client = connect(user, password)
    clear(client)
    data = ok(simple(client, "EXAMINE", "INBOX"))
    client.state, client.is_readonly = "SELECTED", True
    assert tagged_code(data) == "READ-ONLY", data
    assert take(client, "EXISTS") == [b"1"]
    assert take(client, "PERMANENTFLAGS") == [b"()"], "EXAMINE: no permanent flags (RFC 9051 §6.3.3)"
    typ, data = client.store("1", "+FLAGS", "(\\Flagged)")
    assert typ == "NO", f"STORE in a read-only mailbox must fail: {typ} {data}"
    body = ifetch(client, "1", "(BODY[TEXT])")[1]
    assert body["BODY[TEXT]"] == b"Hello over IMAP.\r\n"
    assert "\\Seen" not in flags_of(ifetch(client, "1", "(FLAGS)")[1]["FLAGS"]), "EXAMINE must not set \\Seen"
    clear(client)
    client.is_readonly = False
    data = ok(simple(client, "SELECT", "INBOX"))
    assert tagged_code(data) == "READ-WRITE", data
    assert take(client, "EXISTS") == [b"1"] and take(client, "FLAGS") and take(client, "UIDVALIDITY")
    assert take(client, "UIDNEXT") == [b"2"]
    perm = take(client, "PERMANENTFLAGS")
    assert perm and b"\\*" in perm[0] and b"\\Deleted" in perm[0], perm
    assert "\\Seen" not in flags_of(ifetch(client, "1", "(FLAGS)")[1]["FLAGS"])
    assert client.select("Nope")[0] == "NO"
    client.state = "SELECTED"
    assert attempt(client, "FETCH", "1", "(FLAGS)") == "BAD", \
        "RFC 9051 §6.3.2: after a failed SELECT no mailbox is selected"


def test_close_unselect_expunge_uid_expunge(imap, connect):
    """RFC 9051 §6.4.1 CLOSE (expunges silently), §6.4.2 UNSELECT (does not), §6.4.3 EXPUNGE
    (one untagged EXPUNGE per message, numbers shifting), RFC 4315 §2.1 UID EXPUNGE (only the
    listed \\Deleted messages)."""
    user, password = imap.new_user()
    client = connect(user, password)
    for n in range(8):
        append_i(client, "INBOX", simple_message(f"m{n + 1}"))
    ok(client.select("INBOX"))
    ok(client.store("2", "+FLAGS.SILENT", "(\\Deleted)"))
    ok(client.unselect())
    assert ok(client.select("INBOX")) == [b"8"], "UNSELECT must not expunge"
    ok(client.store("2,4,5,8", "+FLAGS.SILENT", "(\\Deleted)"))
    clear(client)
    numbers = ok(client.expunge())
    # RFC 9051 §7.5.1: each EXPUNGE shifts the later numbers at once (any order is valid).
    assert apply_expunges(list(range(1, 9)), numbers) == [1, 3, 6, 7], numbers
    # Left: UIDs 1 3 6 7; mark 1 and 6 deleted, UID EXPUNGE only 6.
    ok(client.uid("STORE", "1,6", "+FLAGS.SILENT", "(\\Deleted)"))
    clear(client)
    ok(client.uid("EXPUNGE", "6:7"))
    assert take(client, "EXPUNGE") == [b"3"], "UID EXPUNGE 6:7 removes only UID 6"
    uids = [int(v["UID"]) for v in ifetch(client, "1:*", "(UID)").values()]
    assert uids == [1, 3, 7], uids
    clear(client)
    ok(client.close())
    assert "EXPUNGE" not in client.untagged_responses, "CLOSE expunges silently"
    assert ok(client.select("INBOX")) == [b"2"], "CLOSE expunged UID 1"


def append_i(client: imaplib.IMAP4, mailbox: str, data: bytes, flags: str | None = None,
             date: str | None = None) -> int:
    """APPEND through imaplib; returns the APPENDUID uid."""
    typ, resp = client.append(mailbox, flags, date, data)
    assert typ == "OK", resp
    m = re.fullmatch(r"APPENDUID \d+ (\d+)", tagged_code(resp) or "")
    assert m, resp
    return int(m[1])


# --- SEARCH -------------------------------------------------------------------------------------

SEARCH_MESSAGES = [
    # (flags, internal date, message)
    ("(\\Seen)", '"01-Jan-2024 12:00:00 +0000"',
     b"From: Alice <alice@ext.test>\r\nTo: bob@test.example\r\nSubject: Quarterly report\r\n"
     b"Date: Mon, 01 Jan 2024 12:00:00 +0000\r\nMessage-ID: <s1@client.test>\r\n\r\nThe numbers are in.\r\n"),
    ("(\\Flagged)", '"15-Feb-2024 12:00:00 +0000"',
     b"From: Bob Smith <smith@ext.test>\r\nTo: alice@test.example\r\nCc: carol@test.example\r\n"
     b"Subject: Lunch plans\r\nDate: Thu, 15 Feb 2024 12:00:00 +0000\r\nX-Mailer: TestMailer 1.0\r\n"
     b"Message-ID: <s2@client.test>\r\n\r\nPizza on Friday?\r\n"),
    ("(\\Seen \\Flagged $Work)", '"01-Mar-2024 12:00:00 +0000"',
     b"From: carol@ext.test\r\nTo: bob@test.example\r\n"
     b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=\r\nDate: Fri, 01 Mar 2024 12:00:00 +0000\r\n"
     b"Message-ID: <s3@client.test>\r\n\r\n" + b"".join(b"filler line %04d abcdefghijklmnopqrstuvwxyz\r\n" % n
                                                       for n in range(150))),
    ("()", '"10-Mar-2024 12:00:00 +0000"',
     b"From: dave@ext.test\r\nTo: bob@test.example\r\nSubject: Re: Lunch plans\r\n"
     b"Date: Fri, 01 Dec 2023 12:00:00 +0000\r\nMessage-ID: <s4@client.test>\r\n\r\n"
     b"Sure, pizza it is. Quarterly numbers later.\r\n"),
    ("(\\Seen \\Deleted)", '"20-Mar-2024 12:00:00 +0000"',
     b"From: Alice <alice@ext.test>\r\nTo: carol@test.example\r\nSubject: Deleted thing\r\n"
     b"Date: Wed, 20 Mar 2024 12:00:00 +0000\r\nMessage-ID: <s5@client.test>\r\n\r\ngone\r\n"),
]

SEARCHES = [
    ("ALL", "1 2 3 4 5"),
    ("SEEN", "1 3 5"),
    ("UNSEEN", "2 4"),
    ("FLAGGED", "2 3"),
    ("UNFLAGGED", "1 4 5"),
    ("DELETED", "5"),
    ("UNDELETED", "1 2 3 4"),
    ("KEYWORD $Work", "3"),
    ("UNKEYWORD $Work", "1 2 4 5"),
    ("ANSWERED", ""),
    ("FROM smith", "2"),
    ("FROM ALICE", "1 5"),
    ("TO alice", "2"),
    ("TO bob", "1 3 4"),
    ("CC carol", "2"),
    ("SUBJECT lunch", "2 4"),
    ('SUBJECT "lunch plans"', "2 4"),
    ("BODY pizza", "2 4"),
    ("BODY quarterly", "4"),
    ("TEXT quarterly", "1 4"),
    ("TEXT TestMailer", "2"),
    ("HEADER X-Mailer TestMailer", "2"),
    ('HEADER X-Mailer ""', "2"),
    ("HEADER Message-ID s4@client", "4"),
    ("LARGER 5000", "3"),
    ("SMALLER 1000", "1 2 4 5"),
    ("BEFORE 1-Mar-2024", "1 2"),
    ("ON 1-Mar-2024", "3"),
    ("SINCE 10-Mar-2024", "4 5"),
    ("SENTBEFORE 1-Jan-2024", "4"),
    ("SENTON 15-Feb-2024", "2"),
    ("SENTSINCE 1-Mar-2024", "3 5"),
    ("UID 2:4", "2 3 4"),
    ("UID 4:*", "4 5"),
    ("2,4", "2 4"),
    ("1:3 SEEN", "1 3"),
    ("NOT SEEN", "2 4"),
    ("OR FLAGGED DELETED", "2 3 5"),
    ("NOT OR SEEN FLAGGED", "4"),
    ("(FROM alice SEEN) NOT DELETED", "1"),
    ("TEXT no-such-string-anywhere", ""),
]


@pytest.fixture
def search_box(imap, connect):
    """A client with INBOX selected holding the five SEARCH_MESSAGES (UID = number)."""
    user, password = imap.new_user()
    client = connect(user, password)
    for flags, date, data in SEARCH_MESSAGES:
        append_i(client, "INBOX", data, flags, date)
    ok(client.select("INBOX"))
    return client


def test_search_keys(search_box):
    """RFC 9051 §6.4.4: every search key on a mailbox whose answer is known: flags, keywords,
    address and text fields (substring, case-insensitive), HEADER, sizes, internal and sent
    dates (date only), sequence and UID sets, NOT, OR, parenthesised lists; UID SEARCH
    answers UIDs."""
    client = search_box
    for criteria, expected in SEARCHES:
        data = ok(client.search(None, criteria))
        assert data[0].split() == expected.encode().split(), f"SEARCH {criteria}: {data[0]!r}, expected {expected!r}"
    ok(client.store("1", "+FLAGS", "(\\Answered)"))
    assert ok(client.search(None, "ANSWERED")) == [b"1"]
    assert ok(client.uid("SEARCH", "FLAGGED")) == [b"2 3"]
    assert attempt(client, "SEARCH", "NOSUCHKEY") == "BAD"


def test_search_charset_utf8(search_box):
    """RFC 9051 §6.4.4 CHARSET: a UTF-8 literal matches the RFC 2047-encoded subject; an
    unknown charset is NO [BADCHARSET] (RFC 9051 §7.1)."""
    client = search_box
    client.literal = "Grüße".encode()
    assert ok(client.search("UTF-8", "SUBJECT")) == [b"3"]
    client.literal = "München".encode()
    assert ok(client.search("UTF-8", "TEXT")) == [b"3"]
    typ, data = client.search("X-NO-SUCH-CHARSET", "SUBJECT", "x")
    assert typ == "NO" and (tagged_code(data) or "").startswith("BADCHARSET"), (typ, data)


def test_esearch_and_searchres(search_box):
    """RFC 4731 ESEARCH (RETURN MIN MAX COUNT ALL, TAG correlator, UID indicator) and
    RFC 5182 SEARCHRES (RETURN (SAVE), `$` in FETCH/SEARCH/UID STORE)."""
    client = search_box
    clear(client)
    typ, data = simple(client, "SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "FLAGGED")
    assert typ == "OK", data
    lines = take(client, "ESEARCH")
    assert len(lines) == 1, lines
    m = re.fullmatch(rb'\(TAG "([^"]+)"\) (.*)', lines[0])
    assert m, lines
    result = dict(zip(m[2].decode().split()[::2], m[2].decode().split()[1::2]))
    assert set(result) == {"MIN", "MAX", "COUNT", "ALL"}, result
    assert (result["MIN"], result["MAX"], result["COUNT"]) == ("2", "3", "2"), result
    assert uid_set(result["ALL"]) == [2, 3], result
    ok(simple(client, "UID", "SEARCH", "RETURN", "(ALL)", "SEEN"))
    line = take(client, "ESEARCH")[0]
    assert re.fullmatch(rb'\(TAG "[^"]+"\) UID ALL (\S+)', line), line
    assert uid_set(line.split()[-1].decode()) == [1, 3, 5]
    ok(simple(client, "SEARCH", "RETURN", "(COUNT)", "ANSWERED"))
    assert re.fullmatch(rb'\(TAG "[^"]+"\) COUNT 0', take(client, "ESEARCH")[0])
    ok(simple(client, "SEARCH", "RETURN", "(MIN)", "ANSWERED"))
    assert re.fullmatch(rb'\(TAG "[^"]+"\)', take(client, "ESEARCH")[0]), "no MIN when nothing matches"

    ok(simple(client, "SEARCH", "RETURN", "(SAVE)", "FLAGGED"))
    assert "SEARCH" not in client.untagged_responses and "ESEARCH" not in client.untagged_responses, \
        "RETURN (SAVE) alone sends no result (RFC 5182 §2.1)"
    assert sorted(ifetch(client, "$", "(UID)")) == [2, 3]
    assert ok(client.search(None, "$", "SEEN")) == [b"3"]
    ok(client.uid("STORE", "$", "+FLAGS", "(\\Answered)"))
    assert ok(client.search(None, "ANSWERED")) == [b"2 3"]
    ok(simple(client, "SEARCH", "RETURN", "(SAVE MIN)", "UNSEEN"))
    assert re.fullmatch(rb'\(TAG "[^"]+"\) MIN 2', take(client, "ESEARCH")[0])
    assert sorted(ifetch(client, "$", "(UID)")) == [2], "RFC 5182 §2.1: SAVE with MIN saves only the minimum"


# --- FETCH --------------------------------------------------------------------------------------

TEXT_PART = b"Hello =E2=82=AC world.\r\n\r\n"  # ends with an empty line: the part is 1 line + CRLF
INNER_PLAIN = b"inner plain\r\n"
INNER_HTML = b"<p>inner html</p>\r\n"
INNER_HEADER = (b"From: inner@ext.test\r\nSubject: Inner\r\nDate: Wed, 03 Jan 2024 11:00:00 +0000\r\n"
                b"Message-ID: <inner-1@client.test>\r\nMIME-Version: 1.0\r\n"
                b'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n')
INNER_TEXT = (b"--inner\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" + INNER_PLAIN
              + b"\r\n--inner\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n" + INNER_HTML
              + b"\r\n--inner--\r\n")
INNER_MESSAGE = INNER_HEADER + INNER_TEXT
ATTACHMENT = b"AAECAwQFBgcICQ==\r\n"
PART1_MIME = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
PART3_MIME = (b'Content-Type: application/octet-stream; name="data.bin"\r\n'
              b'Content-Disposition: attachment; filename="data.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n')
TOP_HEADER = (b"From: Alice Example <alice@ext.test>\r\nTo: Bob <bob@test.example>, carol@test.example\r\n"
              b'Cc: "Dan, the man" <dan@ext.test>\r\nReply-To: replies@ext.test\r\nSubject: Structure test\r\n'
              b"Date: Tue, 02 Jan 2024 10:00:00 +0100\r\nMessage-ID: <struct-1@client.test>\r\n"
              b"In-Reply-To: <parent@client.test>\r\nMIME-Version: 1.0\r\n"
              b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n')
TOP_TEXT = (b"This is the preamble.\r\n--outer\r\n" + PART1_MIME + TEXT_PART
            + b"\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\n" + INNER_MESSAGE
            + b"\r\n--outer\r\n" + PART3_MIME + ATTACHMENT + b"\r\n--outer--\r\n")
STRUCTURED = TOP_HEADER + TOP_TEXT


def lines_of(data: bytes) -> int:
    return data.count(b"\n")


INNER_ENVELOPE = ('("Wed, 03 Jan 2024 11:00:00 +0000" "Inner" ((NIL NIL "inner" "ext.test")) '
                  '((NIL NIL "inner" "ext.test")) ((NIL NIL "inner" "ext.test")) NIL NIL NIL NIL '
                  '"<inner-1@client.test>")')
# RFC 9051 §7.5.2 BODYSTRUCTURE, derived by hand from the parts above: a body part's size is
# its octets between the MIME header's empty line and the CRLF that precedes the next
# boundary; its lines are its CRLFs.
EXPECTED_BODYSTRUCTURE = (
    f'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" {len(TEXT_PART)} {lines_of(TEXT_PART)} '
    f'NIL NIL NIL NIL)'
    f'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" {len(INNER_MESSAGE)} {INNER_ENVELOPE} '
    f'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" {len(INNER_PLAIN)} 1 NIL NIL NIL NIL)'
    f'("TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" {len(INNER_HTML)} 1 NIL NIL NIL NIL) '
    f'"ALTERNATIVE" ("BOUNDARY" "inner") NIL NIL NIL) {lines_of(INNER_MESSAGE)} NIL NIL NIL NIL)'
    f'("APPLICATION" "OCTET-STREAM" ("NAME" "data.bin") NIL NIL "BASE64" {len(ATTACHMENT)} NIL '
    f'("ATTACHMENT" ("FILENAME" "data.bin")) NIL NIL) '
    f'"MIXED" ("BOUNDARY" "outer") NIL NIL NIL)')
# BODY: the same without extension data (RFC 9051 §7.5.2 "BODY").
EXPECTED_BODY = (
    f'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" {len(TEXT_PART)} {lines_of(TEXT_PART)})'
    f'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" {len(INNER_MESSAGE)} {INNER_ENVELOPE} '
    f'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" {len(INNER_PLAIN)} 1)'
    f'("TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" {len(INNER_HTML)} 1) "ALTERNATIVE") '
    f'{lines_of(INNER_MESSAGE)})'
    f'("APPLICATION" "OCTET-STREAM" ("NAME" "data.bin") NIL NIL "BASE64" {len(ATTACHMENT)}) "MIXED")')
EXPECTED_ENVELOPE = (
    '("Tue, 02 Jan 2024 10:00:00 +0100" "Structure test" (("Alice Example" NIL "alice" "ext.test")) '
    '(("Alice Example" NIL "alice" "ext.test")) ((NIL NIL "replies" "ext.test")) '
    '(("Bob" NIL "bob" "test.example") (NIL NIL "carol" "test.example")) (("Dan, the man" NIL "dan" "ext.test")) '
    'NIL "<parent@client.test>" "<struct-1@client.test>")')
# MIME tokens are case-insensitive (RFC 2045 §5.1, RFC 2183 §2): compared in one case.
MIME_TOKENS = {"TEXT", "PLAIN", "HTML", "MESSAGE", "RFC822", "APPLICATION", "OCTET-STREAM", "MIXED",
               "ALTERNATIVE", "CHARSET", "NAME", "FILENAME", "BOUNDARY", "ATTACHMENT", "7BIT",
               "QUOTED-PRINTABLE", "BASE64", "UTF-8", "US-ASCII"}


def canonical(text: str) -> str:
    """A parsed-and-rendered structure with MIME tokens upper-cased, spaces between list
    elements normalised (`)(` and `) (` are the same)."""
    value, _ = parse_sexp(text.encode())

    def fold(v):
        if isinstance(v, list):
            return [fold(x) for x in v]
        if isinstance(v, bytes) and v.decode("utf-8", "replace").upper() in MIME_TOKENS:
            return v.upper()
        return v
    return sexp_text(fold(value))


@pytest.fixture
def structured(imap, connect):
    """A client with INBOX selected holding STRUCTURED (unseen) as message 1."""
    user, password = imap.new_user()
    client = connect(user, password)
    append_i(client, "INBOX", STRUCTURED, None, '"02-Jan-2024 10:00:00 +0100"')
    ok(client.select("INBOX"))
    return client


def test_fetch_structure_envelope(structured):
    """RFC 9051 §7.5.2 ENVELOPE, BODY and BODYSTRUCTURE (extension data, nested multipart,
    message/rfc822 with its envelope, body and line count), RFC822.SIZE = len(BODY[]) =
    octets appended, INTERNALDATE as appended; none of them sets \\Seen."""
    got = ifetch(structured, "1", "(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY UID)")[1]
    assert canonical(sexp_text(got["BODYSTRUCTURE"])) == canonical(EXPECTED_BODYSTRUCTURE)
    assert canonical(sexp_text(got["BODY"])) == canonical(EXPECTED_BODY)
    assert sexp_text(got["ENVELOPE"]) == sexp_text(parse_sexp(EXPECTED_ENVELOPE.encode())[0])
    assert int(got["RFC822.SIZE"]) == len(STRUCTURED)
    assert internal_date(got["INTERNALDATE"]) == datetime.datetime(2024, 1, 2, 9, 0, tzinfo=datetime.timezone.utc)
    assert int(got["UID"]) == 1 and flags_of(got["FLAGS"]) == set()
    whole = ifetch(structured, "1", "(BODY.PEEK[] RFC822.SIZE)")[1]
    assert whole["BODY[]"] == STRUCTURED and int(whole["RFC822.SIZE"]) == len(whole["BODY[]"])
    assert flags_of(ifetch(structured, "1", "(FLAGS)")[1]["FLAGS"]) == set()


def test_fetch_body_sections(structured):
    """RFC 9051 §6.4.5: every section kind (HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT,
    part numbers, MIME, nested part HEADER/TEXT), partial fetches <origin.length> (the
    response names only the origin), RFC 3516 BINARY / BINARY.SIZE decoding QP and base64."""
    client = structured
    sections = {
        "BODY[HEADER]": TOP_HEADER,
        "BODY[TEXT]": TOP_TEXT,
        "BODY[1]": TEXT_PART,
        "BODY[1.MIME]": PART1_MIME,
        "BODY[2]": INNER_MESSAGE,
        "BODY[2.HEADER]": INNER_HEADER,
        "BODY[2.TEXT]": INNER_TEXT,
        "BODY[2.1]": INNER_PLAIN,
        "BODY[2.2]": INNER_HTML,
        "BODY[2.1.MIME]": b"Content-Type: text/plain; charset=us-ascii\r\n\r\n",
        "BODY[3]": ATTACHMENT,
        "BODY[3.MIME]": PART3_MIME,
        "BODY[HEADER.FIELDS (SUBJECT TO)]": b"To: Bob <bob@test.example>, carol@test.example\r\n"
                                            b"Subject: Structure test\r\n\r\n",
        "BODY[HEADER.FIELDS.NOT (FROM TO CC REPLY-TO SUBJECT DATE MESSAGE-ID IN-REPLY-TO)]":
            b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\n',
    }
    items = " ".join(k.replace("BODY[", "BODY.PEEK[") for k in sections)
    got = ifetch(client, "1", f"({items})")[1]
    for key, expected in sections.items():
        assert got.get(key) == expected, f"{key}: {got.get(key)!r}\nexpected {expected!r}"
    got = ifetch(client, "1", "(BODY.PEEK[TEXT]<0.10> BODY.PEEK[1]<20.100> BODY.PEEK[]<5.12> BODY.PEEK[3]<99.5>)")[1]
    assert got["BODY[TEXT]<0>"] == TOP_TEXT[:10]
    assert got["BODY[1]<20>"] == TEXT_PART[20:120]
    assert got["BODY[]<5>"] == STRUCTURED[5:17]
    assert got["BODY[3]<99>"] == b"", "a partial past the end is empty (RFC 9051 §6.4.5)"
    got = ifetch(client, "1", "(BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[3] BINARY.SIZE[3] BINARY.PEEK[3]<2.4>)")[1]
    assert got["BINARY[1]"] == "Hello € world.\r\n\r\n".encode()
    assert int(got["BINARY.SIZE[1]"]) == len(got["BINARY[1]"])
    assert got["BINARY[3]"] == bytes(range(10)) and int(got["BINARY.SIZE[3]"]) == 10
    assert got["BINARY[3]<2>"] == bytes(range(2, 6))
    assert flags_of(ifetch(client, "1", "(FLAGS)")[1]["FLAGS"]) == set(), "PEEK never sets \\Seen"


def test_fetch_sets_seen_and_rfc822_items(imap, connect):
    """RFC 9051 §6.4.5: a non-PEEK BODY[...] / BINARY[...] fetch sets \\Seen and the response
    carries the new FLAGS; RFC 3501 §6.4.5 RFC822, RFC822.HEADER, RFC822.TEXT (rev1) equal
    BODY[], BODY[HEADER], BODY[TEXT]; the macros ALL, FAST, FULL."""
    user, password = imap.new_user()
    stored = [imap.deliver(user, simple_message(f"seen {n}")) for n in range(4)]
    client = connect(user, password)
    ok(client.select("INBOX"))
    got = ifetch(client, "1", "(BODY[TEXT])")[1]
    assert got["BODY[TEXT]"] == b"Hello over IMAP.\r\n"
    assert "\\Seen" in flags_of(got.get("FLAGS", [])), f"FLAGS (\\Seen) expected in the same response: {got}"
    got = ifetch(client, "2", "(BINARY[1])")[2]
    assert "\\Seen" in flags_of(got.get("FLAGS", [])), got
    got = ifetch(client, "3", "(RFC822.HEADER RFC822.SIZE)")[3]
    assert got["RFC822.HEADER"] == stored[2].data.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    assert "\\Seen" not in flags_of(ifetch(client, "3", "(FLAGS)")[3]["FLAGS"]), "RFC822.HEADER is a PEEK"
    got = ifetch(client, "3", "(RFC822.TEXT)")[3]
    assert got["RFC822.TEXT"] == b"Hello over IMAP.\r\n" and "\\Seen" in flags_of(got.get("FLAGS", []))
    got = ifetch(client, "4", "(RFC822)")[4]
    assert got["RFC822"] == stored[3].data and "\\Seen" in flags_of(got.get("FLAGS", []))
    for n, s in enumerate(stored, 1):
        assert int(ifetch(client, str(n), "(RFC822.SIZE)")[n]["RFC822.SIZE"]) == len(s.data) == s.size
    macros = {"ALL": {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"},
              "FAST": {"FLAGS", "INTERNALDATE", "RFC822.SIZE"},
              "FULL": {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"}}
    for macro, keys in macros.items():
        assert set(ifetch(client, "1", macro)[1]) == keys, macro


def test_rfc822_size_is_exact(imap, connect):
    """RFC 9051 §7.5.2 RFC822.SIZE: "the number of octets in the message" as BODY[] returns it,
    for odd messages too (bare LF line ends, no final line end, 8-bit octets, 300 KB); STATUS
    SIZE is their sum (RFC 8438)."""
    user, password = imap.new_user()
    client = connect(user, password)
    odd = [
        b"Subject: bare LF\nFrom: a@ext.test\n\nline one\nline two\n",
        b"Subject: no final CRLF\r\n\r\nno line end at the end",
        "Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nÄpfel, Birnen, Öl: 50 €\r\n".encode(),
        b"Subject: large\r\n\r\n" + b"0123456789abcdef" * 20_000 + b"\r\n",
    ]
    # imaplib's append() turns bare LF into CRLF: the raw client sends the octets as they are.
    with imap.login(user, password, select=None) as raw:
        for data in odd:
            append(raw, "INBOX", data)
    ok(client.select("INBOX"))
    got = ifetch(client, "1:*", "(RFC822.SIZE BODY.PEEK[])")
    assert len(got) == len(odd)
    for n, data in enumerate(odd, 1):
        body = got[n]["BODY[]"]
        assert int(got[n]["RFC822.SIZE"]) == len(body), f"message {n}: RFC822.SIZE {got[n]['RFC822.SIZE']} != {len(body)}"
        assert body.replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n"), f"message {n} changed"
    ok(client.close())
    size = status_items(ok(client.status("INBOX", "(SIZE)"))[0])["SIZE"]
    assert size == sum(int(v["RFC822.SIZE"]) for v in got.values())


# --- STORE, COPY, MOVE, UID ---------------------------------------------------------------------


def test_store_flags_and_keywords(imap, connect):
    """RFC 9051 §6.4.6: +FLAGS, -FLAGS, FLAGS (replace), .SILENT (no FETCH back), keywords
    (PERMANENTFLAGS has \\*), UID STORE (FETCH carries UID)."""
    user, password = imap.new_user()
    client = connect(user, password)
    for n in range(3):
        append_i(client, "INBOX", simple_message(f"st{n}"))
    ok(client.select("INBOX"))
    got = fetch_data(ok(client.store("1:2", "+FLAGS", "(\\Flagged $Important)")))
    assert {n: flags_of(v["FLAGS"]) for n, v in got.items()} == {1: {"\\Flagged", "$Important"}, 2: {"\\Flagged", "$Important"}}
    got = fetch_data(ok(client.store("2", "-FLAGS", "($Important)")))
    assert flags_of(got[2]["FLAGS"]) == {"\\Flagged"}
    got = fetch_data(ok(client.store("1", "FLAGS", "(\\Answered NonJunk)")))
    assert flags_of(got[1]["FLAGS"]) == {"\\Answered", "NonJunk"}
    clear(client)
    data = ok(client.store("3", "+FLAGS.SILENT", "(\\Seen)"))
    assert not [d for d in data if d] and "FETCH" not in client.untagged_responses, f".SILENT: {data!r}"
    got = fetch_data(ok(client.uid("STORE", "3", "-FLAGS", "(\\Seen)")))
    assert int(got[3]["UID"]) == 3 and flags_of(got[3]["FLAGS"]) == set(), got
    flags = {n: flags_of(v["FLAGS"]) for n, v in ifetch(client, "1:*", "(FLAGS)").items()}
    assert flags == {1: {"\\Answered", "NonJunk"}, 2: {"\\Flagged"}, 3: set()}, flags
    assert ok(client.search(None, "KEYWORD NonJunk")) == [b"1"]


def test_store_unchangedsince_and_condstore(imap, connect):
    """RFC 7162 §3.1: SELECT (CONDSTORE) reports HIGHESTMODSEQ; each change raises MODSEQ;
    FETCH (CHANGEDSINCE) returns only later changes with MODSEQ; STORE (UNCHANGEDSINCE)
    refuses messages changed since with [MODIFIED set]; SEARCH MODSEQ."""
    user, password = imap.new_user()
    client = connect(user, password)
    for n in range(3):
        append_i(client, "INBOX", simple_message(f"cs{n}"))
    clear(client)
    select_with(client, "INBOX", "(CONDSTORE)")
    highest = int(take(client, "HIGHESTMODSEQ")[0])
    modseqs = {n: int(v["MODSEQ"][0]) for n, v in ifetch(client, "1:*", "(MODSEQ)").items()}
    assert max(modseqs.values()) == highest, (modseqs, highest)
    got = fetch_data(ok(client.store("2", "+FLAGS", "(\\Flagged)")))
    assert int(got[2]["MODSEQ"][0]) > highest, f"STORE response carries the new MODSEQ: {got}"
    changed = ifetch(client, "1:*", f"(FLAGS) (CHANGEDSINCE {highest})")
    assert list(changed) == [2] and "MODSEQ" in changed[2], changed
    m2 = int(changed[2]["MODSEQ"][0])
    clear(client)
    data = ok(simple(client, "STORE", "1:3", f"(UNCHANGEDSINCE {highest})", "+FLAGS", "(\\Seen)"))
    assert tagged_code(data) == "MODIFIED 2", f"RFC 7162 §3.1.3: [MODIFIED 2] expected, got {data!r}"
    assert sorted(fetch_data(take(client, "FETCH"))) == [1, 3]
    flags = {n: flags_of(v["FLAGS"]) for n, v in ifetch(client, "1:*", "(FLAGS)").items()}
    assert flags == {1: {"\\Seen"}, 2: {"\\Flagged"}, 3: {"\\Seen"}}, flags
    ok(simple(client, "STORE", "2", f"(UNCHANGEDSINCE {m2})", "+FLAGS", "(\\Seen)"))
    last = int(fetch_data(take(client, "FETCH"))[2]["MODSEQ"][0])
    assert last > m2
    data = ok(client.search(None, f"MODSEQ {m2 + 1}"))
    assert re.fullmatch(rb"1 2 3 \(MODSEQ %d\)" % last, data[0]), f"RFC 7162 §3.1.5: {data!r}"
    data = ok(client.search(None, f"MODSEQ {last}"))
    assert data == [b"2 (MODSEQ %d)" % last], data


def test_copy_move_and_uid_variants(imap, connect):
    """RFC 9051 §6.4.7 COPY and RFC 4315 COPYUID, RFC 6851 MOVE (untagged OK [COPYUID] then
    EXPUNGE), §6.4.9 UID COPY / UID MOVE / UID FETCH (UID always included, `n:*` includes
    the last UID), TRYCREATE for a missing target."""
    user, password = imap.new_user()
    client = connect(user, password)
    datas = [simple_message(f"cm{n}") for n in range(5)]
    for d in datas:
        append_i(client, "INBOX", d)
    ok(client.create("Work"))
    target_uv = status_items(ok(client.status("Work", "(UIDVALIDITY)"))[0])["UIDVALIDITY"]
    ok(client.select("INBOX"))
    data = ok(client.copy("1:2", "Work"))
    m = re.fullmatch(r"COPYUID (\d+) (\S+) (\S+)", tagged_code(data) or "")
    assert m and int(m[1]) == target_uv, data
    assert uid_set(m[2]) == [1, 2] and uid_set(m[3]) == [1, 2], data
    typ, data = client.copy("1", "Missing")
    assert typ == "NO" and tagged_code(data) == "TRYCREATE", data
    clear(client)
    ok(simple(client, "MOVE", "3", "Work"))
    copyuid = take(client, "COPYUID")
    assert copyuid and re.fullmatch(rb"%d 3 3" % target_uv, copyuid[0]), copyuid
    assert take(client, "EXPUNGE") == [b"3"]
    clear(client)
    ok(client.uid("MOVE", "5", "Work"))
    assert re.fullmatch(rb"%d 5 4" % target_uv, take(client, "COPYUID")[0])
    assert take(client, "EXPUNGE") == [b"4"], "UID 5 was message 4"
    data = ok(simple(client, "UID", "COPY", "4", "Work"))
    assert re.fullmatch(rf"COPYUID {target_uv} 4 5", tagged_code(data) or ""), data
    got = ifetch(client, "1:*", "(FLAGS)", uid=True)
    assert {int(v["UID"]) for v in got.values()} == {1, 2, 4}, got
    got = ifetch(client, "100:*", "(FLAGS)", uid=True)
    assert [int(v["UID"]) for v in got.values()] == [4], "RFC 9051 §6.4.9: 100:* includes the last UID"
    assert ifetch(client, "100:200", "(FLAGS)", uid=True) == {}
    ok(client.select("Work"))
    got = ifetch(client, "1:*", "(UID BODY.PEEK[])")
    assert [(int(v["UID"]), v["BODY[]"]) for v in got.values()] == [
        (1, datas[0]), (2, datas[1]), (3, datas[2]), (4, datas[4]), (5, datas[3])]
    assert ok(client.uid("SEARCH", "UID", "3:4")) == [b"3 4"]


# --- IDLE and other sessions --------------------------------------------------------------------


def test_idle_announces_delivery_append_store_expunge_at_once(imap, connect):
    """RFC 2177 / RFC 9051 §6.3.13: during IDLE, mail delivered over SMTP and changes made by
    another session (APPEND, STORE, EXPUNGE) are sent at once as EXISTS / FETCH / EXPUNGE;
    DONE ends IDLE with a tagged OK."""
    user, password = imap.new_user()
    client = connect(user, password)
    other = connect(user, password)
    ok(client.select("INBOX"))
    tag = client._new_tag()
    client.send(tag + b" IDLE\r\n")
    assert client.readline().startswith(b"+"), "IDLE continuation"
    imap.deliver(user, simple_message("during idle"))
    line, took = wait_line(client, rb"\* 1 EXISTS")
    assert took < 2.0, f"EXISTS took {took:.2f}s"
    append_i(other, "INBOX", simple_message("appended during idle"))
    wait_line(client, rb"\* 2 EXISTS")
    ok(other.select("INBOX"))
    ok(other.store("1", "+FLAGS", "(\\Flagged)"))
    line, took = wait_line(client, rb"\* 1 FETCH \(.*FLAGS \(.*\\Flagged.*\).*\)")
    assert took < 2.0
    ok(other.store("1", "+FLAGS.SILENT", "(\\Deleted)"))
    wait_line(client, rb"\* 1 FETCH \(.*\\Deleted.*\)")
    ok(other.expunge())
    wait_line(client, rb"\* 1 EXPUNGE")
    client.send(b"DONE\r\n")
    line, _ = wait_line(client, re.escape(tag) + rb" OK.*")
    clear(client)
    assert ok(client.noop()) and "EXISTS" not in client.untagged_responses


def test_sessions_see_each_other_at_allowed_moments(imap, connect):
    """RFC 9051 §7.5.1 / §5.2: an EXPUNGE made by session A reaches session B as `* n EXPUNGE`
    at B's NOOP, never while B runs FETCH, STORE or SEARCH (numbers must not shift under
    them); a STORE in A reaches B as an untagged FETCH with the FLAGS at NOOP; an SMTP
    delivery as EXISTS."""
    user, password = imap.new_user()
    a = connect(user, password)
    for n in range(3):
        append_i(a, "INBOX", simple_message(f"vis{n}"))
    ok(a.select("INBOX"))
    b = imap.login(user, password, select="INBOX")
    ok(a.store("1", "+FLAGS.SILENT", "(\\Deleted)"))
    ok(a.expunge())
    resp = b.ok("f", "FETCH 1:* (FLAGS)")
    assert not resp.untagged("EXPUNGE"), f"EXPUNGE during FETCH: {resp.lines!r}"
    resp = b.ok("s", "STORE 3 +FLAGS (\\Answered)")
    assert not resp.untagged("EXPUNGE"), f"EXPUNGE during STORE: {resp.lines!r}"
    fetched = resp.fetches()
    assert 3 in fetched and "\\Answered" in flags_of(fetched[3]["FLAGS"]), resp.lines
    resp = b.ok("r", "SEARCH ALL")
    assert not resp.untagged("EXPUNGE") and resp.untagged("SEARCH") == [b"* SEARCH 1 2 3"], resp.lines
    resp = b.ok("n1", "NOOP")
    assert resp.untagged("EXPUNGE") == [b"* 1 EXPUNGE"], resp.lines
    clear(a)
    ok(a.store("1", "+FLAGS", "(\\Flagged)"))
    resp = b.ok("n2", "NOOP")
    fetched = resp.fetches()
    assert 1 in fetched and "\\Flagged" in flags_of(fetched[1]["FLAGS"]), resp.lines
    imap.deliver(user, simple_message("arrives"))
    resp = b.ok("n3", "NOOP")
    assert resp.untagged("EXISTS") == [b"* 3 EXISTS"], resp.lines
    resp = b.ok("u", "UID FETCH 1:* (FLAGS)")
    assert len(resp.fetches()) == 3
    b.close()


def test_pop3_dele_is_seen_by_imap(imap, connect):
    """Issue 4 §3 with RFC 1939 §6: a POP3 DELE committed by QUIT reaches a selected IMAP
    session as `* 1 EXPUNGE` at its next NOOP; the other message keeps its UID."""
    user, password = imap.new_user()
    imap.deliver(user, simple_message("pop one"))
    imap.deliver(user, simple_message("pop two"))
    client = connect(user, password)
    ok(client.select("INBOX"))
    pop = poplib.POP3_SSL("127.0.0.1", imap.ports["pop3s"], context=client_context(), timeout=IO_TIMEOUT)
    pop.user(user)
    pop.pass_(password)
    assert pop.stat()[0] == 2
    pop.dele(1)
    pop.quit()
    clear(client)
    ok(client.noop())
    assert take(client, "EXPUNGE") == [b"1"], client.untagged_responses
    got = ifetch(client, "1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert [(int(v["UID"]), v["BODY[HEADER.FIELDS (SUBJECT)]"]) for v in got.values()] == [(2, b"Subject: pop two\r\n\r\n")]


def test_qresync_vanished_earlier(imap, connect):
    """RFC 7162 §3.2.5: after ENABLE QRESYNC, SELECT with (QRESYNC (uidvalidity modseq))
    sends `* VANISHED (EARLIER)` for UIDs expunged since and FETCH for flags changed since;
    EXPUNGE in a QRESYNC session answers VANISHED instead of EXPUNGE (§3.2.10); UID FETCH
    (CHANGEDSINCE n VANISHED) (§3.2.6)."""
    user, password = imap.new_user()
    client = connect(user, password)
    for n in range(5):
        append_i(client, "INBOX", simple_message(f"q{n}"))
    ok(client.enable("QRESYNC"))
    clear(client)
    select_with(client, "INBOX", "(CONDSTORE)")
    uidvalidity = int(take(client, "UIDVALIDITY")[0])
    known = int(take(client, "HIGHESTMODSEQ")[0])
    ok(client.close())

    other = connect(user, password)
    ok(other.select("INBOX"))
    ok(other.store("2,3", "+FLAGS.SILENT", "(\\Deleted)"))
    ok(other.expunge())
    ok(other.store("2", "+FLAGS", "(\\Flagged)"))  # UIDs left 1 4 5: message 2 is UID 4
    other.logout()

    clear(client)
    select_with(client, "INBOX", f"(QRESYNC ({uidvalidity} {known}))")
    vanished = take(client, "VANISHED")
    assert vanished == [b"(EARLIER) 2:3"], f"VANISHED (EARLIER) 2:3 expected: {vanished!r}"
    changes = fetch_data(take(client, "FETCH"))
    assert {int(v["UID"]): flags_of(v["FLAGS"]) for v in changes.values()} == {4: {"\\Flagged"}}, changes
    assert all("MODSEQ" in v for v in changes.values()), changes

    ok(client.store("1", "+FLAGS.SILENT", "(\\Deleted)"))
    clear(client)
    assert ok(client.expunge()) == [None], "QRESYNC: VANISHED replaces EXPUNGE"
    assert take(client, "VANISHED") == [b"1"], client.untagged_responses
    clear(client)
    ok(client.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {known} VANISHED)"))
    assert take(client, "VANISHED") == [b"(EARLIER) 1:3"], client.untagged_responses


def test_quota(imap, connect):
    """RFC 9208 §4.2-4.3: without a quota GETQUOTAROOT names no root; with the account's
    quota set, INBOX has the root "" with STORAGE usage/limit in KiB, GETQUOTA "" answers
    the same, and an APPEND over the limit is NO [OVERQUOTA] (§4.2.1)."""
    user, password = imap.new_user()
    stored = imap.deliver(user, simple_message("quota", b"q" * 3000 + b"\r\n"))
    client = connect(user, password)
    typ, data = client.getquotaroot("INBOX")
    assert typ == "OK" and data[0] == [b"INBOX"], data
    assert_ok(imap.instance.run("user", "quota", user, "10K"))
    typ, data = client.getquotaroot("INBOX")
    assert typ == "OK", data
    assert data[0] == [b'INBOX ""'], data
    used_kib = -(-stored.size // 1024)
    assert data[1] == [f'"" (STORAGE {used_kib} 10)'.encode()], data
    assert ok(client.getquota('""')) == [f'"" (STORAGE {used_kib} 10)'.encode()]
    typ, data = client.append("INBOX", None, None, simple_message("big", b"x" * 9000 + b"\r\n"))
    assert typ == "NO" and tagged_code(data) == "OVERQUOTA", data
    append_i(client, "INBOX", simple_message("small"))
