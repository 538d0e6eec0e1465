# exercise: ex04_survive_deploy
# mistake: half-solution: a thread that enqueues the email later; the deploy comes first
# expect: went through the queue
import threading
import time

from flask import Flask

from labapp.tasks import send_email


def later(to):
    time.sleep(1)  # "don't load the broker during the request"
    send_email(to=to)


def create_app():
    app = Flask(__name__)

    @app.post("/signup/<to>")
    def signup(to):
        threading.Thread(target=later, args=(to,)).start()
        return {"ok": True}, 202

    return app
