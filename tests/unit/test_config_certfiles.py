"""``ipsec checkconfig`` on the certificate files a config names: missing or unparseable
``leftcert=``/``rightcert=``, ``cacert=`` and file ``crluri=`` are errors with the file:line
of the keyword; a ``leftcert=`` without its key in ipsec.secrets is a warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fswan.cli import ipsec
from fswan.config.certfiles import check_certificate_files
from fswan.config.ipsecconf import load_config
from fswan.loader import FileLoader
from tests.pki_fixtures import make_pki

CONF = """\
version 2
config setup
\tinterfaces=%defaultroute

conn %default
\tauthby=rsasig

conn good
\tleft=192.0.2.1
\tleftcert=west.pem
\tright=192.0.2.2
\trightcert={east}
\tauto=add

conn typo
\tleft=192.0.2.1
\tleftcert=wset.pem
\tright=192.0.2.3
\tauto=add

ca lab
\tcacert={cacert}
\tcrluri={crluri}
\tcrluri2=http://crl.example/root.crl
\tauto=add

ca off
\tcacert=nowhere.pem
\tauto=ignore
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("etc") / "ipsec.d")


def write(directory: Path, pki, *, east: str = "east.pem", cacert: str = "fswan-lab-root.pem",
          crluri: str = "fswan-lab-root.crl", secrets: str = ": RSA west.key\n") -> Path:
    import shutil

    if not (directory / "ipsec.d").exists():
        shutil.copytree(pki.directory, directory / "ipsec.d")
    conf = directory / "ipsec.conf"
    conf.write_text(CONF.format(east=east, cacert=cacert, crluri=crluri))
    (directory / "ipsec.secrets").write_text(secrets)
    (directory / "ipsec.secrets").chmod(0o600)
    return conf


def line_of(conf: Path, text: str) -> int:
    return conf.read_text().splitlines().index(text) + 1


def test_missing_and_bad_files_are_errors_with_file_and_line(tmp_path, pki):
    conf = write(tmp_path, pki, east=str(tmp_path / "ipsec.d" / "private" / "east.key"),
                 cacert="../certs/west.pem", crluri="file:///nonexistent/root.crl")
    checked = ipsec.check_files(str(conf))
    assert checked.config_errors == [] and checked.secrets_errors == []
    messages = [str(e) for e in checked.cert_errors]
    d = tmp_path / "ipsec.d"
    assert messages == [
        f"{conf}:{line_of(conf, chr(9) + 'rightcert=' + str(d / 'private' / 'east.key'))}: "
        f"rightcert={d}/private/east.key: {d}/private/east.key: not a PEM or DER certificate",
        f"{conf}:17: leftcert=wset.pem: {d}/certs/wset.pem: No such file or directory",
        f"{conf}:22: ca \"lab\": cacert=../certs/west.pem: {d}/cacerts/../certs/west.pem: "
        "'C=CH, O=fswan lab, CN=west' is not a CA certificate",
        f"{conf}:23: ca \"lab\": crluri=file:///nonexistent/root.crl: /nonexistent/root.crl: "
        "No such file or directory",
    ]
    assert checked.errors[-4:] == checked.cert_errors  # checkconfig and setup start see them


def test_a_good_config_passes_and_a_missing_key_is_a_warning(tmp_path, pki, capsys):
    conf = write(tmp_path, pki)
    conf.write_text(conf.read_text().replace("\tleftcert=wset.pem\n", ""))
    checked = ipsec.check_files(str(conf))
    assert checked.errors == []
    assert not any("no private key" in note for note in checked.notes)
    assert ipsec.main(["checkconfig", "--config", str(conf)]) == 0
    out = capsys.readouterr().out
    assert "ca lab" in out and "\tcrluri=fswan-lab-root.crl" in out

    (tmp_path / "ipsec.secrets").write_text(": RSA carol.key\n")
    checked = ipsec.check_files(str(conf))
    assert checked.errors == []
    assert [n for n in checked.notes if "no private key" in n] == [
        f"warning: {conf}:10: leftcert=west.pem: no private key for 'C=CH, O=fswan lab, CN=west' "
        f"in {tmp_path}/ipsec.secrets (an RSA or ECDSA entry naming its key file); fine only if "
        "left is the peer"]


def test_checkconfig_exits_1_and_json_lists_the_errors(tmp_path, pki, capsys):
    conf = write(tmp_path, pki, crluri="ldap://ldap.example/cn=root")
    assert ipsec.main(["checkconfig", "--config", str(conf)]) == 1
    err = capsys.readouterr().err
    assert f"{conf}:17: leftcert=wset.pem: " in err and "1 error(s)" in err
    assert ipsec.main(["checkconfig", "--config", str(conf), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["valid"] is False
    assert [(e["line"], e["message"].split(":")[0]) for e in document["errors"]] == [
        (17, "leftcert=wset.pem")]
    assert any("LDAP is not supported" in note for note in document["notes"])


def test_the_pure_check_reads_only_through_its_loader(tmp_path, pki):
    conf = write(tmp_path, pki)
    config = load_config(str(conf), FileLoader())

    class Loader:
        def __init__(self) -> None:
            self.read: list[str] = []

        def read_bytes(self, path: str) -> bytes:
            self.read.append(path)
            raise PermissionError(13, "Permission denied")

    loader = Loader()
    report = check_certificate_files(config, str(conf), loader)
    d = tmp_path / "ipsec.d"
    # each file read once; the ca section with auto=ignore and http:// URIs are not read
    assert sorted(loader.read) == sorted([f"{d}/certs/west.pem", f"{d}/certs/east.pem",
                                          f"{d}/certs/wset.pem", f"{d}/cacerts/fswan-lab-root.pem",
                                          f"{d}/crls/fswan-lab-root.crl"])
    assert all("Permission denied" in str(e) for e in report.errors) and len(report.errors) == 5
