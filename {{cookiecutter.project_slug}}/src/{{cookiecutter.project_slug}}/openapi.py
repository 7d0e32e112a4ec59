"""The OpenAPI document and its page, told the truth about tasks.

``ProblemApi`` is flask-smorest's ``Api`` answering errors as problems;
``AsyncApiPlugin`` documents every ``@async_api`` operation as what it really
answers (a ``202`` and a task to poll); Swagger UI is served by the service
itself, from the flask-swagger-ui package, so the docs need no CDN.

flask-smorest ships no types. ``Blueprint`` is its blueprint with the types
of the decorators this service uses, so that a view under them stays
checkable; ``ProblemApi`` says the types of what it overrides.
"""

from __future__ import annotations

import copy
import http
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import flask
import flask_smorest  # type: ignore[import-untyped]
import flask_swagger_ui  # type: ignore[import-untyped]
from apispec import APISpec, BasePlugin
from flask import Flask, current_app, request, send_from_directory
from flask_smorest.utils import prepare_response  # type: ignore[import-untyped]
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from .schemas import TASK_STATUSES, HealthSchema, ProblemSchema, TaskMonitorSchema
from .settings import keep_environment_text
from .tasks.decorator import is_async_view
from .tasks.owners import MAX_IDEMPOTENCY_KEY_LENGTH
from .tasks.problems import PROBLEM_MIMETYPE, http_error_handler, problem_for_exception

# A piece of the OpenAPI document (an operation, a response, a schema): JSON.
Doc = dict[str, Any]

SWAGGER_UI_ASSETS = Path(flask_swagger_ui.__file__).parent / "dist"
# Swagger UI's own settings. Left at its default, validatorUrl sends the
# document's URL to validator.swagger.io from every browser that opens the
# page (on any host but localhost): the docs stay on this service.
SWAGGER_UI_CONFIG: Doc = {"validatorUrl": None}

{#- The name as ruff format writes a string: in double quotes, unless it has
    more double quotes than single ones. The pre-generation hook rejects
    control characters; every other character is written as typed. #}
{%- set name = cookiecutter.project_name | replace('\\', '\\\\') %}
{%- if name.count('"') > name.count("'") %}
{%- set title = "'" ~ (name | replace("'", "\\'")) ~ "'" %}
{%- else %}
{%- set title = '"' ~ (name | replace('"', '\\"')) ~ '"' %}
{%- endif %}

# flask-smorest's settings; each can be overridden like any other setting.
DEFAULTS = {
    "API_TITLE": {{ title }},
    "API_VERSION": {{ cookiecutter.version | tojson }},
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/docs",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/",
    # Relative to the page, so that the docs also work under a mount prefix.
    "OPENAPI_SWAGGER_UI_URL": "swagger-ui/",
    "OPENAPI_SWAGGER_UI_CONFIG": SWAGGER_UI_CONFIG,
}

# The header of an answer to a request held by Prefer: wait.
HELD: dict[str, str] = {"$ref": "#/components/headers/Preference-Applied"}
# The headers of an answer that says to poll again.
POLL_HEADER_NAMES = ("Location", "Retry-After", "Task-Status")
# What /metrics answers, unless its client asks for OpenMetrics.
METRICS_MIMETYPE = "text/plain; version=0.0.4"
# The security scheme of /metrics: METRICS_TOKEN as a bearer token.
METRICS_TOKEN_SCHEME = "MetricsToken"
# The operations a task's monitor links to (see routes.py).
STATUS_OPERATION = "get_task_status"
CANCEL_OPERATION = "cancel_task"


Decorated = TypeVar("Decorated", bound=Callable[..., Any])
Decorator = Callable[[Decorated], Decorated]


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]  # untyped
    """flask-smorest's ``Blueprint``, whose decorators keep the type of what they decorate.

    Use it as flask-smorest's own: it only adds types. (``@blp.arguments``
    adds an argument to the view, which a type cannot say: the view keeps
    its own signature, its body stays checked.)
    """

    if TYPE_CHECKING:

        def route(self, rule: str, **options: Any) -> Decorator[Any]: ...
        def arguments(self, schema: Any, **options: Any) -> Decorator[Any]: ...
        def response(
            self, status_code: int, schema: Any = None, **options: Any
        ) -> Decorator[Any]: ...
        def alt_response(
            self, status_code: int, response: Any = None, **options: Any
        ) -> Decorator[Any]: ...
        def doc(self, **options: Any) -> Decorator[Any]: ...
        def paginate(self, pager: Any = None, **options: Any) -> Decorator[Any]: ...

        @property
        def etag(self) -> Decorator[Any]: ...


class ProblemApi(flask_smorest.Api):  # type: ignore[misc]  # untyped
    """flask-smorest's ``Api``, answering and documenting errors as problems.

    Every error is ``application/problem+json`` whichever layer raised it, a
    ``405`` keeps its ``Allow`` header, and a request that fails validation
    says what was wrong in ``errors``.
    """

    ERROR_SCHEMA = ProblemSchema
    # A ``default`` response on every operation would document any status
    # code as expected; each operation lists the codes it answers instead.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def init_app(self, app: Flask, *, spec_kwargs: Mapping[str, Any] | None = None) -> None:
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        # Set in the environment, "1.0" is a version, not a number.
        keep_environment_text(app.config, DEFAULTS)
        # Settings of the page's own (deepLinking, say) keep the validator off.
        app.config["OPENAPI_SWAGGER_UI_CONFIG"] = {
            **SWAGGER_UI_CONFIG,
            **app.config["OPENAPI_SWAGGER_UI_CONFIG"],
        }
        spec_kwargs = dict(spec_kwargs or {})
        spec_kwargs["extra_plugins"] = [*spec_kwargs.get("extra_plugins", ()), AsyncApiPlugin(app)]
        super().init_app(app, spec_kwargs=spec_kwargs)
        app.extensions["openapi"] = self
        assets = swagger_ui_assets(app.config)
        if assets is not None:
            app.register_blueprint(assets)

    def handle_http_exception(self, error: HTTPException) -> Response:
        """Answer ``error`` as a problem, with what ``abort`` or webargs said about it.

        ``flask_smorest.abort(404, message="...")`` gives the problem's
        ``detail``, ``errors=...`` (or webargs' validation messages) its
        ``errors``, and ``headers=...`` the answer's headers.
        """
        response = http_error_handler(error)
        data = getattr(error, "data", None) or {}
        errors = data.get("errors", data.get("messages"))
        if "message" in data or errors:
            body = problem_for_exception(error)
            if "message" in data:
                body["detail"] = str(data["message"])
            if errors:
                body["errors"] = errors
            response.set_data(json.dumps(body))
        response.headers.update(data.get("headers") or {})
        return response

    def _openapi_json(self) -> Response:
        """The document, naming as its server the URL it was reached under.

        Behind a mount prefix, Swagger UI's "Try it out" then calls the
        operations under that prefix too.
        """
        document: Doc = self.spec.to_dict()
        document.setdefault("servers", [{"url": request.script_root or "/"}])
        return current_app.response_class(
            json.dumps(document, indent=2), mimetype="application/json"
        )

    def _register_responses(self) -> None:
        """Name each status's response, as flask-smorest does, errors as problems."""
        for status in http.HTTPStatus:
            response: Doc = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)


def api_of(app: Flask) -> ProblemApi:
    """The app's ``ProblemApi``: ``api_of(app).register_blueprint(blp)`` documents ``blp``."""
    return cast(ProblemApi, app.extensions["openapi"])


def swagger_ui_assets(config: Mapping[str, Any]) -> flask.Blueprint | None:
    """A blueprint serving Swagger UI's files beside the docs page, and the site's icon.

    The page names its files relative to itself, so that it also works under
    a mount prefix. It names no icon, so a browser asks for ``/favicon.ico``:
    it gets Swagger UI's, instead of reaching a catch-all route. None when
    the settings turn the page off.
    """
    prefix, page = config["OPENAPI_URL_PREFIX"], config["OPENAPI_SWAGGER_UI_PATH"]
    if prefix is None or page is None:
        return None
    page_url = f"/{prefix.strip('/')}/{page.lstrip('/')}".replace("//", "/")
    folder_url = page_url[: page_url.rfind("/") + 1]
    assets = flask.Blueprint(
        "swagger_ui",
        __name__,
        static_folder=SWAGGER_UI_ASSETS,
        static_url_path=folder_url + config["OPENAPI_SWAGGER_UI_URL"].strip("/"),
    )

    @assets.get("/favicon.ico")
    def favicon() -> Response:
        return send_from_directory(SWAGGER_UI_ASSETS, "favicon-32x32.png")

    return assets


def problem_doc(description: str, headers: Doc | None = None) -> Doc:
    """A problem answer (``application/problem+json``) saying ``description``."""
    response: Doc = {
        "description": description,
        "content": {PROBLEM_MIMETYPE: {"schema": ref("schemas", "Problem")}},
    }
    if headers:
        response["headers"] = headers
    return response


class AsyncApiPlugin(BasePlugin):
    """Documents ``@async_api`` operations as what they answer, with no work from the view.

    Such an operation answers ``202`` with a task to poll, or a problem
    (``400``, ``409``, ``413``, ``503``); what the view itself answers (its
    ``@blp.response``) comes later, from the status URL. So that answer moves
    to the status operation, and the ``202`` says where it went.

    apispec runs this after the marshmallow plugin: schemas are already
    references, and new ones are named by their component name.
    """

    def __init__(self, app: Flask) -> None:
        super().__init__()
        self.app = app
        self.status_operation: Doc | None = None  # GET /status/{task_id}, once documented
        self.task_answers: list[tuple[str, Doc]] = []  # what async operations moved there
        self.operation_ids: set[str] = set()

    def init_spec(self, spec: APISpec) -> None:
        super().init_spec(spec)
        self.spec = spec
        spec.components.schema("Problem", schema=ProblemSchema)
        spec.components.schema("TaskMonitor", schema=TaskMonitorSchema)
        spec.components.schema("Health", schema=HealthSchema)
        spec.components.header(
            "Location", {"description": "The status URL of the task.", "schema": {"type": "string"}}
        )
        spec.components.header(
            "Retry-After",
            {"description": "Seconds to wait before asking again.", "schema": {"type": "integer"}},
        )
        spec.components.header(
            "Task-Status",
            {
                "description": "Where the task stands (every answer about a known task has it).",
                "schema": {"type": "string", "enum": list(TASK_STATUSES)},
            },
        )
        spec.components.header(
            "WWW-Authenticate",
            {"description": "How to authenticate: Bearer.", "schema": {"type": "string"}},
        )
        spec.components.security_scheme(
            METRICS_TOKEN_SCHEME,
            {
                "type": "http",
                "scheme": "bearer",
                "description": "The METRICS_TOKEN setting; /metrics needs it only when it is set.",
            },
        )
        spec.components.header(
            "Preference-Applied",
            {
                "description": "`wait=N`: the request asked to wait (`Prefer: wait`) and was"
                " held up to N seconds for the task to be done.",
                "schema": {"type": "string"},
            },
        )
        spec.components.header(
            "Content-Location",
            {
                "description": "The status URL of the task whose answer this is.",
                "schema": {"type": "string"},
            },
        )
        spec.components.parameter(
            "Prefer",
            "header",
            {
                "description": "`wait=N` (RFC 7240): hold the answer up to N seconds (at most"
                " the service's TASK_MAX_WAIT) until the task is done, and answer as its status"
                " then would; `respond-async` beside it changes nothing. Past the service's"
                " TASK_MAX_WAITING held requests, it answers at once.",
                "required": False,
                "schema": {"type": "string"},
                "example": "wait=10",
            },
        )
        spec.components.parameter(
            "Idempotency-Key",
            "header",
            {
                "description": "Repeat a submit safely: the same key (for the same owner) answers"
                " the task it started, as long as that task is kept.",
                "required": False,
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH,
                },
            },
        )

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Doc] | None = None, **kwargs: Any
    ) -> None:
        rule: Rule | None = kwargs.get("rule")
        if rule is None or operations is None:
            return
        view = self.app.view_functions[rule.endpoint]
        for method, operation in operations.items():
            handler = handler_of(view, method)
            declare_bodies(handler, operation)
            self.name_operation(operation, method, rule)
            if operation["operationId"] == STATUS_OPERATION:
                self.status_operation = operation
                operation.setdefault("parameters", []).append("Prefer")  # by component name
                for answer in operation.get("responses", {}).values():
                    if isinstance(answer, dict):
                        answer.setdefault("headers", {})["Preference-Applied"] = HELD
                for code, answer in self.task_answers:
                    self.add_task_answer(code, answer)
            elif is_async_view(view, method.upper()):
                refuse_async_above_arguments(handler, method, rule.rule)
                for code, answer in self.document_async(operation):
                    self.task_answers.append((code, answer))
                    if self.status_operation is not None:
                        self.add_task_answer(code, answer)

    def name_operation(self, operation: Doc, method: str, rule: Rule) -> None:
        """Give ``operation`` an ``operationId``, unless its view gives one.

        flask-smorest gives none, and a client generator names its functions
        after them: ``get_example_answer`` for GET on the endpoint
        ``example.Answer``, so the name stays as long as the view's does. An
        endpoint served at several paths adds the path's words.
        """
        name = operation.get("operationId")
        if name is None:
            name = snake_case(f"{method} {rule.endpoint}")
            if name in self.operation_ids:
                name = snake_case(f"{name} {rule.rule}")
            if name in self.operation_ids:
                raise TypeError(
                    f"{method.upper()} {rule.rule}: give it an operationId of its own"
                    " (@blp.doc(operationId=...)), its derived one is taken"
                )
            operation["operationId"] = name
        self.operation_ids.add(name)

    def document_async(self, operation: Doc) -> list[tuple[str, Doc]]:
        """Answer ``202`` and the submit's problems; return the answers that move away."""
        responses = by_code(operation.get("responses", {}))
        answers = {code: responses.pop(code) for code in list(responses) if is_success(code)}
        # Errors the view documents may come at the submit (from a
        # before_request) as well as from the task: they stay, and the status
        # operation lists them too. 422 only ever comes at the submit.
        errors = {code: response for code, response in responses.items() if code != "422"}
        responses["202"] = self.accepted(answers)
        # With Prefer: wait, a task done in time answers the view's own answer here.
        for code, answer in answers.items():
            if code != "202":
                responses[code] = self.answered_when_held(answer)
        responses.setdefault(
            "400",
            problem_doc(
                "A bad request: an Idempotency-Key that is empty or too long, or a body that"
                " cannot be read."
            ),
        )
        responses.setdefault(
            "409", problem_doc("This Idempotency-Key came with a different request.")
        )
        responses.setdefault("413", problem_doc("The request body is too large."))
        responses.setdefault(
            "503",
            problem_doc(
                "No room for another task, or the task store cannot be reached: try again"
                " after Retry-After seconds.",
                {"Retry-After": ref("headers", "Retry-After")},
            ),
        )
        operation["responses"] = responses
        # By component name.
        operation.setdefault("parameters", []).extend(["Idempotency-Key", "Prefer"])
        return [
            (code, self.resolved(answer)) for code, answer in [*answers.items(), *errors.items()]
        ]

    def accepted(self, answers: Mapping[str, Doc | str]) -> Doc:
        """The ``202`` of an async operation, saying where its own answers come from."""
        later = ", ".join(
            f"{code} ({describe(self.resolved(response))})" for code, response in answers.items()
        )
        description = (
            "Accepted: the request is a task now. Poll `Location` (the status operation) while it"
            " answers 202; once the task is done it answers what this operation answers"
            + (f": {later}." if later else ".")
        )
        return {
            "description": description,
            "headers": {
                **{name: ref("headers", name) for name in POLL_HEADER_NAMES},
                "Preference-Applied": HELD,
            },
            "content": {"application/json": {"schema": ref("schemas", "TaskMonitor")}},
            "links": {
                "status": {
                    "operationId": STATUS_OPERATION,
                    "parameters": {"task_id": "$response.body#/id"},
                    "description": "Poll the task.",
                },
                "cancel": {
                    "operationId": CANCEL_OPERATION,
                    "parameters": {"task_id": "$response.body#/id"},
                    "description": "Cancel the task, or forget it once done.",
                },
            },
        }

    def answered_when_held(self, answer: Doc | str) -> Doc:
        """A view's own answer, as the submit gives it when it was held until the task was done."""
        written = self.resolved(answer)
        written["description"] = (
            f"With `Prefer: wait`, once the task is done in time: {describe(written)}"
        )
        written.setdefault("headers", {}).update(
            {
                "Task-Status": ref("headers", "Task-Status"),
                "Content-Location": ref("headers", "Content-Location"),
                "Preference-Applied": HELD,
            }
        )
        return written

    def resolved(self, response: Doc | str) -> Doc:
        """``response`` written out: a named one (``"NOT_FOUND"``) is looked up."""
        if isinstance(response, dict) and "$ref" in response:
            response = str(response["$ref"]).rsplit("/", 1)[-1]
        if isinstance(response, str):
            self.spec.components.get_ref("response", response)  # registers a lazy one
            response = self.spec.components.responses[response]
        written: Doc = copy.deepcopy(response)
        for name, header in written.get("headers", {}).items():
            if isinstance(header, str):
                written["headers"][name] = ref("headers", header)
        return written

    def add_task_answer(self, code: str, answer: Doc) -> None:
        """Document under the status operation that a finished task may answer ``answer``."""
        assert self.status_operation is not None  # called once it is documented
        responses = by_code(self.status_operation.get("responses", {}))
        documented: Doc | None = responses.get(code)
        if documented is None:
            documented = {
                "description": f"The answer of the operation that made the task: {describe(answer)}"
            }
        else:
            documented = self.resolved(documented)
        merge_content(documented, answer)
        # Every answer about a known task says where it stands.
        headers = {
            "Task-Status": ref("headers", "Task-Status"),
            "Preference-Applied": HELD,
            **answer.get("headers", {}),
        }
        for name, header in headers.items():
            documented.setdefault("headers", {}).setdefault(name, header)
        responses[code] = documented
        self.status_operation["responses"] = responses


def merge_content(documented: Doc, answer: Doc) -> None:
    """Let ``documented`` say, for each content type, that its body may also be ``answer``'s."""
    for content_type, media in answer.get("content", {}).items():
        if "schema" not in media:
            continue
        target = documented.setdefault("content", {}).setdefault(content_type, {})
        schemas = target.setdefault("schema", {"anyOf": []})
        if "anyOf" not in schemas:
            target["schema"] = schemas = {"anyOf": [schemas]}
        if media["schema"] not in schemas["anyOf"]:
            schemas["anyOf"].append(media["schema"])
    # A client generator reads a status code's first content type that it
    # knows. A file first is read as bytes, and a JSON answer under the same
    # code (a cancelled task's monitor) still arrives, as bytes; JSON first
    # would decode a file as text and crash.
    if "content" in documented:
        documented["content"] = dict(
            sorted(documented["content"].items(), key=lambda item: is_json(item[0]))
        )


def declare_bodies(handler: Callable[..., Any], operation: Doc) -> None:
    """Document the body of each answer the view gives a content type and no schema.

    flask-smorest drops such a content type (``@blp.response(200,
    content_type="application/pdf")``, for a view that returns a file), and
    a client generator would then know nothing of the body.
    """
    declared = getattr(handler, "_apidoc", {}).get("response", {}).get("responses", {})
    responses = by_code(operation.get("responses", {}))
    for code, docs in by_code(declared).items():
        response = responses.get(code)
        if not isinstance(response, dict):
            continue  # a named response, documented where it is defined
        for doc in docs if isinstance(docs, list) else []:
            content_type = doc.get("content_type") if isinstance(doc, dict) else None
            if content_type is not None and "schema" not in doc:
                media = response.setdefault("content", {}).setdefault(content_type, {})
                media.setdefault("schema", body_schema(content_type))
    operation["responses"] = responses


def body_schema(content_type: str) -> Doc:
    """The schema of a body of ``content_type`` whose view says nothing more of it."""
    if is_json(content_type):
        return {}
    if content_type.startswith("text/"):
        return {"type": "string"}
    # What client generators read as a file (bytes), as OpenAPI 3.1 still allows.
    return {"type": "string", "format": "binary"}


def is_json(content_type: str) -> bool:
    """Whether ``content_type`` is JSON (``application/json``, ``application/problem+json``)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def snake_case(text: str) -> str:
    """``get_example_answer`` for ``get example.Answer``: a name for a client's function."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text)
    return re.sub(r"[^0-9A-Za-z]+", "_", words).strip("_").lower()


def ref(kind: str, name: str) -> Doc:
    """A reference to the component ``name`` of ``kind`` (``"schemas"``, ``"headers"``)."""
    return {"$ref": f"#/components/{kind}/{name}"}


def by_code(responses: Mapping[Any, Any]) -> dict[str, Any]:
    """Responses keyed by status code as text, as the document writes them."""
    # int() first: an HTTPStatus would print its name on Python 3.10.
    return {
        str(int(code)) if isinstance(code, int) else str(code): response
        for code, response in responses.items()
    }


def is_success(code: str) -> bool:
    """Whether a documented status code (``"200"``, ``"2XX"``) is not an error."""
    return code[:1] in ("1", "2", "3")


def describe(response: Doc) -> str:
    return str(response.get("description", ""))


def handler_of(view: Callable[..., Any], method: str) -> Callable[..., Any]:
    """What runs ``method`` on ``view``: a ``MethodView``'s method, or the function itself."""
    handler = getattr(getattr(view, "view_class", None), method.lower(), None)
    return cast(Callable[..., Any], handler) if callable(handler) else view


def refuse_async_above_arguments(handler: Callable[..., Any], method: str, rule: str) -> None:
    """Stop at start when ``@async_api`` is above ``@blp.arguments`` on an operation.

    Bad input would then become a task that fails later, while the document
    promises a 422 at the submit.
    """
    wrapper: Callable[..., Any] | None = handler
    while wrapper is not None:
        # Decorators inside @async_api's wrapper do not carry its mark.
        if not getattr(wrapper, "async_api", False) and "arguments" in getattr(
            wrapper, "_apidoc", {}
        ):
            raise TypeError(
                f"{method.upper()} {rule}: put @async_api under @blp.arguments (innermost),"
                " so that bad input is refused before a task is made"
            )
        wrapper = getattr(wrapper, "__wrapped__", None)
