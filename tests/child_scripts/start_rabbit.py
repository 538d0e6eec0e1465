"""Start a private RabbitMQ node, print its folder and pids as one JSON line, wait to be killed.

Used by tests/test_rabbit.py: the test SIGKILLs this process and counts survivors.
"""
import json
import sys

from labapp.rabbit import PrivateRabbit

rabbit = PrivateRabbit(root=sys.argv[1])
rabbit.start()
print(json.dumps({"dir": str(rabbit.dir), "pids": rabbit.pids(), "port": rabbit.port}), flush=True)
sys.stdin.read()  # block until killed
