"""Behind PROXY_COUNT reverse proxies the app sees the client's URL and address.

A client asks ``https://api.example.com/api/...``; the proxy strips ``/api``,
forwards plain HTTP and says what it received in ``X-Forwarded-*`` headers.
The client follows the ``Location`` it is given from the URL it asked, so
that ``Location`` must carry the public prefix, and the task must see the
public URL and the client's address. Without trusted proxies none of these
headers is believed: any client could send them.
"""

import urllib.parse

import pytest
from flask import request

from {{ cookiecutter.project_slug }} import async_api, create_app
from {{ cookiecutter.project_slug }}.settings import ConfigError

PROXY_ADDRESS = "10.0.0.2"
CLIENT_ADDRESS = "203.0.113.7"
# What the client itself put in X-Forwarded-For before the proxy added the address it saw.
SPOOFED_ADDRESS = "198.51.100.1"


def where():
    """What the task saw of its request."""
    return {"url": request.url, "remote_addr": request.remote_addr}


class Proxy:
    """An nginx serving the app as ``https://api.example.com/api/``: ``get(public_url)``."""

    def __init__(self, client):
        self.client = client

    def get(self, public_url):
        url = urllib.parse.urlsplit(public_url)
        assert url.path.startswith("/api/"), public_url
        return self.client.get(
            url.path.removeprefix("/api"),
            query_string=url.query,
            headers={
                "X-Forwarded-For": f"{SPOOFED_ADDRESS}, {CLIENT_ADDRESS}",
                "X-Forwarded-Proto": url.scheme,
                "X-Forwarded-Host": url.hostname,
                "X-Forwarded-Port": str(url.port or 443),
                "X-Forwarded-Prefix": "/api",
            },
            environ_base={"REMOTE_ADDR": PROXY_ADDRESS},
        )


@pytest.fixture
def proxied(make_app):
    """A proxy in front of an app made with ``settings``, and a view saying where it ran."""

    def make(**settings):
        app = make_app(**settings)
        app.add_url_rule("/async/where", "async_where", async_api(where))
        return Proxy(app.test_client())

    return make


def test_a_trusted_proxy_gives_the_public_url_and_the_client_address(proxied, poll_done):
    proxy = proxied(PROXY_COUNT=1)
    public_url = "https://api.example.com/api/async/where"
    submitted = proxy.get(public_url)
    assert submitted.status_code == 202
    location = submitted.headers["Location"]
    assert location.startswith("/api/status/"), location
    status_url = urllib.parse.urljoin(public_url, location)
    assert status_url.startswith("https://api.example.com/api/status/")
    assert submitted.json["status_url"] == location

    done = poll_done(proxy, status_url)
    assert done.status_code == 200
    # The last proxy's word only: the client's own X-Forwarded-For entry is not believed.
    assert done.json == {"url": public_url, "remote_addr": CLIENT_ADDRESS}


def test_no_proxy_is_trusted_by_default(proxied, poll_done):
    proxy = proxied()
    submitted = proxy.get("https://api.example.com/api/async/where")
    assert submitted.status_code == 202
    location = submitted.headers["Location"]
    assert location.startswith("/status/"), location

    # The prefix is lost: the client would poll a URL that the proxy does not serve.
    done = poll_done(proxy, f"https://api.example.com/api{location}")
    assert done.status_code == 200
    assert done.json == {"url": "http://localhost/async/where", "remote_addr": PROXY_ADDRESS}


@pytest.mark.parametrize("value", [-1, "x", 1.5, True, None])
def test_a_bad_proxy_count_stops_the_app_naming_it(value):
    with pytest.raises(ConfigError, match=r"^PROXY_COUNT must be a whole number >= 0, got "):
        create_app({"SECRET_KEY": "x", "PROXY_COUNT": value})


@pytest.mark.parametrize("value", ["-1", "x"])
def test_a_bad_proxy_count_from_the_environment_names_it(monkeypatch, value):
    monkeypatch.setenv("FLASK_PROXY_COUNT", value)
    with pytest.raises(ConfigError, match=r"^PROXY_COUNT must be a whole number >= 0, got "):
        create_app({"SECRET_KEY": "x"})
