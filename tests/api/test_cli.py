"""The ``ecoledger`` commands for the log, run with Flask's CLI runner."""

from ledger import verify


def test_init_is_idempotent(runner):
    first = runner.invoke(args=["init"])
    second = runner.invoke(args=["init"])
    assert first.exit_code == second.exit_code == 0
    assert "1 entries" in second.output


def test_checkpoint_prints_the_signed_note(runner, client):
    result = runner.invoke(args=["checkpoint"])
    key = client.get("/v1/log/keys").get_json()["log"]
    assert verify.open_checkpoint(result.output, [key]).size == 1


def test_rotation_keeps_old_and_new_verifiers_working_until_retirement(runner, client):
    old = client.get("/v1/log/keys").get_json()["log"]
    assert runner.invoke(args=["log-key", "rotate"]).exit_code == 0
    keys = client.get("/v1/log/keys").get_json()
    new = keys["log"]
    assert keys["previous"] == [old]
    note = client.get("/v1/log/checkpoint").data
    assert verify.open_checkpoint(note, [old]).size == verify.open_checkpoint(note, [new]).size == 2

    result = runner.invoke(args=["log-key", "retire", old])
    assert result.exit_code == 0, result.output
    note = client.get("/v1/log/checkpoint").data
    assert verify.open_checkpoint(note, [new]).size == 3
    try:
        verify.open_checkpoint(note, [old])
    except verify.VerificationError as error:
        assert "not signed by any known key" in str(error)
    else:
        raise AssertionError("a retired key still signs checkpoints")
    history = {k["key"]: (k["from_seq"], k["until_seq"]) for k in client.get("/v1/log/keys").get_json()["log_history"]}
    assert history == {old: (0, 2), new: (1, None)}


def test_retiring_the_last_key_is_refused_in_one_line(runner, client):
    only = client.get("/v1/log/keys").get_json()["log"]
    result = runner.invoke(args=["log-key", "retire", only])
    assert result.exit_code == 1
    assert "the last active log key cannot be retired" in result.output
    assert client.get("/v1/log/keys").get_json()["log_history"][0]["until_seq"] is None
