# exercise: ex09_inline_or_queue
# mistake: half-solution: decides on the time alone, ignoring whether the response needs the result
# expect: response shows the result
def decide(measurement):
    return "queue" if measurement["inline_s"] >= 0.05 else "inline"
