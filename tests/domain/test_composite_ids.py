"""Ids built of parts never collide, whatever the parts contain."""

from hypothesis import given
from hypothesis import strategies as st

from service.domain.composite_ids import composite_id
from service.domain.refusals import record_refusal_id
from service.store.receipts import receipt_id

parts = st.text(alphabet="ab:\\", max_size=4)


def test_device_a_offline_b_c_and_device_a_b_offline_c_have_different_receipts_and_refusals():
    assert receipt_id("a", "b:c") != receipt_id("a:b", "c")
    assert record_refusal_id("a", "b:c") != record_refusal_id("a:b", "c")
    assert receipt_id("dev1", "off-1") == "dev1:off-1"  # plain ids keep the spelling stored before


@given(parts, parts, parts, parts)
def test_different_parts_make_different_ids(a: str, b: str, c: str, d: str):
    if (a, b) != (c, d):
        assert composite_id(a, b) != composite_id(c, d)
