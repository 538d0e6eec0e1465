"""Start a lab, print every pid it owns as one JSON line, then wait to be killed.

Used by tests/test_orphans.py: the test SIGKILLs this process and counts survivors.
"""
import json
import sys

from labapp import Lab
from labapp import procs

workers, worker_type, run_root = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lab = Lab.start(workers=workers, worker_type=worker_type, run_root=run_root, quiet=True)
status = lab.status()
pids = [status["broker"], status["web"]]
if status["consumer"]:
    pids += procs.group_pids(status["consumer"])  # the consumer and every process it forked
print(json.dumps({"pids": sorted(set(pids)), "run_dir": status["run_dir"]}), flush=True)
sys.stdin.read()  # block until killed
