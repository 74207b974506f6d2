"""ipsec rsasigkey / newhostkey / showhostkey: outputs parsed back into the same key."""

from __future__ import annotations

import functools
import os
import re
import stat
from pathlib import Path

import dns.rdata
import dns.rdataclass
import dns.zone
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fswan.cli import ipsec, keytools
from fswan.config import keys
from fswan.config.ids import parse_id
from fswan.config.secrets import parse_secrets
from fswan.dnskeys import records


@functools.cache
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(3, 1024)


@functools.cache
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 1024)


def same(a, b) -> bool:
    return keys.same_public_key(a, b)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = ipsec.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def show(capsys, path: Path, *argv: str) -> tuple[int, str, str]:
    """``ipsec showhostkey --file PATH argv...``."""
    return run(capsys, "showhostkey", "--file", str(path), *argv)


def value_of(line: str) -> rsa.RSAPublicKey:
    """The key of a ``\tleftrsasigkey=0s...`` line."""
    return keys.parse_rsasigkey(line.split("=", 1)[1])


PEM_FORMATS = [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL]
DATE = r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}"


def secrets_file(tmp_path: Path, text: str, name: str = "ipsec.secrets") -> Path:
    path = tmp_path / name
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


def only_rsa(text: str, filename: str = "x"):
    entries = [s for s in parse_secrets(text, filename).entries if s.kind == "RSA"]
    assert len(entries) == 1
    return entries[0]


# --------------------------------------------------------------------------
# rsasigkey


class TestRsasigkey:
    def test_output_is_an_rsa_block_body_with_matching_pubkey(self, capsys):
        status, out, err = run(capsys, "rsasigkey", "--hostname", "west.example", "1024")
        assert status == 0 and err == ""
        lines = out.splitlines()
        assert re.fullmatch(r"\t# RSA 1024 bits   west\.example   " + DATE, lines[0])
        assert lines[2].startswith("\t#pubkey=0sAQ")
        fields = [line.split(":")[0].strip() for line in lines if ":" in line and "#" not in line]
        assert fields == list(keys.RSA_FIELDS)
        secret = only_rsa(": RSA {\n" + out + "\t}\n")
        private = secret.value
        assert private.key_size == 1024
        assert private.public_key().public_numbers().e == 3  # FreeS/WAN's forced e=3
        pubkey = keys.parse_rsasigkey(lines[2].split("=", 1)[1])
        assert same(pubkey, private)

    def test_e65537_flag(self, capsys):
        status, out, _ = run(capsys, "rsasigkey", "--e65537", "1024")
        assert status == 0
        assert only_rsa(": RSA {\n" + out + "\t}\n").value.public_key().public_numbers().e == 65537
        assert "\tPublicExponent: 0x010001\n" in out

    @pytest.mark.parametrize("bits", [512, 528, 1008])
    def test_sizes_below_openssls_minimum_still_work(self, capsys, bits):
        status, out, _ = run(capsys, "rsasigkey", str(bits))
        assert status == 0
        private = only_rsa(": RSA {\n" + out + "\t}\n").value
        assert private.key_size == bits
        assert private.private_numbers().public_numbers.e == 3

    @pytest.mark.parametrize("bits", ["1000", "496", "8208", "0", "-1024", "big"])
    def test_bad_sizes_are_refused_clearly(self, capsys, bits):
        status, out, err = run(capsys, "rsasigkey", "--", bits) if bits.startswith("-") else run(
            capsys, "rsasigkey", bits
        )
        assert status == 2 and out == ""
        assert err.startswith("ipsec rsasigkey: key size must be")
        if bits.lstrip("-").isdigit():
            assert "a multiple of 16 between 512 and 8192 bits" in err

    def test_missing_size(self, capsys):
        status, _, err = run(capsys, "rsasigkey")
        assert status == 2 and "missing NBITS" in err

    def test_verbose_reports_progress_on_stderr(self, capsys):
        status, out, err = run(capsys, "rsasigkey", "--verbose", "512")
        assert status == 0 and "generating a 512-bit RSA key" in err and "#pubkey=" in out

    def test_generator_refuses_other_exponents(self):
        with pytest.raises(keytools.UsageError, match="3 or 65537"):
            keytools.generate_key(1024, 17)


# --------------------------------------------------------------------------
# newhostkey


class TestNewhostkey:
    def test_writes_a_ready_secrets_entry_mode_0600(self, capsys, tmp_path):
        path = tmp_path / "ipsec.secrets"
        old = os.umask(0)
        try:
            status, out, err = run(
                capsys, "newhostkey", "--output", str(path), "--bits", "1024",
                "--hostname", "east.example",
            )
        finally:
            os.umask(old)
        assert (status, out, err) == (0, "", "")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        text = path.read_text()
        assert text.startswith(": RSA\t{\n\t# RSA 1024 bits   east.example   ")
        assert text.endswith('\t}\n# do not change the indenting of that "}"\n')
        secret = only_rsa(text, str(path))
        assert secret.ids == () and secret.value.key_size == 1024

    def test_refuses_to_overwrite(self, capsys, tmp_path):
        path = secrets_file(tmp_path, ": PSK \"precious\"\n")
        status, _, err = run(capsys, "newhostkey", "--output", str(path), "--bits", "1024")
        assert status == 1
        assert "already exists; not overwriting it" in err
        assert path.read_text() == ': PSK "precious"\n'

    def test_refuses_a_dangling_symlink_too(self, capsys, tmp_path):
        link = tmp_path / "link"
        link.symlink_to(tmp_path / "nowhere")
        status, _, err = run(capsys, "newhostkey", "--output", str(link), "--bits", "1024")
        assert status == 1 and "already exists" in err
        assert not (tmp_path / "nowhere").exists()

    def test_output_dash_is_stdout(self, capsys):
        status, out, _ = run(capsys, "newhostkey", "--output", "-", "--bits", "512")
        assert status == 0
        assert only_rsa(out).value.key_size == 512

    def test_output_is_required_and_bits_checked(self, capsys, tmp_path):
        assert run(capsys, "newhostkey")[0] == 2
        status, _, err = run(capsys, "newhostkey", "--output", str(tmp_path / "k"), "--bits", "100")
        assert status == 2 and "multiple of 16" in err
        assert not (tmp_path / "k").exists()


# --------------------------------------------------------------------------
# Round trips between the formats


class TestRoundTrips:
    def test_0s_pem_and_rsa_block_are_the_same_key(self, tmp_path):
        block = keys.format_rsa_secret_block(key(), hostname="h", date="d")
        from_block = only_rsa(block).value
        assert from_block.private_numbers() == key().private_numbers()
        for fmt in PEM_FORMATS:
            pem = from_block.private_bytes(
                serialization.Encoding.PEM, fmt, serialization.NoEncryption()
            ).decode()
            assert keys.load_private_key(pem).private_numbers() == key().private_numbers()
        rsasigkey = keys.format_rsasigkey(from_block)
        assert same(keys.parse_rsasigkey(rsasigkey), key())
        public_pem = keys.public_key_pem(keys.parse_rsasigkey(rsasigkey))
        assert same(keys.load_public_key(public_pem), key())

    def test_secrets_entry_naming_a_pem_file(self, tmp_path):
        pem = key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (tmp_path / "east.pem").write_bytes(pem)
        path = secrets_file(tmp_path, '@east.example : RSA "east.pem"\n')
        host_key = keytools.load_host_key(str(path), "@east.example")
        assert same(host_key.key, key())
        assert host_key.comment == "RSA 1024 bits"


# --------------------------------------------------------------------------
# showhostkey


def rdata_of(line: str, rdtype: str) -> dns.rdata.Rdata:
    owner, _in, shown_type, text = line.split("\t", 3)
    assert (_in, shown_type) == ("IN", rdtype)
    return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)


@pytest.fixture
def host_secrets(tmp_path: Path) -> Path:
    text = keys.format_rsa_secret_block(
        key(), hostname="east.example", date="Sat Apr 15 13:53:22 2000"
    )
    return secrets_file(tmp_path, text)


class TestShowhostkey:
    @pytest.mark.parametrize("side", ["left", "right"])
    def test_side_line(self, capsys, host_secrets, side):
        status, out, _ = run(capsys, "showhostkey", f"--{side}", "--file", str(host_secrets))
        assert status == 0
        comment, line = out.splitlines()
        assert comment == "\t# RSA 1024 bits   east.example   Sat Apr 15 13:53:22 2000"
        assert line.startswith(f"\t{side}rsasigkey=0sAQ")
        assert same(keys.parse_rsasigkey(line.split("=", 1)[1]), key())

    def test_txt_with_gateway_argument_as_freeswan(self, capsys, host_secrets):
        status, out, _ = show(capsys, host_secrets, "--txt", "192.0.2.2")
        assert status == 0
        comment, line = out.splitlines()
        assert comment == "; RSA 1024 bits   east.example   Sat Apr 15 13:53:22 2000"
        assert line.startswith('\tIN\tTXT\t"X-IPsec-Server(10)=192.0.2.2 AQ')
        record = records.parse_rdata(rdata_of(line, "TXT"))
        assert record.gateway == parse_id("192.0.2.2") and same(record.key, key())
        assert record.binds(parse_id("192.0.2.2"))

    def test_txt_for_an_id_is_a_zone_line_bound_to_it(self, capsys, host_secrets):
        status, out, _ = run(
            capsys, "showhostkey", "--txt", "--id", "@east.example", "--file", str(host_secrets)
        )
        assert status == 0
        zone = dns.zone.from_text(
            "@ 60 IN SOA ns hostmaster 1 60 60 60 60\n@ 60 IN NS ns\n" + out,
            origin="east.example.",
            relativize=False,
        )
        rdataset = zone.find_rdataset("east.example.", "TXT")
        found = records.keys_for(
            parse_id("@east.example"), [records.parse_rdata(r) for r in rdataset]
        )
        assert len(found) == 1 and same(found[0], key())

    def test_txt_gateway_other_than_id_is_noted(self, capsys, host_secrets):
        status, out, err = run(
            capsys, "showhostkey", "--txt", "--id", "@east.example", "--gateway", "192.0.2.2",
            "--file", str(host_secrets),
        )
        assert status == 0 and "ignores it (it delegates to 192.0.2.2)" in err
        assert out.splitlines()[1].startswith("east.example.\tIN\tTXT\t")

    def test_txt_needs_a_gateway(self, capsys, host_secrets):
        status, _, err = run(capsys, "showhostkey", "--txt", "--file", str(host_secrets))
        assert status == 2 and "--txt needs a gateway" in err

    def test_txt_gateway_must_be_fqdn_or_address(self, capsys, host_secrets):
        status, _, err = show(capsys, host_secrets, "--txt", "user@x.example")
        assert status == 2 and "gateway must be @FQDN or an IP address" in err

    @pytest.mark.parametrize(
        "extra, owner, gateway",
        [
            ([], "", None),
            (["--id", "192.0.2.2"], "2.2.0.192.in-addr.arpa.", None),
            (["--id", "2001:db8::2", "--gateway", "2001:db8::2"], None, "2001:db8::2"),
            (["--gateway", "@east.example"], "", "@east.example"),
        ],
    )
    def test_ipseckey(self, capsys, host_secrets, extra, owner, gateway):
        status, out, _ = show(capsys, host_secrets, "--ipseckey", *extra)
        assert status == 0
        line = out.splitlines()[1]
        if owner is not None:
            assert line.split("\t")[0] == owner
        record = records.parse_rdata(rdata_of(line, "IPSECKEY"))
        assert record.kind == "IPSECKEY"
        assert record.gateway == (parse_id(gateway) if gateway else None)
        assert same(record.key, key())

    def test_key_record_owner_from_the_comment(self, capsys, host_secrets):
        status, out, _ = run(capsys, "showhostkey", "--key", "--file", str(host_secrets))
        assert status == 0
        line = out.splitlines()[1]
        assert line.startswith("east.example.\tIN\tKEY\t16896 4 1 AQ")
        record = records.parse_rdata(rdata_of(line, "KEY"))
        assert same(record.key, key())

    @pytest.mark.parametrize("fmt", PEM_FORMATS)
    def test_pem_private_key_file(self, capsys, tmp_path, fmt):
        path = tmp_path / "key.pem"
        pem = key().private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
        path.write_bytes(pem)
        status, out, _ = run(capsys, "showhostkey", "--left", "--file", str(path))
        assert status == 0
        comment, line = out.splitlines()
        assert comment == "\t# RSA 1024 bits"
        assert same(keys.parse_rsasigkey(line.split("=", 1)[1]), key())

    def test_pem_public_key_file(self, capsys, tmp_path):
        path = tmp_path / "pub.pem"
        path.write_text(keys.public_key_pem(key()))
        status, out, _ = run(capsys, "showhostkey", "--right", "--file", str(path))
        assert status == 0
        assert same(keys.parse_rsasigkey(out.splitlines()[1].split("=", 1)[1]), key())

    def test_encrypted_pem_is_refused_with_a_reason(self, capsys, tmp_path):
        path = tmp_path / "enc.pem"
        path.write_bytes(
            key().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"pw"),
            )
        )
        status, _, err = run(capsys, "showhostkey", "--left", "--file", str(path))
        assert status == 1 and "encrypted" in err

    def test_id_selects_among_several_keys(self, capsys, tmp_path):
        text = (
            keys.format_rsa_secret_block(
                key(), hostname="east.example", date="d1", ids=["@east.example"]
            )
            + keys.format_rsa_secret_block(
                other_key(), hostname="west.example", date="d2", ids=["@west.example"]
            )
        )
        path = secrets_file(tmp_path, text)
        status, _, err = run(capsys, "showhostkey", "--left", "--file", str(path))
        assert status == 1
        assert "no default key" in err and "@east.example, @west.example" in err
        status, out, _ = show(capsys, path, "--left", "--id", "@west.example")
        assert status == 0
        assert out.splitlines()[0] == "\t# RSA 1024 bits   west.example   d2"
        assert same(keys.parse_rsasigkey(out.splitlines()[1].split("=", 1)[1]), other_key())
        status, _, err = show(capsys, path, "--left", "--id", "@nobody.example")
        assert status == 1 and "no @nobody.example key" in err

    def test_two_default_keys_are_ambiguous(self, capsys, tmp_path):
        text = keys.format_rsa_secret_block(key()) + keys.format_rsa_secret_block(other_key())
        path = secrets_file(tmp_path, text)
        status, _, err = run(capsys, "showhostkey", "--left", "--file", str(path))
        assert status == 1 and "multiple default keys" in err

    def test_a_selectorless_key_serves_any_id(self, capsys, host_secrets):
        status, out, _ = show(capsys, host_secrets, "--left", "--id", "@any.example")
        assert status == 0 and same(value_of(out.splitlines()[1]), key())

    def test_errors(self, capsys, tmp_path, host_secrets):
        assert run(capsys, "showhostkey", "--file", str(host_secrets))[0] == 2
        status, _, err = run(capsys, "showhostkey", "--left", "--file", str(tmp_path / "missing"))
        assert status == 1 and "does not exist" in err
        assert run(capsys, "showhostkey", "--left", "--right", "--file", str(host_secrets))[0] == 2
        psk_only = secrets_file(tmp_path, ': PSK "x"\n', "p")
        status, _, err = show(capsys, psk_only, "--left")
        assert status == 1 and "no default key" in err

    def test_help(self, capsys):
        status, out, _ = run(capsys, "showhostkey", "--help")
        assert status == 0 and out.startswith("Usage: ipsec showhostkey")
