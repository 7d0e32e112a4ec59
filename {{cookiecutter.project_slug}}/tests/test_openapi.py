"""The OpenAPI document at /docs/openapi.json, the docs page, and the service held to both.

schemathesis generates requests from the served document and checks every
answer against it, with its default checks.
"""

import json
import re
import uuid
from urllib.parse import urljoin, urlsplit

import marshmallow as ma
import pytest
import schemathesis
from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from helpers import wait_for
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate

from {{ cookiecutter.project_slug }} import async_api, create_app, current_task
from {{ cookiecutter.project_slug }}.openapi import api_of
from {{ cookiecutter.project_slug }}.schemas import WholeNumber
from {{ cookiecutter.project_slug }}.tasks import task_engine
from {{ cookiecutter.project_slug }}.tasks.decorator import is_async_view

# A view of the tests' own, documented by nothing but its decorators.
# Its names are the tests' own: a user's Report view or schema must not clash with them.
test_jobs = Blueprint("test_jobs", __name__, description="A view the tests add.")


class ProbeJobRequestSchema(ma.Schema):
    # Bounded, so that schemathesis also sends whole numbers written 3.0.
    rows = ma.fields.List(WholeNumber(validate=ma.validate.Range(min=0)), required=True)


class ProbeJobSchema(ma.Schema):
    name = ma.fields.String(required=True)
    rows = ma.fields.Integer(required=True)


@test_jobs.route("/test-jobs/<name>")
class ProbeJob(MethodView):
    @test_jobs.arguments(ProbeJobRequestSchema)
    @test_jobs.response(201, ProbeJobSchema)
    @async_api
    def post(self, body, name):
        if name == "reporting":
            current_task.report(12.5, "an eighth")
        if name in ("held", "reporting"):
            current_app.extensions["test_gate"].hold()
        return {"name": name, "rows": len(body["rows"])}


# Not UTF-8: a client that reads it as text fails.
FILE_BYTES = bytes(range(256))


@test_jobs.route("/test-files/<name>")
class ProbeFile(MethodView):
    @test_jobs.response(200, content_type="application/octet-stream", description="The file.")
    @test_jobs.alt_response(201, content_type="text/csv", description="As CSV.", success=True)
    @async_api
    def get(self, name):
        if name == "csv":
            return Response("a,b\n1,2\n", 201, mimetype="text/csv")
        return Response(FILE_BYTES, mimetype="application/octet-stream")


def with_test_jobs(app):
    api_of(app).register_blueprint(test_jobs)
    return app


def document_app():
    return with_test_jobs(create_app({"SECRET_KEY": "test-secret"}))


# schemathesis reads the document when this module loads, from an app that
# serves it and runs nothing; the tests then call an app whose tasks run.
_app = document_app()
schema = schemathesis.openapi.from_wsgi("/docs/openapi.json", _app)
with _app.app_context():
    task_engine().shutdown()

SCHEMATHESIS_SETTINGS = settings(
    max_examples=40,
    derandomize=True,  # the same requests on every run: a failure here is never luck
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def owner_per_idempotency_key(request):
    """Give each request with an Idempotency-Key an owner of its own.

    schemathesis repeats keys across different requests, which would answer
    409 instead of what is being checked. Requests without a key have no
    owner, so that a submit's status URL can still be followed.
    """
    return uuid.uuid4().hex if "Idempotency-Key" in request.headers else None


@pytest.fixture
def checked_app(make_app, gate):
    # Tasks finish at once, the queue never fills (a 503 would hide the rest),
    # and a generated Prefer: wait holds a request a second at most.
    app = with_test_jobs(
        make_app(EXAMPLE_TASK_SECONDS=0.001, TASK_MAX_QUEUED=1000, TASK_MAX_WAIT=1)
    )
    with app.app_context():
        task_engine().owner_loader(owner_per_idempotency_key)
    app.extensions["test_gate"] = gate  # where POST /test-jobs/held waits
    return app


@pytest.fixture
def document():
    app = document_app()
    yield app.test_client().get("/docs/openapi.json").get_json()
    with app.app_context():
        task_engine().shutdown()


def test_the_document_is_valid_openapi(document):
    validate(document)
    assert document["openapi"].startswith("3.")


def openapi_path(rule):
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)


def async_operations(app):
    """``(path, method)`` of every ``@async_api`` view of ``app``, as the document names them."""
    return {
        (openapi_path(rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
        if is_async_view(app.view_functions[rule.endpoint], method)
    }


def resolved(document, item):
    """``item``, or what its ``$ref`` names."""
    while "$ref" in item:
        *_, kind, name = item["$ref"].split("/")
        item = document["components"][kind][name]
    return item


def test_every_async_operation_documents_what_it_answers(document):
    operations = async_operations(document_app())
    assert ("/test-jobs/{name}", "post") in operations
    problem = {"$ref": "#/components/schemas/Problem"}
    for path, method in operations:
        responses = document["paths"][path][method]["responses"]
        accepted = responses["202"]
        assert set(accepted["headers"]) == {
            "Location",
            "Retry-After",
            "Task-Status",
            "Preference-Applied",
        }
        assert accepted["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/TaskMonitor"
        }
        assert accepted["links"]["status"]["operationId"] == "get_task_status"
        for code in ("400", "409", "503"):
            content = resolved(document, responses[code])["content"]
            assert content["application/problem+json"]["schema"] == problem
        # The view's own answers come from the status URL, or from the call
        # itself when it asked to wait (Prefer: wait) and the task was done in time.
        for code in responses:
            if code.startswith("2") and code != "202":
                assert responses[code]["description"].startswith("With `Prefer: wait`")
                assert {"Content-Location", "Preference-Applied", "Task-Status"} <= set(
                    responses[code]["headers"]
                )
        parameters = document["paths"][path][method]["parameters"]
        assert {"$ref": "#/components/parameters/Idempotency-Key"} in parameters
        assert {"$ref": "#/components/parameters/Prefer"} in parameters


def test_a_users_view_is_documented_by_its_decorators(document):
    job = document["paths"]["/test-jobs/{name}"]["post"]
    body = job["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ProbeJobRequest"}
    invalid = resolved(document, job["responses"]["422"])
    assert "application/problem+json" in invalid["content"]
    assert "201" in job["responses"]["202"]["description"]
    # Its own answer, 201, is documented where it comes from: the status URL.
    status = document["paths"]["/status/{task_id}"]["get"]["responses"]
    answers = status["201"]["content"]["application/json"]["schema"]["anyOf"]
    assert {"$ref": "#/components/schemas/ProbeJob"} in answers


def test_every_operation_has_an_operation_id_of_its_own(document):
    """Client generators name their functions after them."""
    ids = [
        operation.get("operationId")
        for item in document["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
    ]
    assert None not in ids
    assert len(ids) == len(set(ids))
    # Made from the view's endpoint: they stay as long as the view's name does.
    assert document["paths"]["/test-jobs/{name}"]["post"]["operationId"] == (
        "post_test_jobs_probe_job"
    )
    assert document["paths"]["/test-files/{name}"]["get"]["operationId"] == (
        "get_test_jobs_probe_file"
    )


def test_a_file_answer_is_documented_as_a_file(document):
    """A view that names its content type and no schema: a client reads the body as bytes."""
    status = document["paths"]["/status/{task_id}"]["get"]["responses"]
    content = status["200"]["content"]
    # A generated client reads a status code's first content type it knows.
    assert next(iter(content)) == "application/octet-stream"
    file = {"type": "string", "format": "binary"}
    assert file in content["application/octet-stream"]["schema"]["anyOf"]
    assert {"type": "string"} in status["201"]["content"]["text/csv"]["schema"]["anyOf"]
    accepted = document["paths"]["/test-files/{name}"]["get"]["responses"]["202"]
    assert "200" in accepted["description"]


def test_the_status_operations_document_every_answer(document):
    paths = document["paths"]
    status = paths["/status/{task_id}"]
    assert {"200", "202", "404"} <= set(status["get"]["responses"])
    assert {"200", "202", "204", "404"} <= set(status["delete"]["responses"])
    # A cancelled task's monitor, or the answer of the operation that made the task.
    done = status["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/TaskMonitor"} in done.get("anyOf", [done])
    assert set(paths["/health"]["get"]["responses"]) == {"200", "503"}
    # A poll may wait for the task's end, and says when it did.
    assert {"$ref": "#/components/parameters/Prefer"} in status["get"]["parameters"]
    for answer in status["get"]["responses"].values():
        assert "Preference-Applied" in resolved(document, answer).get("headers", {})


def test_the_metrics_are_documented_with_their_token(document):
    metrics = document["paths"]["/metrics"]["get"]
    assert set(metrics["responses"]) == {"200", "401"}
    assert "WWW-Authenticate" in metrics["responses"]["401"]["headers"]
    # The token is asked for only when METRICS_TOKEN is set.
    assert metrics["security"] == [{"MetricsToken": []}, {}]
    scheme = document["components"]["securitySchemes"]["MetricsToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_the_service_serves_the_document_schemathesis_reads(checked_app, document):
    assert checked_app.test_client().get("/docs/openapi.json").get_json() == document
    assert schema.raw_schema == document


@pytest.mark.parametrize("mount", ["", "/api"])
def test_the_document_names_the_url_it_was_reached_under(client, mount):
    """So that Swagger UI's "Try it out" calls the operations under a mount prefix too."""
    document = client.get("/docs/openapi.json", base_url=f"http://localhost{mount}/").get_json()
    assert document["servers"] == [{"url": mount or "/"}]


def test_document_settings_from_the_environment_stay_text(monkeypatch):
    monkeypatch.setenv("FLASK_API_VERSION", "1.0")
    monkeypatch.setenv("FLASK_OPENAPI_VERSION", "3.1.0")
    app = create_app({"SECRET_KEY": "test-secret"})
    try:
        document = app.test_client().get("/docs/openapi.json").get_json()
    finally:
        with app.app_context():
            task_engine().shutdown()
    assert document["info"]["version"] == "1.0"
    validate(document)


def swagger_ui_config(page):
    """The settings the docs page hands Swagger UI."""
    return json.loads(re.search(r"override_config = (.*);", page).group(1))


@pytest.mark.parametrize("config", [None, {"deepLinking": True}])
def test_the_docs_page_sends_the_document_to_no_online_validator(make_app, config):
    """Swagger UI's default validatorUrl would show every reader's browser the
    validator.swagger.io badge, with the document's URL, on any host but localhost."""
    app = make_app(**({} if config is None else {"OPENAPI_SWAGGER_UI_CONFIG": config}))
    page = app.test_client().get("/docs/", base_url="https://api.example.com/")
    settings = swagger_ui_config(page.get_data(as_text=True))
    assert "validatorUrl" in settings
    assert settings["validatorUrl"] is None
    assert settings.items() >= (config or {}).items()


def asset_urls(page):
    return re.findall(r'(?:src|href)="([^"]+)"', page)


@pytest.mark.parametrize(
    ("mount", "page_path"), [("", "/docs/"), ("/api", "/docs/"), ("", "/docs/ui/")]
)
def test_the_docs_page_needs_nothing_from_outside(make_app, held_tasks, mount, page_path):
    app = make_app(OPENAPI_SWAGGER_UI_PATH=page_path.removeprefix("/docs"))
    client = app.test_client()
    base = f"http://localhost{mount}/"
    page = client.get(page_path, base_url=base)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert not re.search(r"https?://", html)
    urls = asset_urls(html)
    assert len(urls) == 3  # Swagger UI's stylesheet and its two scripts
    spec_url = re.search(r'url: "([^"]+)"', html).group(1)
    for url in [*urls, spec_url]:
        path = urlsplit(urljoin(f"{base}{page_path.lstrip('/')}", url)).path
        assert path.startswith(f"{mount}/docs/")
        with client.get(path.removeprefix(mount), base_url=base) as asset:
            assert asset.status_code == 200
    # A browser also asks for the site's icon: it gets one, and no task starts.
    with client.get("/favicon.ico", base_url=base) as icon:
        assert (icon.status_code, icon.content_type) == (200, "image/png")
    assert held_tasks(app) == 0


# The example's GET /{path} takes every path, so GET works on every other
# path too, and a 405 or OPTIONS there rightly names GET in Allow. These two
# checks read each path of the document alone and would call that GET
# undocumented; they run once the example is removed.
OVERLAP_CHECKS = (
    [schemathesis.checks.allow_header_conformance, schemathesis.checks.unsupported_method]
    if "/{path}" in schema.raw_schema["paths"]
    else []
)


@schema.parametrize()
@SCHEMATHESIS_SETTINGS
def test_each_operation_answers_as_documented(case, checked_app):
    case.call_and_validate(app=checked_app, excluded_checks=OVERLAP_CHECKS)


def call(checked_app, operation, **parts):
    """Call ``operation`` (``"GET /status/{task_id}"``); schemathesis checks the answer."""
    method, path = operation.split(" ")
    case = schema[path][method].Case(**parts)
    return case.call_and_validate(app=checked_app, excluded_checks=OVERLAP_CHECKS)


def poll_until_done(checked_app, task):
    """Poll the status operation, checking each answer, until it stops answering 202."""
    answers = []

    def done():
        answers.append(call(checked_app, "GET /status/{task_id}", path_parameters=task))
        return answers[-1].status_code != 202

    wait_for(done, what="the task's end")
    return answers[-1]


def test_a_task_answers_as_documented_through_its_life(checked_app, gate):
    """Generated ids are unknown ones: this walks a real task through the status operations."""
    submitted = call(
        checked_app,
        "POST /test-jobs/{name}",
        path_parameters={"name": "held"},
        body={"rows": [1, 2]},
        media_type="application/json",
    )
    assert submitted.status_code == 202
    task = {"task_id": submitted.json()["id"]}
    gate.wait_entered()
    assert call(checked_app, "GET /status/{task_id}", path_parameters=task).status_code == 202
    assert call(checked_app, "DELETE /status/{task_id}", path_parameters=task).status_code == 202
    gate.open()
    cancelled = poll_until_done(checked_app, task)
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert call(checked_app, "DELETE /status/{task_id}", path_parameters=task).status_code == 204
    assert call(checked_app, "GET /status/{task_id}", path_parameters=task).status_code == 404


def test_a_finished_tasks_own_answer_is_documented(checked_app):
    submitted = call(
        checked_app,
        "POST /test-jobs/{name}",
        path_parameters={"name": "q3"},
        body={"rows": [1, 2, 3]},
        media_type="application/json",
    )
    answer = poll_until_done(checked_app, {"task_id": submitted.json()["id"]})
    assert (answer.status_code, answer.json()) == (201, {"name": "q3", "rows": 3})


def test_a_tasks_fractional_progress_is_documented(checked_app, gate):
    submitted = call(
        checked_app,
        "POST /test-jobs/{name}",
        path_parameters={"name": "reporting"},
        body={"rows": [1]},
        media_type="application/json",
    )
    task = {"task_id": submitted.json()["id"]}
    gate.wait_entered()
    running = call(checked_app, "GET /status/{task_id}", path_parameters=task)
    assert running.json()["progress"] == {"percent": 12.5, "message": "an eighth"}
    gate.open()
    assert poll_until_done(checked_app, task).status_code == 201


def test_a_whole_number_written_with_a_fraction_is_taken(checked_app):
    """JSON Schema's integer admits 3.0, so the document does: the view takes it as 3."""
    submitted = call(
        checked_app,
        "POST /test-jobs/{name}",
        path_parameters={"name": "floats"},
        body={"rows": [1, 3.0]},
        media_type="application/json",
    )
    answer = poll_until_done(checked_app, {"task_id": submitted.json()["id"]})
    assert answer.json() == {"name": "floats", "rows": 2}


@pytest.mark.parametrize("row", [2.5, "3", True])
def test_what_is_no_whole_number_is_refused_at_the_submit(checked_app, row):
    answer = checked_app.test_client().post("/test-jobs/bad", json={"rows": [row]})
    assert answer.status_code == 422
    assert answer.get_json()["errors"] == {"json": {"rows": {"0": ["Not a valid integer."]}}}


@pytest.mark.parametrize(
    ("name", "content_type"), [("f", "application/octet-stream"), ("csv", "text/csv")]
)
def test_a_task_answering_a_file_answers_as_documented(checked_app, name, content_type):
    submitted = call(checked_app, "GET /test-files/{name}", path_parameters={"name": name})
    answer = poll_until_done(checked_app, {"task_id": submitted.json()["id"]})
    (answered_type,) = answer.headers["content-type"]
    assert answered_type.startswith(content_type)
    if name == "f":
        assert answer.content == FILE_BYTES
