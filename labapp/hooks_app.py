"""Flask's nearest built-ins to a background queue, in one small app (notebook 04, step 4).

Each route answers "ok" and leaves ``seconds`` of "after-response" work behind, in a different
way. :func:`labapp.experiments.after_response.after_response` serves it with waitress and
measures who waits for that work: the client, the next request, or nobody.
"""
import threading
import time

from flask import Flask
from flask import after_this_request
from flask import make_response

app = Flask(__name__)


@app.get("/fast")
def fast():
    return "ok"


@app.get("/call_on_close/<float:seconds>")
def on_close(seconds):
    response = make_response("ok")
    response.call_on_close(lambda: time.sleep(seconds))  # werkzeug: after the body is sent
    return response


@app.get("/after_this_request/<float:seconds>")
def after(seconds):
    @after_this_request
    def later(response):  # Flask: after the view, before the response leaves
        time.sleep(seconds)
        return response
    return "ok"


@app.get("/thread/<float:seconds>")
def thread(seconds):
    threading.Thread(target=time.sleep, args=(seconds,)).start()  # nobody waits, nobody keeps it
    return "ok"
