import base64, json
from tests.api.conftest import AuthFor

API = "/api/v1/tickets"


def b64(d):
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


def test_probe(client, auth_for: AuthFor, tenant, jwt_secret):
    agent = auth_for(tenant, "agent-1", "agent")
    r = client.post(f"{API}/", json={"title": "x", "customer_id": "c"}, headers=agent)
    tid = r.json()["id"]

    def show(label, r):
        print(label, r.status_code, r.headers.get("content-type"), r.text[:200])

    show(
        "as_of sup2",
        client.get(f"{API}/{tid}", params={"as_of": "\u00b2"}, headers=agent),
    )
    show(
        "as_of arabic",
        client.get(f"{API}/{tid}", params={"as_of": "\u0661"}, headers=agent),
    )
    show(
        "as_of old",
        client.get(
            f"{API}/{tid}", params={"as_of": "0001-01-01T00:00:00+14:00"}, headers=agent
        ),
    )
    tok = b64({"alg": ["HS256"], "typ": "JWT"}) + "." + b64({"sub": "x"}) + ".sig"
    show(
        "alg list",
        client.get(f"{API}/{tid}", headers={"Authorization": f"Bearer {tok}"}),
    )
    tok = b64({"alg": None}) + "." + b64({"sub": "x"}) + "."
    show(
        "alg None",
        client.get(f"{API}/{tid}", headers={"Authorization": f"Bearer {tok}"}),
    )
    show(
        "surrogate",
        client.post(
            f"{API}/",
            content=b'{"title": "a\\ud800b", "customer_id": "c"}',
            headers={**agent, "content-type": "application/json"},
        ),
    )
    show(
        "surrogate comment",
        client.post(
            f"{API}/{tid}/comments",
            content=b'{"body": "a\\udfffb"}',
            headers={**agent, "content-type": "application/json"},
        ),
    )
    show(
        "nul",
        client.post(
            f"{API}/", json={"title": "a\x00b", "customer_id": "c\x00"}, headers=agent
        ),
    )
    show(
        "nan",
        client.post(
            f"{API}/",
            content=b'{"title": "n", "customer_id": "c", "custom_fields": {"a": NaN, "b": Infinity, "c": 1e999}}',
            headers={**agent, "content-type": "application/json"},
        ),
    )
    show(
        "bigint",
        client.post(
            f"{API}/",
            content=b'{"title": "n", "customer_id": "c", "custom_fields": {"a": '
            + b"9" * 4000
            + b"}}",
            headers={**agent, "content-type": "application/json"},
        ),
    )
    show(
        "hugeint",
        client.post(
            f"{API}/",
            content=b'{"title": "n", "customer_id": "c", "custom_fields": {"a": '
            + b"9" * 5000
            + b"}}",
            headers={**agent, "content-type": "application/json"},
        ),
    )
    show(
        "deep",
        client.post(
            f"{API}/",
            content=b"[" * 10000 + b"]" * 10000,
            headers={**agent, "content-type": "application/json"},
        ),
    )
    show(
        "deep in field",
        client.post(
            f"{API}/",
            content=b'{"title": "n", "customer_id": "c", "custom_fields": {"a": '
            + b"[" * 10000
            + b"]" * 10000
            + b"}}",
            headers={**agent, "content-type": "application/json"},
        ),
    )

    def gen():
        for _ in range(40):
            yield b"x" * 10000

    show(
        "chunked json",
        client.post(
            f"{API}/{tid}/comments",
            content=gen(),
            headers={**agent, "content-type": "application/json"},
        ),
    )

    def gen2():
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
        for _ in range(20):
            yield b"x" * 10000
        yield b"\r\n--b--\r\n"

    show(
        "chunked multi",
        client.post(
            f"{API}/{tid}/attachments",
            content=gen2(),
            headers={**agent, "content-type": "multipart/form-data; boundary=b"},
        ),
    )
    show(
        "nul tenant",
        client.post(
            f"{API}/",
            json={"title": "n", "customer_id": "c"},
            headers=auth_for("t\x00x", "a", "agent"),
        ),
    )
    from service.auth import issue_token
    import jwt, datetime

    t = jwt.encode(
        {
            "sub": "a",
            "tenant_id": "t",
            "roles": [["agent"]],
            "exp": datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1),
        },
        jwt_secret,
        algorithm="HS256",
    )
    show(
        "roles nested",
        client.get(f"{API}/{tid}", headers={"Authorization": f"Bearer {t}"}),
    )
    show(
        "file none ct",
        client.post(
            f"{API}/{tid}/attachments",
            files={"file": ("a\x00b.txt", b"hi", "te\x00xt/plain")},
            headers=agent,
        ),
    )
    show(
        "file empty name",
        client.post(
            f"{API}/{tid}/attachments", files={"file": ("", b"hi")}, headers=agent
        ),
    )
    show(
        "no boundary",
        client.post(
            f"{API}/{tid}/attachments",
            content=b"abc",
            headers={**agent, "content-type": "multipart/form-data"},
        ),
    )
    show(
        "json to multi",
        client.post(f"{API}/{tid}/attachments", json={"file": "x"}, headers=agent),
    )
    show("405", client.delete(f"{API}/{tid}", headers=agent))
    show("health post", client.post("/health"))
    show("bad path", client.get(f"{API}/../../etc/passwd", headers=agent))
    show("long path", client.get(f"{API}/{'a' * 10000}", headers=agent))
    show("reopen []", client.post(f"{API}/{tid}/reopen", json=[], headers=agent))
    show(
        "text ct",
        client.post(
            f"{API}/{tid}/comments",
            content=b"hello",
            headers={**agent, "content-type": "text/plain"},
        ),
    )
    show(
        "empty",
        client.post(
            f"{API}/{tid}/comments",
            content=b"",
            headers={**agent, "content-type": "application/json"},
        ),
    )
    show(
        "ifmatch",
        client.post(
            f"{API}/{tid}/comments",
            json={"body": "x"},
            headers={**agent, "if-match": 'W/"abc'},
        ),
    )
    show(
        "ifmatch long",
        client.post(
            f"{API}/{tid}/comments",
            json={"body": "x"},
            headers={**agent, "if-match": "1" * 100},
        ),
    )
    show(
        "idem long",
        client.post(
            f"{API}/",
            json={"title": "n", "customer_id": "c"},
            headers={**agent, "idempotency-key": "k" * 201},
        ),
    )
    show(
        "utf8 bad",
        client.post(
            f"{API}/{tid}/comments",
            content=b'{"body": "\xff\xfe"}',
            headers={**agent, "content-type": "application/json"},
        ),
    )
    show(
        "bom",
        client.post(
            f"{API}/{tid}/comments",
            content=b'\xef\xbb\xbf{"body": "x"}',
            headers={**agent, "content-type": "application/json"},
        ),
    )
    show(
        "utf16",
        client.post(
            f"{API}/{tid}/comments",
            content='{"body": "x"}'.encode("utf-16"),
            headers={**agent, "content-type": "application/json"},
        ),
    )
    show("get", client.get(f"{API}/{tid}", headers=agent))
