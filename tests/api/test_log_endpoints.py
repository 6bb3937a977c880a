"""The log over HTTP (specs/log.md §4): what an auditor fetches, checked with ledger.verify."""

import base64

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ledger import verify

PROBLEM = "application/problem+json"


def b64(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


def log_key(client) -> str:
    return client.get("/v1/log/keys").get_json()["log"]


def checkpoint(client) -> verify.Checkpoint:
    response = client.get("/v1/log/checkpoint")
    assert response.status_code == 200
    assert response.content_type == "text/plain; charset=utf-8"
    return verify.open_checkpoint(response.data, [log_key(client)])


def test_a_new_log_serves_its_genesis_checkpoint(client):
    cp = checkpoint(client)
    assert (cp.origin, cp.size) == ("ecoledger.test/log", 1)
    genesis = client.get("/v1/log/entries/0").get_json()
    assert genesis["entry"]["command"]["ops"][0] == {
        "op": "log.genesis", "origin": "ecoledger.test/log", "key": log_key(client)}


def test_every_entry_proves_into_the_checkpoint_from_its_own_bytes(client, append):
    append(20)
    cp = checkpoint(client)
    assert cp.size == 21
    for seq in range(cp.size):
        item = client.get(f"/v1/log/entries/{seq}").get_json()
        leaf = verify.leaf_hash(item["entry"])
        assert base64.b64decode(item["leaf_hash"]) == leaf
        proof = client.get(f"/v1/log/proofs/inclusion?seq={seq}").get_json()
        assert proof["tree_size"] == cp.size
        verify.verify_inclusion(seq, cp.size, leaf, b64(proof["hashes"]), cp.root)


def test_a_served_checkpoint_is_consistent_with_every_later_one(client, append):
    old = checkpoint(client)
    append(6)
    middle = checkpoint(client)
    append(9)
    new = checkpoint(client)
    for first, second in ((old, middle), (middle, new), (old, new)):
        proof = client.get(f"/v1/log/proofs/consistency?first={first.size}&second={second.size}").get_json()
        verify.verify_consistency(first.size, second.size, b64(proof["hashes"]), first.root, second.root)


def test_proof_sizes_default_to_the_latest_checkpoint(client, append):
    append(4)
    size = checkpoint(client).size
    assert client.get("/v1/log/proofs/inclusion?seq=2").get_json()["tree_size"] == size
    assert client.get("/v1/log/proofs/consistency?first=1").get_json()["second"] == size


def test_a_tampered_entry_does_not_prove_into_the_checkpoint(client, append):
    append(3)
    cp = checkpoint(client)
    item = client.get("/v1/log/entries/2").get_json()
    item["entry"]["command"]["id"] += "x"
    proof = client.get("/v1/log/proofs/inclusion?seq=2").get_json()
    with pytest.raises(verify.VerificationError, match="not included"):
        verify.verify_inclusion(2, cp.size, verify.leaf_hash(item["entry"]), b64(proof["hashes"]), cp.root)


def test_entries_page_through_the_whole_log(client, append):
    append(24)
    seen, start = [], 0
    while start is not None:
        page = client.get(f"/v1/log/entries?start={start}&limit=7").get_json()
        seen += [item["seq"] for item in page["entries"]]
        start = page["next"]
    assert seen == list(range(25))


def test_entry_pages_are_capped(app, client, append):
    append(12)
    app.config["ECOLEDGER"] = type(app.config["ECOLEDGER"])(**{
        **app.config["ECOLEDGER"].__dict__, "entries_page_limit": 5})
    page = client.get("/v1/log/entries?start=0&limit=1000").get_json()
    assert len(page["entries"]) == 5 and page["next"] == 5


def test_reading_from_the_end_of_the_log_gives_an_empty_last_page(client, append):
    append(2)
    assert client.get("/v1/log/entries?start=3").get_json() == {"entries": [], "next": None}


@pytest.mark.parametrize("path, code", [
    ("/v1/log/entries/5", "OUT_OF_RANGE"),
    ("/v1/log/entries/-1", "INVALID_PARAMETER"),
    ("/v1/log/entries/x", "INVALID_PARAMETER"),
    ("/v1/log/entries?start=9", "OUT_OF_RANGE"),
    ("/v1/log/entries?start=-1", "INVALID_PARAMETER"),
    ("/v1/log/entries?limit=0", "INVALID_PARAMETER"),
    ("/v1/log/entries?limit=many", "INVALID_PARAMETER"),
    ("/v1/log/proofs/inclusion", "INVALID_PARAMETER"),
    ("/v1/log/proofs/inclusion?seq=4", "OUT_OF_RANGE"),
    ("/v1/log/proofs/inclusion?seq=4&size=4", "OUT_OF_RANGE"),
    ("/v1/log/proofs/inclusion?seq=0&size=99", "OUT_OF_RANGE"),
    ("/v1/log/proofs/inclusion?seq=0&size=0", "INVALID_PARAMETER"),
    ("/v1/log/proofs/consistency?first=0&second=2", "INVALID_PARAMETER"),
    ("/v1/log/proofs/consistency?first=3&second=2", "OUT_OF_RANGE"),
    ("/v1/log/proofs/consistency?first=1&second=99", "OUT_OF_RANGE"),
    ("/v1/log/proofs/consistency?first=1.5", "INVALID_PARAMETER"),
])
def test_bad_parameters_are_a_400_problem(client, append, path, code):
    append(3)
    response = client.get(path)
    assert response.status_code == 400, response.data
    assert response.content_type == PROBLEM
    body = response.get_json()
    assert body["status"] == 400 and body["code"] == code and body["detail"]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(path=st.sampled_from(["/v1/log/entries", "/v1/log/proofs/inclusion", "/v1/log/proofs/consistency"]),
       query=st.dictionaries(st.sampled_from(["start", "limit", "seq", "size", "first", "second"]),
                             st.one_of(st.integers(-10**20, 10**20).map(str), st.text(max_size=8)),
                             max_size=3))
def test_no_query_string_makes_the_server_fail(client, path, query):
    response = client.get(path, query_string=query)
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert response.content_type == PROBLEM


def test_unknown_paths_and_methods_are_problems(client):
    assert client.get("/v1/log/nothing").content_type == PROBLEM
    response = client.post("/v1/log/checkpoint")
    assert response.status_code == 405 and response.get_json()["code"] == "METHOD_NOT_ALLOWED"


def test_the_openapi_document_describes_the_log(client):
    paths = client.get("/v1/openapi.json").get_json()["paths"]
    assert {"/v1/log/checkpoint", "/v1/log/keys", "/v1/log/entries", "/v1/log/entries/{seq}",
            "/v1/log/proofs/inclusion", "/v1/log/proofs/consistency"} <= set(paths)
