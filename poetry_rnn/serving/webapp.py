"""The web page and JSON API over the Python facade (run it with ``python -m poetry_rnn.serve``).

``create_app(poet, options)`` builds a FastAPI application (FastAPI for its
request models, OpenAPI docs at ``/docs`` and test client; uvicorn serves it):

* ``GET /`` the page (one static HTML file, no build step);
* ``POST /api/poems`` the options of ``Poet.write`` as JSON -> poems as JSON;
* ``GET /api/tunes`` the ci tunes ``cipai`` takes, with their shapes;
* ``GET /api/health`` model and queue state.

Concurrent requests are coalesced and scheduled by cost (``Batcher``):
light ones (at most ``light_cost``: poems x best_of x characters) are
gathered for ``window_ms`` and decoded together in one ``Poet.write_asks``
call on a worker thread, so throughput rises with load instead of
queueing; a heavy one is written a slice at a time, taking turns with the
light batches, so no request holds the decoder while others wait. Poems do
not depend on what they were batched or sliced with (see
``noise.row_key``). Limits protect the process: ``max_poems`` and
``max_cost`` per request (400), ``max_body_bytes`` per body (413), a
bounded queue that answers 503 when full, and ``timeout_s`` per request
(504). An ask whose client has gone away is dropped before decoding, and
between slices.

Errors are JSON ``{"error": "<one line>"}`` with HTTP 400; an option's
error names its JSON field (``JSON field 'top_p' must be ...``).
"""

import asyncio
import collections
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
from poetry_rnn.verse import cipai


def _body_model():
    """The request body as a pydantic model made from the option dataclasses (one source of truth).

    Types and defaults come from the fields; ranges are checked by the
    dataclasses themselves, so the API's messages are the command line's.
    A field it does not know is refused, not ignored: a misspelt
    ``temprature`` would otherwise write at the default without a word.
    """
    fields = {}
    for cls in (options_lib.PoemOptions, options_lib.SamplingOptions):
        for f in dataclasses.fields(cls):
            kind = field_kind(f)
            extra = {"enum": list(f.metadata["choices"])} if f.metadata["choices"] else None  # documented, checked by us
            if kind is list:
                kind = typing.Union[str, list[str]]  # "日" or ["日", "月"]
            elif f.metadata["words"]:  # "draw" or 4: PoemOptions checks and names it
                kind = typing.Any
                extra = {"anyOf": [{"enum": list(f.metadata["words"])},
                                   {"type": "integer", "minimum": f.metadata["minimum"],
                                    "maximum": f.metadata["maximum"]}]}
            elif f.default is None:
                kind = typing.Optional[kind]
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            fields[f.name] = (kind, pydantic.Field(default, description=f.metadata["help"], json_schema_extra=extra))
    return pydantic.create_model("PoemsRequest", __config__=pydantic.ConfigDict(extra="forbid"), **fields)


PoemsRequest = _body_model()


class Batcher:
    """Decodes asks on one worker thread (the model is not shared across threads), short ones first.

    A light ask (cost at most ``light_cost``) waits in the light lane, and
    light asks that arrive within ``window_ms`` of each other are coalesced
    into one decode of at most ``max_batch_rows`` rows. A heavy ask waits in
    the heavy lane and is written one slice at a time (``poet.Writing``
    chunks of at most ``slice_cost``, counted as requests are). Light batches and heavy slices take turns,
    so a short request waits for at most one slice of a long one, and a long
    one moves on however busy the light lane is. An ask whose client has
    gone (or timed out) is dropped, between slices too.
    """

    def __init__(self, poet, options):
        self.poet, self.options = poet, options
        self.light, self.heavy = collections.deque(), collections.deque()  # (ask, future)
        self.arrived = asyncio.Event()
        self.writing = None  # (poet.Writing, future) of the heavy ask being written
        self.worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="decoder")
        self.task = None
        self.batches = self.asks = self.slices = 0  # counters for /api/health and the load benchmark

    def start(self):
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self):
        if self.task:
            self.task.cancel()
        self.worker.shutdown(wait=False, cancel_futures=True)

    @property
    def waiting(self):
        return len(self.light) + len(self.heavy)

    def submit(self, ask, cost):
        """A future for the ask's poems; raises asyncio.QueueFull when ``queue_size`` asks already wait."""
        if self.waiting >= self.options.queue_size:
            raise asyncio.QueueFull
        future = asyncio.get_running_loop().create_future()
        (self.light if cost <= self.options.light_cost else self.heavy).append((ask, future))
        self.arrived.set()
        return future

    async def gather_light(self):
        """The first light ask and the light asks that join it within the window, up to the row cap."""
        batch = [self.light.popleft()]
        rows = batch[0][0].rows
        deadline = asyncio.get_running_loop().time() + self.options.window_ms / 1000
        while self.options.coalesce and rows < self.options.max_batch_rows:
            if not self.light:
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    break
                self.arrived.clear()
                try:
                    await asyncio.wait_for(self.arrived.wait(), timeout)
                except asyncio.TimeoutError:
                    break
                continue
            batch.append(self.light.popleft())
            rows += batch[-1][0].rows
        return [(ask, future) for ask, future in batch if not future.done()]  # done = client gone (cancelled)

    async def run(self):
        """Light batches and heavy slices in turn: light asks wait at most a slice, heavy ones always move on."""
        while True:
            if not (self.light or self.heavy or self.writing):
                self.arrived.clear()
                await self.arrived.wait()
            if self.light:
                await self.write_light(await self.gather_light())
            if self.writing or self.heavy:
                await self.write_slice()

    async def decode(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self.worker, function, *args)

    async def write_light(self, batch):
        if not batch:
            return
        try:
            results = await self.decode(self.poet.write_asks, [ask for ask, _ in batch])
        except Exception as error:  # checked asks should not fail; never leave a client hanging
            results = [error] * len(batch)
        self.batches += 1
        self.asks += len(batch)
        for (_, future), poems in zip(batch, results):
            settle(future, poems)

    async def write_slice(self):
        """One slice of the heavy ask being written (starting the next one if none is)."""
        if self.writing is None:
            ask, future = self.heavy.popleft()
            if future.done():
                return
            self.writing = (poet_lib.Writing(self.poet, [ask], self.options.slice_cost), future)
        writing, future = self.writing
        try:
            if not future.done():
                await self.decode(writing.step)
                self.slices += 1
        except Exception as error:  # never leave a client hanging
            settle(future, error)
        if future.done() or writing.done:
            self.writing = None
            self.batches += 1
            self.asks += 1
            settle(future, writing.poems[0])


def settle(future, result):
    """Give a waiting client its poems or its error, unless it has gone."""
    if future.done():
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)


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
        if first["type"] == "json_invalid":
            return _error(400, f"the request body is not valid JSON ({first['ctx']['error']})")
        where = ".".join(str(part) for part in first["loc"] if part != "body")
        if first["type"] == "extra_forbidden":
            return _error(400, f"unknown JSON field {where!r}; the fields are listed at /docs")
        return _error(400, f"JSON field {where!r}: {first['msg']}" if where else first["msg"])

    @app.middleware("http")
    async def limit_body(request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > options.max_body_bytes):
            return _error(413, f"request body over {options.max_body_bytes} bytes")
        return await call_next(request)

    @app.get("/", response_class=responses.HTMLResponse, include_in_schema=False)
    async def page():
        # The form starts from the options' default, which is written once, there.
        html = importlib.resources.files("poetry_rnn.serving").joinpath("static/index.html").read_text(encoding="utf-8")
        return html.replace("{{temperature}}", str(options_lib.SamplingOptions().temperature))

    @app.get("/api/health")
    async def health():
        return {"status": "ok", "model": poet.path, "lyrics": poet.is_lyrics, "queued": batcher.waiting,
                "writing": batcher.writing is not None, "batches": batcher.batches, "asks": batcher.asks,
                "slices": batcher.slices}

    app.get("/api/tunes")(tune_table)

    @app.post("/api/poems")
    async def poems(body: PoemsRequest, request: fastapi.Request):
        try:
            ask = poet_lib.make_ask(**body.model_dump())
        except OptionError as error:  # named as the JSON field it came in
            return _error(400, str(error.spoken_as("json")))
        cost = poet.cost(ask)
        try:
            admit(poet, options, ask, cost)
            future = batcher.submit(ask, cost)
        except PoetryError as error:
            return _error(400, str(error))
        except asyncio.QueueFull:
            return _error(503, "the server is busy; try again shortly")
        refused = await wait_for(future, request, options.timeout_s)
        return refused or {"seed": ask.sampling.seed, "poems": [p.to_dict() for p in future.result()]}

    return app


async def tune_table():
    """The tunes ``cipai`` takes, commonest first, with what the page needs to show a ci (which lines rhyme)."""
    return {"tunes": [{"name": p.tune, "aliases": list(p.aliases), "lengths": list(p.lengths),
                       "punctuation": p.punctuation, "rhymes": p.rhymes, "ci": p.ci, "follow_share": p.follow_share}
                      for p in cipai.read_table().values()]}


def admit(poet, options, ask, cost):
    """PoetryError (HTTP 400) for an ask over the server's limits or one that can never be written."""
    if ask.poem.count > options.max_poems:
        raise PoetryError(f"at most {options.max_poems} poems per request, got {ask.poem.count}")
    if cost > options.max_cost:
        raise PoetryError(f"this request costs {cost:,} (poems x best_of x characters), over the server's "
                          f"limit of {options.max_cost:,}; ask for fewer poems, drafts or characters")
    poet.check(ask)


async def wait_for(future, request, timeout_s):
    """None once the poems are written; an error response if the client went away or the time ran out.

    Either way the future is cancelled, so the batcher drops what is left of the ask.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not future.done():
        await asyncio.wait([future], timeout=0.25)
        if future.done():
            break
        if await request.is_disconnected():
            future.cancel()
            return _error(499, "client disconnected")
        if asyncio.get_running_loop().time() > deadline:
            future.cancel()
            return _error(504, f"not written within the server's limit of {timeout_s:g} s; "
                               "ask for fewer poems or drafts, or try again when it is less busy")
    return None


