"""test_conf.py - `posta conf`: effective, non-default and default values"""

import re

CONF_LINE = re.compile(r"^([A-Za-z0-9_]+) =(?: (.*))?$")


def conf_dict(text):
    """conf_dict - "name = value" lines into a dict (every line must match)."""
    out = {}
    for line in text.splitlines():
        m = CONF_LINE.match(line)
        assert m, "not a 'name = value' line: %r" % line
        out[m.group(1)] = m.group(2) or ""
    return out


def test_conf_prints_all(inst):
    r = inst.posta("conf")
    assert r.returncode == 0, r.stderr
    params = conf_dict(r.stdout)
    assert len(params) > 50
    assert params["message_size_limit"] == "10240000"
    assert params["queue_directory"] == str(inst.spool)
    assert params["myhostname"] == "localhost"
    # unexpanded, as postconf prints it
    assert params["mydestination"] == "$myhostname, localhost.$mydomain, localhost"


def test_conf_x_expands(inst):
    r = inst.posta("conf", "-x", "mydestination")
    assert r.returncode == 0, r.stderr
    value = conf_dict(r.stdout)["mydestination"]
    assert "$" not in value
    assert value.startswith("localhost, localhost.")
    assert value.endswith(", localhost")


def test_conf_h_value_only(inst):
    r = inst.posta("conf", "-h", "message_size_limit")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "10240000\n"


def test_conf_n_only_set(inst):
    inst.set_param("message_size_limit", "20000")
    r = inst.posta("conf", "-n")
    assert r.returncode == 0, r.stderr
    params = conf_dict(r.stdout)
    assert params["message_size_limit"] == "20000"
    assert params["queue_directory"] == str(inst.spool)
    assert "smtpd_recipient_limit" not in params
    assert "line_length_limit" not in params


def test_conf_d_default(inst):
    inst.set_param("message_size_limit", "20000")
    r = inst.posta("conf", "-d", "message_size_limit")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "message_size_limit = 10240000"


def test_conf_named(inst):
    inst.set_param("smtpd_recipient_limit", "7")
    r = inst.posta("conf", "smtpd_recipient_limit", "message_size_limit")
    assert r.returncode == 0, r.stderr
    assert conf_dict(r.stdout) == {"smtpd_recipient_limit": "7",
                                   "message_size_limit": "10240000"}


def test_conf_unknown_name(inst):
    r = inst.posta("conf", "no_such_parameter_xyz")
    assert r.returncode != 0
    assert "no_such_parameter_xyz" in r.stderr
    r = inst.posta("conf", "-d", "no_such_parameter_xyz")
    assert r.returncode != 0


def test_conf_works_while_running(posta):
    r = posta.posta("conf", "-n", "smtpd_error_sleep_time")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "smtpd_error_sleep_time = 0s"
