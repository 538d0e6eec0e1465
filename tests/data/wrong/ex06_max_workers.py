# exercise: ex06_scaling
# mistake: bypass: always the lab's maximum of 16 workers, which keeps up with every load drawn
# expect: fewer workers would too
def workers_needed(rate, seconds):
    return 16
