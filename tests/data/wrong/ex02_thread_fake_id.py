# exercise: ex02_report_endpoint
# mistake: bypass: a thread in the app builds the report, the answer carries a made-up id
# expect: never reaches the queue
import threading
import time
import uuid

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
        threading.Thread(target=build_report.call_local, args=(user,)).start()
        return jsonify(id=str(uuid.uuid4())), 202

    return app
