# exercise: ex04_survive_deploy
# mistake: half-solution: enqueues an email, to the task's default address instead of the user's
# expect: for their own address
from flask import Flask

from labapp.tasks import send_email


def create_app():
    app = Flask(__name__)

    @app.post("/signup/<to>")
    def signup(to):
        job = send_email(to="learner@example.com")
        return {"id": job.id}, 202

    return app
