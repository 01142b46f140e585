"""dsn_check.py - check a delivery status notification (RFC 3464)

check_dsn(raw, final_recipient=..., status=..., action=...) parses a DSN
as it arrives in a mailbox (a leading mbox "From " line is skipped) or
as stored in a queue file, with Python's email package (independent of
posta's code), and asserts its structure:
  - a multipart/report; report-type=delivery-status message with
    Auto-Submitted: auto-replied and a From: MAILER-DAEMON address;
  - first part text/plain, second message/delivery-status whose
    per-message block has Reporting-MTA (and Original-Envelope-Id when
    envid is given) and which holds a per-recipient block for
    final_recipient with the given Action and Status (and
    Original-Recipient when given);
  - third part: message/rfc822 for ret="FULL", text/rfc822-headers for
    ret="HDRS" (ret=None: not checked);
  - nothing but the report itself is 8-bit: the text and report parts
    are pure ASCII.
It returns the parsed email.message.Message for further checks.
delivery_status(msg) gives the status blocks as a list of dicts
(lower-case field names), the first being the per-message block.

DIAGNOSTICS: an AssertionError that names the failed check and quotes
what was found.
"""

import email
import email.policy

REPORT_PARTS_MIN = 2


def _addr_of(value):
    """'rfc822; a@b' -> ('rfc822', 'a@b'); a value without type -> ('', value)."""
    value = " ".join(value.split())        # unfold
    if ";" not in value:
        return "", value.strip()
    kind, addr = value.split(";", 1)
    return kind.strip().lower(), addr.strip()


def _strip_mbox(raw):
    if raw.startswith(b"From "):
        nl = raw.find(b"\n")
        return raw[nl + 1:] if nl >= 0 else b""
    return raw


def delivery_status(msg):
    """The message/delivery-status blocks of msg as dicts (lower-case names)."""
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            blocks = []
            for block in part.get_payload():
                blocks.append({k.lower(): " ".join(str(v).split())
                               for k, v in block.items()})
            return blocks
    raise AssertionError("no message/delivery-status part")


def check_dsn(raw_bytes, *, final_recipient, status, action,
              original_recipient=None, envid=None, ret="FULL"):
    """Parse a DSN and assert its structure; returns the Message."""
    raw = _strip_mbox(bytes(raw_bytes))
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert not msg.defects, "DSN has MIME defects: %r" % (msg.defects,)

    ctype = msg.get_content_type()
    assert ctype == "multipart/report", "Content-Type is %s" % ctype
    assert (msg.get_param("report-type") or "").lower() == "delivery-status", \
        "report-type is %r" % msg.get_param("report-type")
    auto = (msg.get("Auto-Submitted") or "").strip().lower()
    assert auto.startswith("auto-replied"), "Auto-Submitted is %r" % auto
    sender = msg.get("From") or ""
    assert "mailer-daemon@" in sender.lower(), "From is %r" % sender
    for name in ("Date", "Message-Id", "Subject", "To"):
        assert msg.get(name), "no %s header" % name

    parts = msg.get_payload()
    assert isinstance(parts, list) and len(parts) >= REPORT_PARTS_MIN, \
        "a report needs at least %d parts, found %r" % (REPORT_PARTS_MIN, parts)
    assert parts[0].get_content_type() == "text/plain", \
        "first part is %s" % parts[0].get_content_type()
    assert parts[1].get_content_type() == "message/delivery-status", \
        "second part is %s" % parts[1].get_content_type()
    for part in parts[:2]:
        data = part.as_bytes()
        assert all(b < 0x80 for b in data), \
            "8-bit bytes in a %s part" % part.get_content_type()

    blocks = delivery_status(msg)
    assert len(blocks) >= 2, "delivery-status has no per-recipient block: %r" % blocks
    per_msg = blocks[0]
    assert "reporting-mta" in per_msg, "no Reporting-MTA in %r" % per_msg
    mta_type, mta = _addr_of(per_msg["reporting-mta"])
    assert mta_type == "dns" and mta, "Reporting-MTA is %r" % per_msg["reporting-mta"]
    if envid is not None:
        got_envid = per_msg.get("original-envelope-id")
        assert got_envid == envid, \
            "Original-Envelope-Id is %r, want %r" % (got_envid, envid)

    want = final_recipient.lower()
    found = None
    for block in blocks[1:]:
        assert "final-recipient" in block, \
            "per-recipient block without Final-Recipient: %r" % block
        assert "action" in block and "status" in block, \
            "block lacks Action/Status: %r" % block
        kind, addr = _addr_of(block["final-recipient"])
        if addr.lower() == want:
            found = block
            assert kind == "rfc822", "Final-Recipient type is %r" % kind
    assert found is not None, "no block for %s in %r" % (final_recipient, blocks[1:])
    assert found["action"].lower() == action.lower(), \
        "Action is %r, want %r" % (found["action"], action)
    assert found["status"] == status, "Status is %r, want %r" % (found["status"], status)
    if original_recipient is not None:
        got = found.get("original-recipient")
        assert got is not None, "no Original-Recipient in %r" % found
        want_kind, want_addr = _addr_of(original_recipient)
        got_kind, got_addr = _addr_of(got)
        assert (got_kind, got_addr) == (want_kind or "rfc822", want_addr), \
            "Original-Recipient is %r, want %r" % (got, original_recipient)

    if ret is not None:
        assert len(parts) >= 3, "no returned message part"
        want_type = "message/rfc822" if ret.upper() == "FULL" else "text/rfc822-headers"
        got_type = parts[2].get_content_type()
        assert got_type == want_type, \
            "third part is %s, want %s (RET=%s)" % (got_type, want_type, ret)
    return msg
