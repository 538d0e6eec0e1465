# exercise: ex09_inline_or_queue
# mistake: half-solution: queues whatever the response does not need, however quick it is
# expect: a queue would add moving parts
def decide(measurement):
    return "inline" if measurement["needs_result"] else "queue"
