# exercise: ex02_report_endpoint
# mistake: the report is still built inside the request (call_local)
# expect: (limit 150 ms)
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
        build_report.call_local(user)
        return jsonify(id="done"), 202

    return app
