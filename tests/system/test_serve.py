"""The JSON API and page (FastAPI's test client), and the batcher that coalesces requests."""

import asyncio
import contextlib
import json
import time
import re
import threading

import pytest

fastapi = pytest.importorskip("fastapi")  # the [serve] extra
from fastapi.testclient import TestClient  # noqa: E402

from poetry_rnn import poet as poet_lib, serve
from poetry_rnn.serving import webapp  # noqa: E402
from poetry_rnn.options import SamplingOptions  # noqa: E402
from poetry_rnn.verse import cipai  # noqa: E402


@pytest.fixture(scope="module")
def poet(tiny_model_dir):
    return poet_lib.load(tiny_model_dir)


@pytest.fixture
def client(poet):
    with TestClient(webapp.create_app(poet, serve.ServerOptions(max_poems=4))) as client:
        yield client


def test_api_writes_the_poems_the_python_api_writes(client, poet):
    response = client.post("/api/poems", json={"begin": "春", "form": "wujue", "num": 2, "seed": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["seed"] == 3
    texts = [p["text"] for p in body["poems"]]
    assert texts == [p.text for p in poet.write(begin="春", form="wujue", num=2, seed=3)]
    for poem in body["poems"]:
        assert len(poem["lines"]) == 4 and all(len(line) == 6 for line in poem["lines"]) and poem["text"][0] == "春"
        assert all(isinstance(x, float) for x in poem["logprobs"])


@pytest.mark.parametrize(
    "body, status, message",
    [
        # the command line's message, naming the JSON field the value came in (OptionError.spoken_as("json"))
        ({"temperature": -1}, 400, "JSON field 'temperature' must be a finite number >= 0, got -1.0"),
        ({"top_p": 2}, 400, "JSON field 'top_p' must be a finite number in (0, 1], got 2.0"),
        ({"form": "sonnet"}, 400, "JSON field 'form' must be one of free, wujue, qijue, wulv, qilv, got 'sonnet'"),
        ({"begin": "龘"}, 400, "begin character '龘' is not in the model's vocabulary"),
        ({"num": 5}, 400, "at most 4 poems per request, got 5"),
        ({"begin": ["春", "月"], "num": 3}, 400, "at most 4 poems per request, got 6"),
        ({"rhyme": True}, 400, "rhyme needs a form (wujue, qijue, wulv, qilv)"),
        ({"num": "many"}, 400, "JSON field 'num': Input should be a valid integer"),
        ({"couplets": 4.5}, 400, "JSON field 'couplets' must be draw or model or a whole number in [1, 50], got 4.5"),
        ({"line_chars": [7]}, 400, "JSON field 'line_chars' must be draw or model or a whole number in [1, 15], got [7]"),
        ({"template": "?" * 201}, 400, "JSON field 'template' takes at most 200 characters"),
        ({"num": 4, "best_of": 64, "max_len": 1000}, 400,
         "this request costs 256,000 (poems x best_of x characters), over the server's limit of 15,360"),
        ({"cipai": "浣溪"}, 400, "JSON field 'cipai' '浣溪' is not a tune the table knows (close: 浣溪纱、浣溪沙"),
        ({"cipai": "浣溪沙", "form": "qijue"}, 400, "cipai fixes the shape and rhymes; leave out form"),
        ({"temprature": 0.5}, 400, "unknown JSON field 'temprature'; the fields are listed at /docs"),  # not ignored
    ],
)
def test_bad_requests_get_the_command_lines_one_line_message(client, body, status, message):
    response = client.post("/api/poems", json=body)
    assert response.status_code == status, response.text
    if message:
        assert response.json() == {"error": response.json()["error"]} and message in response.json()["error"]


def test_a_ci_through_the_api_is_the_python_api_s_and_the_tunes_are_listed(client, poet):
    response = client.post("/api/poems", json={"cipai": "浣溪沙", "tones": "strict", "seed": 5})
    assert response.status_code == 200, response.text
    (ci,) = response.json()["poems"]
    assert ci["cipai"] == ci["title"] == "浣溪沙" and len(ci["lines"]) == 6
    assert ci["text"] == poet.write(cipai="浣溪沙", tones="strict", seed=5)[0].text
    tunes = client.get("/api/tunes").json()["tunes"]
    assert tunes[0]["name"] == "浣溪沙" and tunes[0]["rhymes"] == "AAA.AA" and len(tunes) == len(cipai.read_table())


def test_body_that_is_not_json_or_too_large(client):
    response = client.post("/api/poems", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"].startswith("the request body is not valid JSON")
    response = client.post("/api/poems", content=json.dumps({"template": "?" * 20_000}),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "over 16384 bytes" in response.json()["error"]


def test_health_page_and_docs(client, poet):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["model"] == poet.path and health["lyrics"] is False
    page = client.get("/")
    assert page.status_code == 200 and 'id="begin"' in page.text and "/api/poems" in page.text
    shown = re.search(r'id="temperature"[^>]*value="([^"]+)"', page.text).group(1)
    assert float(shown) == SamplingOptions().temperature  # the page starts from the default
    schema = client.get("/openapi.json").json()
    body = schema["components"]["schemas"]["PoemsRequest"]["properties"]
    assert body["form"]["enum"] == ["free", "wujue", "qijue", "wulv", "qilv"] and body["temperature"]["default"] == SamplingOptions().temperature


def test_a_full_queue_answers_503(client, monkeypatch):
    def full(ask, cost):
        raise asyncio.QueueFull

    monkeypatch.setattr(client.app.state.batcher, "submit", full)
    response = client.post("/api/poems", json={})
    assert response.status_code == 503 and "busy" in response.json()["error"]


def test_batcher_coalesces_waiting_asks_and_skips_abandoned_ones(poet):
    options = serve.ServerOptions(window_ms=50, queue_size=3)

    async def scenario():
        batcher = webapp.Batcher(poet, options)
        asks = [poet_lib.make_ask(form="wujue", seed=s) for s in range(3)]
        futures = [batcher.submit(a, poet.cost(a)) for a in asks]
        with pytest.raises(asyncio.QueueFull):
            batcher.submit(asks[0], poet.cost(asks[0]))
        futures[1].cancel()  # its client went away
        batch = await batcher.gather_light()
        return asks, batch

    asks, batch = asyncio.run(scenario())
    assert [ask for ask, _ in batch] == [asks[0], asks[2]]


@contextlib.contextmanager
def running(poet, options):
    """A real uvicorn server on a free port of 127.0.0.1, stopped on leaving; yields its URL."""
    import uvicorn

    app = webapp.create_app(poet, options)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            threading.Event().wait(0.05)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_concurrent_requests_are_decoded_together_and_unchanged(poet):
    """Eight clients at once through a real uvicorn server: fewer decodes than requests, same poems."""
    import httpx

    with running(poet, serve.ServerOptions(window_ms=200)) as url:
        results = {}

        def ask(seed):
            results[seed] = httpx.post(f"{url}/api/poems", json={"form": "qijue", "seed": seed}, timeout=60).json()

        clients = [threading.Thread(target=ask, args=(seed,)) for seed in range(8)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        health = httpx.get(f"{url}/api/health").json()
    assert health["asks"] == 8 and health["batches"] < 8
    for seed, body in results.items():
        assert body["poems"][0]["text"] == poet.write(form="qijue", seed=seed)[0].text


HEAVY = {"form": "free", "max_len": 120, "num": 4, "best_of": 8, "seed": 5}  # cost 3,840: over light_cost
LIGHT = {"form": "wujue", "best_of": 1, "seed": 2}


def test_a_heavy_request_is_written_in_slices_and_a_light_one_is_served_between_them(poet):
    """One long request in flight: a short one sent after it comes back first, and the long one is unchanged."""
    import httpx

    options = serve.ServerOptions(slice_cost=8 * 120)  # a slice is one poem and its 8 drafts: 4 slices
    finished = {}
    poet.write(**LIGHT)  # traced before the race: the light request then waits on scheduling, not on tracing
    with running(poet, options) as url:
        def heavy():
            finished["heavy"] = (httpx.post(f"{url}/api/poems", json=HEAVY, timeout=120).json(), time.monotonic())

        thread = threading.Thread(target=heavy)
        thread.start()
        while not httpx.get(f"{url}/api/health").json()["writing"]:
            time.sleep(0.01)
        light = httpx.post(f"{url}/api/poems", json=LIGHT, timeout=120)
        finished["light"] = time.monotonic()
        thread.join()
        health = httpx.get(f"{url}/api/health").json()
    assert light.status_code == 200 and finished["light"] < finished["heavy"][1]
    assert health["slices"] == 4
    assert [p["text"] for p in finished["heavy"][0]["poems"]] == [p.text for p in poet.write(**HEAVY)]


def test_slicing_an_ask_changes_none_of_its_poems(poet):
    ask = poet_lib.make_ask(form="wujue", rhyme=True, num=5, best_of=3, seed=8)
    writing = poet_lib.Writing(poet, [ask], chunk_cost=poet.cost(ask) // 5)  # one poem and its drafts a chunk
    steps = 0
    while not writing.done:
        writing.step()
        steps += 1
    assert steps == 5 and [p.text for p in writing.poems[0]] == [p.text for p in poet.write_asks([ask])[0]]


def chunk_rows(writing):
    """Decoder rows of each of a Writing's chunks: its poems' drafts, or the drafts of one poem's part."""
    return [len(copies) if copies is not None else sum(writing.asks[a].sampling.best_of for a, _, _ in jobs)
            for _, jobs, copies in writing.chunks]


def test_slices_are_sized_by_cost_so_long_poems_take_fewer_rows_a_slice(poet):
    # A light request waits for one slice: a slice of long poems must not hold it longer than one of short poems.
    short = poet_lib.make_ask(form="wujue", num=16, best_of=8, seed=1)
    long = poet_lib.make_ask(form="free", max_len=120, num=16, best_of=8, seed=1)
    heaviest_poem = poet_lib.make_ask(template="?" * 200, best_of=64, seed=1)  # 12,800: one poem over the slice
    for ask in (short, long, heaviest_poem):
        rows = chunk_rows(poet_lib.Writing(poet, [ask], chunk_cost=2048))
        assert sum(rows) == ask.rows and all(r * poet.characters(ask) <= 2048 for r in rows)
    assert len(poet_lib.Writing(poet, [long], chunk_cost=2048).chunks) > len(
        poet_lib.Writing(poet, [short], chunk_cost=2048).chunks)


@pytest.mark.parametrize("options", [
    dict(form="wujue", rhyme=True, num=3, best_of=5, seed=4),
    dict(form="free", max_len=24, num=4, best_of=3, reuse_penalty=1.0, novelty_weight=0.5, seed=9),
])
def test_drafting_one_poem_in_parts_changes_none_of_its_poems(poet, options):
    """A poem whose drafts cost more than a slice is drafted in parts and ranked at the end: the same poems."""
    ask = poet_lib.make_ask(**options)
    whole = [p.text for p in poet.write_asks([ask])[0]]
    writing = poet_lib.Writing(poet, [ask], chunk_cost=2 * poet.characters(ask))  # two drafts a part
    assert all(copies is not None and len(copies) <= 2 for _, _, copies in writing.chunks)
    while not writing.done:
        writing.step()
    assert [p.text for p in writing.poems[0]] == whole


def test_a_request_over_its_time_gets_504_and_its_work_is_dropped(poet):
    import httpx

    longest = {**HEAVY, "num": 16, "best_of": 64}  # 16 slices: one poem's 64 drafts each
    with running(poet, serve.ServerOptions(slice_cost=64 * 120, timeout_s=0.3, max_cost=10**6)) as url:
        late = httpx.post(f"{url}/api/poems", json=longest, timeout=120)
        when = httpx.get(f"{url}/api/health").json()["slices"]
        assert late.status_code == 504 and "not written within the server's limit of 0.3 s" in late.json()["error"]
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/api/health").json()["writing"] and time.monotonic() < deadline:
            time.sleep(0.05)
        health = httpx.get(f"{url}/api/health").json()
    assert not health["writing"] and health["slices"] <= when + 1 < 16  # at most the slice in flight, then dropped
