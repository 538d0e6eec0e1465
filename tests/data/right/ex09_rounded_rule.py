# exercise: ex09_inline_or_queue
# answer: the same rule written the other way round
def decide(measurement):
    slow = measurement["inline_s"] - measurement["enqueue_s"] >= 0.05
    return "queue" if slow and not measurement["needs_result"] else "inline"
