# exercise: ex04_survive_deploy
# mistake: bypass: the view sends the email itself, so nothing can be lost, and users wait
# expect: the view sent the email itself
from flask import Flask

from labapp.tasks import send_email


def create_app():
    app = Flask(__name__)

    @app.post("/signup/<to>")
    def signup(to):
        send_email.call_local(to=to)
        return {"ok": True}, 202

    return app
