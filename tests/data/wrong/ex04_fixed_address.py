# exercise: ex04_survive_deploy
# mistake: a copied value: enqueues an email to the task's default address, not the user's
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
