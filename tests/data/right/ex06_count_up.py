# exercise: ex06_scaling
# answer: counts workers up until their ideal throughput reaches the rate
def workers_needed(rate, seconds):
    workers = 1
    while workers / seconds < rate:
        workers += 1
    return workers
