# exercise: ex02_report_endpoint
# mistake: half-solution: enqueues a report, but for a fixed user, not the one in the URL
# expect: for their user
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
        result = build_report("user0")
        return jsonify(id=result.id), 202

    return app
