import base64, json, datetime, jwt
from tests.api.conftest import AuthFor
API = "/api/v1/tickets"

def b64(d):
    raw = d if isinstance(d, bytes) else json.dumps(d).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

def test_probe(client, auth_for: AuthFor, tenant, jwt_secret):
    agent = auth_for(tenant, "agent-1", "agent")
    r = client.post(f"{API}/", json={"title": "x", "customer_id": "c"}, headers=agent)
    tid = r.json()["id"]
    def show(label, r):
        print("PROBE", label, r.status_code, r.headers.get("content-type"), r.text[:150])
    def bearer(t):
        return {"Authorization": f"Bearer {t}"}
    now = datetime.datetime.now(datetime.UTC)
    show("deep header", client.get(f"{API}/{tid}", headers=bearer(b64(b"[" * 100000 + b"]" * 100000) + "." + b64({}) + ".x")))
    show("hdr list", client.get(f"{API}/{tid}", headers=bearer(b64([1]) + "." + b64({}) + ".x")))
    show("hdr bad utf8", client.get(f"{API}/{tid}", headers=bearer(b64(b"\xff\xfe") + "." + b64({}) + ".x")))
    for exp in [float("inf"), float("nan"), 10**30, "soon", None]:
        t = jwt.encode({"sub": "a", "tenant_id": tenant, "roles": ["agent"], "exp": exp}, jwt_secret, algorithm="HS256")
        show(f"exp {exp}", client.get(f"{API}/{tid}", headers=bearer(t)))
    for iat in [float("inf"), "x"]:
        t = jwt.encode({"sub": "a", "tenant_id": tenant, "roles": ["agent"], "exp": now + datetime.timedelta(hours=1), "iat": iat}, jwt_secret, algorithm="HS256")
        show(f"iat {iat}", client.get(f"{API}/{tid}", headers=bearer(t)))
    t = jwt.encode({"sub": "a", "tenant_id": tenant, "roles": ["agent"], "exp": now + datetime.timedelta(hours=1), "nbf": float("inf")}, jwt_secret, algorithm="HS256")
    show("nbf inf", client.get(f"{API}/{tid}", headers=bearer(t)))
    t = jwt.encode({"sub": "a", "tenant_id": tenant, "roles": ["agent"], "exp": now + datetime.timedelta(hours=1)}, jwt_secret, algorithm="HS256", headers={"kid": 5})
    show("kid int", client.get(f"{API}/{tid}", headers=bearer(t)))
    t = jwt.encode({"sub": "a", "tenant_id": tenant, "roles": ["agent"], "exp": now + datetime.timedelta(hours=1)}, jwt_secret, algorithm="HS256", headers={"crit": ["x"]})
    show("crit", client.get(f"{API}/{tid}", headers=bearer(t)))
    show("idem empty", client.post(f"{API}/", json={"title": "n", "customer_id": "c"}, headers={**agent, "idempotency-key": ""}))
    show("idem nonascii", client.post(f"{API}/", json={"title": "n", "customer_id": "c"}, headers={**agent, "idempotency-key": "é".encode("latin-1").decode("latin-1")}))
    show("bearer empty", client.get(f"{API}/{tid}", headers={"Authorization": "Bearer "}))
    show("bearer big", client.get(f"{API}/{tid}", headers={"Authorization": "Bearer " + "a"*100000}))
    show("as_of naive", client.get(f"{API}/{tid}", params={"as_of": "2024-01-01T00:00:00"}, headers=agent))
    show("as_of 0", client.get(f"{API}/{tid}", params={"as_of": "0"}, headers=agent))
    show("as_of big", client.get(f"{API}/{tid}", params={"as_of": "9"*40}, headers=agent))
    show("as_of min", client.get(f"{API}/{tid}", params={"as_of": "0001-01-01T00:00:00+23:59"}, headers=agent))
    show("as_of max", client.get(f"{API}/{tid}", params={"as_of": "9999-12-31T23:59:59-23:59"}, headers=agent))
    show("as_of nul", client.get(f"{API}/{tid}", params={"as_of": "1\x00"}, headers=agent))
    show("as_of fullwidth", client.get(f"{API}/{tid}", params={"as_of": "\uff11"}, headers=agent))
    show("att long", client.get(f"{API}/{tid}/attachments/{'a'*65}", headers=agent))
    show("att nul", client.get(f"{API}/{tid}/attachments/a%00b", headers=agent))
    show("reopen empty", client.post(f"{API}/{tid}/reopen", headers=agent))
    show("reopen null", client.post(f"{API}/{tid}/reopen", content=b"null", headers={**agent, "content-type":"application/json"}))
    show("reopen text", client.post(f"{API}/{tid}/reopen", content=b"hello", headers={**agent, "content-type":"text/plain"}))
    show("health big", client.request("GET", "/health", content=b"x"*300000))
    show("ready", client.get("/ready"))
    show("unknown", client.get("/api/v1/nope"))
    show("multi garbage", client.post(f"{API}/{tid}/attachments", content=b"garbage", headers={**agent, "content-type":"multipart/form-data; boundary=zz"}))
    show("multi text field", client.post(f"{API}/{tid}/attachments", data={"file": "x"}, files={"other": ("a", b"x")}, headers=agent))
    show("multi long fname", client.post(f"{API}/{tid}/attachments", files={"file": ("a"*10000, b"x")}, headers=agent))
    show("multi 64k", client.post(f"{API}/{tid}/attachments", files={"file": ("a", b"x"*65536)}, headers=agent))
    show("multi 64k+1", client.post(f"{API}/{tid}/attachments", files={"file": ("a", b"x"*65537)}, headers=agent))
    show("multi 200k", client.post(f"{API}/{tid}/attachments", files={"file": ("a", b"x"*200000)}, headers=agent))
    show("update float nan", client.put(f"{API}/{tid}", content=b'{"custom_fields": {"a": NaN}}', headers={**agent, "content-type":"application/json"}))
    show("history", client.get(f"{API}/{tid}/history", headers=agent))
    show("tag lower", client.put(f"{API}/{tid}", json={"tags": ["\u0130"*50]}, headers=agent))
    show("ws title", client.put(f"{API}/{tid}", json={"title": "\u3000\u2003"}, headers=agent))
    show("title zwsp", client.put(f"{API}/{tid}", json={"title": "\u200b"}, headers=agent))
    show("status reason nul", client.post(f"{API}/{tid}/status", json={"status": "open", "reason": "\x00"}, headers=agent))
