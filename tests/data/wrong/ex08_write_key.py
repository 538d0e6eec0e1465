# exercise: ex08_race
# mistake: bypass: writes step_a's output by hand, so step_b always finds it
# expect: before step_a could have stored its output
def run_pair(lab, key):
    lab.redis.set(f"lab.{lab.name}.race.{key}", "ready")
    lab.enqueue("step_a", key=key, seconds=0.01)
    return lab.enqueue("step_b", key=key)
