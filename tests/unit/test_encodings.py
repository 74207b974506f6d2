"""FreeS/WAN ttodata-style 0x / 0s / 0t text encodings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fswan.config.encodings import EncodingError, decode_data, encode_base64, encode_hex


class TestHex:
    def test_plain(self) -> None:
        assert decode_data("0x0103abCD") == b"\x01\x03\xab\xcd"

    def test_upper_case_prefix(self) -> None:
        assert decode_data("0XFF") == b"\xff"

    def test_underscores_separate_digits(self) -> None:
        assert decode_data("0x01_02_0304") == b"\x01\x02\x03\x04"

    def test_odd_digit_count_is_an_error(self) -> None:
        with pytest.raises(EncodingError, match=r"odd number of hex digits \(3\)"):
            decode_data("0xabc")

    def test_invalid_digit_names_its_position(self) -> None:
        with pytest.raises(EncodingError, match="invalid hex digit at character 5"):
            decode_data("0x01g2")

    def test_empty(self) -> None:
        with pytest.raises(EncodingError, match="no hex digits"):
            decode_data("0x")
        with pytest.raises(EncodingError, match="no hex digits"):
            decode_data("0x__")


class TestBase64:
    def test_rfc2537_example_prefix(self) -> None:
        # "0sAQO..." is exponent length 1, exponent 3, then the modulus.
        assert decode_data("0sAQOA") == b"\x01\x03\x80"

    def test_whitespace_is_tolerated(self) -> None:
        assert decode_data("0sAQID\n BAUG\t") == bytes(range(1, 7))

    def test_padding(self) -> None:
        assert decode_data("0sQQ==") == b"A"
        assert decode_data("0sQUI=") == b"AB"

    def test_length_not_multiple_of_four(self) -> None:
        with pytest.raises(EncodingError, match="not a multiple of 4"):
            decode_data("0sQUJ")

    def test_bad_character(self) -> None:
        with pytest.raises(EncodingError, match="invalid base64"):
            decode_data("0sQU*D")

    def test_misplaced_padding(self) -> None:
        with pytest.raises(EncodingError, match="invalid base64"):
            decode_data("0sQ=JD")

    def test_empty(self) -> None:
        with pytest.raises(EncodingError, match="no base64"):
            decode_data("0s")


class TestText:
    def test_literal(self) -> None:
        assert decode_data("0tsecret 0x text") == b"secret 0x text"

    def test_utf8(self) -> None:
        assert decode_data("0T\u00e9") == "\u00e9".encode()

    def test_empty(self) -> None:
        with pytest.raises(EncodingError, match="no text"):
            decode_data("0t")


@pytest.mark.parametrize("text", ["", "0", "abc", "0z12", "x12", "'0x12'"])
def test_unknown_prefix(text: str) -> None:
    with pytest.raises(EncodingError, match="expected 0x .hex., 0s .base64. or 0t .text."):
        decode_data(text)


def test_encoding_error_is_a_value_error() -> None:
    assert issubclass(EncodingError, ValueError)


@pytest.mark.parametrize("text", ["0xS3cr3tGz", "0sS3cr3t*==", "0sS3cr3tQ", "0xS3cr3tAb_c"])
def test_errors_never_repeat_the_input(text: str) -> None:
    with pytest.raises(EncodingError) as info:
        decode_data(text)
    assert "S3cr3t" not in str(info.value)


def test_encoders() -> None:
    assert encode_hex(b"\x01\x03\xff") == "0x0103ff"
    assert encode_base64(b"\x01\x03\x80") == "0sAQOA"


@given(st.binary(min_size=1))
def test_round_trips(data: bytes) -> None:
    assert decode_data(encode_hex(data)) == data
    assert decode_data(encode_base64(data)) == data


@given(st.text())
def test_arbitrary_text_raises_only_encoding_error(text: str) -> None:
    try:
        decode_data(text)
    except EncodingError:
        pass
