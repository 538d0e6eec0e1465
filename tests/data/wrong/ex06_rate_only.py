# exercise: ex06_scaling
# mistake: one worker per job arriving each second, ignoring how long a job takes
# expect: fewer workers would too | fewer than the
import math


def workers_needed(rate, seconds):
    return math.ceil(rate)
