"""The feedback web app (FastAPI): the page, the next question, answers and skips, every input checked.

Routes: ``GET /`` the page (plain HTML and a little JavaScript, no build step), ``GET /api/question`` the question
to show, ``POST /api/answer`` ``{"question_id", "choice"}`` or ``{"question_id", "rating"}``, ``POST /api/skip``
``{"question_id"}``, ``GET /api/stats``. Every request passes `RequestGuard` first (Host, Origin, the token on
``/api/``, size and time limits, security headers: see `textgen_env.feedback.guard`). A bad request gets a 4xx with
``{"error": "Expected ..., got ..."}`` and writes nothing: 404 for an id that is not open, 422 for a malformed body,
a wrong kind of answer or a rating off the scale. A fault of the server (the log cannot be written) is a 500 with
the same shape, never a 4xx.

No ``from __future__ import annotations`` here: FastAPI reads the body models from the endpoints' annotations,
which must be real classes (they are defined inside `create_app`, where FastAPI is known to be installed).
"""

from importlib import resources
from typing import Any, Literal

from textgen_env.feedback.guard import AccessPolicy, RequestGuard, content_security_policy
from textgen_env.feedback.questions import InvalidAnswer, QuestionBoard, UnknownQuestion

__all__ = ["FEEDBACK_EXTRA", "create_app"]

FEEDBACK_EXTRA = 'pip install "textgen-env[feedback]"'
"""Installs the web app's dependencies (FastAPI, uvicorn; httpx for the test client and the synthetic user)."""

_BODY_SHAPE = "{'question_id': str, 'choice': 'a' | 'b' | 'tie'} or {'question_id': str, 'rating': number}"


def _require_fastapi() -> Any:
    try:
        import fastapi
    except ModuleNotFoundError as error:
        from gymnasium.error import DependencyNotInstalled

        raise DependencyNotInstalled(
            f"The feedback web app needs FastAPI, which is not installed. Run: {FEEDBACK_EXTRA}"
        ) from error
    return fastapi


def page_html() -> str:
    """The page's HTML (shipped as ``textgen_env/feedback/static/index.html``)."""
    return resources.files("textgen_env.feedback").joinpath("static/index.html").read_text(encoding="utf-8")


def _problem(error: dict[str, Any]) -> str:
    """One pydantic error as ``field: message``, field names cut short (a client chooses them)."""
    where = ".".join(str(part)[:40] for part in error["loc"][1:]) or "body"
    return f"{where}: {error['msg'][:200]}"


def create_app(board: QuestionBoard, access: AccessPolicy | None = None) -> Any:
    """The FastAPI app that serves `board` (run it with uvicorn, or `textgen_env.feedback.FeedbackServer`).

    Args:
        board: the questions and the log.
        access: who the app answers (`AccessPolicy`); ``None``: a new random token, loopback host names on any
            port. Read it back from ``app.state.access`` (its ``token`` goes in the ``X-Feedback-Token`` header).
    """
    fastapi = _require_fastapi()
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse
    from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, StrictStr
    from starlette.exceptions import HTTPException

    class AnswerBody(BaseModel):
        model_config = ConfigDict(extra="forbid")
        question_id: StrictStr
        choice: Literal["a", "b", "tie"] | None = None
        rating: StrictInt | StrictFloat | None = None  # range, NaN and infinities: the board checks them

    class SkipBody(BaseModel):
        model_config = ConfigDict(extra="forbid")
        question_id: StrictStr

    html = page_html()
    access = AccessPolicy() if access is None else access
    app = fastapi.FastAPI(title="textgen-env feedback", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.board, app.state.access = board, access
    app.add_middleware(RequestGuard, policy=access, csp=content_security_policy(html))

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Any, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(_problem(e) for e in error.errors()[:5])
        return JSONResponse(status_code=422, content={"error": f"Expected a JSON body {_BODY_SHAPE}, got {problems}"})

    @app.exception_handler(HTTPException)
    async def _http(request: Any, error: HTTPException) -> JSONResponse:
        if error.status_code == 400:  # FastAPI's "There was an error parsing the body"
            message = f"Expected a JSON body {_BODY_SHAPE}, got one that does not parse ({error.detail})"
        else:
            message = f"Expected a route of this page, got {error.detail} for {request.method} {request.url.path:.80}"
        return JSONResponse(status_code=error.status_code, content={"error": message}, headers=error.headers)

    @app.exception_handler(UnknownQuestion)
    async def _unknown(request: Any, error: UnknownQuestion) -> JSONResponse:
        return JSONResponse(status_code=404, content={"error": str(error)})

    @app.exception_handler(InvalidAnswer)
    async def _invalid(request: Any, error: InvalidAnswer) -> JSONResponse:
        return JSONResponse(status_code=422, content={"error": str(error)})

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return html

    @app.get("/api/question")
    def question() -> dict[str, Any]:
        shown = board.next_question()
        return {"question": None if shown is None else shown.as_json(board.scale), "stats": board.stats()}

    @app.post("/api/answer")
    def answer(body: AnswerBody) -> dict[str, Any]:
        if (body.choice is None) == (body.rating is None):
            raise InvalidAnswer(
                f"Expected exactly one of choice or rating in the body {_BODY_SHAPE}, got "
                f"{'both' if body.choice is not None else 'neither'}"
            )
        logged = board.answer(body.question_id, choice=body.choice, rating=body.rating)
        return {"ok": True, "record": logged.record, "stats": board.stats()}

    @app.post("/api/skip")
    def skip(body: SkipBody) -> dict[str, Any]:
        board.skip(body.question_id)
        return {"ok": True, "stats": board.stats()}

    @app.get("/api/stats")
    def stats() -> dict[str, Any]:
        return board.stats()

    return app
