"""What the outbound-delivery tests share: `sealpost queue list` parsed, and waiting for a
condition with a deadline."""

from __future__ import annotations

import re
import time

from harness import assert_ok, lines

QUEUE_HEADER = re.compile(r"^(\d+) recipients? waiting in (\d+) messages?$")
QUEUE_LINE = re.compile(r"^(\d+) (\S+) attempts=(\d+) next=(now|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) error=(.+)$")


def queue_entries(mail) -> list[re.Match]:
    """`sealpost queue list`, parsed (one QUEUE_LINE match per waiting recipient)."""
    out = lines(assert_ok(mail.instance.run("queue", "list")).out)
    if out == ["queue is empty"]:
        return []
    assert QUEUE_HEADER.match(out[0]), f"no header line: {out}"
    entries = [QUEUE_LINE.match(line) for line in out[1:]]
    assert all(entries), f"unexpected line in `queue list`: {out}"
    return entries


def wait_until(predicate, timeout: float, interval: float = 0.1):
    """The first true value of predicate() within `timeout` seconds, else the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
