"""The OpenAPI document and its page, told the truth about tasks.

``ProblemApi`` is flask-smorest's ``Api`` answering errors as problems;
``AsyncApiPlugin`` documents every ``@async_api`` operation as what it really
answers (a ``202`` and a task to poll); Swagger UI is served by the service
itself, from the flask-swagger-ui package, so the docs need no CDN.
"""

import copy
import http
import json
from pathlib import Path

import flask_swagger_ui
from apispec import BasePlugin
from flask import Blueprint, current_app, request, send_from_directory
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from .schemas import TASK_STATUSES, HealthSchema, ProblemSchema, TaskMonitorSchema
from .settings import keep_environment_text
from .tasks.decorator import is_async_view
from .tasks.owners import MAX_IDEMPOTENCY_KEY_LENGTH
from .tasks.problems import PROBLEM_MIMETYPE, http_error_handler, problem_for_exception

SWAGGER_UI_ASSETS = Path(flask_swagger_ui.__file__).parent / "dist"

# flask-smorest's settings; each can be overridden like any other setting.
DEFAULTS = {
    "API_TITLE": {{ cookiecutter.project_name | tojson }},
    "API_VERSION": {{ cookiecutter.version | tojson }},
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/docs",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/",
    # Relative to the page, so that the docs also work under a mount prefix.
    "OPENAPI_SWAGGER_UI_URL": "swagger-ui/",
}

# The headers of an answer that says to poll again.
POLL_HEADER_NAMES = ("Location", "Retry-After", "Task-Status")
# The operations a task's monitor links to (see routes.py).
STATUS_OPERATION = "get_task_status"
CANCEL_OPERATION = "cancel_task"


class ProblemApi(Api):
    """flask-smorest's ``Api``, answering and documenting errors as problems.

    Every error is ``application/problem+json`` whichever layer raised it, a
    ``405`` keeps its ``Allow`` header, and a request that fails validation
    says what was wrong in ``errors``.
    """

    ERROR_SCHEMA = ProblemSchema
    # A ``default`` response on every operation would document any status
    # code as expected; each operation lists the codes it answers instead.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def init_app(self, app, *, spec_kwargs=None):
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        # Set in the environment, "1.0" is a version, not a number.
        keep_environment_text(app.config, DEFAULTS)
        spec_kwargs = dict(spec_kwargs or {})
        spec_kwargs["extra_plugins"] = [*spec_kwargs.get("extra_plugins", ()), AsyncApiPlugin(app)]
        super().init_app(app, spec_kwargs=spec_kwargs)
        app.extensions["openapi"] = self
        assets = swagger_ui_assets(app.config)
        if assets is not None:
            app.register_blueprint(assets)

    def handle_http_exception(self, error):
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

    def _openapi_json(self):
        """The document, naming as its server the URL it was reached under.

        Behind a mount prefix, Swagger UI's "Try it out" then calls the
        operations under that prefix too.
        """
        document = self.spec.to_dict()
        document.setdefault("servers", [{"url": request.script_root or "/"}])
        return current_app.response_class(
            json.dumps(document, indent=2), mimetype="application/json"
        )

    def _register_responses(self):
        """Name each status's response, as flask-smorest does, errors as problems."""
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)


def api_of(app):
    """The app's ``ProblemApi``: ``api_of(app).register_blueprint(blp)`` documents ``blp``."""
    return app.extensions["openapi"]


def swagger_ui_assets(config):
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
    assets = Blueprint(
        "swagger_ui",
        __name__,
        static_folder=SWAGGER_UI_ASSETS,
        static_url_path=folder_url + config["OPENAPI_SWAGGER_UI_URL"].strip("/"),
    )

    @assets.get("/favicon.ico")
    def favicon():
        return send_from_directory(SWAGGER_UI_ASSETS, "favicon-32x32.png")

    return assets


def problem_doc(description, headers=None):
    response = {
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

    def __init__(self, app):
        super().__init__()
        self.app = app
        self.status_operation = None  # GET /status/{task_id}, once documented
        self.task_answers = []  # (status code, response) async operations moved there

    def init_spec(self, spec):
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

    def operation_helper(self, path=None, operations=None, **kwargs):
        rule = kwargs.get("rule")
        view = self.app.view_functions.get(rule.endpoint) if rule is not None else None
        for method, operation in operations.items():
            if operation.get("operationId") == STATUS_OPERATION:
                self.status_operation = operation
                for code, answer in self.task_answers:
                    self.add_task_answer(code, answer)
            elif view is not None and is_async_view(view, method.upper()):
                refuse_async_above_arguments(view, method, rule.rule)
                for code, answer in self.document_async(operation):
                    self.task_answers.append((code, answer))
                    if self.status_operation is not None:
                        self.add_task_answer(code, answer)

    def document_async(self, operation):
        """Answer ``202`` and the submit's problems; return the answers that move away."""
        responses = by_code(operation.get("responses", {}))
        answers = {code: responses.pop(code) for code in list(responses) if is_success(code)}
        # Errors the view documents may come at the submit (from a
        # before_request) as well as from the task: they stay, and the status
        # operation lists them too. 422 only ever comes at the submit.
        errors = {code: response for code, response in responses.items() if code != "422"}
        responses["202"] = self.accepted(answers)
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
        operation.setdefault("parameters", []).append("Idempotency-Key")  # by component name
        return [
            (code, self.resolved(answer)) for code, answer in [*answers.items(), *errors.items()]
        ]

    def accepted(self, answers):
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
            "headers": {name: ref("headers", name) for name in POLL_HEADER_NAMES},
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

    def resolved(self, response):
        """``response`` written out: a named one (``"NOT_FOUND"``) is looked up."""
        if isinstance(response, dict) and "$ref" in response:
            response = response["$ref"].rsplit("/", 1)[-1]
        if isinstance(response, str):
            self.spec.components.get_ref("response", response)  # registers a lazy one
            response = self.spec.components.responses[response]
        response = copy.deepcopy(response)
        for name, header in response.get("headers", {}).items():
            if isinstance(header, str):
                response["headers"][name] = ref("headers", header)
        return response

    def add_task_answer(self, code, answer):
        """Document under the status operation that a finished task may answer ``answer``."""
        responses = by_code(self.status_operation.get("responses", {}))
        held = responses.get(code)
        if held is None:
            held = {
                "description": f"The answer of the operation that made the task: {describe(answer)}"
            }
        else:
            held = self.resolved(held)
        merge_content(held, answer)
        # Every answer about a known task says where it stands.
        headers = {"Task-Status": ref("headers", "Task-Status"), **answer.get("headers", {})}
        for name, header in headers.items():
            held.setdefault("headers", {}).setdefault(name, header)
        responses[code] = held
        self.status_operation["responses"] = responses


def merge_content(held, answer):
    """Let ``held`` say, for each content type, that its body may also be ``answer``'s."""
    for content_type, media in answer.get("content", {}).items():
        if "schema" not in media:
            continue
        target = held.setdefault("content", {}).setdefault(content_type, {})
        schemas = target.setdefault("schema", {"anyOf": []})
        if "anyOf" not in schemas:
            target["schema"] = schemas = {"anyOf": [schemas]}
        if media["schema"] not in schemas["anyOf"]:
            schemas["anyOf"].append(media["schema"])


def ref(kind, name):
    """A reference to the component ``name`` of ``kind`` (``"schemas"``, ``"headers"``)."""
    return {"$ref": f"#/components/{kind}/{name}"}


def by_code(responses):
    """Responses keyed by status code as text, as the document writes them."""
    return {str(code): response for code, response in responses.items()}


def is_success(code):
    """Whether a documented status code (``"200"``, ``"2XX"``) is not an error."""
    return code[:1] in ("1", "2", "3")


def describe(response):
    return response.get("description", "")


def refuse_async_above_arguments(view, method, rule):
    """Stop at start when ``@async_api`` is above ``@blp.arguments`` on an operation.

    Bad input would then become a task that fails later, while the document
    promises a 422 at the submit.
    """
    handler = getattr(getattr(view, "view_class", None), method.lower(), None) or view
    wrapper = handler
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
