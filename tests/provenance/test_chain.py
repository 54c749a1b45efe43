"""The chain of a store's manifests: the same file always gives the same chain, in the store's own order."""

from __future__ import annotations

import json

import c2pa
from helpers.files import INTEROP

from synthguard.provenance.chain import read_details
from synthguard.provenance.identity import TrustAnchors
from synthguard.provenance.jumbf import manifest_store, read_store_jumbf


def _read(name: str) -> tuple[dict, bytes]:
    with open(INTEROP / name, "rb") as stream, c2pa.Reader("image/jpeg", stream) as reader:
        store = json.loads(reader.json())
        return store, read_store_jumbf(reader, store["active_manifest"])


def test_the_chain_follows_the_store_bytes_whatever_the_order_of_c2pas_json():
    store, data = _read("CACAE-uri-CA.jpg")
    in_bytes = [box.label for box in manifest_store(data).superboxes]
    active = store["active_manifest"]
    expected = [active] + [label for label in in_bytes if label != active]
    assert len(expected) == 3
    for manifests in (store["manifests"], dict(reversed(list(store["manifests"].items())))):
        details = read_details({**store, "manifests": manifests}, trust=TrustAnchors(), jumbf=data, crjson=None)
        assert [link.label for link in details.chain] == expected


def test_without_the_store_bytes_the_ingredients_come_by_label():
    store, _ = _read("CACAE-uri-CA.jpg")
    active = store["active_manifest"]
    reversed_map = dict(reversed(list(store["manifests"].items())))
    details = read_details({**store, "manifests": reversed_map}, trust=TrustAnchors(), jumbf=None, crjson=None)
    assert [link.label for link in details.chain] == [active, *sorted(set(store["manifests"]) - {active})]
