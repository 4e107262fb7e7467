"""The web page and JSON API over the Python facade (run it with ``python -m poetry_rnn.serve``).

``create_app(poet, options)`` builds a FastAPI application (FastAPI for its
request models, OpenAPI docs at ``/docs`` and test client; uvicorn serves it):

* ``GET /`` the page (one static HTML file, no build step);
* ``POST /api/poems`` the options of ``Poet.write`` as JSON -> poems as JSON;
* ``GET /api/health`` model and queue state.

Concurrent requests are coalesced: a single batcher task takes the first
waiting ask, gathers the others that arrive within ``window_ms`` (up to
``max_batch_rows`` decoder rows) and decodes them in one ``Poet.write_asks``
call on a worker thread, so throughput rises with load instead of queueing.
Poems do not depend on what they were batched with (see ``decode.row_key``).
Limits protect the process: ``max_poems`` per request, ``max_body_bytes``
per body (413), and a bounded queue that answers 503 when full. An ask
whose client has gone away is dropped before decoding.

Errors are JSON ``{"error": "<one line>"}`` with HTTP 400, the same line the
command line prints.
"""

import asyncio
import concurrent.futures
import dataclasses
import importlib.resources
import typing

import fastapi
import pydantic
from fastapi import responses

import poetry_rnn
from poetry_rnn import options as options_lib, poet as poet_lib
from poetry_rnn.infra.fields import field_kind
from poetry_rnn.infra.errors import OptionError, PoetryError


def _body_model():
    """The request body as a pydantic model made from the option dataclasses (one source of truth).

    Types and defaults come from the fields; ranges are checked by the
    dataclasses themselves, so the API's messages are the command line's.
    """
    fields = {}
    for cls in (options_lib.PoemOptions, options_lib.SamplingOptions):
        for f in dataclasses.fields(cls):
            kind = field_kind(f)
            extra = {"enum": list(f.metadata["choices"])} if f.metadata["choices"] else None  # documented, checked by us
            if kind is list:
                kind = typing.Union[str, list[str]]  # "日" or ["日", "月"]
            elif f.default is None:
                kind = typing.Optional[kind]
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            fields[f.name] = (kind, pydantic.Field(default, description=f.metadata["help"], json_schema_extra=extra))
    return pydantic.create_model("PoemsRequest", **fields)


PoemsRequest = _body_model()


class Batcher:
    """Coalesces asks into batched decodes on one worker thread (the model is not shared across threads)."""

    def __init__(self, poet, options):
        self.poet, self.options = poet, options
        self.queue = asyncio.Queue(options.queue_size)
        self.worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="decoder")
        self.task = None
        self.batches = self.asks = 0  # counters for /api/health and the load benchmark

    def start(self):
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self):
        if self.task:
            self.task.cancel()
        self.worker.shutdown(wait=False, cancel_futures=True)

    def submit(self, ask):
        """A future for the ask's poems; raises asyncio.QueueFull when the queue is full."""
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((ask, future))
        return future

    async def gather(self):
        """The first waiting ask and whatever joins it within the window, up to the row cap."""
        batch = [await self.queue.get()]
        rows = batch[0][0].rows
        deadline = asyncio.get_running_loop().time() + self.options.window_ms / 1000
        while self.options.coalesce and rows < self.options.max_batch_rows:
            timeout = deadline - asyncio.get_running_loop().time()
            try:
                item = self.queue.get_nowait() if timeout <= 0 else await asyncio.wait_for(self.queue.get(), timeout)
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
            batch.append(item)
            rows += item[0].rows
        return [(ask, future) for ask, future in batch if not future.done()]  # done = client gone (cancelled)

    async def run(self):
        loop = asyncio.get_running_loop()
        while True:
            batch = await self.gather()
            if not batch:
                continue
            try:
                results = await loop.run_in_executor(self.worker, self.poet.write_asks, [ask for ask, _ in batch])
            except Exception as error:  # checked asks should not fail; never leave a client hanging
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.batches += 1
            self.asks += len(batch)
            for (_, future), poems in zip(batch, results):
                if not future.done():
                    future.set_result(poems)


def _error(status, message):
    return responses.JSONResponse({"error": message}, status_code=status)


def create_app(poet, options):
    """The FastAPI application serving ``poet`` under ``options`` (a ``serve.ServerOptions``)."""
    batcher = Batcher(poet, options)

    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()

    app = fastapi.FastAPI(title="poetry_rnn", version=poetry_rnn.__version__, lifespan=lifespan,
                          description="Classical Chinese poems from a character-level RNN.")
    app.state.batcher = batcher

    @app.exception_handler(fastapi.exceptions.RequestValidationError)
    async def invalid_body(request, error):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if part != "body")
        return _error(400, f"{where}: {first['msg']}" if where else first["msg"])

    @app.middleware("http")
    async def limit_body(request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > options.max_body_bytes):
            return _error(413, f"request body over {options.max_body_bytes} bytes")
        return await call_next(request)

    @app.get("/", response_class=responses.HTMLResponse, include_in_schema=False)
    async def page():
        return importlib.resources.files("poetry_rnn.serving").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/api/health")
    async def health():
        return {"status": "ok", "model": poet.path, "lyrics": poet.is_lyrics, "queued": batcher.queue.qsize(),
                "batches": batcher.batches, "asks": batcher.asks}

    @app.post("/api/poems")
    async def poems(body: PoemsRequest, request: fastapi.Request):
        try:
            ask = poet_lib.make_ask(**body.model_dump())
        except OptionError as error:  # named as the JSON field it came in
            return _error(400, str(error.spoken_as("json")))
        try:
            if ask.poem.count > options.max_poems:
                raise PoetryError(f"at most {options.max_poems} poems per request, got {ask.poem.count}")
            poet.check(ask)
        except PoetryError as error:
            return _error(400, str(error))
        try:
            future = batcher.submit(ask)
        except asyncio.QueueFull:
            return _error(503, "the server is busy; try again shortly")
        while not future.done():  # a client that goes away costs no decoding
            await asyncio.wait([future], timeout=0.25)
            if not future.done() and await request.is_disconnected():
                future.cancel()
                return _error(499, "client disconnected")
        return {"seed": ask.sampling.seed, "poems": [p.to_dict() for p in future.result()]}

    return app


