# exercise: ex02_report_endpoint
# mistake: a constant: enqueues the report but answers with a fixed id
# expect: which is not the id of the job it enqueued
import time

from flask import Flask
from flask import jsonify

from labapp.tasks import huey


@huey.task()
def build_report(user):
    time.sleep(0.3)
    return f"report for {user}"


def create_app():
    app = Flask(__name__)

    @app.post("/report/<user>")
    def report(user):
        build_report(user)
        return jsonify(id="report"), 202

    return app
