# exercise: ex06_scaling
# mistake: half-solution: the right rule plus one spare worker, so not the smallest
# expect: fewer workers would too
import math


def workers_needed(rate, seconds):
    return math.ceil(rate * seconds) + 1
