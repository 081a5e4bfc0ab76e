"""memoryd-vcard's own tests, with the kit memoryd ships for plugin authors (memoryd.testing)."""

from __future__ import annotations

import memoryd_vcard

from memoryd.testing import check_part_handler, plugin_host, samples

CARD = (
    b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ada Lovelace\r\nORG:Analytical Engines Ltd\r\n"
    b"EMAIL;TYPE=work:ada@example.org\r\nTEL;TYPE=cell:+44 20 7946 0000\r\n"
    b"NOTE:Wrote the first program\\, for Bernoulli\r\n  numbers.\r\nEND:VCARD\r\n"
)


async def test_a_card_as_base64_and_as_a_data_uri() -> None:
    loaded = plugin_host(memoryd_vcard)
    for part in (
        samples.base64_part(CARD, "text/vcard"),
        samples.data_uri_part(CARD, "text/vcard", filename="ada.vcf"),
    ):
        reading = await loaded.read(part)
        assert reading.outcome.status == "read"
        assert reading.outcome.plugin == "vcard"
        assert "name: Ada Lovelace" in (reading.text or "")
        assert "note: Wrote the first program, for Bernoulli numbers." in (reading.text or "")


async def test_phones_can_be_left_out() -> None:
    loaded = plugin_host(memoryd_vcard, config={"phones": False})
    reading = await loaded.read(samples.base64_part(CARD, "text/vcard"))
    assert "phone" not in (reading.text or "")
    assert "e-mail: ada@example.org" in (reading.text or "")


async def test_a_card_that_is_not_one_is_skipped_with_a_reason() -> None:
    reading = await plugin_host(memoryd_vcard).read(
        samples.base64_part(b"hello", "text/vcard", filename="x.vcf")
    )
    assert (reading.text, reading.outcome.status) == (None, "skipped")
    assert reading.outcome.reason == "it is not a vCard (no BEGIN:VCARD)"


async def test_it_conforms() -> None:
    (handler,) = plugin_host(memoryd_vcard).part_handlers(contained=False)
    junk = {"a card cut short": samples.base64_part(CARD[:40], "text/vcard")}
    await check_part_handler(handler, junk)


def test_it_lists_its_hooks() -> None:
    info = plugin_host(memoryd_vcard).info()
    assert info.hooks == ("memoryd_plugin_settings", "memoryd_register_part_handlers")
