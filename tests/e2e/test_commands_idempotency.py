"""Idempotent commands across gunicorn workers, concurrent requests and restarts.

The same (actor, id) with the same command: appended once, answered 201 the first time and 200
with the very same body every other time — whichever worker answers, however many arrive at
once, and after the server is restarted. The same id with other content: 409
DUPLICATE_COMMAND_ID, appending nothing.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from support.world import CNY, ENGINES, World, check_problem, running_world

pytestmark = pytest.mark.slow

SENDS = 20
THREADS = 10


@pytest.fixture(scope="module", params=ENGINES)
def world(request, tmp_path_factory):
    with running_world(request.param, tmp_path_factory.mktemp("idempotency"), assets=False) as world:
        yield world


def send_at_once(world: World, bodies: list[dict], token: str) -> list[requests.Response]:
    """POST every body from THREADS threads, released together by a barrier; answers in order."""
    barrier = threading.Barrier(min(THREADS, len(bodies)))
    local = threading.local()

    def post(body):
        if not hasattr(local, "session"):
            local.session = requests.Session()
            barrier.wait(timeout=60)
        return local.session.post(world.url + "/v1/commands", json=body, timeout=120,
                                  headers={"Authorization": f"Bearer {token}"})

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(post, bodies))


def occurrences(world: World, actor: str, command_id: str, start: int) -> list[int]:
    return [item["seq"] for item in world.entries(start)
            if (item["entry"]["command"]["actor"], item["entry"]["command"]["id"]) == (actor, command_id)]


def test_the_same_command_sent_20_times_at_once_is_appended_once(world):
    holder = world.new_account("SC")
    envelope = world.envelope("sc-exchange", {"op": "cny.deposit", "account": holder, "amount": "12.34"})
    before = world.log_size()
    answers = send_at_once(world, [envelope] * SENDS, world["sc-exchange"].token)

    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * (SENDS - 1) + [201], [(r.status_code, r.text[:300]) for r in answers]
    bodies = [r.json() for r in answers]
    assert all(body == bodies[0] for body in bodies), "the replays' bodies differ from the first answer"
    assert bodies[0]["entry"]["command"] == envelope["command"]
    assert world.log_size() == before + 1
    assert occurrences(world, "sc-exchange", envelope["command"]["id"], before) == [bodies[0]["seq"]]
    assert world.total(holder, CNY) == 1234


def test_the_same_id_with_other_content_is_a_conflict(world):
    holder = world.new_account("SC")
    command_id = world.next_id("dup")
    first = world.submit("sc-exchange", {"op": "cny.deposit", "account": holder, "amount": "1"}, id=command_id)
    assert first.status_code == 201, first.text
    before = world.log_size()
    problem = check_problem(world.submit("sc-exchange", {"op": "cny.deposit", "account": holder, "amount": "2"},
                                         id=command_id), 409, "DUPLICATE_COMMAND_ID")
    assert str(first.json()["seq"]) in problem["detail"]
    # Another actor may use the same id: ids are unique per actor.
    other = world.submit("cq-exchange", {"op": "cny.deposit", "account": world.new_account("CQ"), "amount": "2"},
                         id=command_id)
    assert other.status_code == 201, other.text
    assert world.log_size() == before + 2  # the CQ account opened, and its deposit
    assert world.total(holder, CNY) == 100


def test_two_contents_racing_for_one_id(world):
    """Ten threads send version A of a command, ten version B, at once: one wins (201), its
    copies replay (200, same body), the other's copies conflict (409); one entry."""
    holder = world.new_account("SC")
    command_id = world.next_id("race")
    a = world.envelope("sc-exchange", {"op": "cny.deposit", "account": holder, "amount": "1"}, id=command_id)
    b = world.envelope("sc-exchange", {"op": "cny.deposit", "account": holder, "amount": "2"}, id=command_id)
    before = world.log_size()
    answers = send_at_once(world, [a, b] * (SENDS // 2), world["sc-exchange"].token)
    winner = next(r for r in answers if r.status_code == 201)
    won = a if winner.json()["entry"]["command"] == a["command"] else b
    for envelope, response in zip([a, b] * (SENDS // 2), answers):
        if envelope is won:
            assert response.status_code in (200, 201) and response.json() == winner.json()
        else:
            check_problem(response, 409, "DUPLICATE_COMMAND_ID")
    assert sum(r.status_code == 201 for r in answers) == 1
    assert world.log_size() == before + 1
    assert world.total(holder, CNY) == (100 if won is a else 200)


def test_a_refused_command_may_be_sent_again_and_then_appended(world):
    """Only appended commands are remembered: a refusal does not burn the id."""
    holder = world.new_account("SC")
    command_id = world.next_id("retry")
    world.refused("sc-exchange", {"op": "cny.withdraw", "account": holder, "amount": "5"}, id=command_id,
                  status=409, code="INSUFFICIENT_BALANCE")
    world.deposit(holder, "5")
    first = world.submit("sc-exchange", {"op": "cny.withdraw", "account": holder, "amount": "5"}, id=command_id)
    assert first.status_code == 201, first.text
    again = world.submit("sc-exchange", {"op": "cny.withdraw", "account": holder, "amount": "5"}, id=command_id)
    assert (again.status_code, again.json()) == (200, first.json())
    assert world.total(holder, CNY) == 0


def test_replays_within_and_across_batches(world):
    holder = world.new_account("SC")
    envelope = world.envelope("sc-exchange", {"op": "cny.deposit", "account": holder, "amount": "3"})
    before = world.log_size()
    response = world.batch("sc-exchange", [envelope, envelope])
    assert response.status_code == 200, response.text
    (first, second) = response.json()["results"]
    assert (first["status"], second["status"]) == (201, 200)
    assert second["body"] == first["body"]
    single = world.post_envelope(envelope, actor="sc-exchange")
    assert (single.status_code, single.json()) == (200, first["body"])
    again = world.batch("sc-exchange", [envelope]).json()["results"]
    assert again == [{"status": 200, "body": first["body"]}]
    assert world.log_size() == before + 1
    assert world.total(holder, CNY) == 300


def test_zz_replay_after_a_restart(world):
    """Runs last in the module (by name): it restarts the server on the same home and database."""
    holder = world.new_account("SC")
    envelope = world.envelope("sc-exchange", {"op": "cny.deposit", "account": holder, "amount": "7.77"},
                              {"op": "cny.withdraw", "account": holder, "amount": "0.07"})
    first = world.post_envelope(envelope, actor="sc-exchange")
    assert first.status_code == 201, first.text
    size = world.log_size()

    world.restart()

    again = world.post_envelope(envelope, actor="sc-exchange")
    assert (again.status_code, again.json()) == (200, first.json())
    world_id = envelope["command"]["id"]
    check_problem(world.submit("sc-exchange", {"op": "cny.deposit", "account": holder, "amount": "7.78"},
                               id=world_id), 409, "DUPLICATE_COMMAND_ID")
    # Twenty more at once, on the new workers.
    answers = send_at_once(world, [envelope] * SENDS, world["sc-exchange"].token)
    assert {(r.status_code, r.text) for r in answers} == {(200, again.text)}
    assert world.log_size() == size
    assert world.total(holder, CNY) == 770
