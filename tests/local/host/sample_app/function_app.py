"""A small function app that exercises every trigger and binding kind the local host runs.

Each invocation appends a line to the file named by SAMPLE_EVENTS_FILE so tests can read back
what ran, with which dequeue count.
"""

import json
import os

import azure.functions as func

from sync.settings import load_settings

# Validated like the real app, so a bad setting stops the host's start-up.
load_settings()

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def record(event: dict[str, object]) -> None:
    event["pid"] = os.getpid()  # which of the host's processes ran it
    with open(os.environ["SAMPLE_EVENTS_FILE"], "a", encoding="utf-8") as events:
        events.write(json.dumps(event) + "\n")


@app.route(route="hello/{name}", methods=["GET"])
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps({"hello": req.route_params["name"], "q": req.params.get("q")}),
        mimetype="application/json",
    )


@app.route(route="echo", methods=["POST"])
async def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.get_body(), status_code=201, mimetype="application/octet-stream")


@app.route(route="context", methods=["GET"])
def invocation(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(
            {
                "function_name": context.function_name,
                "traceparent": context.trace_context.trace_parent,
                "pid": os.getpid(),
            }
        ),
        mimetype="application/json",
    )


@app.route(route="whoami", methods=["GET"])
def whoami(req: func.HttpRequest) -> func.HttpResponse:
    """What App Service Authentication (here: the local host) told the function."""
    return func.HttpResponse(
        json.dumps(
            {
                "headers": {k: v for k, v in req.headers.items() if k.lower().startswith("x-ms-")},
                "authentication": os.environ.get("WEBSITE_AUTH_ENABLED"),
            }
        ),
        mimetype="application/json",
    )


@app.timer_trigger(schedule="%SAMPLE_TIMER%", arg_name="timer")
def tick(timer: func.TimerRequest) -> None:
    record({"function": "tick", "past_due": timer.past_due})


@app.queue_trigger(arg_name="msg", queue_name="work", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="done", queue_name="done", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage, done: func.Out[str]) -> None:
    body = msg.get_body().decode()
    record({"function": "work", "body": body, "dequeue_count": msg.dequeue_count})
    if body == "fail":
        raise RuntimeError("this message always fails")
    done.set(f"done:{body}")
