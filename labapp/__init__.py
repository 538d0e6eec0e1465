"""queue-lab: task queues in Flask, learned by measuring them.

>>> from labapp import Lab
>>> lab = Lab.start(workers=2)      # a private server, the Flask app and 2 Huey workers
>>> lab.wait(lab.enqueue("sleep", seconds=1))
True
>>> lab.stop()
"""
from labapp.config import ConfigError
from labapp.config import LabConfig
from labapp.stack import Lab
from labapp.stack import LabError

__all__ = ["Lab", "LabConfig", "ConfigError", "LabError"]
__version__ = "0.1.0"
