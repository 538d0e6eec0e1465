# exercise: ex06_scaling
# mistake: a constant: the count that was right for one load
# expect: workers_needed(
def workers_needed(rate, seconds):
    return 3
