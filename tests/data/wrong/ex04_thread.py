# exercise: ex04_survive_deploy
# mistake: bypass: notebook 04's shortcut, a thread in the view, the job lives only in the app's process
# expect: went through the queue
import threading

from flask import Flask

from labapp.tasks import send_email


def create_app():
    app = Flask(__name__)

    @app.post("/signup/<to>")
    def signup(to):
        threading.Thread(target=send_email.call_local, kwargs={"to": to}).start()
        return {"ok": True}, 202

    return app
