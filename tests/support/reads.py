"""Reading the API through Flask's test client: GET as a principal, expect a page or a problem,
walk every page of a list."""

PROBLEM = "application/problem+json"


def get(client, url: str, who=None, **params):
    return client.get(url, headers=who.headers if who is not None else {}, query_string=params)


def assert_no_floats(value) -> None:
    """Quantities are decimal strings: no JSON number in an answer is ever fractional."""
    if isinstance(value, dict):
        for item in value.values():
            assert_no_floats(item)
    elif isinstance(value, list):
        for item in value:
            assert_no_floats(item)
    else:
        assert not isinstance(value, float), value


def ok(client, url: str, who, **params) -> dict:
    response = get(client, url, who, **params)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert_no_floats(body)
    return body


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_json()
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["code"] == code and body["status"] == status, body
    return body


def walk(client, url: str, who, limit: int, **params) -> list[dict]:
    """Every item of a list, page by page; checks each page's size and the last page's end."""
    items, cursor = [], None
    for _ in range(1000):
        body = ok(client, url, who, **dict(params, limit=limit, **({"cursor": cursor} if cursor else {})))
        assert len(body["items"]) <= limit
        items += body["items"]
        cursor = body["next"]
        if cursor is None:
            return items
        assert len(body["items"]) == limit, "only the last page may be short"
    raise AssertionError("endless pages")
