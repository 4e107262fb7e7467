"""Serve poems on a web page and a JSON API: ``python -m poetry_rnn.serve``.

Flags -> ``ServerOptions`` -> ``serve``: load the model once, compile the
decoder, and run the ``webapp`` application under uvicorn. Needs the
``[serve]`` extra (FastAPI, uvicorn): ``pip install 'poetry_rnn[serve]'``.
"""

from poetry_rnn.infra import quiet

if __name__ == "__main__":  # the command line only: TensorFlow's start-up notices off, before anything loads it
    quiet.install()

import dataclasses  # noqa: E402

from absl import flags  # noqa: E402

from poetry_rnn.infra import cli  # noqa: E402
from poetry_rnn import poet as poet_lib  # noqa: E402
from poetry_rnn.infra.errors import PoetryError  # noqa: E402
from poetry_rnn.infra.fields import option, validate  # noqa: E402
from poetry_rnn.options import MAX_POEMS, ModelOptions  # noqa: E402

try:
    import uvicorn

    from poetry_rnn.serving import webapp
except ImportError as error:  # the [serve] extra is not installed; main says so in one line
    webapp = None
    MISSING = error


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """How the server batches and what it refuses."""

    host: str = option("127.0.0.1", "Address to listen on (0.0.0.0: every interface).")
    port: int = option(8000, "Port to listen on.", minimum=1, maximum=65535)
    max_poems: int = option(16, "Most poems one request may ask for (num x begin characters).", minimum=1,
                            maximum=MAX_POEMS)
    max_body_bytes: int = option(16_384, "Largest request body accepted (bytes).", minimum=256)
    queue_size: int = option(256, "Requests that may wait for the decoder; more get HTTP 503.", minimum=1)
    max_cost: int = option(16 * 8 * 120, "Most decoder work one request may ask for: poems x best_of x the most "
                           "characters a poem may take (default: 16 free poems of 120 characters, 8 drafts each); "
                           "more gets HTTP 400.", minimum=1)
    light_cost: int = option(2048, "Requests costing at most this are light: coalesced and served before the "
                             "next slice of a heavy one.", minimum=1)
    # A slice as costly as the largest light request: a light request waits for at most about its own time.
    slice_cost: int = option(2048, "A heavy request is written in slices of at most this cost (decoder rows x the "
                             "most characters a poem may take), with light requests served between slices.",
                             minimum=1)
    timeout_s: float = option(120.0, "A request not written within this many seconds gets HTTP 504, and its "
                              "remaining work is dropped.", above=0)
    window_ms: float = option(5.0, "How long the batcher waits for more requests to coalesce (ms).", minimum=0)
    max_batch_rows: int = option(256, "Most decoder rows (poems x best_of) coalesced into one decode.", minimum=1)
    coalesce: bool = option(True, "Coalesce concurrent requests into one decode (--nocoalesce: one at a time).")

    def __post_init__(self):
        validate(self)



def serve(model=None, options=None):
    """Load the model (``model``: ModelOptions), compile the decoder once, and serve until interrupted."""
    if webapp is None:
        raise PoetryError(f"serve needs the serve extra: pip install 'poetry_rnn[serve]' ({MISSING})")
    model, options = model or ModelOptions(), options or ServerOptions()
    poet = poet_lib.load(model.model_dir, model.precision)
    poet.warm_up()
    print(f"serving {poet.path} on http://{options.host}:{options.port}/ (API docs: /docs)", flush=True)
    uvicorn.run(webapp.create_app(poet, options), host=options.host, port=options.port, log_level="warning")


FLAGS = flags.FLAGS


def define_flags():
    cli.define_flags(ModelOptions)
    cli.define_flags(ServerOptions)


def main(argv):
    cli.refuse_arguments(argv)
    serve(cli.options_from_flags(ModelOptions), cli.options_from_flags(ServerOptions))


if __name__ == "__main__":
    define_flags()
    cli.run(main)
