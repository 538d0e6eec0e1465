# exercise: ex02_report_endpoint
# mistake: half-solution: enqueues, but answers 200 as if the report were done
# expect: answer 202 (Accepted)
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
        result = build_report(user)
        return jsonify(id=result.id)

    return app
