"""Adding IKEv2 conns to the engine: an ike= IKEv2 cannot run is refused when the conn is
added (ProposalError, which ``ipsec auto --add`` reports), not when it is started."""

from __future__ import annotations

import pytest

from fswan.config.model import Ikev2Policy
from fswan.suites import ProposalError
from tests.ike_pair import conn, make_pair


def test_an_ikev2_conn_with_only_3des_is_refused_when_added():
    with pytest.raises(ProposalError, match="no proposal IKEv2 can use"):
        make_pair(conn(ikev2=Ikev2Policy.INSIST, ike="3des-sha1-modp2048"))


def test_a_permit_conn_with_3des_first_still_keys_over_ikev2_with_its_aes_proposal():
    pair = make_pair(conn(ikev2=Ikev2Policy.PERMIT, ike="3des-sha1-modp2048,aes128-sha1-modp2048"),
                     conn(ikev2=Ikev2Policy.INSIST, ike="aes128-sha1-modp2048"))
    pair.initiate(who="east")
    assert pair.west.installed and pair.east.installed, pair.west.text() + pair.east.text()
    assert "STATE_V2_ESTABLISHED_IKE_SA" in pair.west.text()
