# exercise: ex09_inline_or_queue
# mistake: a constant: queue everything
# expect: decide chose 'queue'
def decide(measurement):
    return "queue"
