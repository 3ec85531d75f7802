"""HTTP Basic authentication on the master, as Mesos does it.

Sources (apache/mesos): docs/authentication.md; src/master/flags.cpp
(`--authenticate_http_frameworks` with `--http_framework_authenticators=basic`
for v1 HTTP frameworks, `--authenticate_http_readonly`/`readwrite`,
`--credentials` as a JSON file); 3rdparty/libprocess/src/authenticator.cpp
(401 with `WWW-Authenticate: Basic realm="<realm>"`); src/master/constants.hpp
(realms mesos-master-readonly, mesos-master-readwrite, mesos-master-scheduler);
validation::scheduler::call::validate in src/master/validation.cpp (principal
mismatch).
"""

import base64
import json

import pytest

import pando_harness as h


PRINCIPAL, SECRET = "conformance", "s3cret"


def basic(principal, secret):
    token = base64.b64encode(f"{principal}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def credentials_file(tmp_path):
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps({"credentials": [{"principal": PRINCIPAL, "secret": SECRET}]}))
    return str(creds)


@pytest.fixture
def secured(cluster_factory, tmp_path):
    """Framework authentication on /api/v1/scheduler."""
    return cluster_factory(agents=0, master_flags={
        "authenticate_http_frameworks": True,
        "http_framework_authenticators": "basic",
        "credentials": credentials_file(tmp_path),
    })


@pytest.fixture
def secured_http(cluster_factory, tmp_path):
    """Authentication on the read-only and read-write endpoints."""
    return cluster_factory(agents=0, master_flags={
        "authenticate_http_readonly": True,
        "authenticate_http_readwrite": True,
        "credentials": credentials_file(tmp_path),
    })


@pytest.mark.parametrize("headers", [{}, basic(PRINCIPAL, "wrong"), basic("nobody", SECRET),
                                     {"Authorization": "Bearer abc"}])
def test_scheduler_subscribe_without_valid_credentials_is_401(secured, headers):
    s = h.RecordIOStream(secured.port, "/api/v1/scheduler",
                         h.scheduler_subscribe_call(principal=PRINCIPAL), headers=headers)
    assert s.status == 401
    assert s.headers.get("WWW-Authenticate") == 'Basic realm="mesos-master-scheduler"'


def test_scheduler_subscribe_with_credentials_is_200(secured):
    s = h.RecordIOStream(secured.port, "/api/v1/scheduler",
                         h.scheduler_subscribe_call(principal=PRINCIPAL),
                         headers=basic(PRINCIPAL, SECRET))
    try:
        assert s.status == 200
        assert s.next_event(timeout=10)["type"] == "SUBSCRIBED"
    finally:
        s.close()


def test_principal_must_match_the_authenticated_one(secured):
    resp = h.post_json(secured.port, "/api/v1/scheduler",
                       h.scheduler_subscribe_call(principal="someone-else"),
                       headers=basic(PRINCIPAL, SECRET))
    assert resp.status == 400
    assert resp.text() == (
        f"Failed to validate scheduler::Call: Authenticated principal '{PRINCIPAL}' does "
        "not match principal 'someone-else' set in `FrameworkInfo`")


def test_readonly_endpoints_need_credentials(secured_http):
    resp = h.get(secured_http.port, "/master/state")
    assert resp.status == 401
    assert resp.header("WWW-Authenticate") == 'Basic realm="mesos-master-readonly"'
    ok = h.get(secured_http.port, "/master/state", headers=basic(PRINCIPAL, SECRET))
    assert ok.status == 200
    assert ok.json()["flags"]["authenticate_http_readonly"] == "true"


def test_operator_api_needs_credentials(secured_http):
    resp = h.post_json(secured_http.port, "/api/v1", {"type": "GET_STATE"})
    assert resp.status == 401
    assert resp.header("WWW-Authenticate") == 'Basic realm="mesos-master-readwrite"'
    ok = h.post_json(secured_http.port, "/api/v1", {"type": "GET_STATE"},
                     headers=basic(PRINCIPAL, SECRET))
    assert ok.status == 200


def test_readonly_endpoints_need_valid_credentials(secured_http):
    # Status codes only; the realms are checked above.
    assert h.get(secured_http.port, "/master/state").status == 401
    wrong = h.get(secured_http.port, "/master/state", headers=basic(PRINCIPAL, "wrong"))
    assert wrong.status == 401
    assert h.get(secured_http.port, "/master/state",
                 headers=basic(PRINCIPAL, SECRET)).status == 200
    # /master/health is not authenticated in Mesos.
    assert h.get(secured_http.port, "/master/health").status == 200
    assert h.post_json(secured_http.port, "/api/v1", {"type": "GET_STATE"}).status == 401
    assert h.post_json(secured_http.port, "/api/v1", {"type": "GET_STATE"},
                       headers=basic(PRINCIPAL, SECRET)).status == 200
