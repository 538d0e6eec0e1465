# exercise: ex06_scaling
# mistake: half-solution: rounds the work in flight instead of rounding it up
# expect: finish at most
def workers_needed(rate, seconds):
    return int(rate * seconds)
